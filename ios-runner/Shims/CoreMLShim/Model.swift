// MLModel: loading, compiling and predicting, with the declarations of the iOS 18 SDK
// (the Objective-C class plus the Swift overlay's async additions). Behaviour is CoreMLFake's.
// Empty where the real framework exists (swift build on a Mac builds every target).
#if !canImport(CoreML)
import Foundation

// https://developer.apple.com/documentation/coreml/mlmodel
// Not Sendable in the SDK (use one instance on one thread at a time), so not here either.
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLModel: NSObject {
    // https://developer.apple.com/documentation/coreml/mlmodel/modeldescription
    open private(set) var modelDescription: MLModelDescription
    // https://developer.apple.com/documentation/coreml/mlmodel/configuration
    @available(macOS 10.14, iOS 12.0, watchOS 5.0, tvOS 12.0, *)
    open private(set) var configuration: MLModelConfiguration

    init(description: MLModelDescription, configuration: MLModelConfiguration) {
        modelDescription = description
        self.configuration = configuration
        super.init()
        CoreMLFake.modelCreated()
    }
    deinit { CoreMLFake.modelReleased() }

    // https://developer.apple.com/documentation/coreml/mlmodel/init(contentsof:configuration:)
    @available(macOS 10.14, iOS 12.0, watchOS 5.0, tvOS 12.0, *)
    public convenience init(contentsOf url: URL, configuration: MLModelConfiguration) throws {
        let description = try CoreMLFake.load(url, configuration)
        self.init(description: description, configuration: configuration)
    }

    // https://developer.apple.com/documentation/coreml/mlmodel/init(contentsof:)
    public convenience init(contentsOf url: URL) throws {
        try self.init(contentsOf: url, configuration: MLModelConfiguration())
    }

    // https://developer.apple.com/documentation/coreml/mlmodel/prediction(from:)-9y2aa
    open func prediction(from input: any MLFeatureProvider) throws -> any MLFeatureProvider {
        try prediction(from: input, options: MLPredictionOptions())
    }

    // https://developer.apple.com/documentation/coreml/mlmodel/prediction(from:options:)-81mr6
    open func prediction(from input: any MLFeatureProvider, options: MLPredictionOptions) throws -> any MLFeatureProvider {
        try CoreMLFake.predict(self, input)
    }

    // https://developer.apple.com/documentation/coreml/mlmodel/compilemodel(at:)-6442s
    // Marked API_TO_BE_DEPRECATED in the iOS 18 header (use the async one).
    @available(iOS, introduced: 11.0, deprecated: 100000, message: "Use the asynchronous interface compileModelAtURL:completionHandler:error: instead.")
    @available(macOS, introduced: 10.13, deprecated: 100000, message: "Use the asynchronous interface compileModelAtURL:completionHandler:error: instead.")
    @available(watchOS, unavailable)
    open class func compileModel(at modelURL: URL) throws -> URL {
        try CoreMLFake.compile(modelURL)
    }
}

extension MLModel {
    // https://developer.apple.com/documentation/coreml/mlmodel/compilemodel(at:)-3nea
    @available(macOS 13.0, iOS 16.0, tvOS 16.0, *)
    @available(watchOS, unavailable)
    public class func compileModel(at url: URL) async throws -> URL {
        try await CoreMLFake.suspendIfAsked()
        return try CoreMLFake.compile(url)
    }

    // https://developer.apple.com/documentation/coreml/mlmodel/load(contentsof:configuration:)
    @available(macOS 12.0, iOS 15.0, watchOS 8.0, tvOS 15.0, *)
    public class func load(contentsOf url: URL, configuration: MLModelConfiguration = MLModelConfiguration()) async throws -> MLModel {
        try await CoreMLFake.suspendIfAsked()
        return try MLModel(contentsOf: url, configuration: configuration)
    }
}
#endif
