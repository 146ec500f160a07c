import Foundation
import XCTest
@testable import RunnerCore

/// A packed manifest over `count` model files written into the bench's folder.
private func packed(_ bench: Bench, count: Int, units: [ComputeUnits] = [.all, .cpuOnly], iterations: Int = 6,
                    warmup: Int = 1, rounds: Int = 2, budget: Double = 600) throws -> (RunnerManifest, [URL]) {
    var models: [ManifestModel] = []
    var urls: [URL] = []
    for index in 0..<count {
        let name = "Probe\(index).mlmodel"
        let url = bench.folder.appendingPathComponent(name)
        try Data("probe \(index)".utf8).write(to: url)
        models.append(ManifestModel(filename: name, sha256: String(repeating: String(format: "%02x", index + 1), count: 32), format: .mlmodel))
        urls.append(url)
    }
    var manifest = makeManifest(units, iterations: iterations, warmup: warmup, rounds: rounds, budget: budget)
    manifest.schemaVersion = packedSchemaVersion
    manifest.model = models[0]
    manifest.models = models
    return (manifest, urls)
}

final class PackedHarnessTests: XCTestCase {
    /// Encoded and decoded as the agent reads it: whatever the harness writes must validate.
    private func run(_ bench: Bench, _ manifest: RunnerManifest, _ urls: [URL]) throws -> RunnerResult {
        _ = try Codec.decodeManifest(Codec.encoder().encode(manifest))
        let result = bench.harness.run(manifest, modelURL: urls[0])
        return try Codec.decodeResult(Codec.encoder().encode(result))
    }

    func testEveryModelIsMeasuredInOneLaunchWithItsOwnResult() throws {
        let bench = try Bench()
        let (manifest, urls) = try packed(bench, count: 3)
        let result = try run(bench, manifest, urls)
        XCTAssertEqual(result.schemaVersion, 2)
        XCTAssertEqual(result.settings, [])
        let models = try XCTUnwrap(result.models)
        XCTAssertEqual(models.map(\.modelSha256), manifest.allModels.map(\.sha256))
        XCTAssertEqual(bench.executor.compiles, 3)  // each model compiled once
        for model in models {
            XCTAssertNil(model.error)
            XCTAssertEqual(model.settings.map { $0.latenciesMs.count }, [6, 6])
            XCTAssertEqual(model.compileMs ?? 0, 120, accuracy: 1e-9)
            // Each model's own cold load follows its own compile.
            XCTAssertEqual(model.settings.first?.coldLoadProvenance, .freshCompile)
        }
        XCTAssertFalse(result.partial)
    }

    func testAModelThatFailsIsThatModelsFailureAndTheOthersStillRun() throws {
        let bench = try Bench()
        let (manifest, urls) = try packed(bench, count: 3)
        bench.executor.compileErrors["Probe1.mlmodel"] = ExecutorError(.compile, "unknown layer type")
        let result = try run(bench, manifest, urls)
        let models = try XCTUnwrap(result.models)
        XCTAssertEqual(models[1].error?.kind, .compile)
        XCTAssertEqual(models[1].settings, [])
        XCTAssertNil(result.error)
        for index in [0, 2] {
            XCTAssertNil(models[index].error)
            XCTAssertTrue(models[index].settings.allSatisfy { $0.latenciesMs.count == 6 })
        }
    }

    // Round by round, models rotated like settings; every slot starts with its warm-up.
    func testModelsAreInterleavedAndEverySlotWarmsUp() throws {
        let bench = try Bench()
        let (manifest, urls) = try packed(bench, count: 2, units: [.cpuOnly], iterations: 4, warmup: 1, rounds: 2)
        _ = try run(bench, manifest, urls)
        let (a, b) = (manifest.allModels[0].sha256, manifest.allModels[1].sha256)
        let slots = Array(bench.executor.predictedModels.dropFirst(2))  // after each model's first prediction
        // Round 0: a, b; round 1 rotated: b, a. Each slot: 1 warm-up + 2 timed.
        XCTAssertEqual(slots, [a, b, b, a].flatMap { Array(repeating: $0, count: 3) })
        XCTAssertEqual(bench.executor.maxLiveModelsWhilePredicting, 1)
    }

    // One probe's figures are its own: a slow model next to a fast one changes neither.
    func testEachModelsTimingIsIndependentOfItsNeighbours() throws {
        let bench = try Bench()
        let (manifest, urls) = try packed(bench, count: 2, units: [.cpuOnly], iterations: 8)
        bench.executor.modelLatencyMs = [manifest.allModels[0].sha256: 2, manifest.allModels[1].sha256: 40]
        let models = try XCTUnwrap(try run(bench, manifest, urls).models)
        let fast = try XCTUnwrap(models[0].settings[0].stats), slow = try XCTUnwrap(models[1].settings[0].stats)
        XCTAssertLessThan(fast.max, 3)
        XCTAssertGreaterThanOrEqual(slow.min, 40)
    }

    func testTheBudgetCoversTheWholeLaunch() throws {
        let bench = try Bench()
        // Compile (120 ms), cold and warm load (88 ms), first prediction (11 ms): 219 ms a
        // model, so the third model's turn comes after the 0.4 s budget.
        let (manifest, urls) = try packed(bench, count: 3, units: [.cpuOnly], iterations: 100, budget: 0.4)
        let result = try run(bench, manifest, urls)
        let models = try XCTUnwrap(result.models)
        XCTAssertTrue(result.partial)
        XCTAssertEqual(models[2].error?.kind, .timeout)
        XCTAssertTrue(models[2].partial)
        XCTAssertEqual(bench.executor.compiles, 2)
        // The budget ended before the rounds began: every model partial, no sample taken.
        XCTAssertTrue(models.allSatisfy(\.partial))
        XCTAssertEqual(models[0].settings.map { $0.error?.kind }, [.timeout])
    }

    func testAPackedManifestAsVersionOneIsRefused() throws {
        let bench = try Bench()
        var (manifest, _) = try packed(bench, count: 2)
        manifest.schemaVersion = 1
        XCTAssertThrowsError(try Codec.decodeManifest(Codec.encoder().encode(manifest))) { error in
            XCTAssertTrue("\(error)".contains("schema_version"))
        }
    }
}
