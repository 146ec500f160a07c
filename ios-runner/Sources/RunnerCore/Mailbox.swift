// The file protocol between the agent and the runner, inside the app's Documents folder:
//   anefarm/inbox/<batch>/<model file>, then manifest.json (pushed last: "the inbox is complete")
//   anefarm/outbox/<batch>/result.json (written atomically), then done ("result.json is complete")
// A batch with a done marker is never measured again, so a relaunch gives the same outcome.
import Foundation

public struct Mailbox: Sendable {
    public let root: URL  // <Documents>/anefarm
    /// Flushes a file or folder to storage (fsync); replaceable so tests can see the order.
    let flush: @Sendable (URL) throws -> Void

    public init(documents: URL) {
        self.init(documents: documents, flush: Mailbox.flushToStorage)
    }

    init(documents: URL, flush: @escaping @Sendable (URL) throws -> Void) {
        root = documents.appendingPathComponent("anefarm", isDirectory: true)
        self.flush = flush
    }

    /// fsync(2) on a file or a folder (a folder's fsync makes a rename or a new entry in it
    /// durable). On Apple platforms F_FULLFSYNC also empties the drive's cache; fsync is the
    /// fallback where the file system refuses it.
    @Sendable static func flushToStorage(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw ValidationError("cannot open \(url.lastPathComponent) to sync it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        #if canImport(Darwin)
        if fcntl(fd, F_FULLFSYNC) == 0 { return }
        #endif
        guard fsync(fd) == 0 else { throw ValidationError("cannot sync \(url.lastPathComponent): \(String(cString: strerror(errno)))") }
    }

    public var inboxRoot: URL { root.appendingPathComponent("inbox", isDirectory: true) }
    public var outboxRoot: URL { root.appendingPathComponent("outbox", isDirectory: true) }
    /// Compiled models live here, outside any batch, so they survive batch clean-up.
    public var compiledRoot: URL { root.appendingPathComponent("compiled", isDirectory: true) }

    public func inbox(_ batch: String) -> URL { inboxRoot.appendingPathComponent(batch, isDirectory: true) }
    public func outbox(_ batch: String) -> URL { outboxRoot.appendingPathComponent(batch, isDirectory: true) }
    public func resultURL(_ batch: String) -> URL { outbox(batch).appendingPathComponent("result.json") }
    public func doneURL(_ batch: String) -> URL { outbox(batch).appendingPathComponent("done") }

    public func isDone(_ batch: String) -> Bool {
        FileManager.default.fileExists(atPath: doneURL(batch).path)
    }

    /// Batches whose manifest has arrived and which have no done marker, oldest name first.
    public func pendingBatches() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: inboxRoot.path)) ?? []
        return names.sorted().filter { name in
            isBatchId(name) && !isDone(name)
                && FileManager.default.fileExists(atPath: inbox(name).appendingPathComponent("manifest.json").path)
        }
    }

    /// Writes result.json through a temporary file and a rename, then the done marker: the
    /// agent polls for done, so it never reads a half-written result. Each step is flushed
    /// before the next (file, then the folder holding the rename), so a crash or power loss
    /// can never leave a done marker on storage with no complete result.json before it.
    public func publish(_ result: RunnerResult) throws {
        let folder = outbox(result.batchId)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let data = try Codec.encoder().encode(result)
        let temporary = folder.appendingPathComponent(".result.json.\(UUID().uuidString).tmp")
        try data.write(to: temporary)
        try flush(temporary)
        // rename(2) replaces an existing result in one step (FileManager.moveItem refuses to).
        guard rename(temporary.path, resultURL(result.batchId).path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw ValidationError("could not write result.json for \(result.batchId): \(reason)")
        }
        try flush(folder)
        try Data().write(to: doneURL(result.batchId))
        try flush(doneURL(result.batchId))
        try flush(folder)
    }

    /// The outcome of one batch: measured once, then read back from the outbox on every
    /// later call. `measure` gets the decoded manifest and the model file in the inbox.
    public func process(
        _ batch: String, measure: (RunnerManifest, URL) -> RunnerResult,
        failure: (_ batch: String, _ error: RunnerError, _ modelSha256: String?) -> RunnerResult
    ) throws -> RunnerResult {
        guard isBatchId(batch) else {
            throw ValidationError("batch name '\(batch)' is not a batch id (letters, digits, '.', '_', '-')")
        }
        if isDone(batch), let data = try? Data(contentsOf: resultURL(batch)), let earlier = try? Codec.decodeResult(data) {
            return earlier
        }
        let result: RunnerResult
        var data = Data()
        do {
            data = try Data(contentsOf: inbox(batch).appendingPathComponent("manifest.json"))
            let manifest = try Codec.decodeManifest(data)
            guard manifest.batchId == batch else {
                throw ValidationError("manifest batch_id \(manifest.batchId) does not match its folder \(batch)")
            }
            let model = inbox(batch).appendingPathComponent(manifest.model.filename)
            // A packed manifest's models all sit in the same inbox (the harness finds them there).
            for entry in manifest.allModels {
                guard FileManager.default.fileExists(atPath: inbox(batch).appendingPathComponent(entry.filename).path) else {
                    throw ValidationError("model file \(entry.filename) is missing from the inbox; push it before manifest.json")
                }
            }
            result = measure(manifest, model)
        } catch {
            // A manifest we cannot read still gets an answer, so the agent never waits for nothing.
            let message = "bad manifest.json for batch \(batch): \(describe(error))"
            result = failure(batch, RunnerError(kind: .manifest, message: message), looseSha256(data))
        }
        try publish(result)
        return result
    }

    /// Removes inbox and outbox folders (and compiled models) not modified for `maxAge`
    /// seconds: batches whose agent never came back for them.
    @discardableResult
    public func cleanStale(maxAge: TimeInterval, now: Date = Date()) -> [URL] {
        var removed: [URL] = []
        for parent in [inboxRoot, outboxRoot, compiledRoot] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
            for name in names {
                let url = parent.appendingPathComponent(name)
                let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
                guard let modified = attributes?[.modificationDate] as? Date,
                      now.timeIntervalSince(modified) > maxAge else { continue }
                if (try? FileManager.default.removeItem(at: url)) != nil { removed.append(url) }
            }
        }
        return removed
    }
}

private let batchIdPattern = try! NSRegularExpression(pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

public func isBatchId(_ text: String) -> Bool {
    batchIdPattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
}

/// model.sha256 from a manifest that failed validation, when it is there and well-formed.
private func looseSha256(_ data: Data) -> String? {
    let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    let sha = (object?["model"] as? [String: Any])?["sha256"] as? String
    return sha.flatMap { $0.count == 64 && $0.allSatisfy({ "0123456789abcdef".contains($0) }) ? $0 : nil }
}

/// One line for an error, whatever its type (DecodingError's default text is long).
func describe(_ error: Error) -> String {
    switch error {
    case let error as ValidationError: return error.message
    case let error as ExecutorError: return error.message
    case DecodingError.keyNotFound(let key, _): return "missing field \(key.stringValue)"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
         DecodingError.dataCorrupted(let context):
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return "\(path.isEmpty ? "" : path + ": ")\(context.debugDescription)"
    default: return String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
}
