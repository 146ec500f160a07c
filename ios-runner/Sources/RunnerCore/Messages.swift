// Codable mirrors of orchestrator/protocol.py (schema version 1). The JSON Schemas in
// ../Schema are the contract; the fixtures in ../Fixtures are checked by both sides.
import Foundation

public let schemaVersion = 1

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
    public var computeUnits: [ComputeUnits]
    public var iterations: Int
    public var warmup: Int
    public var rounds: Int
    public var timeBudgetS: Double
    public var inputSeed: Int
    public var computePlan: Bool
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
}
