import Foundation
import XCTest
@testable import RunnerCore

final class MailboxTests: MailboxTestCase {
    /// What the agent does: the model first, manifest.json last.
    func deliver(_ manifest: RunnerManifest, manifestData: Data? = nil) throws {
        let inbox = mailbox.inbox(manifest.batchId)
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: bench.model, to: inbox.appendingPathComponent(manifest.model.filename))
        let data = try manifestData ?? Codec.encoder().encode(manifest)
        try data.write(to: inbox.appendingPathComponent("manifest.json"))
    }

    func testResultThenDoneMarkerAndNoTemporaryFileLeft() throws {
        try deliver(makeManifest())
        XCTAssertEqual(mailbox.pendingBatches(), ["batch-1"])
        let result = try process("batch-1")
        XCTAssertTrue(mailbox.isDone("batch-1"))
        let written = try Codec.decodeResult(Data(contentsOf: mailbox.resultURL("batch-1")))
        XCTAssertEqual(written, result)
        let names = try FileManager.default.contentsOfDirectory(atPath: mailbox.outbox("batch-1").path).sorted()
        XCTAssertEqual(names, ["done", "result.json"])
        XCTAssertEqual(mailbox.pendingBatches(), [])
    }

    // Durable before done: result.json is flushed, then its rename (the folder), and only
    // then is the done marker written and flushed.
    func testResultIsOnStorageBeforeTheDoneMarkerIsWritten() throws {
        let steps = StepLog()
        let documents = bench.folder.appendingPathComponent("Documents")
        let durable = Mailbox(documents: documents, flush: { url in
            try Mailbox.flushToStorage(url)  // the real fsync works here too
            let outbox = Mailbox(documents: documents).outbox("batch-3")
            let state = ["result.json", "done"].filter { FileManager.default.fileExists(atPath: outbox.appendingPathComponent($0).path) }
            let name = url.lastPathComponent.hasPrefix(".result.json.") ? "temporary" : url.lastPathComponent
            steps.append("\(name) [\(state.joined(separator: ","))]")
        })
        try durable.publish(bench.harness.failure(batch: "batch-3", error: RunnerError(kind: .internal, message: "x"), modelSha256: nil))
        XCTAssertEqual(steps.all, ["temporary []", "batch-3 [result.json]", "done [result.json,done]", "batch-3 [result.json,done]"])
    }

    func testProcessingTwiceGivesTheSameOutcomeWithoutMeasuringAgain() throws {
        try deliver(makeManifest())
        let first = try process("batch-1")
        let predictions = bench.executor.predictions.count
        let second = try process("batch-1")
        XCTAssertEqual(first, second)
        XCTAssertEqual(bench.executor.predictions.count, predictions)
    }

    func testRepublishReplacesTheResultAtomically() throws {
        let harness = bench.harness
        let failed = harness.failure(batch: "batch-2", error: RunnerError(kind: .internal, message: "first"), modelSha256: nil)
        try mailbox.publish(failed)
        var again = failed
        again.error = RunnerError(kind: .internal, message: "second")
        try mailbox.publish(again)
        XCTAssertEqual(try Codec.decodeResult(Data(contentsOf: mailbox.resultURL("batch-2"))).error?.message, "second")
    }

    func testUnknownSchemaVersionIsAnErrorResultNotACrash() throws {
        let data = try Data(contentsOf: fixturesFolder.appendingPathComponent("invalid/runner-manifest-bad-version.json"))
        let bad = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let batch = try XCTUnwrap(bad["batch_id"] as? String)
        var manifest = makeManifest()
        manifest.batchId = batch
        try deliver(manifest, manifestData: data)
        let result = try process(batch)
        XCTAssertEqual(result.error?.kind, .manifest)
        XCTAssertTrue(result.error?.message.contains("schema_version") ?? false, result.error?.message ?? "")
        XCTAssertTrue(mailbox.isDone(batch))
        XCTAssertEqual(bench.executor.compiles, 0)
    }

    func testManifestForAnotherBatchIsRefused() throws {
        var manifest = makeManifest()
        try deliver(manifest)
        manifest.batchId = "other"
        try Codec.encoder().encode(manifest).write(to: mailbox.inbox("batch-1").appendingPathComponent("manifest.json"))
        let result = try process("batch-1")
        XCTAssertEqual(result.error?.kind, .manifest)
        XCTAssertTrue(result.error?.message.contains("does not match") ?? false)
    }

    func testMissingModelFileIsAManifestError() throws {
        try deliver(makeManifest())
        try FileManager.default.removeItem(at: mailbox.inbox("batch-1").appendingPathComponent("Tiny.mlmodel"))
        let result = try process("batch-1")
        XCTAssertEqual(result.error?.kind, .manifest)
        XCTAssertEqual(result.modelSha256, String(repeating: "ab", count: 32))
    }

    func testBatchNameThatIsNotABatchIdIsRefused() {
        XCTAssertThrowsError(try process("../escape"))
    }

    func testInboxWithoutManifestIsNotPending() throws {
        try FileManager.default.createDirectory(at: mailbox.inbox("half"), withIntermediateDirectories: true)
        XCTAssertEqual(mailbox.pendingBatches(), [])
    }

    func testStaleBatchesAreCleanedAndFreshOnesKept() throws {
        try deliver(makeManifest())
        _ = try process("batch-1")
        XCTAssertEqual(mailbox.cleanStale(maxAge: 3600), [])
        let removed = mailbox.cleanStale(maxAge: 3600, now: Date().addingTimeInterval(7200))
        XCTAssertEqual(Set(removed.map(\.lastPathComponent)), ["batch-1", "\(String(repeating: "ab", count: 32))-21F79"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: mailbox.outbox("batch-1").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: mailbox.inbox("batch-1").path))
    }
}

/// Steps recorded from a @Sendable closure.
final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var steps: [String] = []
    func append(_ step: String) { lock.lock(); steps.append(step); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return steps }
}
