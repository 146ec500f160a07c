// CoreVideo and CoreFoundation as the runner uses them, for Linux (neither exists there).
// Signatures are the Swift imports of Apple's C declarations; each names its documentation
// page. Behind them: plain heap memory, enough for the executor's input synthesis.
// Empty where the real framework exists (swift build on a Mac builds every target).
#if !canImport(CoreML)
import Foundation

// https://developer.apple.com/documentation/corefoundation/cfstring
public final class CFString: Hashable, @unchecked Sendable {
    let value: String
    init(_ value: String) { self.value = value }
    public static func == (a: CFString, b: CFString) -> Bool { a.value == b.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}

// https://developer.apple.com/documentation/corefoundation/cfdictionary
// Apple's is built here with `[key: value] as CFDictionary` (bridging); the literal
// conformance is this shim's way to accept exactly that spelling.
public final class CFDictionary: ExpressibleByDictionaryLiteral {
    public let entries: [CFString: Any]
    public init(dictionaryLiteral elements: (CFString, Any)...) {
        entries = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }
}

// https://developer.apple.com/documentation/corefoundation/cfallocator
public final class CFAllocator: @unchecked Sendable { init() {} }
// https://developer.apple.com/documentation/corefoundation/kcfallocatordefault
public let kCFAllocatorDefault: CFAllocator! = CFAllocator()

// https://developer.apple.com/documentation/kernel/ostype
public typealias OSType = FourCharCode
// https://developer.apple.com/documentation/kernel/fourcharcode
public typealias FourCharCode = UInt32
// https://developer.apple.com/documentation/corevideo/cvreturn
public typealias CVReturn = Int32
// https://developer.apple.com/documentation/corevideo/cvoptionflags
public typealias CVOptionFlags = UInt64
// https://developer.apple.com/documentation/corevideo/kcvreturnsuccess
public var kCVReturnSuccess: CVReturn { 0 }
// https://developer.apple.com/documentation/corevideo/kcvreturninvalidargument
public var kCVReturnInvalidArgument: CVReturn { -6661 }
// https://developer.apple.com/documentation/corevideo/kcvreturninvalidpixelformat
public var kCVReturnInvalidPixelFormat: CVReturn { -6680 }

// https://developer.apple.com/documentation/corevideo/cvbuffer
public class CVBuffer {
    fileprivate let storage: UnsafeMutableRawPointer
    fileprivate let width: Int, height: Int, bytesPerRow: Int, format: OSType
    fileprivate var locks = 0
    fileprivate init(width: Int, height: Int, bytesPerRow: Int, format: OSType) {
        self.width = width
        self.height = height
        self.bytesPerRow = bytesPerRow
        self.format = format
        storage = .allocate(byteCount: max(bytesPerRow * height, 1), alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0xFF, count: max(bytesPerRow * height, 1))
    }
    deinit { storage.deallocate() }
}
// https://developer.apple.com/documentation/corevideo/cvimagebuffer
public typealias CVImageBuffer = CVBuffer
// https://developer.apple.com/documentation/corevideo/cvpixelbuffer-q2e
public typealias CVPixelBuffer = CVImageBuffer

// https://developer.apple.com/documentation/corevideo/cvpixelbufferlockflags
public struct CVPixelBufferLockFlags: OptionSet, Sendable {
    public let rawValue: CVOptionFlags
    public init(rawValue: CVOptionFlags) { self.rawValue = rawValue }
    public static var readOnly: CVPixelBufferLockFlags { CVPixelBufferLockFlags(rawValue: 1) }
}

// https://developer.apple.com/documentation/corevideo/kcvpixelbufferiosurfacepropertieskey
public let kCVPixelBufferIOSurfacePropertiesKey: CFString = CFString("IOSurfaceProperties")

// Pixel formats (FourCC codes as CoreVideo defines them).
// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_32bgra
public var kCVPixelFormatType_32BGRA: OSType { 0x4247_5241 }  // 'BGRA'
// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_32argb
public var kCVPixelFormatType_32ARGB: OSType { 0x0000_0020 }
// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_onecomponent8
public var kCVPixelFormatType_OneComponent8: OSType { 0x4C30_3038 }  // 'L008'
// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_onecomponent16half
public var kCVPixelFormatType_OneComponent16Half: OSType { 0x4C30_3068 }  // 'L00h'
// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_onecomponent32float
public var kCVPixelFormatType_OneComponent32Float: OSType { 0x4C30_3066 }  // 'L00f'
// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_64rgbahalf
public var kCVPixelFormatType_64RGBAHalf: OSType { 0x5247_6841 }  // 'RGhA'
// https://developer.apple.com/documentation/corevideo/kcvpixelformattype_128rgbafloat
public var kCVPixelFormatType_128RGBAFloat: OSType { 0x5247_6641 }  // 'RGfA'

/// Bytes per pixel of the formats above; nil for a format the shim does not model.
func bytesPerPixel(_ format: OSType) -> Int? {
    switch format {
    case kCVPixelFormatType_OneComponent8: return 1
    case kCVPixelFormatType_OneComponent16Half: return 2
    case kCVPixelFormatType_32BGRA, kCVPixelFormatType_32ARGB, kCVPixelFormatType_OneComponent32Float: return 4
    case kCVPixelFormatType_64RGBAHalf: return 8
    case kCVPixelFormatType_128RGBAFloat: return 16
    default: return nil
    }
}

// https://developer.apple.com/documentation/corevideo/cvpixelbuffercreate(_:_:_:_:_:_:)
@discardableResult
public func CVPixelBufferCreate(_ allocator: CFAllocator?, _ width: Int, _ height: Int, _ pixelFormatType: OSType,
                                _ pixelBufferAttributes: CFDictionary?,
                                _ pixelBufferOut: UnsafeMutablePointer<CVPixelBuffer?>) -> CVReturn {
    guard width > 0, height > 0 else { return kCVReturnInvalidArgument }
    guard let size = bytesPerPixel(pixelFormatType) else { return kCVReturnInvalidPixelFormat }
    // Rows padded to 64 bytes, as CoreVideo does: fillers must honour bytesPerRow.
    let bytesPerRow = (width * size + 63) / 64 * 64
    pixelBufferOut.pointee = CVBuffer(width: width, height: height, bytesPerRow: bytesPerRow, format: pixelFormatType)
    return kCVReturnSuccess
}

// https://developer.apple.com/documentation/corevideo/cvpixelbufferlockbaseaddress(_:_:)
@discardableResult
public func CVPixelBufferLockBaseAddress(_ pixelBuffer: CVPixelBuffer, _ lockFlags: CVPixelBufferLockFlags) -> CVReturn {
    pixelBuffer.locks += 1
    return kCVReturnSuccess
}

// https://developer.apple.com/documentation/corevideo/cvpixelbufferunlockbaseaddress(_:_:)
@discardableResult
public func CVPixelBufferUnlockBaseAddress(_ pixelBuffer: CVPixelBuffer, _ unlockFlags: CVPixelBufferLockFlags) -> CVReturn {
    guard pixelBuffer.locks > 0 else { return kCVReturnInvalidArgument }
    pixelBuffer.locks -= 1
    return kCVReturnSuccess
}

// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetbaseaddress(_:)
// Like CoreVideo, nil unless the base address is locked.
public func CVPixelBufferGetBaseAddress(_ pixelBuffer: CVPixelBuffer) -> UnsafeMutableRawPointer? {
    pixelBuffer.locks > 0 ? pixelBuffer.storage : nil
}

// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetbytesperrow(_:)
public func CVPixelBufferGetBytesPerRow(_ pixelBuffer: CVPixelBuffer) -> Int { pixelBuffer.bytesPerRow }
// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetwidth(_:)
public func CVPixelBufferGetWidth(_ pixelBuffer: CVPixelBuffer) -> Int { pixelBuffer.width }
// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetheight(_:)
public func CVPixelBufferGetHeight(_ pixelBuffer: CVPixelBuffer) -> Int { pixelBuffer.height }
// https://developer.apple.com/documentation/corevideo/cvpixelbuffergetpixelformattype(_:)
public func CVPixelBufferGetPixelFormatType(_ pixelBuffer: CVPixelBuffer) -> OSType { pixelBuffer.format }
#endif
