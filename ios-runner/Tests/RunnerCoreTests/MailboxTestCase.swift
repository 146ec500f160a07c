import Foundation
import XCTest
@testable import RunnerCore

/// The set-up the mailbox tests share: a fresh `Bench` and a `Mailbox` in its Documents
/// folder, and `process`, which runs a batch through the app's own path
/// (`Mailbox.process` → `Harness.run`) with compiled models where the app keeps them.
class MailboxTestCase: XCTestCase {
    var bench: Bench!
    var mailbox: Mailbox!

    override func setUpWithError() throws {
        bench = try Bench()
        mailbox = Mailbox(documents: bench.folder.appendingPathComponent("Documents"))
    }

    override func tearDown() { bench = nil }

    func process(_ batch: String = "batch-1") throws -> RunnerResult {
        // The app's layout: compiled models under Documents/anefarm/compiled.
        let harness = Harness(executor: bench.executor, clock: bench.clock, cache: CompileCache(root: mailbox.compiledRoot))
        return try mailbox.process(batch, measure: { harness.run($0, modelURL: $1) },
                                   failure: { harness.failure(batch: $0, error: $1, modelSha256: $2) })
    }
}
