// The measurement harness: compile once (cached), then per setting cold load, warm load
// and first prediction, then timed predictions interleaved across settings in rounds (each
// slot loads its setting's model, warms it up, measures, releases it), with thermal
// cool-downs between rounds and a total time budget.
import Foundation

public struct HarnessOptions: Sendable {
    /// How long to sleep between thermal checks while the device is serious or critical.
    public var cooldownStepS: Double = 15
    /// The longest single cool-down; after it the harness measures anyway (and says so).
    public var maxCooldownS: Double = 300
    public init() {}
}

/// Compiled models keyed by model fingerprint and OS build, at a path that never changes:
/// Core ML keys its own cache by path, so only a stable path makes a warm load warm.
public struct CompileCache: Sendable {
    public let root: URL
    public init(root: URL) { self.root = root }

    public func location(sha256: String, osBuild: String, modelFilename: String) -> URL {
        let stem = (modelFilename as NSString).deletingPathExtension
        return root.appendingPathComponent("\(sha256)-\(osBuild)", isDirectory: true)
            .appendingPathComponent("\(stem).mlmodelc", isDirectory: true)
    }

    /// Marks an entry as used now. Stale-entry clean-up (Mailbox.cleanStale) goes by
    /// modification time, which reading a model never changes: without this, a model used
    /// every hour was still removed, and recompiled, a day after it was compiled.
    public func markUsed(_ target: URL, now: Date = Date()) {
        try? FileManager.default.setAttributes([.modificationDate: now], ofItemAtPath: target.deletingLastPathComponent().path)
    }

    /// Moves a freshly compiled model into place; an interrupted move leaves no half entry.
    public func store(_ compiled: URL, at target: URL) throws {
        let folder = target.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let staging = folder.appendingPathComponent(".staging-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: compiled, to: staging)
        try? FileManager.default.removeItem(at: target)
        try FileManager.default.moveItem(at: staging, to: target)
        try? FileManager.default.removeItem(at: compiled)
    }
}

/// One setting's state while the batch runs. No model is kept here: a model is loaded for
/// a slot and released after it, so only one is ever in memory (big models × settings would
/// not fit) and no setting measures while another's model holds memory.
private final class Setting {
    let units: ComputeUnits
    var ready = false  // loaded and predicted once in prepare()
    var result: SettingResult
    init(_ units: ComputeUnits) {
        self.units = units
        result = SettingResult(computeUnits: units, latenciesMs: [])
    }
    var active: Bool { ready && result.error == nil }
    func fail(_ error: Error, stage: RunnerErrorKind) {
        let kind = (error as? ExecutorError)?.kind ?? stage
        result.error = RunnerError(kind: kind, message: "\(units.rawValue): \(describe(error))")
    }
}

public final class Harness {
    let executor: ModelExecutor
    let clock: HarnessClock
    let cache: CompileCache
    let options: HarnessOptions

    public init(executor: ModelExecutor, clock: HarnessClock = SystemClock(), cache: CompileCache,
                options: HarnessOptions = HarnessOptions()) {
        self.executor = executor
        self.clock = clock
        self.cache = cache
        self.options = options
    }

    private func millis(since start: UInt64) -> Double {
        Double(clock.monotonicNanos() &- start) / 1e6
    }

    /// Timed predictions per round: the iterations spread as evenly as possible.
    static func quota(iterations: Int, rounds: Int, round: Int) -> Int {
        iterations / rounds + (round < iterations % rounds ? 1 : 0)
    }

    /// Setting order in a round: rotated by one each round, so no setting always runs
    /// first (coolest) or last (hottest).
    static func order<T>(_ items: [T], round: Int) -> [T] {
        guard !items.isEmpty else { return items }
        let shift = round % items.count
        return Array(items[shift...] + items[..<shift])
    }

    /// The result of a batch that failed before any measurement (bad manifest, compile error).
    public func failure(batch: String, error: RunnerError, modelSha256: String?, startedAt: Date? = nil) -> RunnerResult {
        let now = clock.wallClock()
        let thermal = executor.thermalState
        return RunnerResult(
            schemaVersion: schemaVersion, batchId: batch, runnerVersion: executor.runnerVersion,
            simulated: executor.simulated, device: executor.device,
            modelSha256: modelSha256 ?? String(repeating: "0", count: 64), compileMs: nil, compileCached: false,
            thermalBefore: thermal, thermalAfter: thermal, cooldowns: 0, settings: [], computePlan: nil,
            partial: false, error: error, startedAt: timestamp(startedAt ?? now), finishedAt: timestamp(now))
    }

    public func run(_ manifest: RunnerManifest, modelURL: URL) -> RunnerResult {
        let startedAt = clock.wallClock()
        let start = clock.monotonicNanos()
        let deadline = start &+ UInt64(manifest.timeBudgetS * 1e9)
        func overBudget() -> Bool { clock.monotonicNanos() >= deadline }
        let thermalBefore = executor.thermalState

        // Compile once for every setting.
        let target = cache.location(sha256: manifest.model.sha256, osBuild: executor.device.osBuild,
                                    modelFilename: manifest.model.filename)
        let cached = FileManager.default.fileExists(atPath: target.path)
        var compileMs: Double?
        if !cached {
            let t0 = clock.monotonicNanos()
            do {
                let compiled = try executor.compile(modelURL: modelURL)
                compileMs = millis(since: t0)
                try cache.store(compiled, at: target)
            } catch {
                let kind = (error as? ExecutorError)?.kind ?? .compile
                return failure(batch: manifest.batchId, error: RunnerError(kind: kind, message: "compile: \(describe(error))"),
                               modelSha256: manifest.model.sha256, startedAt: startedAt)
            }
        }

        cache.markUsed(target)

        var partial = false
        var cooldowns = 0
        let settings = manifest.computeUnits.map(Setting.init)
        for setting in settings {
            if overBudget() { partial = true; break }
            prepare(setting, compiled: target, seed: manifest.inputSeed)
        }

        measuring: for round in 0..<manifest.rounds {
            if coolDownIfHot(until: deadline) { cooldowns += 1 }
            for setting in Harness.order(settings, round: round) where setting.active {
                let quota = Harness.quota(iterations: manifest.iterations, rounds: manifest.rounds, round: round)
                guard quota > 0 else { continue }
                if overBudget() { partial = true; break measuring }
                // The slot's own model, loaded and given its inputs outside any timing.
                guard let model = load(setting, compiled: target, seed: manifest.inputSeed) else { continue }
                // Warm-up at the start of every slot: after another setting's slot or a
                // cool-down sleep, caches and clocks are cold again.
                for _ in 0..<manifest.warmup where setting.active {
                    if overBudget() { partial = true; break measuring }
                    do { try model.predict() } catch { setting.fail(error, stage: .predict) }
                }
                for _ in 0..<quota where setting.active {
                    if overBudget() { partial = true; break measuring }
                    let t0 = clock.monotonicNanos()
                    do {
                        try model.predict()
                        setting.result.latenciesMs.append(millis(since: t0))
                    } catch {
                        setting.fail(error, stage: .predict)
                    }
                }
            }  // the slot's model is released here, before the next setting loads its own
        }

        for setting in settings {
            setting.result.stats = Statistics.summarize(setting.result.latenciesMs)
            if setting.result.error == nil && setting.result.latenciesMs.isEmpty {
                setting.result.error = RunnerError(
                    kind: .timeout, message: "\(setting.units.rawValue): time budget of \(manifest.timeBudgetS) s ran out before any sample")
            }
        }
        return RunnerResult(
            schemaVersion: schemaVersion, batchId: manifest.batchId, runnerVersion: executor.runnerVersion,
            simulated: executor.simulated, device: executor.device, modelSha256: manifest.model.sha256,
            compileMs: compileMs, compileCached: cached, thermalBefore: thermalBefore,
            thermalAfter: executor.thermalState, cooldowns: cooldowns, settings: settings.map(\.result),
            computePlan: manifest.computePlan ? plan(compiled: target, units: manifest.computeUnits) : nil,
            partial: partial, error: nil, startedAt: timestamp(startedAt), finishedAt: timestamp(clock.wallClock()))
    }

    /// Cold load (first load of the compiled model in this process), warm load, first
    /// prediction. Input synthesis happens between them, outside every timed region; each
    /// model is released before the next load, so one model is in memory at a time.
    private func prepare(_ setting: Setting, compiled: URL, seed: Int) {
        var stage = RunnerErrorKind.load
        do {
            var t0 = clock.monotonicNanos()
            _ = try executor.load(compiled: compiled, computeUnits: setting.units)
            setting.result.coldLoadMs = millis(since: t0)
            t0 = clock.monotonicNanos()
            let model = try executor.load(compiled: compiled, computeUnits: setting.units)
            setting.result.warmLoadMs = millis(since: t0)
            try model.prepareInputs(seed: seed)
            stage = .predict
            t0 = clock.monotonicNanos()
            try model.predict()
            setting.result.firstPredictionMs = millis(since: t0)
            setting.ready = true
        } catch {
            setting.fail(error, stage: stage)
        }
    }

    /// A slot's model with its inputs (untimed), or nil after recording why not.
    private func load(_ setting: Setting, compiled: URL, seed: Int) -> LoadedModel? {
        do {
            let model = try executor.load(compiled: compiled, computeUnits: setting.units)
            try model.prepareInputs(seed: seed)
            return model
        } catch {
            setting.fail(error, stage: .load)
            return nil
        }
    }

    /// Waits while the device is serious or critical, up to maxCooldownS or the deadline.
    /// Returns whether it waited at all.
    private func coolDownIfHot(until deadline: UInt64) -> Bool {
        guard executor.thermalState.isHot else { return false }
        let start = clock.monotonicNanos()
        while executor.thermalState.isHot, Double(clock.monotonicNanos() &- start) / 1e9 < options.maxCooldownS,
              clock.monotonicNanos() < deadline {
            clock.sleep(seconds: options.cooldownStepS)
        }
        return true
    }

    /// The compute plan is evidence, not a measurement: if it fails the timings still stand.
    private func plan(compiled: URL, units: [ComputeUnits]) -> ComputePlan? {
        let chosen = units.contains(.all) ? ComputeUnits.all : units[0]
        return try? executor.computePlan(compiled: compiled, computeUnits: chosen)
    }
}

extension ThermalState {
    public var isHot: Bool { self == .serious || self == .critical }
}
