// What the app shows on its screen after a batch: one line per setting, or, for a packed
// launch (several probe models), one line per model. Kept here (not in App/) so that it is
// compiled and tested on Linux like the rest of the runner.
import Foundation

public func summary(of result: RunnerResult) -> String {
    if let error = result.error { return "failed (\(error.kind.rawValue)): \(error.message)" }
    let partial = result.partial ? ["partial (time budget)"] : []
    if let models = result.models {
        let lines = models.map { model -> String in
            let name = String(model.modelSha256.prefix(12))
            if let error = model.error { return "\(name): failed (\(error.kind.rawValue))" }
            let measured = model.settings.filter { $0.error == nil }.count
            return "\(name): \(measured)/\(model.settings.count) settings measured"
        }
        return (partial + ["\(models.count) models in one launch"] + lines).joined(separator: "\n")
    }
    let settings = result.settings.map { setting in
        if let error = setting.error { return "\(setting.computeUnits.rawValue): \(error.kind.rawValue)" }
        return String(format: "%@: p50 %.2f ms", setting.computeUnits.rawValue, setting.stats?.p50 ?? 0)
    }
    return (partial + settings).joined(separator: "\n")
}
