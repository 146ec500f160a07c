// The boundary between the measurement harness and Core ML: everything the harness needs
// from a device, as a protocol, so the harness is tested on Linux with a fake executor.
import Foundation

/// What went wrong in one step, with the kind the result reports. Executors throw this;
/// any other error is reported with the kind of the step it came from.
public struct ExecutorError: Error, Equatable, Sendable {
    public var kind: RunnerErrorKind
    public var message: String
    public init(_ kind: RunnerErrorKind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// A model loaded under one compute-units setting.
public protocol LoadedModel: AnyObject {
    /// Generates the seeded inputs predict() uses. Separate from loading so the harness
    /// keeps input synthesis out of every timed region. Throws kind `unsupported` for an
    /// input type the runner cannot generate.
    func prepareInputs(seed: Int) throws
    /// One prediction on the inputs from prepareInputs(seed:).
    func predict() throws
}

public protocol ModelExecutor: AnyObject {
    /// Compiles the model file to a new temporary location (MLModel.compileModel).
    func compile(modelURL: URL) throws -> URL
    /// Loads a compiled model (nothing else: no input synthesis). Throws kind `unsupported`
    /// for a setting the OS lacks.
    func load(compiled: URL, computeUnits: ComputeUnits) throws -> LoadedModel
    /// MLComputePlan's anticipated placement; nil where the OS has no compute plan.
    func computePlan(compiled: URL, computeUnits: ComputeUnits) throws -> ComputePlan?
    var thermalState: ThermalState { get }
    var device: DeviceFacts { get }
    var runnerVersion: String { get }
    /// True for a fake executor: the result says it was not measured on hardware.
    var simulated: Bool { get }
}

/// Whether the app is in the foreground, for the harness. iOS refuses GPU and Neural Engine
/// work in the background and throttles the rest, so a slot during which the app left the
/// foreground measured the device's state, not the model: that setting is `interrupted`.
/// The app implements this from UIApplication's notifications; the harness thread reads it.
public protocol AppActivity: AnyObject, Sendable {
    /// How many times the app has left the foreground since launch; it only grows, so a
    /// short trip to the background between two reads is still seen.
    var departures: Int { get }
    var inForeground: Bool { get }
}

/// Tests, the fixture and Linux: an app that never leaves the foreground.
public final class AlwaysInForeground: AppActivity {
    public init() {}
    public var departures: Int { 0 }
    public var inForeground: Bool { true }
}

/// Time as the harness sees it: a monotonic clock for durations, a wall clock for the
/// result's timestamps, and a sleep for thermal cool-downs — all replaceable in tests.
public protocol HarnessClock: AnyObject {
    /// Monotonic nanoseconds; only differences mean anything.
    func monotonicNanos() -> UInt64
    func wallClock() -> Date
    func sleep(seconds: Double)
}

public final class SystemClock: HarnessClock {
    public init() {}
    // DispatchTime is mach_absolute_time on Darwin: monotonic, not affected by clock changes.
    public func monotonicNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    public func wallClock() -> Date { Date() }
    public func sleep(seconds: Double) { Thread.sleep(forTimeInterval: seconds) }
}

/// ISO 8601 in UTC with milliseconds and "Z", as pydantic parses it.
public func timestamp(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: date)
}
