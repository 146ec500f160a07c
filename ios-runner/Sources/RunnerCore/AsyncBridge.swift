// The harness is synchronous on purpose: it runs on a thread of its own (RunnerApp starts a
// Thread, not a Task) so its clock reads and blocking Core ML calls never occupy one of
// Swift concurrency's few cooperative threads. A few Core ML APIs exist only as async
// (MLComputePlan.load, the non-deprecated MLModel.compileModel); this runs one of those to
// completion from that thread.
import Foundation

enum AsyncBridge {
    /// Runs `operation` in a detached task and blocks the calling thread until it finishes
    /// or `timeout` seconds pass. Only Sendable values cross: the operation must turn any
    /// non-Sendable Core ML object (MLComputePlan, MLModel) into plain values itself.
    /// Refuses to run inside a Swift concurrency task, where blocking would hold a
    /// cooperative thread (and can deadlock the pool): that is a programming error, reported
    /// as kind `internal` rather than a hang.
    static func wait<T: Sendable>(timeout: TimeInterval, _ what: String,
                                  _ operation: @escaping @Sendable () async throws -> T) throws -> T {
        if withUnsafeCurrentTask(body: { $0 != nil }) {
            throw ExecutorError(.internal, "\(what): called from a Swift concurrency task; the harness must run on its own thread")
        }
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let task = Task.detached {
            do { box.set(.success(try await operation())) } catch { box.set(.failure(error)) }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else {
            task.cancel()
            throw ExecutorError(.timeout, "\(what): no answer within \(Int(timeout)) s")
        }
        return try box.get()
    }
}

/// The task's outcome, handed to the waiting thread under a lock.
private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, Error>?
    func set(_ value: Result<T, Error>) { lock.lock(); result = value; lock.unlock() }
    func get() throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard let result else { throw ExecutorError(.internal, "async result missing") }
        return try result.get()
    }
}
