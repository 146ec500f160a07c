// A scripted stand-in for Core ML and the device clock, for the harness tests and the
// cross-check fixture. Its results say simulated=true, so they can never pass for hardware.
import Foundation

/// A clock that only moves when told: predictions and sleeps advance it.
public final class FakeClock: HarnessClock {
    public private(set) var nanos: UInt64 = 1_000_000_000
    public private(set) var sleeps: [Double] = []
    private let epoch: Date
    public init(epoch: Date = Date(timeIntervalSince1970: 1_790_000_000)) { self.epoch = epoch }

    public func monotonicNanos() -> UInt64 { nanos }
    public func wallClock() -> Date { epoch.addingTimeInterval(Double(nanos) / 1e9) }
    public func sleep(seconds: Double) {
        sleeps.append(seconds)
        advance(ms: seconds * 1000)
    }
    public func advance(ms: Double) { nanos &+= UInt64((ms * 1e6).rounded()) }
}

public final class FakeExecutor: ModelExecutor {
    public let clock: FakeClock
    /// Milliseconds per prediction for each setting; the n-th prediction adds a small,
    /// deterministic wobble so the statistics are not degenerate.
    public var latencyMs: [ComputeUnits: Double] = [.all: 2.0, .cpuAndNeuralEngine: 2.0, .cpuAndGPU: 5.0, .cpuOnly: 11.0]
    public var compileMs = 120.0
    public var coldLoadMs = 80.0
    public var warmLoadMs = 8.0
    /// Time input synthesis takes: the harness must keep it out of every figure.
    public var inputMs = 0.0
    /// Steps that throw, by setting: "load" or "predict" (after `failAfter` good predictions).
    public var failures: [ComputeUnits: (stage: String, error: ExecutorError)] = [:]
    public var failAfter = 0
    public var compileError: ExecutorError?
    /// Packed launches: a compile error for one model file only (by file name), and a
    /// latency per model (by sha256) that replaces the setting's.
    public var compileErrors: [String: ExecutorError] = [:]
    public var modelLatencyMs: [String: Double] = [:]
    /// The model (sha256, from its compiled path; "" for a fresh copy) of every prediction.
    public private(set) var predictedModels: [String] = []
    /// The thermal state as a function of the clock, so heat can come and go in a test.
    public var thermal: (UInt64) -> ThermalState = { _ in .nominal }
    public var plan: ComputePlan?
    /// Every prediction in order, by setting: the interleaving the harness produced.
    public private(set) var predictions: [ComputeUnits] = []
    public private(set) var compiles = 0
    /// Models alive now, and the most alive at once during a prediction.
    public private(set) var liveModels = 0
    public private(set) var maxLiveModelsWhilePredicting = 0
    private let workspace: URL

    public init(clock: FakeClock, workspace: URL) {
        self.clock = clock
        self.workspace = workspace
    }

    public var device: DeviceFacts { DeviceFacts(productType: "iPhone15,2", osVersion: "17.5", osBuild: "21F79") }
    public var runnerVersion: String { "1.0.0-fake" }
    public var simulated: Bool { true }
    public var thermalState: ThermalState { thermal(clock.nanos) }

    public func compile(modelURL: URL) throws -> URL {
        compiles += 1
        clock.advance(ms: compileMs)
        if let compileError { throw compileError }
        if let error = compileErrors[modelURL.lastPathComponent] { throw error }
        let compiled = workspace.appendingPathComponent("compiled-\(UUID().uuidString).mlmodelc")
        try FileManager.default.createDirectory(at: compiled, withIntermediateDirectories: true)
        try Data(contentsOf: modelURL).write(to: compiled.appendingPathComponent("model.bin"))
        return compiled
    }

    public func load(compiled: URL, computeUnits: ComputeUnits) throws -> LoadedModel {
        guard FileManager.default.fileExists(atPath: compiled.path) else {
            throw ExecutorError(.load, "no compiled model at \(compiled.lastPathComponent)")
        }
        if let failure = failures[computeUnits], failure.stage == "load" { throw failure.error }
        // Like Core ML's cache, keyed by path: only the first load of a compiled copy is cold.
        let cold = loadedPaths.insert(compiled.path).inserted
        clock.advance(ms: cold ? coldLoadMs : warmLoadMs)
        // The stable cache path is <root>/<sha256>-<OS build>/<name>.mlmodelc.
        let folder = compiled.deletingLastPathComponent().lastPathComponent
        let sha = folder.count > 64 ? String(folder.prefix(64)) : ""
        return FakeModel(executor: self, units: computeUnits, sha: sha)
    }

    private var loadedPaths: Set<String> = []

    public func computePlan(compiled: URL, computeUnits: ComputeUnits) throws -> ComputePlan? { plan }

    /// Predictions so far by setting, across loads: failAfter and the wobble count per setting.
    private var predictionCounts: [ComputeUnits: Int] = [:]

    fileprivate func predict(_ units: ComputeUnits, sha: String) throws {
        let count = predictionCounts[units, default: 0]
        maxLiveModelsWhilePredicting = max(maxLiveModelsWhilePredicting, liveModels)
        if let failure = failures[units], failure.stage == "predict", count >= failAfter { throw failure.error }
        predictionCounts[units] = count + 1
        predictions.append(units)
        predictedModels.append(sha)
        clock.advance(ms: (modelLatencyMs[sha] ?? latencyMs[units, default: 1.0]) + Double(count % 7) * 0.125)
    }

    fileprivate func modelCreated() { liveModels += 1 }
    fileprivate func modelReleased() { liveModels -= 1 }
}

private final class FakeModel: LoadedModel {
    let executor: FakeExecutor
    let units: ComputeUnits
    let sha: String
    var prepared = false
    init(executor: FakeExecutor, units: ComputeUnits, sha: String) {
        self.executor = executor
        self.units = units
        self.sha = sha
        executor.modelCreated()
    }
    deinit { executor.modelReleased() }
    func prepareInputs(seed: Int) throws {
        executor.clock.advance(ms: executor.inputMs)
        prepared = true
    }
    func predict() throws {
        guard prepared else { throw ExecutorError(.internal, "predict before prepareInputs") }
        try executor.predict(units, sha: sha)
    }
}
