// Codable mirrors of orchestrator/protocol/__init__.py (schema versions 1 and 2). The JSON
// Schemas in ../Schema are the contract; the fixtures in ../Fixtures are checked by both sides.
import Foundation

public let schemaVersion = 1
/// Packed probes: a manifest with `models` (several models, one launch) and its result with
/// per-model results say version 2; one model stays version 1, unchanged.
public let packedSchemaVersion = 2

public enum ComputeUnits: String, Codable, CaseIterable, Sendable {
    case all, cpuAndNeuralEngine, cpuAndGPU, cpuOnly
}

public enum ComputeUnit: String, Codable, Sendable {
    case neuralEngine, gpu, cpu
}

public enum ThermalState: String, Codable, Sendable {
    case nominal, fair, serious, critical
}

public enum ModelFormat: String, Codable, Sendable {
    case mlmodel, mlpackage
}

public enum RunnerErrorKind: String, Codable, Sendable {
    case compile, load, predict, unsupported, timeout, manifest, `internal`
    /// The app left the foreground during a slot (or a step failed while it was not in the
    /// foreground): the device failed, not the model. The coordinator retries it (infra).
    case interrupted
}

/// What a setting's cold load followed; the coordinator compares cold loads only at equal
/// provenance (a load after a fresh compile is not comparable with a warm-cache one).
public enum ColdLoadProvenance: String, Codable, Sendable {
    /// The model was compiled to a new path just before: nothing of it was cached.
    case freshCompile = "fresh_compile"
    /// The first load of the cached compiled model in this process: Core ML's on-disk
    /// device-specialised cache (keyed by path) may still be warm from an earlier launch.
    case freshProcess = "fresh_process"
    /// This process had already loaded the same compiled model (another setting, an earlier batch).
    case warmCache = "warm_cache"
}

/// RunnerManifest.cold_load: which load counts as a setting's cold load.
public enum ColdLoadMode: String, Codable, Sendable {
    /// The first load of the cached compiled model in this process.
    case process
    /// A compile to a unique path before each setting's cold load, deleted afterwards.
    case freshCompile = "fresh_compile"
}

public struct ManifestModel: Codable, Equatable, Sendable {
    public var filename: String
    public var sha256: String
    public var format: ModelFormat
}

public struct RunnerManifest: Codable, Equatable, Sendable {
    public var schemaVersion: Int
    public var batchId: String
    public var model: ManifestModel
    /// Version 2: every model of the launch in order (`model` is the first); nil otherwise.
    public var models: [ManifestModel]? = nil
    public var computeUnits: [ComputeUnits]
    public var iterations: Int
    public var warmup: Int
    public var rounds: Int
    public var timeBudgetS: Double
    public var inputSeed: Int
    public var computePlan: Bool
    public var coldLoad: ColdLoadMode = .process
}

extension RunnerManifest {
    /// Decodes every field as synthesised, but `cold_load` may be absent (as in Python,
    /// where it defaults to "process"): an agent from before the field still gets measured.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        batchId = try c.decode(String.self, forKey: .batchId)
        model = try c.decode(ManifestModel.self, forKey: .model)
        models = try c.decodeIfPresent([ManifestModel].self, forKey: .models)
        computeUnits = try c.decode([ComputeUnits].self, forKey: .computeUnits)
        iterations = try c.decode(Int.self, forKey: .iterations)
        warmup = try c.decode(Int.self, forKey: .warmup)
        rounds = try c.decode(Int.self, forKey: .rounds)
        timeBudgetS = try c.decode(Double.self, forKey: .timeBudgetS)
        inputSeed = try c.decode(Int.self, forKey: .inputSeed)
        computePlan = try c.decode(Bool.self, forKey: .computePlan)
        coldLoad = try c.decodeIfPresent(ColdLoadMode.self, forKey: .coldLoad) ?? .process
    }
}

public struct LatencyStats: Codable, Equatable, Sendable {
    public var count: Int
    public var min: Double
    public var max: Double
    public var mean: Double
    public var std: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
}

public struct RunnerError: Codable, Equatable, Sendable {
    public var kind: RunnerErrorKind
    public var message: String
    public init(kind: RunnerErrorKind, message: String) {
        self.kind = kind
        self.message = message
    }
}

public struct SettingResult: Codable, Equatable, Sendable {
    public var computeUnits: ComputeUnits
    public var coldLoadMs: Double?
    public var coldLoadProvenance: ColdLoadProvenance?
    public var warmLoadMs: Double?
    public var firstPredictionMs: Double?
    public var latenciesMs: [Double]
    public var stats: LatencyStats?
    public var error: RunnerError?
}

public struct OpPlan: Codable, Equatable, Sendable {
    public var index: Int
    public var name: String
    public var opType: String
    public var preferred: ComputeUnit?
    public var supported: [ComputeUnit]
    public var cost: Double?
}

public struct ComputePlan: Codable, Equatable, Sendable {
    public var computeUnits: ComputeUnits
    public var ops: [OpPlan]
}

public struct DeviceFacts: Codable, Equatable, Sendable {
    public var productType: String
    public var osVersion: String
    public var osBuild: String
}

extension RunnerManifest {
    /// The models to measure: `models` when packed, else the one `model`.
    public var allModels: [ManifestModel] { models ?? [model] }
}

/// One model of a packed launch (RunnerResult.models).
public struct ModelResult: Codable, Equatable, Sendable {
    public var modelSha256: String
    public var compileMs: Double?
    public var compileCached: Bool
    public var settings: [SettingResult]
    public var computePlan: ComputePlan?
    public var partial: Bool
    public var error: RunnerError?
    public var startedAt: String
    public var finishedAt: String
}

public struct RunnerResult: Codable, Equatable, Sendable {
    public var schemaVersion: Int
    public var batchId: String
    public var runnerVersion: String
    public var simulated: Bool
    public var device: DeviceFacts
    public var modelSha256: String
    public var compileMs: Double?
    public var compileCached: Bool
    public var thermalBefore: ThermalState
    public var thermalAfter: ThermalState
    public var cooldowns: Int
    public var settings: [SettingResult]
    public var computePlan: ComputePlan?
    public var partial: Bool
    public var error: RunnerError?
    public var startedAt: String
    public var finishedAt: String
    /// Version 2: one result per model of a packed manifest, in its order; nil otherwise.
    public var models: [ModelResult]? = nil
}
