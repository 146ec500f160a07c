// Packed probes (manifest schema version 2): several models measured in one launch, so the
// launch (≈ 1.5 s of DVT before anything runs) is paid once instead of once per probe.
// Each model is compiled (or found in the cache) and prepared on its own — cold load, warm
// load, first prediction — then, round by round, every model's slots run in turn, models
// rotated each round as settings are, each slot loading its own model, warming it up and
// measuring it: no probe's samples depend on the model measured before it, and thermal
// drift spreads over all of them. A model that fails (compile, load) is that model's
// failure; the others still run. One time budget for the whole launch.
import Foundation

/// One model's state during a packed launch.
final class PackedEntry {
    let entry: ManifestModel
    let url: URL
    var target: URL
    var cached = false
    var compileMs: Double?
    var error: RunnerError?
    var settings: [Setting] = []
    var partial = false
    var startedAt: Date
    var finishedAt: Date

    init(entry: ManifestModel, url: URL, target: URL, at now: Date) {
        self.entry = entry
        self.url = url
        self.target = target
        startedAt = now
        finishedAt = now
    }
}

extension Harness {
    /// Measures every model of a packed manifest in this launch (`modelURLs` in its order).
    public func runPacked(_ manifest: RunnerManifest, modelURLs: [URL]) -> RunnerResult {
        let startedAt = clock.wallClock()
        let deadline = clock.monotonicNanos() &+ UInt64(manifest.timeBudgetS * 1e9)
        func overBudget() -> Bool { clock.monotonicNanos() >= deadline }
        let thermalBefore = executor.thermalState
        let osBuild = executor.device.osBuild
        let models = zip(manifest.allModels, modelURLs).map { entry, url in
            PackedEntry(entry: entry, url: url,
                        target: cache.location(sha256: entry.sha256, osBuild: osBuild, modelFilename: entry.filename),
                        at: startedAt)
        }

        // Compile and prepare each model in turn: its own cold load and first prediction.
        for model in models {
            model.startedAt = clock.wallClock()
            defer { model.finishedAt = clock.wallClock() }
            if overBudget() {
                model.partial = true
                model.error = RunnerError(kind: .timeout, message: "the launch's time budget of \(manifest.timeBudgetS) s ran out before this model")
                continue
            }
            model.cached = FileManager.default.fileExists(atPath: model.target.path)
            if !model.cached {
                let mark = activity.departures
                let t0 = clock.monotonicNanos()
                do {
                    let compiled = try executor.compile(modelURL: model.url)
                    model.compileMs = millis(since: t0)
                    try cache.store(compiled, at: model.target)
                } catch {
                    let away = activity.departures != mark || !activity.inForeground
                    let kind = away ? .interrupted : (error as? ExecutorError)?.kind ?? .compile
                    model.error = RunnerError(kind: kind, message: "compile: \(describe(error))")
                    continue
                }
            }
            cache.markUsed(model.target)
            model.settings = manifest.computeUnits.map(Setting.init)
            var justCompiled = !model.cached
            for setting in model.settings {
                if overBudget() { model.partial = true; break }
                prepare(setting, manifest: manifest, modelURL: model.url, target: model.target, justCompiled: &justCompiled)
            }
        }

        var cooldowns = 0
        measuring: for round in 0..<manifest.rounds {
            if coolDownIfHot(until: deadline) { cooldowns += 1 }
            for model in Harness.order(models, round: round) where model.error == nil {
                for setting in Harness.order(model.settings, round: round) where setting.active {
                    let quota = Harness.quota(iterations: manifest.iterations, rounds: manifest.rounds, round: round)
                    guard quota > 0 else { continue }
                    if overBudget() {
                        for model in models where model.error == nil { model.partial = true }
                        break measuring
                    }
                    let ended = slot(setting, compiled: model.target, quota: quota, round: round, manifest: manifest,
                                     overBudget: overBudget)
                    model.finishedAt = clock.wallClock()
                    if !ended {
                        for model in models where model.error == nil { model.partial = true }
                        break measuring
                    }
                }
            }
        }

        let results = models.map { model -> ModelResult in
            for setting in model.settings {
                setting.result.stats = Statistics.summarize(setting.result.latenciesMs)
                if setting.result.error == nil && setting.result.latenciesMs.isEmpty {
                    setting.result.error = RunnerError(
                        kind: .timeout, message: "\(setting.units.rawValue): time budget of \(manifest.timeBudgetS) s ran out before any sample")
                }
            }
            var error = model.error
            if error == nil, model.settings.allSatisfy({ $0.result.latenciesMs.isEmpty }),
               model.settings.contains(where: { $0.result.error?.kind == .interrupted }) {
                error = RunnerError(kind: .interrupted, message: "the app left the foreground before any setting of this model was measured")
            }
            let measured = model.error == nil && manifest.computePlan
            return ModelResult(
                modelSha256: model.entry.sha256, compileMs: model.compileMs, compileCached: model.cached,
                settings: model.settings.map(\.result),
                computePlan: measured ? plan(compiled: model.target, units: manifest.computeUnits) : nil,
                partial: model.partial, error: error, startedAt: timestamp(model.startedAt), finishedAt: timestamp(model.finishedAt))
        }
        return RunnerResult(
            schemaVersion: packedSchemaVersion, batchId: manifest.batchId, runnerVersion: executor.runnerVersion,
            simulated: executor.simulated, device: executor.device, modelSha256: manifest.model.sha256,
            compileMs: nil, compileCached: false, thermalBefore: thermalBefore, thermalAfter: executor.thermalState,
            cooldowns: cooldowns, settings: [], computePlan: nil, partial: results.contains { $0.partial }, error: nil,
            startedAt: timestamp(startedAt), finishedAt: timestamp(clock.wallClock()), models: results)
    }
}
