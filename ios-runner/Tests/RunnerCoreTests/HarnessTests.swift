import Foundation
import XCTest
@testable import RunnerCore

let fixturesFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

func makeManifest(_ units: [ComputeUnits] = [.all, .cpuAndNeuralEngine, .cpuAndGPU, .cpuOnly],
                  iterations: Int = 10, warmup: Int = 3, rounds: Int = 2, budget: Double = 600) -> RunnerManifest {
    RunnerManifest(
        schemaVersion: 1, batchId: "batch-1",
        model: ManifestModel(filename: "Tiny.mlmodel", sha256: String(repeating: "ab", count: 32), format: .mlmodel),
        computeUnits: units, iterations: iterations, warmup: warmup, rounds: rounds, timeBudgetS: budget,
        inputSeed: 7, computePlan: true)
}

/// A temporary folder with a model file, and a harness over a fake executor in it.
final class Bench {
    let folder: URL
    let clock = FakeClock()
    let executor: FakeExecutor
    let model: URL
    var options = HarnessOptions()

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        model = folder.appendingPathComponent("Tiny.mlmodel")
        try Data("not really a model".utf8).write(to: model)
        executor = FakeExecutor(clock: clock, workspace: folder)
    }

    var harness: Harness {
        Harness(executor: executor, clock: clock, cache: CompileCache(root: folder.appendingPathComponent("compiled")),
                options: options)
    }

    func run(_ manifest: RunnerManifest = makeManifest()) throws -> RunnerResult {
        let result = harness.run(manifest, modelURL: model)
        // Whatever the harness produces must pass the same checks the agent applies.
        _ = try Codec.decodeResult(Codec.encoder().encode(result))
        return result
    }

    deinit { try? FileManager.default.removeItem(at: folder) }
}

final class HarnessTests: XCTestCase {
    func testWarmupIsExcludedFromTheStatistics() throws {
        let bench = try Bench()
        let result = try bench.run(makeManifest([.cpuOnly], iterations: 10, warmup: 4, rounds: 2))
        let setting = try XCTUnwrap(result.settings.first)
        XCTAssertEqual(setting.latenciesMs.count, 10)
        // 1 first prediction + 4 warm-up in each of the 2 slots + 10 timed ran on the fake model.
        XCTAssertEqual(bench.executor.predictions.count, 19)
        XCTAssertEqual(setting.stats?.count, 10)
        XCTAssertEqual(setting.coldLoadMs ?? 0, 80, accuracy: 1e-9)
        XCTAssertEqual(setting.warmLoadMs ?? 0, 8, accuracy: 1e-9)
        XCTAssertEqual(setting.firstPredictionMs ?? 0, 11, accuracy: 1e-9)
        XCTAssertEqual(setting.stats?.min ?? 0, 11, accuracy: 1e-9)
        XCTAssertFalse(result.partial)
    }

    // Input synthesis (here 500 ms a time) is in no figure: not the loads, not the first
    // prediction, not the samples.
    func testInputSynthesisIsOutsideEveryTimedFigure() throws {
        let bench = try Bench()
        bench.executor.inputMs = 500
        let result = try bench.run(makeManifest([.cpuOnly], iterations: 4, warmup: 1, rounds: 2))
        let setting = try XCTUnwrap(result.settings.first)
        XCTAssertEqual(setting.coldLoadMs ?? 0, 80, accuracy: 1e-9)
        XCTAssertEqual(setting.warmLoadMs ?? 0, 8, accuracy: 1e-9)
        XCTAssertEqual(setting.firstPredictionMs ?? 0, 11, accuracy: 1e-9)
        XCTAssertLessThan(setting.stats?.max ?? 1000, 12)
    }

    // Every slot starts with its warm-up, not only a setting's first: after the other
    // settings' slots (or a cool-down) the caches are cold again.
    func testEverySlotStartsWithItsWarmUp() throws {
        let bench = try Bench()
        _ = try bench.run(makeManifest([.all, .cpuOnly], iterations: 4, warmup: 3, rounds: 2))
        let slots = Array(bench.executor.predictions.dropFirst(2))  // after the first predictions
        // Round 0: all, cpuOnly; round 1 rotated: cpuOnly, all. Each 3 warm-up + 2 timed.
        let expected: [ComputeUnits] = [.all, .cpuOnly, .cpuOnly, .all].flatMap { Array(repeating: $0, count: 5) }
        XCTAssertEqual(slots, expected)
    }

    // One model in memory at a time, none left after the batch.
    func testOneModelIsLoadedAtATime() throws {
        let bench = try Bench()
        let result = try bench.run(makeManifest(iterations: 6, warmup: 1, rounds: 3))
        XCTAssertTrue(result.settings.allSatisfy { $0.latenciesMs.count == 6 })
        XCTAssertEqual(bench.executor.maxLiveModelsWhilePredicting, 1)
        XCTAssertEqual(bench.executor.liveModels, 0)
    }

    func testSettingsAreInterleavedInRotatingRounds() throws {
        let bench = try Bench()
        let units: [ComputeUnits] = [.all, .cpuAndGPU, .cpuOnly]
        _ = try bench.run(makeManifest(units, iterations: 3, warmup: 0, rounds: 3))
        // After the three first predictions: one sample per setting per round, rotated.
        let timed = Array(bench.executor.predictions.dropFirst(3))
        XCTAssertEqual(timed, [.all, .cpuAndGPU, .cpuOnly, .cpuAndGPU, .cpuOnly, .all, .cpuOnly, .all, .cpuAndGPU])
    }

    func testIterationsAreSpreadOverRounds() {
        let quotas = (0..<3).map { Harness.quota(iterations: 10, rounds: 3, round: $0) }
        XCTAssertEqual(quotas, [4, 3, 3])
    }

    func testTimeBudgetGivesAPartialResult() throws {
        let bench = try Bench()
        // Compile, loads and first predictions take ~0.31 s of the 0.6 s: a few rounds of 10 fit.
        let result = try bench.run(makeManifest([.cpuAndNeuralEngine, .cpuOnly], iterations: 1000, warmup: 0, rounds: 100, budget: 0.6))
        XCTAssertTrue(result.partial)
        let counts = result.settings.map(\.latenciesMs.count)
        XCTAssertTrue(counts.allSatisfy { $0 > 0 && $0 < 250 }, "\(counts)")
        XCTAssertTrue(result.settings.allSatisfy { $0.error == nil })
    }

    func testBudgetSpentBeforeAnySampleIsATimeoutPerSetting() throws {
        let bench = try Bench()
        bench.executor.compileMs = 5_000
        let result = try bench.run(makeManifest([.all, .cpuOnly], budget: 1))
        XCTAssertTrue(result.partial)
        XCTAssertEqual(result.settings.map { $0.error?.kind }, [.timeout, .timeout])
    }

    func testHotDeviceCoolsDownBetweenRoundsAndCountsIt() throws {
        let bench = try Bench()
        // Serious from 0.5 s to 31 s after the clock's start, nominal again afterwards.
        let start = bench.clock.nanos
        bench.executor.thermal = { now in
            let seconds = Double(now - start) / 1e9
            return seconds > 0.5 && seconds < 31 ? .serious : .nominal
        }
        bench.options.cooldownStepS = 10
        let result = try bench.run(makeManifest([.cpuOnly], iterations: 200, warmup: 0, rounds: 4))
        XCTAssertEqual(result.cooldowns, 1)
        XCTAssertEqual(bench.clock.sleeps, [10, 10, 10, 10])
        XCTAssertEqual(result.settings[0].latenciesMs.count, 200)
        XCTAssertEqual(result.thermalAfter, .nominal)
    }

    func testCooldownIsBoundedSoAHotDeviceStillMeasures() throws {
        let bench = try Bench()
        bench.executor.thermal = { _ in .critical }
        bench.options.cooldownStepS = 30
        bench.options.maxCooldownS = 60
        let result = try bench.run(makeManifest([.cpuOnly], iterations: 4, warmup: 0, rounds: 2, budget: 3600))
        XCTAssertEqual(result.cooldowns, 2)
        XCTAssertEqual(bench.clock.sleeps.count, 4)
        XCTAssertEqual(result.settings[0].latenciesMs.count, 4)
        XCTAssertEqual(result.thermalBefore, .critical)
    }

    func testOneFailingSettingLosesNoOther() throws {
        let bench = try Bench()
        bench.executor.failures[.cpuAndNeuralEngine] = ("load", ExecutorError(.unsupported, "no ANE on this chip"))
        bench.executor.failures[.cpuAndGPU] = ("predict", ExecutorError(.predict, "GPU went away"))
        bench.executor.failAfter = 5
        let result = try bench.run(makeManifest(iterations: 10, warmup: 2, rounds: 2))
        let byUnits = Dictionary(uniqueKeysWithValues: result.settings.map { ($0.computeUnits, $0) })
        XCTAssertEqual(byUnits[.cpuAndNeuralEngine]?.error?.kind, .unsupported)
        XCTAssertEqual(byUnits[.cpuAndNeuralEngine]?.latenciesMs, [])
        // The GPU setting kept the two samples it took before failing (1 first + 2 warm-up + 2).
        XCTAssertEqual(byUnits[.cpuAndGPU]?.error?.kind, .predict)
        XCTAssertEqual(byUnits[.cpuAndGPU]?.latenciesMs.count, 2)
        XCTAssertEqual(byUnits[.all]?.latenciesMs.count, 10)
        XCTAssertEqual(byUnits[.cpuOnly]?.latenciesMs.count, 10)
        XCTAssertNil(result.error)
    }

    func testCompileErrorFailsTheBatchWithKindCompile() throws {
        let bench = try Bench()
        bench.executor.compileError = ExecutorError(.compile, "unknown layer type")
        let result = try bench.run()
        XCTAssertEqual(result.error?.kind, .compile)
        XCTAssertEqual(result.settings, [])
        XCTAssertTrue(result.error?.message.contains("unknown layer type") ?? false)
    }

    func testCompiledModelIsCachedAtAStablePath() throws {
        let bench = try Bench()
        let first = try bench.run()
        let second = try bench.run()
        XCTAssertEqual(bench.executor.compiles, 1)
        XCTAssertFalse(first.compileCached)
        XCTAssertEqual(first.compileMs ?? 0, 120, accuracy: 1e-9)
        XCTAssertTrue(second.compileCached)
        XCTAssertNil(second.compileMs)
        let cache = CompileCache(root: bench.folder.appendingPathComponent("compiled"))
        let path = cache.location(sha256: String(repeating: "ab", count: 32), osBuild: "21F79", modelFilename: "Tiny.mlmodel")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path.appendingPathComponent("model.bin").path))
    }

    // Staleness goes by last use: a compiled model used again is kept by the launch-time
    // clean-up however long ago it was compiled; one left unused for a day is removed.
    // The figures follow the provenance (the fake, like Core ML's cache, is cold once per
    // compiled path): with `process` only the first setting's cold load is cold; with
    // `fresh_compile` every one is, at the price of a compile per setting.
    func testColdLoadFiguresFollowTheirProvenance() throws {
        let bench = try Bench()
        var manifest = makeManifest([.all, .cpuAndGPU, .cpuOnly], iterations: 3, warmup: 0, rounds: 1)
        let process = try bench.run(manifest)
        XCTAssertEqual(process.settings.map(\.coldLoadProvenance), [.freshCompile, .warmCache, .warmCache])
        XCTAssertEqual(process.settings.map(\.coldLoadMs), [80, 8, 8])
        manifest.coldLoad = .freshCompile
        let fresh = try bench.run(manifest)
        XCTAssertEqual(fresh.settings.map(\.coldLoadProvenance), [.freshCompile, .freshCompile, .freshCompile])
        XCTAssertEqual(fresh.settings.map(\.coldLoadMs), [80, 80, 80])
        XCTAssertEqual(fresh.settings.map(\.warmLoadMs), [8, 8, 8])
        XCTAssertNil(fresh.compileMs)  // the batch's own compile was cached; per-setting ones are untimed
        XCTAssertEqual(bench.executor.compiles, 1 + 3)
        let left = try FileManager.default.contentsOfDirectory(atPath: bench.folder.path).filter { $0.hasPrefix("compiled-") }
        XCTAssertEqual(left, [])  // every fresh copy deleted (the first compile was moved into the cache)
    }

    func testACompiledModelInUseIsNotStale() throws {
        let bench = try Bench()
        let mailbox = Mailbox(documents: bench.folder)
        let harness = Harness(executor: bench.executor, clock: bench.clock, cache: CompileCache(root: mailbox.compiledRoot))
        let manifest = makeManifest([.cpuOnly], iterations: 1, warmup: 0, rounds: 1)
        _ = harness.run(manifest, modelURL: bench.model)
        let entry = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: mailbox.compiledRoot.path).first)
        let entryPath = mailbox.compiledRoot.appendingPathComponent(entry).path
        let twoDaysAgo = Date().addingTimeInterval(-48 * 3600)
        try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: entryPath)
        _ = harness.run(manifest, modelURL: bench.model)  // a cache hit: the model is used today
        XCTAssertEqual(mailbox.cleanStale(maxAge: 24 * 3600), [])
        XCTAssertEqual(bench.executor.compiles, 1)
        try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: entryPath)
        XCTAssertEqual(mailbox.cleanStale(maxAge: 24 * 3600).map(\.lastPathComponent), [entry])
    }

    func testTimestampsAreIsoWithFractionAndZ() {
        let text = timestamp(Date(timeIntervalSince1970: 1_790_000_000.25))
        XCTAssertEqual(text, "2026-09-21T14:13:20.250Z")
    }

    /// The cross-check with Python: Fixtures/generated/harness-result.json is what this harness
    /// produces over the fake executor (pytest validates it with orchestrator/protocol/__init__.py).
    /// `make -C ios-runner fixtures` rewrites it; otherwise a difference fails here.
    func testHarnessResultMatchesTheCommittedFixture() throws {
        let bench = try Bench()
        bench.executor.failures[.cpuAndGPU] = ("load", ExecutorError(.load, "simulated load failure"))
        bench.executor.plan = ComputePlan(computeUnits: .all, ops: [
            OpPlan(index: 0, name: "conv_0", opType: "conv", preferred: .neuralEngine, supported: [.neuralEngine, .gpu, .cpu], cost: 0.75),
            OpPlan(index: 1, name: "softmax_0", opType: "softmax", preferred: .cpu, supported: [.cpu], cost: 0.25),
        ])
        let result = try bench.run(makeManifest(iterations: 12, warmup: 2, rounds: 3))
        let file = fixturesFolder.appendingPathComponent("generated/harness-result.json")
        if ProcessInfo.processInfo.environment["ANEFARM_REGENERATE"] == "1" {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Codec.encoder().encode(result).write(to: file)
        }
        let committed = try Codec.decodeResult(Data(contentsOf: file))
        XCTAssertEqual(result, committed, "harness output drifted: run `make -C ios-runner fixtures` and commit")
    }
}
