// What the shim's Core ML does, programmable from XCTests: the model's inputs, latencies,
// errors, a compute plan, and an app suspension (the OS refusing GPU work in the
// background). Not Apple API: everything here is named CoreMLFake.
// Empty where the real framework exists (swift build on a Mac builds every target).
#if !canImport(CoreML)
import Foundation

public enum CoreMLFake {
    // The knobs. Tests set them, then call reset() in tearDown. Read from the harness thread
    // and from the compute-plan task, never written concurrently.
    nonisolated(unsafe) public static var inputs: [MLFeatureDescription] = defaultInputs
    nonisolated(unsafe) public static var loadLatency: TimeInterval = 0
    nonisolated(unsafe) public static var predictionLatency: TimeInterval = 0
    nonisolated(unsafe) public static var compileError: Error?
    nonisolated(unsafe) public static var loadError: Error?
    nonisolated(unsafe) public static var predictionError: Error?
    /// Predictions that run before `predictionError` starts being thrown.
    nonisolated(unsafe) public static var failAfterPredictions = 0
    /// The app is in the background: GPU and Neural Engine work is refused (CPU runs).
    nonisolated(unsafe) public static var suspended = false
    /// How long async Core ML calls (compile, load, compute plan) take before answering.
    nonisolated(unsafe) public static var asyncDelay: TimeInterval = 0
    /// Called at the start of every prediction with the number of predictions so far: where
    /// a test sends the app to the background (or brings it back) mid-slot.
    nonisolated(unsafe) public static var beforePrediction: ((Int) -> Void)?
    nonisolated(unsafe) public static var planError: Error?
    nonisolated(unsafe) public static var plan: (structure: MLModelStructure, usage: [String: MLComputePlan.DeviceUsage], costs: [String: Double]) =
        (.unsupported, [:], [:])

    // What happened.
    nonisolated(unsafe) public private(set) static var compiles = 0
    nonisolated(unsafe) public private(set) static var loads = 0
    /// The compiled model of every load, in order.
    nonisolated(unsafe) public private(set) static var loadedURLs: [URL] = []
    nonisolated(unsafe) public private(set) static var predictions = 0
    nonisolated(unsafe) public private(set) static var liveModels = 0
    /// The most models alive at once during a prediction.
    nonisolated(unsafe) public private(set) static var maxLiveModelsWhilePredicting = 0
    /// Predictions given an input that held a NaN or an infinity.
    nonisolated(unsafe) public private(set) static var nonFiniteInputs = 0
    nonisolated(unsafe) public private(set) static var lastInputs: MLFeatureProvider?

    public static var defaultInputs: [MLFeatureDescription] { [multiArray("x", shape: [1, 8], .float32)] }

    public static func reset() {
        inputs = defaultInputs
        loadLatency = 0; predictionLatency = 0; asyncDelay = 0
        compileError = nil; loadError = nil; predictionError = nil; planError = nil
        failAfterPredictions = 0; suspended = false; beforePrediction = nil
        plan = (.unsupported, [:], [:])
        compiles = 0; loads = 0; loadedURLs = []; predictions = 0; maxLiveModelsWhilePredicting = 0; nonFiniteInputs = 0
        lastInputs = nil
    }

    // Building model descriptions and plans (the SDK's types have no public initialisers).
    public static func multiArray(_ name: String, shape: [Int], _ type: MLMultiArrayDataType, optional: Bool = false) -> MLFeatureDescription {
        MLFeatureDescription(name: name, type: .multiArray, isOptional: optional,
                             multiArray: MLMultiArrayConstraint(shape: shape.map { NSNumber(value: $0) }, dataType: type), image: nil)
    }
    public static func image(_ name: String, width: Int, height: Int, format: OSType) -> MLFeatureDescription {
        MLFeatureDescription(name: name, type: .image, isOptional: false, multiArray: nil,
                             image: MLImageConstraint(pixelsWide: width, pixelsHigh: height, pixelFormatType: format))
    }
    public static func feature(_ name: String, _ type: MLFeatureType, optional: Bool = false) -> MLFeatureDescription {
        MLFeatureDescription(name: name, type: type, isOptional: optional, multiArray: nil, image: nil)
    }
    public static func operation(_ op: String, output: String, blocks: [MLModelStructure.Program.Block] = []) -> MLModelStructure.Program.Operation {
        .init(operatorName: op, outputs: [.init(name: output, type: .init())], blocks: blocks)
    }
    public static func block(_ operations: [MLModelStructure.Program.Operation]) -> MLModelStructure.Program.Block {
        .init(inputs: [], outputNames: [], operations: operations)
    }
    public static func program(main operations: [MLModelStructure.Program.Operation]) -> MLModelStructure {
        .program(.init(functions: ["main": .init(inputs: [], block: block(operations))]))
    }
    public static func neuralNetwork(_ layers: [(name: String, type: String)]) -> MLModelStructure {
        .neuralNetwork(.init(layers: layers.map { .init(name: $0.name, type: $0.type, inputNames: [], outputNames: []) }))
    }
    public static func usage(preferred: MLComputeDevice, supported: [MLComputeDevice]) -> MLComputePlan.DeviceUsage {
        .init(supported: supported, preferred: preferred)
    }
    public static var cpu: MLComputeDevice { .cpu(MLCPUComputeDevice()) }
    public static var gpu: MLComputeDevice { .gpu(MLGPUComputeDevice()) }
    public static var neuralEngine: MLComputeDevice { .neuralEngine(MLNeuralEngineComputeDevice()) }

    // Behind the declarations.
    static func suspendIfAsked() async throws {
        if asyncDelay > 0 { try await Task.sleep(nanoseconds: UInt64(asyncDelay * 1e9)) }
    }

    static func compile(_ url: URL) throws -> URL {
        compiles += 1
        if let compileError { throw compileError }
        let compiled = FileManager.default.temporaryDirectory
            .appendingPathComponent("coremlshim-\(UUID().uuidString)", isDirectory: true)
            .appendingPathComponent(url.deletingPathExtension().lastPathComponent + ".mlmodelc", isDirectory: true)
        try FileManager.default.createDirectory(at: compiled, withIntermediateDirectories: true)
        try Data(contentsOf: url).write(to: compiled.appendingPathComponent("model.bin"))
        return compiled
    }

    static func load(_ url: URL, _ configuration: MLModelConfiguration) throws -> MLModelDescription {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NSError(domain: "com.apple.CoreML", code: 0, userInfo: [NSLocalizedDescriptionKey: "no compiled model at \(url.path)"])
        }
        if let loadError { throw loadError }
        if loadLatency > 0 { Thread.sleep(forTimeInterval: loadLatency) }
        loads += 1
        loadedURLs.append(url)
        return MLModelDescription(inputs: inputs)
    }

    static func modelCreated() { liveModels += 1 }
    static func modelReleased() { liveModels -= 1 }

    static func predict(_ model: MLModel, _ input: MLFeatureProvider) throws -> MLFeatureProvider {
        maxLiveModelsWhilePredicting = max(maxLiveModelsWhilePredicting, liveModels)
        beforePrediction?(predictions)
        if suspended && model.configuration.computeUnits != .cpuOnly {
            // What a backgrounded app sees from Metal.
            throw NSError(domain: "com.apple.CoreML", code: 0, userInfo: [NSLocalizedDescriptionKey:
                "Execution of the command buffer was aborted due to an error during execution. Insufficient Permission (to submit GPU work from background)"])
        }
        if let predictionError, predictions >= failAfterPredictions { throw predictionError }
        for (name, description) in model.modelDescription.inputDescriptionsByName where !description.isOptional {
            guard let value = input.featureValue(for: name), value.type == description.type else {
                throw NSError(domain: "com.apple.CoreML", code: 1, userInfo: [NSLocalizedDescriptionKey: "missing or mistyped input \(name)"])
            }
        }
        if input.featureNames.contains(where: { name in input.featureValue(for: name).map(hasNonFinite) ?? false }) {
            nonFiniteInputs += 1
        }
        lastInputs = input
        if predictionLatency > 0 { Thread.sleep(forTimeInterval: predictionLatency) }
        predictions += 1
        return try MLDictionaryFeatureProvider(dictionary: ["y": MLFeatureValue(double: 0)])
    }

    static func plan(_ url: URL, _ configuration: MLModelConfiguration) throws -> MLComputePlan {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NSError(domain: "com.apple.CoreML", code: 0, userInfo: [NSLocalizedDescriptionKey: "no compiled model at \(url.path)"])
        }
        if let planError { throw planError }
        return MLComputePlan(modelStructure: plan.structure, usage: plan.usage, costs: plan.costs)
    }

    /// Whether a multi-array or a float pixel buffer holds a NaN or an infinity.
    public static func hasNonFinite(_ value: MLFeatureValue) -> Bool {
        if let array = value.multiArrayValue {
            return (0..<array.count).contains { !array[$0].doubleValue.isFinite }
        }
        if let buffer = value.imageBufferValue {
            CVPixelBufferLockBaseAddress(buffer, .readOnly)
            defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
            return nonFinitePixels(buffer) > 0
        }
        return value.type == .double && !value.doubleValue.isFinite
    }

    /// NaN or infinite samples of a half- or single-float pixel buffer (row padding excluded).
    public static func nonFinitePixels(_ buffer: CVPixelBuffer) -> Int {
        let format = CVPixelBufferGetPixelFormatType(buffer)
        let halves = format == kCVPixelFormatType_OneComponent16Half || format == kCVPixelFormatType_64RGBAHalf
        let floats = format == kCVPixelFormatType_OneComponent32Float || format == kCVPixelFormatType_128RGBAFloat
        guard halves || floats, let base = CVPixelBufferGetBaseAddress(buffer), let size = bytesPerPixel(format) else { return 0 }
        var bad = 0
        for row in 0..<CVPixelBufferGetHeight(buffer) {
            let start = base + row * CVPixelBufferGetBytesPerRow(buffer)
            let samples = CVPixelBufferGetWidth(buffer) * size / (halves ? 2 : 4)
            for i in 0..<samples {
                let value = halves ? Float(Float16(bitPattern: start.load(fromByteOffset: i * 2, as: UInt16.self)))
                                   : start.load(fromByteOffset: i * 4, as: Float.self)
                if !value.isFinite { bad += 1 }
            }
        }
        return bad
    }
}

func halfToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
func floatToHalf(_ value: Float) -> UInt16 { Float16(value).bitPattern }
#endif
