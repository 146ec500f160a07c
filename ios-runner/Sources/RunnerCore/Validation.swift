// Strict decoding: the same rules orchestrator/protocol/__init__.py enforces — unknown fields
// refused, schema version checked, timings finite and non-negative, statistics in order,
// a setting without samples must carry an error, no setting twice.
import Foundation

public struct ValidationError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Known keys per JSON object, by path pattern ("settings[]" = each item).
private let resultKeys: [String: Set<String>] = [
    "": ["schema_version", "batch_id", "runner_version", "simulated", "device", "model_sha256",
         "compile_ms", "compile_cached", "thermal_before", "thermal_after", "cooldowns", "settings",
         "compute_plan", "partial", "error", "started_at", "finished_at", "models"],
    "models[]": ["model_sha256", "compile_ms", "compile_cached", "settings", "compute_plan", "partial", "error",
                 "started_at", "finished_at"],
    "models[].settings[]": ["compute_units", "cold_load_ms", "cold_load_provenance", "warm_load_ms",
                            "first_prediction_ms", "latencies_ms", "stats", "error"],
    "models[].settings[].stats": ["count", "min", "max", "mean", "std", "p50", "p90", "p99"],
    "models[].settings[].error": ["kind", "message"],
    "models[].error": ["kind", "message"],
    "models[].compute_plan": ["compute_units", "ops"],
    "models[].compute_plan.ops[]": ["index", "name", "op_type", "preferred", "supported", "cost"],
    "device": ["product_type", "os_version", "os_build"],
    "settings[]": ["compute_units", "cold_load_ms", "cold_load_provenance", "warm_load_ms", "first_prediction_ms",
                   "latencies_ms", "stats", "error"],
    "settings[].stats": ["count", "min", "max", "mean", "std", "p50", "p90", "p99"],
    "settings[].error": ["kind", "message"],
    "error": ["kind", "message"],
    "compute_plan": ["compute_units", "ops"],
    "compute_plan.ops[]": ["index", "name", "op_type", "preferred", "supported", "cost"],
]

private let manifestKeys: [String: Set<String>] = [
    "": ["schema_version", "batch_id", "model", "compute_units", "iterations", "warmup", "rounds",
         "time_budget_s", "input_seed", "compute_plan", "cold_load", "models"],
    "model": ["filename", "sha256", "format"],
    "models[]": ["filename", "sha256", "format"],
]

private func checkKeys(_ value: Any, path: String, known: [String: Set<String>]) throws {
    if let object = value as? [String: Any] {
        if let allowed = known[path] {
            for key in object.keys where !allowed.contains(key) {
                throw ValidationError("unknown field '\(key)' in \(path.isEmpty ? "message" : path)")
            }
        }
        for (key, child) in object {
            try checkKeys(child, path: path.isEmpty ? key : "\(path).\(key)", known: known)
        }
    } else if let array = value as? [Any] {
        for item in array { try checkKeys(item, path: "\(path)[]", known: known) }
    }
}

private let sha256Pattern = try! NSRegularExpression(pattern: "^[0-9a-f]{64}$")

private func isSha256(_ text: String) -> Bool {
    sha256Pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
}

private func requireTiming(_ value: Double?, _ name: String) throws {
    guard let value else { return }
    guard value.isFinite, value >= 0 else { throw ValidationError("\(name) must be finite and >= 0") }
}

public enum Codec {
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return encoder
    }

    private static func schemaVersion(of json: Any) throws {
        guard let version = (json as? [String: Any])?["schema_version"] as? Int else {
            throw ValidationError("missing schema_version")
        }
        guard version == RunnerCore.schemaVersion || version == RunnerCore.packedSchemaVersion else {
            throw ValidationError("unsupported schema_version \(version) (this runner speaks \(RunnerCore.schemaVersion) and \(RunnerCore.packedSchemaVersion))")
        }
        // Version 2 exactly when the message carries several models.
        let packed = (json as? [String: Any])?["models"].map { !($0 is NSNull) } ?? false
        guard packed == (version == RunnerCore.packedSchemaVersion) else {
            throw ValidationError("schema_version \(version) with\(packed ? "" : "out") models (models need schema_version \(RunnerCore.packedSchemaVersion), and only they)")
        }
    }

    public static func decodeManifest(_ data: Data) throws -> RunnerManifest {
        try decodeStrictly(RunnerManifest.self, from: data, known: manifestKeys)
    }

    public static func decodeResult(_ data: Data) throws -> RunnerResult {
        try decodeStrictly(RunnerResult.self, from: data, known: resultKeys)
    }

    /// Version and keys checked on the raw JSON (decoding alone would ignore unknown keys),
    /// then the message's own rules.
    private static func decodeStrictly<Message: Validated>(_ type: Message.Type, from data: Data,
                                                           known: [String: Set<String>]) throws -> Message {
        let json = try JSONSerialization.jsonObject(with: data)
        try schemaVersion(of: json)
        try checkKeys(json, path: "", known: known)
        let message = try decoder().decode(type, from: data)
        try message.validate()
        return message
    }
}

/// A message with rules of its own beyond its types (checked after decoding).
protocol Validated: Decodable {
    func validate() throws
}

extension RunnerManifest: Validated {}
extension RunnerResult: Validated {}

extension RunnerManifest {
    public func validate() throws {
        guard !computeUnits.isEmpty, computeUnits.count <= 4 else { throw ValidationError("compute_units: 1 to 4 settings") }
        guard Set(computeUnits).count == computeUnits.count else { throw ValidationError("compute_units lists a setting twice") }
        guard (1...10_000).contains(iterations) else { throw ValidationError("iterations out of range") }
        guard (0...1_000).contains(warmup) else { throw ValidationError("warmup out of range") }
        guard (1...100).contains(rounds) else { throw ValidationError("rounds out of range") }
        guard timeBudgetS.isFinite, timeBudgetS > 0 else { throw ValidationError("time_budget_s must be > 0") }
        guard isSha256(model.sha256) else { throw ValidationError("model.sha256 is not a sha256") }
        if let models {
            guard (1...64).contains(models.count) else { throw ValidationError("models: 1 to 64 models") }
            guard models.first == model else { throw ValidationError("model must be the first of models") }
            guard Set(models.map(\.sha256)).count == models.count else { throw ValidationError("a model appears twice in models") }
            for entry in models where !isSha256(entry.sha256) { throw ValidationError("models[].sha256 is not a sha256") }
        }
    }
}

extension LatencyStats {
    public func validate() throws {
        for (name, value) in [("min", min), ("max", max), ("mean", mean), ("std", std), ("p50", p50), ("p90", p90), ("p99", p99)] {
            try requireTiming(value, "stats.\(name)")
        }
        let chain = [min, p50, p90, p99, max]
        for (a, b) in zip(chain, chain.dropFirst()) where a > b + 1e-9 {
            throw ValidationError("statistics out of order (need min ≤ p50 ≤ p90 ≤ p99 ≤ max)")
        }
        guard count >= 1 else { throw ValidationError("stats.count must be >= 1") }
    }
}

extension SettingResult {
    public func validate() throws {
        for (name, value) in [("cold_load_ms", coldLoadMs), ("warm_load_ms", warmLoadMs), ("first_prediction_ms", firstPredictionMs)] {
            try requireTiming(value, name)
        }
        // A cold-load figure means nothing without what it followed (protocol.SettingResult).
        guard (coldLoadMs == nil) == (coldLoadProvenance == nil) else {
            throw ValidationError("\(computeUnits.rawValue): cold_load_ms and its provenance go together")
        }
        for sample in latenciesMs { try requireTiming(sample, "latencies_ms") }
        try stats?.validate()
        if error == nil {
            guard let stats, !latenciesMs.isEmpty else {
                throw ValidationError("\(computeUnits.rawValue): no latency samples and no error")
            }
            guard stats.count == latenciesMs.count else {
                throw ValidationError("\(computeUnits.rawValue): stats.count != number of samples")
            }
        }
    }
}

extension ModelResult {
    public func validate() throws {
        guard isSha256(modelSha256) else { throw ValidationError("models[].model_sha256 is not a sha256") }
        try requireTiming(compileMs, "compile_ms")
        for setting in settings { try setting.validate() }
        let units = settings.map(\.computeUnits)
        guard Set(units).count == units.count else { throw ValidationError("a compute-units setting appears twice") }
        guard error != nil || !settings.isEmpty else { throw ValidationError("a model result with no settings must carry an error") }
    }
}

extension RunnerResult {
    public func validate() throws {
        guard isSha256(modelSha256) else { throw ValidationError("model_sha256 is not a sha256") }
        if let models {
            guard settings.isEmpty, computePlan == nil else { throw ValidationError("a packed result keeps settings and plans in models") }
            guard error != nil || !models.isEmpty else { throw ValidationError("a packed result with no models must carry an error") }
            guard Set(models.map(\.modelSha256)).count == models.count else { throw ValidationError("a model appears twice in models") }
            for model in models { try model.validate() }
            return
        }
        try requireTiming(compileMs, "compile_ms")
        for setting in settings { try setting.validate() }
        let units = settings.map(\.computeUnits)
        guard Set(units).count == units.count else { throw ValidationError("a compute-units setting appears twice") }
        guard error != nil || !settings.isEmpty else { throw ValidationError("a result with no settings must carry an error") }
        for op in computePlan?.ops ?? [] {
            if let cost = op.cost, !(cost.isFinite && cost >= 0 && cost <= 1) {
                throw ValidationError("compute plan cost outside [0, 1]")
            }
        }
    }
}
