// The measurement harness: compile once (cached), then per setting cold load (and what it
// followed), warm load and first prediction, then timed predictions interleaved across
// settings in rounds (each slot loads its setting's model, warms it up, measures, releases
// it), with thermal cool-downs between rounds, a total time budget, and every setting
// measured while the app left the foreground recorded as interrupted.
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
final class Setting {
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
    func interrupt(during what: String, cause: Error? = nil) {
        let failed = cause.map { " (\(describe($0)))" } ?? ""
        result.error = RunnerError(kind: .interrupted, message:
            "\(units.rawValue): the app left the foreground during \(what)\(failed); the \(result.latenciesMs.count) samples before it are kept")
    }
}

public final class Harness {
    let executor: ModelExecutor
    let clock: HarnessClock
    let cache: CompileCache
    let options: HarnessOptions
    let activity: AppActivity
    /// Compiled models this harness has loaded. The app keeps one harness per process, so a
    /// later load of one of these is a warm-cache load, whatever the setting.
    var loadedInProcess: Set<String> = []

    public init(executor: ModelExecutor, clock: HarnessClock = SystemClock(), cache: CompileCache,
                options: HarnessOptions = HarnessOptions(), activity: AppActivity = AlwaysInForeground()) {
        self.executor = executor
        self.clock = clock
        self.cache = cache
        self.options = options
        self.activity = activity
    }

    /// True, after recording the setting as interrupted, when the app left the foreground
    /// since `mark` or is out of it now. A failure while out of it is an interruption too.
    func interrupted(_ setting: Setting, since mark: Int, during what: String, cause: Error? = nil) -> Bool {
        guard activity.departures != mark || !activity.inForeground else { return false }
        setting.interrupt(during: what, cause: cause)
        return true
    }

    /// A failed step: interrupted if the app was away, else the step's own kind.
    func fail(_ setting: Setting, _ error: Error, stage: RunnerErrorKind, since mark: Int, during what: String) {
        if !interrupted(setting, since: mark, during: what, cause: error) { setting.fail(error, stage: stage) }
    }

    func millis(since start: UInt64) -> Double {
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

    /// Measures a manifest; a packed one (several models) is measured by `runPacked`, its
    /// models found next to `modelURL` (the first model's file) in the inbox.
    public func run(_ manifest: RunnerManifest, modelURL: URL) -> RunnerResult {
        if let models = manifest.models {
            let folder = modelURL.deletingLastPathComponent()
            return runPacked(manifest, modelURLs: models.map { folder.appendingPathComponent($0.filename) })
        }
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
            let mark = activity.departures
            let t0 = clock.monotonicNanos()
            do {
                let compiled = try executor.compile(modelURL: modelURL)
                compileMs = millis(since: t0)
                try cache.store(compiled, at: target)
            } catch {
                let away = activity.departures != mark || !activity.inForeground
                let kind = away ? .interrupted : (error as? ExecutorError)?.kind ?? .compile
                return failure(batch: manifest.batchId, error: RunnerError(kind: kind, message: "compile: \(describe(error))"),
                               modelSha256: manifest.model.sha256, startedAt: startedAt)
            }
        }

        cache.markUsed(target)

        var partial = false
        var cooldowns = 0
        let settings = manifest.computeUnits.map(Setting.init)
        // The stable copy compiled just now: the first load of it follows a fresh compile.
        var justCompiled = !cached
        for setting in settings {
            if overBudget() { partial = true; break }
            prepare(setting, manifest: manifest, modelURL: modelURL, target: target, justCompiled: &justCompiled)
        }

        measuring: for round in 0..<manifest.rounds {
            if coolDownIfHot(until: deadline) { cooldowns += 1 }
            for setting in Harness.order(settings, round: round) where setting.active {
                let quota = Harness.quota(iterations: manifest.iterations, rounds: manifest.rounds, round: round)
                guard quota > 0 else { continue }
                if overBudget() { partial = true; break measuring }
                if !slot(setting, compiled: target, quota: quota, round: round, manifest: manifest,
                         overBudget: overBudget) { partial = true; break measuring }
            }
        }

        for setting in settings {
            setting.result.stats = Statistics.summarize(setting.result.latenciesMs)
            if setting.result.error == nil && setting.result.latenciesMs.isEmpty {
                setting.result.error = RunnerError(
                    kind: .timeout, message: "\(setting.units.rawValue): time budget of \(manifest.timeBudgetS) s ran out before any sample")
            }
        }
        // Nothing measured at all because the app was away: the batch itself is interrupted
        // (the coordinator retries it); the settings still say where it happened.
        var error: RunnerError?
        if settings.allSatisfy({ $0.result.latenciesMs.isEmpty }), settings.contains(where: { $0.result.error?.kind == .interrupted }) {
            error = RunnerError(kind: .interrupted, message: "the app left the foreground before any setting was measured")
        }
        return RunnerResult(
            schemaVersion: schemaVersion, batchId: manifest.batchId, runnerVersion: executor.runnerVersion,
            simulated: executor.simulated, device: executor.device, modelSha256: manifest.model.sha256,
            compileMs: compileMs, compileCached: cached, thermalBefore: thermalBefore,
            thermalAfter: executor.thermalState, cooldowns: cooldowns, settings: settings.map(\.result),
            computePlan: manifest.computePlan ? plan(compiled: target, units: manifest.computeUnits) : nil,
            partial: partial, error: error, startedAt: timestamp(startedAt), finishedAt: timestamp(clock.wallClock()))
    }

    /// Cold load, warm load, first prediction, and what the cold load followed. With
    /// `cold_load: process` the cold load is the first load of the cached compiled model in
    /// this process (`fresh_compile` right after this run compiled it, `fresh_process` when
    /// it came from an earlier launch, `warm_cache` once this process has loaded it); with
    /// `fresh_compile` the model is compiled to a unique path first (untimed) and that copy
    /// is deleted afterwards, so every setting's cold load is truly cold. Input synthesis
    /// happens between the timed steps; each model is released before the next load.
    func prepare(_ setting: Setting, manifest: RunnerManifest, modelURL: URL, target: URL, justCompiled: inout Bool) {
        let mark = activity.departures, what = "its cold load, warm load or first prediction"
        var stage = RunnerErrorKind.load
        var fresh: URL?
        defer { if let fresh { try? FileManager.default.removeItem(at: fresh) } }
        do {
            if interrupted(setting, since: mark, during: what) { return }
            let source: URL, provenance: ColdLoadProvenance
            if manifest.coldLoad == .freshCompile {
                stage = .compile
                fresh = try executor.compile(modelURL: modelURL)
                stage = .load
                (source, provenance) = (fresh ?? target, .freshCompile)
            } else {
                let seen = loadedInProcess.contains(target.path)
                (source, provenance) = (target, justCompiled ? .freshCompile : seen ? .warmCache : .freshProcess)
                justCompiled = false
                loadedInProcess.insert(target.path)
            }
            var t0 = clock.monotonicNanos()
            _ = try executor.load(compiled: source, computeUnits: setting.units)
            setting.result.coldLoadMs = millis(since: t0)
            setting.result.coldLoadProvenance = provenance
            t0 = clock.monotonicNanos()
            let model = try executor.load(compiled: source, computeUnits: setting.units)
            setting.result.warmLoadMs = millis(since: t0)
            try model.prepareInputs(seed: manifest.inputSeed)
            stage = .predict
            t0 = clock.monotonicNanos()
            try model.predict()
            setting.result.firstPredictionMs = millis(since: t0)
            setting.ready = !interrupted(setting, since: mark, during: what)
        } catch {
            fail(setting, error, stage: stage, since: mark, during: what)
        }
    }

    /// One slot of a setting (of the one model, or of one model of a packed launch): load
    /// (untimed), warm-up, `quota` timed predictions. False when the budget ran out in it.
    func slot(_ setting: Setting, compiled: URL, quota: Int, round: Int, manifest: RunnerManifest,
              overBudget: () -> Bool) -> Bool {
        // A slot measures only in the foreground, start to end (`mark`).
        let mark = activity.departures, slot = "its slot of round \(round + 1)"
        if interrupted(setting, since: mark, during: slot) { return true }
        // The slot's own model, loaded and given its inputs outside any timing; released when
        // the slot ends, before the next setting loads its own.
        guard let model = load(setting, compiled: compiled, seed: manifest.inputSeed, since: mark, during: slot) else { return true }
        // Warm-up at the start of every slot: after another setting's slot or a
        // cool-down sleep, caches and clocks are cold again.
        for _ in 0..<manifest.warmup where setting.active {
            if overBudget() { return false }
            do {
                try model.predict()
                _ = interrupted(setting, since: mark, during: slot)
            } catch { fail(setting, error, stage: .predict, since: mark, during: slot) }
        }
        for _ in 0..<quota where setting.active {
            if overBudget() { return false }
            let t0 = clock.monotonicNanos()
            do {
                try model.predict()
                let sample = millis(since: t0)
                // Checked after each prediction (outside the timing): a departure
                // during this one drops its sample and ends the setting.
                if !interrupted(setting, since: mark, during: slot) { setting.result.latenciesMs.append(sample) }
            } catch {
                fail(setting, error, stage: .predict, since: mark, during: slot)
            }
        }
        return true
    }

    /// A slot's model with its inputs (untimed), or nil after recording why not.
    func load(_ setting: Setting, compiled: URL, seed: Int, since mark: Int, during what: String) -> LoadedModel? {
        do {
            let model = try executor.load(compiled: compiled, computeUnits: setting.units)
            try model.prepareInputs(seed: seed)
            return model
        } catch {
            fail(setting, error, stage: .load, since: mark, during: what)
            return nil
        }
    }

    /// Waits while the device is serious or critical, up to maxCooldownS or the deadline.
    /// Returns whether it waited at all.
    func coolDownIfHot(until deadline: UInt64) -> Bool {
        guard executor.thermalState.isHot else { return false }
        let start = clock.monotonicNanos()
        while executor.thermalState.isHot, Double(clock.monotonicNanos() &- start) / 1e9 < options.maxCooldownS,
              clock.monotonicNanos() < deadline {
            clock.sleep(seconds: options.cooldownStepS)
        }
        return true
    }

    /// The compute plan is evidence, not a measurement: if it fails the timings still stand.
    func plan(compiled: URL, units: [ComputeUnits]) -> ComputePlan? {
        let chosen = units.contains(.all) ? ComputeUnits.all : units[0]
        return try? executor.computePlan(compiled: compiled, computeUnits: chosen)
    }
}

extension ThermalState {
    public var isHot: Bool { self == .serious || self == .critical }
}
