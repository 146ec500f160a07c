// The real executor: Core ML on the device. Kept thin: every decision about what to
// measure lives in the Harness. On Linux it compiles against CoreMLShim (Apple's
// declarations over a fake), so every `swift test` type-checks it in Swift 6 mode and
// drives it through the fake.
#if canImport(CoreML)
import CoreML
import CoreVideo
#else
import CoreMLShim
#endif
import Foundation

public final class CoreMLExecutor: ModelExecutor {
    /// Longest wait for an async-only Core ML call (compile, compute plan) before giving up.
    let asyncTimeout: TimeInterval

    public init(asyncTimeout: TimeInterval = 600) { self.asyncTimeout = asyncTimeout }

    public var simulated: Bool { false }

    public var runnerVersion: String {
        (Bundle.main.object(forInfoDictionaryKey: "CFBundleVersion") as? String) ?? "0"
    }

    public var thermalState: ThermalState {
        #if canImport(Darwin)
        switch ProcessInfo.processInfo.thermalState {
        case .nominal: return .nominal
        case .fair: return .fair
        case .serious: return .serious
        case .critical: return .critical
        @unknown default: return .critical  // an unknown state is treated as hot: wait, don't measure heat
        }
        #else
        return .nominal  // Linux (tests through the shim) has no thermal state
        #endif
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
        #if canImport(Darwin)
        var size = 0
        guard sysctlbyname(name, nil, &size, nil, 0) == 0, size > 0 else { return nil }
        var bytes = [CChar](repeating: 0, count: size)
        guard sysctlbyname(name, &bytes, &size, nil, 0) == 0 else { return nil }
        return String(cString: bytes)
        #else
        return nil
        #endif
    }

    /// The async compileModel(at:) (the synchronous one is marked to-be-deprecated), awaited
    /// from the harness's own thread.
    public func compile(modelURL: URL) throws -> URL {
        do {
            return try AsyncBridge.wait(timeout: asyncTimeout, "compile") {
                try await MLModel.compileModel(at: modelURL)
            }
        } catch let error as ExecutorError {
            throw ExecutorError(error.kind == .internal ? .internal : .compile, error.message)
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

    /// Only the load: the harness times this call, so inputs are made later (prepareInputs).
    /// Core ML autoreleases while loading; the pool returns that memory before the next load.
    public func load(compiled: URL, computeUnits: ComputeUnits) throws -> LoadedModel {
        let configuration = try Self.configuration(computeUnits)
        do {
            return CoreMLModel(model: try autoreleasepool { try MLModel(contentsOf: compiled, configuration: configuration) })
        } catch {
            throw ExecutorError(.load, error.localizedDescription)
        }
    }

    /// MLComputePlan loads only asynchronously and is not Sendable, so the whole plan is
    /// read inside the task and only the resulting ComputePlan (plain values) comes back.
    public func computePlan(compiled: URL, computeUnits: ComputeUnits) throws -> ComputePlan? {
        guard #available(iOS 17.4, macOS 14.4, *) else { return nil }
        return try AsyncBridge.wait(timeout: asyncTimeout, "compute plan") {
            let plan = try await MLComputePlan.load(contentsOf: compiled, configuration: Self.configuration(computeUnits))
            var ops: [OpPlan] = []
            Self.collect(plan.modelStructure, plan: plan, into: &ops)
            return ComputePlan(computeUnits: computeUnits, ops: ops)
        }
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
        #if canImport(CoreML)
        @unknown default: return .cpu  // a resilient SDK enum may grow cases
        #endif
        }
    }
}

private final class CoreMLModel: LoadedModel {
    let model: MLModel
    private var inputs: MLFeatureProvider?
    init(model: MLModel) { self.model = model }

    func prepareInputs(seed: Int) throws {
        do {
            // A named generator: inputs(for:) is mutating and cannot run on a temporary.
            var generator = InputGenerator(seed: UInt64(seed))
            inputs = try autoreleasepool { try generator.inputs(for: model.modelDescription) }
        } catch let error as ExecutorError {
            throw error
        } catch {
            throw ExecutorError(.unsupported, "cannot generate inputs: \(error.localizedDescription)")
        }
    }

    /// Each prediction in its own autorelease pool: Core ML autoreleases its outputs, and
    /// without a pool they pile up until the harness thread ends (memory grows over
    /// thousands of iterations and skews later samples).
    func predict() throws {
        guard let inputs else { throw ExecutorError(.internal, "predict before prepareInputs") }
        do {
            try autoreleasepool { _ = try model.prediction(from: inputs) }
        } catch {
            throw ExecutorError(.predict, error.localizedDescription)
        }
    }
}

#if !canImport(ObjectiveC)
/// Linux has no Objective-C runtime and no autorelease pools: the pool is just the body.
/// Same signature as the ObjectiveC module's function, so the calls above compile unchanged.
func autoreleasepool<Result>(invoking body: () throws -> Result) rethrows -> Result { try body() }
#endif

/// Inputs of the declared shape and type, filled from a seeded generator, so every
/// device measures the same numbers for the same manifest.
struct InputGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    /// SplitMix64.
    mutating func nextBits() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Mapped to [0, 1).
    mutating func next() -> Double { Double(nextBits() >> 11) / Double(1 << 53) }

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
            fill(array)
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

    /// Every scalar of the buffer (padding included) written through raw bytes, one pass
    /// for every data type: floats in [-1, 1), integers in [0, 10).
    mutating func fill(_ array: MLMultiArray) {
        let type = array.dataType
        array.withUnsafeMutableBytes { bytes, _ in
            switch type {
            case .float32:
                for i in 0..<bytes.count / 4 { bytes.storeBytes(of: Float(next() * 2 - 1), toByteOffset: i * 4, as: Float.self) }
            case .double:
                for i in 0..<bytes.count / 8 { bytes.storeBytes(of: next() * 2 - 1, toByteOffset: i * 8, as: Double.self) }
            case .int32:
                for i in 0..<bytes.count / 4 { bytes.storeBytes(of: Int32(next() * 10), toByteOffset: i * 4, as: Int32.self) }
            case .float16:
                for i in 0..<bytes.count / 2 { bytes.storeBytes(of: halfBits(), toByteOffset: i * 2, as: UInt16.self) }
            @unknown default:
                bytes.initializeMemory(as: UInt8.self, repeating: 0)  // zeros are a valid value of any type
            }
        }
    }

    /// A finite half-precision value in [-1, -2^-4] ∪ [2^-4, 1), as bits: exponent 11...14
    /// never reaches the all-ones exponent of NaN and infinity. Bits, not Float16, because
    /// Float16 does not exist on Intel Macs.
    mutating func halfBits() -> UInt16 {
        let bits = nextBits()
        let sign = UInt16(bits & 1) << 15
        let exponent = UInt16(11 + (bits >> 1) % 4) << 10
        return sign | exponent | UInt16((bits >> 3) & 0x3FF)
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
        guard let base = CVPixelBufferGetBaseAddress(buffer) else { return buffer }
        let bytes = UnsafeMutableRawBufferPointer(start: base, count: CVPixelBufferGetBytesPerRow(buffer) * CVPixelBufferGetHeight(buffer))
        // Random bytes are valid 8-bit pixels but not valid floats: one in 32 random halves is
        // a NaN or an infinity, which can take a model's slow path or poison its output. Float
        // formats get finite values sample by sample (row padding included, harmlessly).
        switch constraint.pixelFormatType {
        case kCVPixelFormatType_OneComponent16Half, kCVPixelFormatType_64RGBAHalf:
            for i in 0..<bytes.count / 2 { bytes.storeBytes(of: halfBits() & 0x7FFF, toByteOffset: i * 2, as: UInt16.self) }
        case kCVPixelFormatType_OneComponent32Float, kCVPixelFormatType_128RGBAFloat:
            for i in 0..<bytes.count / 4 { bytes.storeBytes(of: Float(next()), toByteOffset: i * 4, as: Float.self) }
        default:
            for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: nextBits()) }
        }
        return buffer
    }
}
