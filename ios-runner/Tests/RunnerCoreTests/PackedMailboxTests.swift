import Foundation
import XCTest
@testable import RunnerCore

/// A packed launch through the app's own path (`Mailbox.process` → `Harness.run` →
/// `runPacked`), delivered as the agent's iOS driver delivers it: every model pushed into
/// the one inbox under its manifest name, manifest.json last.
final class PackedMailboxTests: MailboxTestCase {
    private func deliver(count: Int, skip: Int? = nil) throws -> RunnerManifest {
        let inbox = mailbox.inbox("batch-1")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        var models: [ManifestModel] = []
        for index in 0..<count {
            let name = "Probe\(index).mlmodel"
            if index != skip { try Data("probe \(index)".utf8).write(to: inbox.appendingPathComponent(name)) }
            models.append(ManifestModel(filename: name, sha256: String(repeating: String(format: "%02x", index + 1), count: 32),
                                        format: .mlmodel))
        }
        var manifest = makeManifest([.all, .cpuOnly], iterations: 4, warmup: 1)
        manifest.schemaVersion = packedSchemaVersion
        manifest.model = models[0]
        manifest.models = models
        try Codec.encoder().encode(manifest).write(to: inbox.appendingPathComponent("manifest.json"))
        return manifest
    }

    func testAPackedInboxIsOneResultWithEveryModelAndADoneMarker() throws {
        let manifest = try deliver(count: 3)
        let result = try process()
        XCTAssertTrue(mailbox.isDone("batch-1"))
        let written = try Codec.decodeResult(Data(contentsOf: mailbox.resultURL("batch-1")))
        XCTAssertEqual(written.schemaVersion, packedSchemaVersion)
        XCTAssertEqual(written.models?.map(\.modelSha256), manifest.allModels.map(\.sha256))
        XCTAssertEqual(bench.executor.compiles, 3)
        XCTAssertEqual(summary(of: result).split(separator: "\n").first, "3 models in one launch")
    }

    func testAPackedInboxMissingOneModelIsAManifestErrorNotAHalfMeasuredLaunch() throws {
        _ = try deliver(count: 3, skip: 1)
        let result = try process()
        XCTAssertEqual(result.error?.kind, .manifest)
        XCTAssertTrue(result.error?.message.contains("Probe1.mlmodel") ?? false)
        XCTAssertEqual(bench.executor.compiles, 0)
        XCTAssertTrue(summary(of: result).hasPrefix("failed (manifest)"))
    }
}
