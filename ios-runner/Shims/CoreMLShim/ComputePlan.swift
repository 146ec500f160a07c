// MLComputePlan and the model-structure and compute-device types it returns: Swift-only
// types of the CoreML overlay (iOS 17.4+), declared as in the iOS 18 SDK's swiftinterface.
// Empty where the real framework exists (swift build on a Mac builds every target).
#if !canImport(CoreML)
import Foundation

// https://developer.apple.com/documentation/coreml/mlcpucomputedevice
@available(macOS 14.0, iOS 17.0, watchOS 10.0, tvOS 17.0, *)
public final class MLCPUComputeDevice: NSObject, @unchecked Sendable { override init() {} }
// https://developer.apple.com/documentation/coreml/mlgpucomputedevice
@available(macOS 14.0, iOS 17.0, watchOS 10.0, tvOS 17.0, *)
public final class MLGPUComputeDevice: NSObject, @unchecked Sendable { override init() {} }
// https://developer.apple.com/documentation/coreml/mlneuralenginecomputedevice
@available(macOS 14.0, iOS 17.0, watchOS 10.0, tvOS 17.0, *)
public final class MLNeuralEngineComputeDevice: NSObject, @unchecked Sendable { override init() {} }

// https://developer.apple.com/documentation/coreml/mlcomputedevice
@available(macOS 14.0, iOS 17.0, watchOS 10.0, tvOS 17.0, *)
public enum MLComputeDevice: Equatable, Hashable, CustomStringConvertible, Sendable {
    case cpu(MLCPUComputeDevice)
    case gpu(MLGPUComputeDevice)
    case neuralEngine(MLNeuralEngineComputeDevice)
    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .gpu: return "gpu"
        case .neuralEngine: return "neuralEngine"
        }
    }
}

// https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum
@available(macOS 14.4, iOS 17.4, watchOS 10.4, tvOS 17.4, *)
public enum MLModelStructure: Sendable {
    // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/program
    public struct Program: Sendable {
        // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/program/valuetype
        public struct ValueType: Sendable {}
        // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/program/namedvaluetype
        public struct NamedValueType: Sendable {
            public let name: String
            public let type: MLModelStructure.Program.ValueType
        }
        // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/program/function
        public struct Function: Sendable {
            public let inputs: [MLModelStructure.Program.NamedValueType]
            public let block: MLModelStructure.Program.Block
        }
        // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/program/block
        public struct Block: Sendable {
            public let inputs: [MLModelStructure.Program.NamedValueType]
            public let outputNames: [String]
            public let operations: [MLModelStructure.Program.Operation]
        }
        // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/program/operation
        public struct Operation: Sendable {
            public let operatorName: String
            public let outputs: [MLModelStructure.Program.NamedValueType]
            public let blocks: [MLModelStructure.Program.Block]
        }
        // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/program/functions
        public let functions: [String: MLModelStructure.Program.Function]
    }
    // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/neuralnetwork
    public struct NeuralNetwork: Sendable {
        // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/neuralnetwork/layer
        public struct Layer: Sendable {
            public let name: String
            public let type: String
            public let inputNames: [String]
            public let outputNames: [String]
        }
        public let layers: [MLModelStructure.NeuralNetwork.Layer]
    }
    // https://developer.apple.com/documentation/coreml/mlmodelstructure-swift.enum/pipeline
    public struct Pipeline: Sendable {
        public let subModelNames: [String]
        public let subModels: [MLModelStructure]
    }
    case neuralNetwork(MLModelStructure.NeuralNetwork)
    case program(MLModelStructure.Program)
    case pipeline(MLModelStructure.Pipeline)
    case unsupported
}

// https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n
// A class, and explicitly not Sendable in the SDK (`extension MLComputePlan: Sendable` is
// unavailable): it cannot leave the task that loaded it.
@available(macOS 14.4, iOS 17.4, watchOS 10.4, tvOS 17.4, *)
public class MLComputePlan {
    // https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n/deviceusage
    public struct DeviceUsage: Sendable {
        public let supported: [MLComputeDevice]
        public let preferred: MLComputeDevice
    }
    // https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n/cost
    public struct Cost: Sendable {
        public let weight: Double
    }
    // https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n/modelstructure
    final public let modelStructure: MLModelStructure
    let usage: [String: DeviceUsage]
    let costs: [String: Double]

    init(modelStructure: MLModelStructure, usage: [String: DeviceUsage], costs: [String: Double]) {
        self.modelStructure = modelStructure
        self.usage = usage
        self.costs = costs
    }

    // https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n/load(contentsof:configuration:)
    public static func load(contentsOf url: URL, configuration: MLModelConfiguration) async throws -> MLComputePlan {
        try await CoreMLFake.suspendIfAsked()
        return try CoreMLFake.plan(url, configuration)
    }

    // https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n/estimatedcost(of:)
    public func estimatedCost(of operation: MLModelStructure.Program.Operation) -> MLComputePlan.Cost? {
        costs[operation.outputs.first?.name ?? ""].map { Cost(weight: $0) }
    }

    // https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n/deviceusage(for:)-9em1q
    public func deviceUsage(for layer: MLModelStructure.NeuralNetwork.Layer) -> MLComputePlan.DeviceUsage? {
        usage[layer.name]
    }

    // https://developer.apple.com/documentation/coreml/mlcomputeplan-1w21n/deviceusage(for:)-7cdlm
    public func deviceUsage(for operation: MLModelStructure.Program.Operation) -> MLComputePlan.DeviceUsage? {
        usage[operation.outputs.first?.name ?? ""]
    }
}

@available(*, unavailable)
extension MLComputePlan: Sendable {}
#endif
