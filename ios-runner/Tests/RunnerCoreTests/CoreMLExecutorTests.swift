// CoreMLExecutor.swift itself (not a copy) driven through CoreMLShim's fake on Linux. On a
// Mac the real Core ML is imported and these tests are left out (they program the fake).
#if !canImport(CoreML)
import CoreMLShim
import Foundation
import XCTest
@testable import RunnerCore

/// A model file, a compile cache, and a fake reset before and after.
final class CoreMLBench {
    let folder: URL
    let model: URL
    init() throws {
        CoreMLFake.reset()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("coreml-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        model = folder.appendingPathComponent("Tiny.mlmodel")
        try Data("not really a model".utf8).write(to: model)
    }
    func compiled(_ executor: CoreMLExecutor = CoreMLExecutor()) throws -> URL { try executor.compile(modelURL: model) }
    var cache: CompileCache { CompileCache(root: folder.appendingPathComponent("compiled")) }
    deinit {
        CoreMLFake.reset()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// The app's foreground state as a test drives it (from CoreMLFake.beforePrediction).
final class TestActivity: AppActivity, @unchecked Sendable {
    private(set) var departures = 0
    private(set) var inForeground = true
    func leave() { departures += 1; inForeground = false }
    func back() { inForeground = true }
}

/// A loaded model with its inputs made, as the harness prepares one.
func ready(_ executor: CoreMLExecutor, _ compiled: URL, _ units: ComputeUnits, seed: Int) throws -> LoadedModel {
    let model = try executor.load(compiled: compiled, computeUnits: units)
    try model.prepareInputs(seed: seed)
    return model
}

final class CoreMLExecutorTests: XCTestCase {
    // Compile error 1 (a mutating call on a temporary generator): load builds its inputs
    // from a named generator, every declared input gets a value, and the seed decides them.
    func testLoadBuildsSeededInputsForEveryDeclaredInput() throws {
        let bench = try CoreMLBench()
        CoreMLFake.inputs = [CoreMLFake.multiArray("x", shape: [2, 3], .float32),
                             CoreMLFake.feature("scale", .double), CoreMLFake.feature("steps", .int64),
                             CoreMLFake.feature("prompt", .string), CoreMLFake.feature("mask", .dictionary, optional: true)]
        let compiled = try bench.compiled()
        let executor = CoreMLExecutor()
        func firstInputs(seed: Int) throws -> (x: [Double], scale: Double) {
            try ready(executor, compiled, .cpuOnly, seed: seed).predict()
            let inputs = try XCTUnwrap(CoreMLFake.lastInputs)
            XCTAssertEqual(inputs.featureNames, ["x", "scale", "steps", "prompt"])  // the optional one is left out
            let x = try XCTUnwrap(inputs.featureValue(for: "x")?.multiArrayValue)
            return ((0..<x.count).map { x[$0].doubleValue }, inputs.featureValue(for: "scale")?.doubleValue ?? -1)
        }
        let a = try firstInputs(seed: 7), b = try firstInputs(seed: 7), c = try firstInputs(seed: 8)
        XCTAssertEqual(a.x, b.x)
        XCTAssertEqual(a.scale, b.scale)
        XCTAssertNotEqual(a.x, c.x)
        XCTAssertTrue(a.x.allSatisfy { $0 >= -1 && $0 < 1 })
    }

    // Compile error 2 (a captured var mutated in Task.detached under a semaphore): the plan
    // is loaded and read inside its task (it is not Sendable), only plain values come back,
    // and the async load really suspends (asyncDelay) while this thread waits.
    func testComputePlanIsReadInsideItsTaskWithNestedBlocks() throws {
        let bench = try CoreMLBench()
        let inner = CoreMLFake.operation("relu", output: "loop_relu")
        CoreMLFake.plan = (
            CoreMLFake.program(main: [CoreMLFake.operation("conv", output: "conv_0"),
                                      CoreMLFake.operation("while_loop", output: "loop", blocks: [CoreMLFake.block([inner])])]),
            ["conv_0": CoreMLFake.usage(preferred: CoreMLFake.neuralEngine, supported: [CoreMLFake.neuralEngine, CoreMLFake.gpu, CoreMLFake.cpu]),
             "loop_relu": CoreMLFake.usage(preferred: CoreMLFake.cpu, supported: [CoreMLFake.cpu])],
            ["conv_0": 0.75, "loop": 1.5])
        CoreMLFake.asyncDelay = 0.05
        let plan = try XCTUnwrap(try CoreMLExecutor().computePlan(compiled: bench.compiled(), computeUnits: .all))
        XCTAssertEqual(plan.computeUnits, .all)
        XCTAssertEqual(plan.ops.map(\.name), ["conv_0", "loop", "loop_relu"])
        XCTAssertEqual(plan.ops.map(\.opType), ["conv", "while_loop", "relu"])
        XCTAssertEqual(plan.ops[0].preferred, .neuralEngine)
        XCTAssertEqual(plan.ops[0].supported, [.neuralEngine, .gpu, .cpu])
        XCTAssertEqual(plan.ops[0].cost, 0.75)
        XCTAssertNil(plan.ops[1].preferred)
        XCTAssertEqual(plan.ops[1].cost, 1)  // clamped to [0, 1]
        XCTAssertEqual(plan.ops[2].preferred, .cpu)
    }

    func testComputePlanOfANeuralNetworkHasPlacementButNoCost() throws {
        let bench = try CoreMLBench()
        CoreMLFake.plan = (CoreMLFake.neuralNetwork([("dense_1", "innerProduct")]),
                           ["dense_1": CoreMLFake.usage(preferred: CoreMLFake.gpu, supported: [CoreMLFake.gpu, CoreMLFake.cpu])], [:])
        let plan = try XCTUnwrap(try CoreMLExecutor().computePlan(compiled: bench.compiled(), computeUnits: .cpuAndGPU))
        XCTAssertEqual(plan.ops.map(\.opType), ["innerProduct"])
        XCTAssertEqual(plan.ops[0].preferred, .gpu)
        XCTAssertNil(plan.ops[0].cost)
    }

    // The wait for an async Core ML call never blocks a cooperative thread: from inside a
    // task it is refused at once (kind internal) instead of occupying the pool.
    func testAsyncCallsRefuseToBlockACooperativeThread() async throws {
        let compiled = FileManager.default.temporaryDirectory  // refused before anything is read
        let outcome = await Task.detached { () -> RunnerErrorKind? in
            do { _ = try CoreMLExecutor().computePlan(compiled: compiled, computeUnits: .all); return nil }
            catch { return (error as? ExecutorError)?.kind }
        }.value
        XCTAssertEqual(outcome, .internal)
    }

    func testAnAsyncCallThatNeverAnswersTimesOut() throws {
        let bench = try CoreMLBench()
        let compiled = try bench.compiled()
        CoreMLFake.asyncDelay = 30
        let start = Date()
        XCTAssertThrowsError(try CoreMLExecutor(asyncTimeout: 0.2).computePlan(compiled: compiled, computeUnits: .all)) {
            XCTAssertEqual(($0 as? ExecutorError)?.kind, .timeout)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testEachFailureKeepsTheKindOfItsStep() throws {
        let bench = try CoreMLBench()
        let executor = CoreMLExecutor()
        let boom = NSError(domain: "test", code: 1, userInfo: [NSLocalizedDescriptionKey: "boom"])
        CoreMLFake.compileError = boom
        XCTAssertThrowsError(try executor.compile(modelURL: bench.model)) { XCTAssertEqual($0 as? ExecutorError, ExecutorError(.compile, "boom")) }
        CoreMLFake.compileError = nil
        let compiled = try bench.compiled()
        CoreMLFake.loadError = boom
        XCTAssertThrowsError(try executor.load(compiled: compiled, computeUnits: .all)) { XCTAssertEqual(($0 as? ExecutorError)?.kind, .load) }
        CoreMLFake.loadError = nil
        CoreMLFake.predictionError = boom
        XCTAssertThrowsError(try ready(executor, compiled, .all, seed: 1).predict()) { XCTAssertEqual(($0 as? ExecutorError)?.kind, .predict) }
        CoreMLFake.predictionError = nil
    }

    // Input synthesis is not part of load() (which the harness times): a model whose input
    // the runner cannot make still loads; prepareInputs is where that fails.
    func testLoadMakesNoInputsAndPrepareInputsReportsUnsupportedTypes() throws {
        let bench = try CoreMLBench()
        CoreMLFake.inputs = [CoreMLFake.feature("table", .dictionary)]
        let model = try CoreMLExecutor().load(compiled: bench.compiled(), computeUnits: .all)
        XCTAssertThrowsError(try model.predict()) { XCTAssertEqual(($0 as? ExecutorError)?.kind, .internal) }
        XCTAssertThrowsError(try model.prepareInputs(seed: 1)) { XCTAssertEqual(($0 as? ExecutorError)?.kind, .unsupported) }
        XCTAssertEqual(CoreMLFake.predictions, 0)
    }

    // One model in memory at a time: every slot loads its own and releases it before the
    // next setting's slot, and nothing stays loaded after the batch.
    func testTheHarnessKeepsOneModelLoadedAtATime() throws {
        let bench = try CoreMLBench()
        let manifest = makeManifest([.all, .cpuAndGPU, .cpuOnly], iterations: 6, warmup: 2, rounds: 3)
        let result = Harness(executor: CoreMLExecutor(), cache: bench.cache).run(manifest, modelURL: bench.model)
        XCTAssertEqual(result.settings.map(\.latenciesMs.count), [6, 6, 6])
        XCTAssertEqual(CoreMLFake.maxLiveModelsWhilePredicting, 1)
        XCTAssertEqual(CoreMLFake.liveModels, 0)
        // 2 loads (cold, warm) per setting, then one per slot: 3 settings × 3 rounds.
        XCTAssertEqual(CoreMLFake.loads, 3 * 2 + 9)
        // 1 first prediction per setting, then warm-up + timed in every slot.
        XCTAssertEqual(CoreMLFake.predictions, 3 + 9 * 2 + 18)
    }

    func testMultiArraysOfEveryDataTypeAreFilledWithFiniteValuesInRange() throws {
        var generator = InputGenerator(seed: 3)
        for type in [MLMultiArrayDataType.float32, .double, .float16, .int32] {
            let array = try MLMultiArray(shape: [3, 5, 7], dataType: type)  // the shim starts it as all-NaN bytes
            generator.fill(array)
            let values = (0..<array.count).map { array[$0].doubleValue }
            XCTAssertTrue(values.allSatisfy(\.isFinite), "\(type)")
            XCTAssertTrue(values.allSatisfy { type == .int32 ? (0..<10).contains($0) : (-1...1).contains($0) }, "\(type)")
            XCTAssertGreaterThan(Set(values).count, 3, "\(type)")
        }
    }

    // Image inputs of every pixel format Core ML takes (and the float ones it may) are
    // filled completely with finite samples; the shim starts buffers as NaN bytes.
    func testPixelBuffersOfEveryFormatHoldOnlyFiniteSamples() throws {
        let bench = try CoreMLBench()
        let compiled = try bench.compiled()
        let formats = [kCVPixelFormatType_32BGRA, kCVPixelFormatType_32ARGB, kCVPixelFormatType_OneComponent8,
                       kCVPixelFormatType_OneComponent16Half, kCVPixelFormatType_64RGBAHalf,
                       kCVPixelFormatType_OneComponent32Float, kCVPixelFormatType_128RGBAFloat]
        for format in formats {
            CoreMLFake.inputs = [CoreMLFake.image("image", width: 33, height: 17, format: format)]
            try ready(CoreMLExecutor(), compiled, .all, seed: 5).predict()
            let buffer = try XCTUnwrap(CoreMLFake.lastInputs?.featureValue(for: "image")?.imageBufferValue)
            XCTAssertEqual(CVPixelBufferGetPixelFormatType(buffer), format)
            CVPixelBufferLockBaseAddress(buffer, .readOnly)
            XCTAssertEqual(CoreMLFake.nonFinitePixels(buffer), 0, "format \(format)")
            CVPixelBufferUnlockBaseAddress(buffer, .readOnly)
        }
        XCTAssertEqual(CoreMLFake.nonFiniteInputs, 0)
        XCTAssertEqual(CoreMLFake.predictions, formats.count)
    }

    // The app sent to the background mid-slot (the fake refuses GPU and Neural Engine work,
    // as iOS does): the setting in flight and every later slot while it stays away are
    // `interrupted`, not `predict` (infra, retried: never a verdict about the model), and
    // the samples taken before it are kept.
    func testAnAppSentToTheBackgroundMidSlotIsInterruptedAndKeepsEarlierSamples() throws {
        let bench = try CoreMLBench()
        let app = TestActivity()
        // 3 first predictions, then per slot 1 warm-up + 2 timed: the 14th prediction is
        // cpuAndGPU's first timed one of round 2.
        CoreMLFake.beforePrediction = { if $0 == 13 { app.leave(); CoreMLFake.suspended = true } }
        let manifest = makeManifest([.all, .cpuAndGPU, .cpuOnly], iterations: 6, warmup: 1, rounds: 3)
        let result = Harness(executor: CoreMLExecutor(), cache: bench.cache, activity: app).run(manifest, modelURL: bench.model)
        _ = try Codec.decodeResult(Codec.encoder().encode(result))
        XCTAssertNil(result.error)  // samples were taken: the settings say what happened
        XCTAssertEqual(result.settings.map(\.error?.kind), [.interrupted, .interrupted, .interrupted])
        XCTAssertEqual(result.settings.map(\.latenciesMs.count), [2, 2, 2])
        XCTAssertEqual(result.settings.map { $0.stats?.count }, [2, 2, 2])
        let gpu = try XCTUnwrap(result.settings[1].error?.message)
        XCTAssertTrue(gpu.contains("left the foreground during its slot of round 2"), gpu)
        XCTAssertTrue(gpu.contains("to submit GPU work from background"), gpu)  // the refused work, as Metal says it
        XCTAssertTrue(gpu.contains("the 2 samples before it are kept"), gpu)
    }

    // A short trip to the background (back before the next check) still ends the setting
    // whose slot it fell in, drops the sample it covered, and spoils no other setting.
    func testABriefTripToTheBackgroundInterruptsOnlyTheSettingItFellIn() throws {
        let bench = try CoreMLBench()
        let app = TestActivity()
        // 2 first predictions, round 1: all ×2, cpuOnly ×2; round 2 starts with cpuOnly.
        CoreMLFake.beforePrediction = { if $0 == 6 { app.leave(); app.back() } }
        let manifest = makeManifest([.all, .cpuOnly], iterations: 4, warmup: 0, rounds: 2)
        let result = Harness(executor: CoreMLExecutor(), cache: bench.cache, activity: app).run(manifest, modelURL: bench.model)
        _ = try Codec.decodeResult(Codec.encoder().encode(result))
        XCTAssertNil(result.settings[0].error)
        XCTAssertEqual(result.settings[0].latenciesMs.count, 4)
        XCTAssertEqual(result.settings[1].error?.kind, .interrupted)
        XCTAssertEqual(result.settings[1].latenciesMs.count, 2)  // the prediction it covered is not a sample
        XCTAssertEqual(CoreMLFake.predictions, 2 + 4 + 3)
    }

    // Away before any sample: the batch itself is interrupted, and each setting says where.
    func testAnAppAwayBeforeAnySampleInterruptsTheBatch() throws {
        let bench = try CoreMLBench()
        let app = TestActivity()
        CoreMLFake.beforePrediction = { if $0 == 0 { app.leave(); CoreMLFake.suspended = true } }
        let result = Harness(executor: CoreMLExecutor(), cache: bench.cache, activity: app)
            .run(makeManifest([.all, .cpuOnly], iterations: 4, warmup: 1, rounds: 2), modelURL: bench.model)
        _ = try Codec.decodeResult(Codec.encoder().encode(result))
        XCTAssertEqual(result.error?.kind, .interrupted)
        XCTAssertEqual(result.settings.map(\.error?.kind), [.interrupted, .interrupted])
        XCTAssertTrue(result.settings.allSatisfy(\.latenciesMs.isEmpty))
        XCTAssertEqual(CoreMLFake.predictions, 0)
    }

    // Every cold load says what it followed: a compile in this run, a fresh process over the
    // cached compiled model, or a model this process already loaded (another setting, an
    // earlier batch). The app keeps one harness per process.
    func testEachColdLoadSaysWhatItFollowed() throws {
        let bench = try CoreMLBench()
        let manifest = makeManifest([.all, .cpuOnly], iterations: 2, warmup: 0, rounds: 1)
        let process = Harness(executor: CoreMLExecutor(), cache: bench.cache)
        let first = process.run(manifest, modelURL: bench.model)
        let again = process.run(manifest, modelURL: bench.model)
        let relaunched = Harness(executor: CoreMLExecutor(), cache: bench.cache).run(manifest, modelURL: bench.model)
        for result in [first, again, relaunched] { _ = try Codec.decodeResult(Codec.encoder().encode(result)) }
        XCTAssertEqual(first.settings.map(\.coldLoadProvenance), [.freshCompile, .warmCache])
        XCTAssertEqual(again.settings.map(\.coldLoadProvenance), [.warmCache, .warmCache])
        XCTAssertEqual(relaunched.settings.map(\.coldLoadProvenance), [.freshProcess, .warmCache])
        XCTAssertEqual([first, again, relaunched].map(\.compileCached), [false, true, true])
        XCTAssertEqual(CoreMLFake.compiles, 1)
    }

    // cold_load: fresh_compile — before each setting's cold load the model is compiled again
    // to a path of its own (nothing cached can answer), loaded cold and warm from there, and
    // that copy is deleted; the slots measure the cached copy as before.
    func testFreshCompileColdLoadsCompileToAFreshPathPerSettingAndDeleteIt() throws {
        let bench = try CoreMLBench()
        let executor = CoreMLExecutor()
        var manifest = makeManifest([.all, .cpuAndNeuralEngine, .cpuOnly], iterations: 3, warmup: 1, rounds: 1)
        _ = Harness(executor: executor, cache: bench.cache).run(manifest, modelURL: bench.model)  // now cached
        CoreMLFake.reset()
        manifest.coldLoad = .freshCompile
        let result = Harness(executor: executor, cache: bench.cache).run(manifest, modelURL: bench.model)
        _ = try Codec.decodeResult(Codec.encoder().encode(result))
        XCTAssertTrue(result.compileCached)
        XCTAssertEqual(result.settings.map(\.coldLoadProvenance), [.freshCompile, .freshCompile, .freshCompile])
        XCTAssertEqual(result.settings.map(\.latenciesMs.count), [3, 3, 3])
        XCTAssertEqual(CoreMLFake.compiles, 3)  // one per setting
        let cached = bench.cache.location(sha256: manifest.model.sha256, osBuild: executor.device.osBuild,
                                          modelFilename: manifest.model.filename).standardizedFileURL.path
        let loads = CoreMLFake.loadedURLs.map(\.standardizedFileURL.path)
        let fresh = loads.filter { $0 != cached }
        XCTAssertEqual(fresh.count, 6)  // cold and warm load of each setting
        XCTAssertEqual(Set(fresh).count, 3)  // a path of its own per setting
        XCTAssertEqual(loads.filter { $0 == cached }.count, 3)  // one slot per setting
        XCTAssertTrue(fresh.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        XCTAssertTrue(FileManager.default.fileExists(atPath: cached))
    }

    // The harness over the real executor, end to end through the fake.
    func testHarnessMeasuresTheRealExecutor() throws {
        let bench = try CoreMLBench()
        CoreMLFake.predictionLatency = 0.002
        CoreMLFake.plan = (CoreMLFake.program(main: [CoreMLFake.operation("conv", output: "c")]),
                           ["c": CoreMLFake.usage(preferred: CoreMLFake.neuralEngine, supported: [CoreMLFake.neuralEngine])], ["c": 1])
        let manifest = makeManifest([.all, .cpuOnly], iterations: 4, warmup: 1, rounds: 2)
        let result = Harness(executor: CoreMLExecutor(), cache: bench.cache).run(manifest, modelURL: bench.model)
        _ = try Codec.decodeResult(Codec.encoder().encode(result))
        XCTAssertNil(result.error)
        XCTAssertFalse(result.simulated)
        XCTAssertEqual(result.settings.map(\.latenciesMs.count), [4, 4])
        XCTAssertTrue(result.settings.allSatisfy { ($0.stats?.min ?? 0) >= 2 })
        XCTAssertEqual(result.computePlan?.ops.first?.preferred, .neuralEngine)
        XCTAssertEqual(CoreMLFake.compiles, 1)
    }
}
#endif
