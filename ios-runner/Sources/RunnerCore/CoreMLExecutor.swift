// The real executor: Core ML on the device. Compiled only where Core ML exists (not on
// Linux), and kept thin: every decision about what to measure lives in the Harness.
#if canImport(CoreML)
import CoreML
import CoreVideo
import Foundation

public final class CoreMLExecutor: ModelExecutor {
    public init() {}

    public var simulated: Bool { false }

    public var runnerVersion: String {
        (Bundle.main.object(forInfoDictionaryKey: "CFBundleVersion") as? String) ?? "0"
    }

    public var thermalState: ThermalState {
        switch ProcessInfo.processInfo.thermalState {
        case .nominal: return .nominal
        case .fair: return .fair
        case .serious: return .serious
        case .critical: return .critical
        @unknown default: return .critical  // an unknown state is treated as hot: wait, don't measure heat
        }
    }

    public var device: DeviceFacts {
        let os = ProcessInfo.processInfo.operatingSystemVersion
        return DeviceFacts(productType: Self.productType(), osVersion: "\(os.majorVersion).\(os.minorVersion).\(os.patchVersion)",
                           osBuild: Self.sysctlString("kern.osversion") ?? "unknown")
    }

    /// "iPhone15,2": utsname's machine on a device; the simulator reports its host, so ask its environment.
    static func productType() -> String {
        if let simulated = ProcessInfo.processInfo.environment["SIMULATOR_MODEL_IDENTIFIER"] { return simulated }
        var info = utsname()
        uname(&info)
        return withUnsafeBytes(of: &info.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func sysctlString(_ name: String) -> String? {
        var size = 0
        guard sysctlbyname(name, nil, &size, nil, 0) == 0, size > 0 else { return nil }
        var bytes = [CChar](repeating: 0, count: size)
        guard sysctlbyname(name, &bytes, &size, nil, 0) == 0 else { return nil }
        return String(cString: bytes)
    }

    public func compile(modelURL: URL) throws -> URL {
        do {
            return try MLModel.compileModel(at: modelURL)
        } catch {
            throw ExecutorError(.compile, error.localizedDescription)
        }
    }

    static func configuration(_ units: ComputeUnits) throws -> MLModelConfiguration {
        let configuration = MLModelConfiguration()
        switch units {
        case .all: configuration.computeUnits = .all
        case .cpuAndGPU: configuration.computeUnits = .cpuAndGPU
        case .cpuOnly: configuration.computeUnits = .cpuOnly
        case .cpuAndNeuralEngine:
            guard #available(iOS 16, macOS 13, *) else {
                throw ExecutorError(.unsupported, "cpuAndNeuralEngine needs iOS 16")
            }
            configuration.computeUnits = .cpuAndNeuralEngine
        }
        return configuration
    }

    public func load(compiled: URL, computeUnits: ComputeUnits, inputSeed: Int) throws -> LoadedModel {
        let model: MLModel
        do {
            model = try MLModel(contentsOf: compiled, configuration: Self.configuration(computeUnits))
        } catch let error as ExecutorError {
            throw error
        } catch {
            throw ExecutorError(.load, error.localizedDescription)
        }
        do {
            let inputs = try InputGenerator(seed: UInt64(inputSeed)).inputs(for: model.modelDescription)
            return CoreMLModel(model: model, inputs: inputs)
        } catch let error as ExecutorError {
            throw error
        } catch {
            throw ExecutorError(.unsupported, "cannot generate inputs: \(error.localizedDescription)")
        }
    }

    public func computePlan(compiled: URL, computeUnits: ComputeUnits) throws -> ComputePlan? {
        guard #available(iOS 17.4, macOS 14.4, *) else { return nil }
        let configuration = try Self.configuration(computeUnits)
        // MLComputePlan only loads asynchronously; the harness runs on a background thread.
        let done = DispatchSemaphore(value: 0)
        var outcome: Result<MLComputePlan, Error>?
        Task.detached {
            do { outcome = .success(try await MLComputePlan.load(contentsOf: compiled, configuration: configuration)) }
            catch { outcome = .failure(error) }
            done.signal()
        }
        done.wait()
        guard let plan = try outcome?.get() else { return nil }
        var ops: [OpPlan] = []
        Self.collect(plan.modelStructure, plan: plan, into: &ops)
        return ComputePlan(computeUnits: computeUnits, ops: ops)
    }

    @available(iOS 17.4, macOS 14.4, *)
    static func collect(_ structure: MLModelStructure, plan: MLComputePlan, into ops: inout [OpPlan]) {
        switch structure {
        case .program(let program):
            // Per op, in program order; nested blocks (loops, conditions) included.
            func walk(_ block: MLModelStructure.Program.Block) {
                for operation in block.operations {
                    let usage = plan.deviceUsage(for: operation)
                    ops.append(OpPlan(
                        index: ops.count, name: operation.outputs.first?.name ?? "",
                        opType: operation.operatorName, preferred: usage.map { unit($0.preferred) },
                        supported: usage.map { $0.supported.map(unit) } ?? [],
                        cost: plan.estimatedCost(of: operation).map { min(max($0.weight, 0), 1) }))
                    operation.blocks.forEach(walk)
                }
            }
            if let main = program.functions["main"] { walk(main.block) }
        case .neuralNetwork(let network):
            // Neural networks have a placement per layer but no cost estimate.
            for layer in network.layers {
                let usage = plan.deviceUsage(for: layer)
                ops.append(OpPlan(index: ops.count, name: layer.name, opType: layer.type,
                                  preferred: usage.map { unit($0.preferred) },
                                  supported: usage.map { $0.supported.map(unit) } ?? [], cost: nil))
            }
        case .pipeline(let pipeline):
            for model in pipeline.subModels { collect(model, plan: plan, into: &ops) }
        default:
            break
        }
    }

    @available(iOS 17.0, macOS 14.0, *)
    static func unit(_ device: MLComputeDevice) -> ComputeUnit {
        switch device {
        case .neuralEngine: return .neuralEngine
        case .gpu: return .gpu
        case .cpu: return .cpu
        @unknown default: return .cpu
        }
    }
}

private final class CoreMLModel: LoadedModel {
    let model: MLModel
    let inputs: MLFeatureProvider
    init(model: MLModel, inputs: MLFeatureProvider) {
        self.model = model
        self.inputs = inputs
    }
    func predict() throws {
        do {
            _ = try model.prediction(from: inputs)
        } catch {
            throw ExecutorError(.predict, error.localizedDescription)
        }
    }
}

/// Inputs of the declared shape and type, filled from a seeded generator, so every
/// device measures the same numbers for the same manifest.
struct InputGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    /// SplitMix64, mapped to [0, 1).
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    mutating func inputs(for description: MLModelDescription) throws -> MLFeatureProvider {
        var features: [String: MLFeatureValue] = [:]
        for name in description.inputDescriptionsByName.keys.sorted() {
            guard let input = description.inputDescriptionsByName[name] else { continue }
            if input.isOptional { continue }
            features[name] = try value(for: input)
        }
        return try MLDictionaryFeatureProvider(dictionary: features)
    }

    mutating func value(for input: MLFeatureDescription) throws -> MLFeatureValue {
        switch input.type {
        case .multiArray:
            guard let constraint = input.multiArrayConstraint else { break }
            // For enumerated and ranged shapes, `shape` is the model's default shape.
            let array = try MLMultiArray(shape: constraint.shape, dataType: constraint.dataType)
            if constraint.dataType == .float32 {
                array.withUnsafeMutableBufferPointer(ofType: Float.self) { buffer, _ in
                    for i in buffer.indices { buffer[i] = Float(next() * 2 - 1) }
                }
            } else {
                for i in 0..<array.count { array[i] = NSNumber(value: constraint.dataType == .int32 ? Double(Int(next() * 10)) : next() * 2 - 1) }
            }
            return MLFeatureValue(multiArray: array)
        case .image:
            guard let constraint = input.imageConstraint else { break }
            return MLFeatureValue(pixelBuffer: try pixelBuffer(constraint))
        case .double: return MLFeatureValue(double: next())
        case .int64: return MLFeatureValue(int64: Int64(next() * 10))
        case .string: return MLFeatureValue(string: "anefarm")
        default: break
        }
        throw ExecutorError(.unsupported, "input \(input.name) has type \(input.type.rawValue), which the runner cannot generate")
    }

    mutating func pixelBuffer(_ constraint: MLImageConstraint) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let attributes = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
        let status = CVPixelBufferCreate(kCFAllocatorDefault, constraint.pixelsWide, constraint.pixelsHigh,
                                         constraint.pixelFormatType, attributes, &buffer)
        guard status == kCVReturnSuccess, let buffer else {
            throw ExecutorError(.unsupported, "cannot create a \(constraint.pixelsWide)×\(constraint.pixelsHigh) pixel buffer (status \(status))")
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        if let base = CVPixelBufferGetBaseAddress(buffer) {
            let bytes = base.assumingMemoryBound(to: UInt8.self)
            for i in 0..<(CVPixelBufferGetBytesPerRow(buffer) * CVPixelBufferGetHeight(buffer)) {
                bytes[i] = UInt8(next() * 256)
            }
        }
        return buffer
    }
}
#endif
