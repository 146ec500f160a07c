// Core ML's declarations for what CoreMLExecutor uses, for Linux, where CoreML does not
// exist: the same names, labels, optionality, throws/async, availability and
// class-vs-struct-vs-enum as the iPhoneOS 18.2 SDK (CoreML.swiftinterface for the Swift-only
// types, the Objective-C headers as Swift imports them for the rest), each with the
// developer.apple.com page it was checked against. Only the executor's surface is declared, so a call Core ML does not have fails
// to compile here too. What happens behind a declaration is CoreMLFake (Fake.swift).
// Empty where the real framework exists (swift build on a Mac builds every target).
#if !canImport(CoreML)
import Foundation

// https://developer.apple.com/documentation/coreml/mlcomputeunits
@available(macOS 10.14, iOS 12.0, watchOS 5.0, tvOS 12.0, *)
public enum MLComputeUnits: Int, @unchecked Sendable {
    case cpuOnly = 0
    case cpuAndGPU = 1
    case all = 2
    @available(macOS 13.0, iOS 16.0, watchOS 9.0, tvOS 16.0, *)
    case cpuAndNeuralEngine = 3
}

// https://developer.apple.com/documentation/coreml/mlmodelconfiguration
@available(macOS 10.14, iOS 12.0, watchOS 5.0, tvOS 12.0, *)
open class MLModelConfiguration: NSObject {
    // https://developer.apple.com/documentation/coreml/mlmodelconfiguration/computeunits
    open var computeUnits: MLComputeUnits = .all
    // https://developer.apple.com/documentation/coreml/mlmodelconfiguration/modeldisplayname
    @available(macOS 13.0, iOS 16.0, watchOS 9.0, tvOS 16.0, *)
    open var modelDisplayName: String?
    public override init() { super.init() }
}

// https://developer.apple.com/documentation/coreml/mlfeaturetype
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
public enum MLFeatureType: Int, @unchecked Sendable {
    case invalid = 0
    case int64 = 1
    case double = 2
    case string = 3
    case image = 4
    case multiArray = 5
    case dictionary = 6
    @available(macOS 10.14, iOS 12.0, watchOS 5.0, tvOS 12.0, *)
    case sequence = 7
    @available(macOS 15.0, iOS 18.0, watchOS 11.0, tvOS 18.0, *)
    case state = 8
}

// https://developer.apple.com/documentation/coreml/mlmultiarraydatatype
// The header's aliases (float64 = double, float = float32) import as static properties.
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
public enum MLMultiArrayDataType: Int, @unchecked Sendable {
    case double = 65600   // 0x10000 | 64
    case float32 = 65568  // 0x10000 | 32
    @available(macOS 12.0, iOS 16.0, watchOS 9.0, tvOS 16.0, *)
    case float16 = 65552  // 0x10000 | 16
    case int32 = 131104   // 0x20000 | 32
    @available(macOS 11.0, iOS 14.0, watchOS 7.0, tvOS 14.0, *)
    public static var float64: MLMultiArrayDataType { .double }
    @available(macOS 11.0, iOS 14.0, watchOS 7.0, tvOS 14.0, *)
    public static var float: MLMultiArrayDataType { .float32 }
}

// https://developer.apple.com/documentation/coreml/mlmultiarray
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLMultiArray: NSObject {
    // https://developer.apple.com/documentation/coreml/mlmultiarray/datapointer
    @available(iOS, introduced: 11.0, deprecated: 100000, message: "Use getBytesWithHandler or getMutableBytesWithHandler instead. For Swift, use withUnsafeBytes or withUnsafeMutableBytes.")
    @available(macOS, introduced: 10.13, deprecated: 100000, message: "Use getBytesWithHandler or getMutableBytesWithHandler instead. For Swift, use withUnsafeBytes or withUnsafeMutableBytes.")
    open var dataPointer: UnsafeMutableRawPointer { storage }
    // https://developer.apple.com/documentation/coreml/mlmultiarray/datatype
    open private(set) var dataType: MLMultiArrayDataType
    // https://developer.apple.com/documentation/coreml/mlmultiarray/shape
    open private(set) var shape: [NSNumber]
    // https://developer.apple.com/documentation/coreml/mlmultiarray/strides
    open private(set) var strides: [NSNumber]
    // https://developer.apple.com/documentation/coreml/mlmultiarray/count
    open var count: Int { shape.reduce(1) { $0 * $1.intValue } }

    let storage: UnsafeMutableRawPointer
    let byteCount: Int

    // https://developer.apple.com/documentation/coreml/mlmultiarray/init(shape:datatype:)
    // First-major contiguous layout, contents uninitialised (here: NaN-like 0xFF bytes, so
    // a filler that misses an element is caught).
    public init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws {
        guard shape.allSatisfy({ $0.intValue > 0 }) else {
            throw NSError(domain: "com.apple.CoreML", code: 0, userInfo: [NSLocalizedDescriptionKey: "bad shape \(shape)"])
        }
        self.shape = shape
        self.dataType = dataType
        var strides: [Int] = []
        var step = 1
        for dimension in shape.reversed() { strides.insert(step, at: 0); step *= dimension.intValue }
        self.strides = strides.map { NSNumber(value: $0) }
        byteCount = step * dataType.scalarSize
        storage = .allocate(byteCount: byteCount, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0xFF, count: byteCount)
        super.init()
    }
    deinit { storage.deallocate() }

    // https://developer.apple.com/documentation/coreml/mlmultiarray/subscript(_:)-2hh91
    open subscript(idx: Int) -> NSNumber {
        get {
            switch dataType {
            case .double: return NSNumber(value: storage.load(fromByteOffset: idx * 8, as: Double.self))
            case .float32: return NSNumber(value: storage.load(fromByteOffset: idx * 4, as: Float.self))
            case .float16: return NSNumber(value: halfToFloat(storage.load(fromByteOffset: idx * 2, as: UInt16.self)))
            case .int32: return NSNumber(value: storage.load(fromByteOffset: idx * 4, as: Int32.self))
            }
        }
        set {
            switch dataType {
            case .double: storage.storeBytes(of: newValue.doubleValue, toByteOffset: idx * 8, as: Double.self)
            case .float32: storage.storeBytes(of: newValue.floatValue, toByteOffset: idx * 4, as: Float.self)
            case .float16: storage.storeBytes(of: floatToHalf(newValue.floatValue), toByteOffset: idx * 2, as: UInt16.self)
            case .int32: storage.storeBytes(of: newValue.int32Value, toByteOffset: idx * 4, as: Int32.self)
            }
        }
    }

    // https://developer.apple.com/documentation/coreml/mlmultiarray/withunsafemutablebytes(_:)
    @available(macOS 12.3, iOS 15.4, watchOS 8.5, tvOS 15.4, *)
    public func withUnsafeMutableBytes<R>(_ body: (_ ptr: UnsafeMutableRawBufferPointer, _ strides: [Int]) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: storage, count: byteCount), strides.map(\.intValue))
    }

    // https://developer.apple.com/documentation/coreml/mlmultiarray/withunsafebytes(_:)
    @available(macOS 12.3, iOS 15.4, watchOS 8.5, tvOS 15.4, *)
    public func withUnsafeBytes<R>(_ body: (_ ptr: UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: byteCount))
    }
}

extension MLMultiArrayDataType {
    var scalarSize: Int {
        switch self {
        case .double: return 8
        case .float32, .int32: return 4
        case .float16: return 2
        }
    }
}

// https://developer.apple.com/documentation/coreml/mlfeaturevalue
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLFeatureValue: NSObject {
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/type
    open private(set) var type: MLFeatureType
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/int64value
    open private(set) var int64Value: Int64 = 0
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/doublevalue
    open private(set) var doubleValue: Double = 0
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/stringvalue
    open private(set) var stringValue: String = ""
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/multiarrayvalue
    open private(set) var multiArrayValue: MLMultiArray?
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/imagebuffervalue
    open private(set) var imageBufferValue: CVPixelBuffer?

    init(type: MLFeatureType) {
        self.type = type
        super.init()
    }
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/init(int64:)
    public convenience init(int64 value: Int64) { self.init(type: .int64); int64Value = value }
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/init(double:)
    public convenience init(double value: Double) { self.init(type: .double); doubleValue = value }
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/init(string:)
    public convenience init(string value: String) { self.init(type: .string); stringValue = value }
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/init(multiarray:)
    public convenience init(multiArray value: MLMultiArray) { self.init(type: .multiArray); multiArrayValue = value }
    // https://developer.apple.com/documentation/coreml/mlfeaturevalue/init(pixelbuffer:)
    public convenience init(pixelBuffer value: CVPixelBuffer) { self.init(type: .image); imageBufferValue = value }
}

// https://developer.apple.com/documentation/coreml/mlfeatureprovider
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
public protocol MLFeatureProvider {
    // https://developer.apple.com/documentation/coreml/mlfeatureprovider/featurenames
    var featureNames: Set<String> { get }
    // https://developer.apple.com/documentation/coreml/mlfeatureprovider/featurevalue(for:)
    func featureValue(for featureName: String) -> MLFeatureValue?
}

// https://developer.apple.com/documentation/coreml/mldictionaryfeatureprovider
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLDictionaryFeatureProvider: NSObject, MLFeatureProvider {
    // https://developer.apple.com/documentation/coreml/mldictionaryfeatureprovider/dictionary
    public let dictionary: [String: MLFeatureValue]
    // https://developer.apple.com/documentation/coreml/mldictionaryfeatureprovider/init(dictionary:)
    // Values must be feature values or convertible to one, as in Core ML.
    public init(dictionary: [String: Any]) throws {
        var values: [String: MLFeatureValue] = [:]
        for (name, value) in dictionary {
            switch value {
            case let value as MLFeatureValue: values[name] = value
            case let value as MLMultiArray: values[name] = MLFeatureValue(multiArray: value)
            case let value as String: values[name] = MLFeatureValue(string: value)
            case let value as Double: values[name] = MLFeatureValue(double: value)
            case let value as Int64: values[name] = MLFeatureValue(int64: value)
            default:
                throw NSError(domain: "com.apple.CoreML", code: 1,
                              userInfo: [NSLocalizedDescriptionKey: "feature \(name): unsupported value \(type(of: value))"])
            }
        }
        self.dictionary = values
        super.init()
    }
    public var featureNames: Set<String> { Set(dictionary.keys) }
    public func featureValue(for featureName: String) -> MLFeatureValue? { dictionary[featureName] }
    // https://developer.apple.com/documentation/coreml/mldictionaryfeatureprovider/subscript(_:)
    open subscript(featureName: String) -> MLFeatureValue? { dictionary[featureName] }
}

// https://developer.apple.com/documentation/coreml/mlmultiarrayconstraint
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLMultiArrayConstraint: NSObject {
    // https://developer.apple.com/documentation/coreml/mlmultiarrayconstraint/shape
    open private(set) var shape: [NSNumber]
    // https://developer.apple.com/documentation/coreml/mlmultiarrayconstraint/datatype
    open private(set) var dataType: MLMultiArrayDataType
    init(shape: [NSNumber], dataType: MLMultiArrayDataType) {
        self.shape = shape
        self.dataType = dataType
    }
}

// https://developer.apple.com/documentation/coreml/mlimageconstraint
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLImageConstraint: NSObject {
    // https://developer.apple.com/documentation/coreml/mlimageconstraint/pixelshigh
    open private(set) var pixelsHigh: Int
    // https://developer.apple.com/documentation/coreml/mlimageconstraint/pixelswide
    open private(set) var pixelsWide: Int
    // https://developer.apple.com/documentation/coreml/mlimageconstraint/pixelformattype
    open private(set) var pixelFormatType: OSType
    init(pixelsWide: Int, pixelsHigh: Int, pixelFormatType: OSType) {
        self.pixelsWide = pixelsWide
        self.pixelsHigh = pixelsHigh
        self.pixelFormatType = pixelFormatType
    }
}

// https://developer.apple.com/documentation/coreml/mlfeaturedescription
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLFeatureDescription: NSObject {
    // https://developer.apple.com/documentation/coreml/mlfeaturedescription/name
    open private(set) var name: String
    // https://developer.apple.com/documentation/coreml/mlfeaturedescription/type
    open private(set) var type: MLFeatureType
    // https://developer.apple.com/documentation/coreml/mlfeaturedescription/isoptional
    open private(set) var isOptional: Bool
    // https://developer.apple.com/documentation/coreml/mlfeaturedescription/multiarrayconstraint
    open private(set) var multiArrayConstraint: MLMultiArrayConstraint?
    // https://developer.apple.com/documentation/coreml/mlfeaturedescription/imageconstraint
    open private(set) var imageConstraint: MLImageConstraint?
    init(name: String, type: MLFeatureType, isOptional: Bool, multiArray: MLMultiArrayConstraint?, image: MLImageConstraint?) {
        self.name = name
        self.type = type
        self.isOptional = isOptional
        multiArrayConstraint = multiArray
        imageConstraint = image
    }
}

// https://developer.apple.com/documentation/coreml/mlmodeldescription
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLModelDescription: NSObject {
    // https://developer.apple.com/documentation/coreml/mlmodeldescription/inputdescriptionsbyname
    open private(set) var inputDescriptionsByName: [String: MLFeatureDescription]
    init(inputs: [MLFeatureDescription]) {
        inputDescriptionsByName = Dictionary(uniqueKeysWithValues: inputs.map { ($0.name, $0) })
    }
}

// https://developer.apple.com/documentation/coreml/mlpredictionoptions
@available(macOS 10.13, iOS 11.0, watchOS 4.0, tvOS 11.0, *)
open class MLPredictionOptions: NSObject {
    public override init() { super.init() }
}
#endif
