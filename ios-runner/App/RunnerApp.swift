// The iOS app shell: on launch, measure the batch named by `--batch <id>` (or every
// pending batch in the inbox), publish the results, then idle showing what it did.
import RunnerCore
import SwiftUI
import UIKit

@main
struct RunnerApp: App {
    @StateObject private var runner = BatchRunner()

    var body: some Scene {
        WindowGroup {
            StatusView(runner: runner)
                .onAppear { runner.start(arguments: ProcessInfo.processInfo.arguments) }
        }
    }
}

/// Runs batches off the main thread and publishes their state for the screen.
@MainActor
final class BatchRunner: ObservableObject {
    @Published var state = "idle"
    @Published var lastBatch: String?
    @Published var lastSummary: String?
    private var started = false
    private var backgroundTask = UIBackgroundTaskIdentifier.invalid
    /// Tells the harness when the app leaves the foreground (the slot is then `interrupted`).
    private let foreground = ForegroundMonitor()

    /// Stale batches (agent never collected them) are removed after this long.
    nonisolated static let staleAfter: TimeInterval = 24 * 3600

    func start(arguments: [String]) {
        guard !started else { return }
        started = true
        let requested = Self.batch(from: arguments, environment: ProcessInfo.processInfo.environment)
        state = "working"
        foreground.start(inForeground: UIApplication.shared.applicationState != .background)
        // A screen that locks mid-measurement suspends the app (the OS then refuses GPU work)
        // and throttles it: no idle lock while measuring, back to normal when done.
        UIApplication.shared.isIdleTimerDisabled = true
        // If the app goes to the background anyway, ask for the time to finish and publish:
        // a result without its done marker leaves the agent waiting for its timeout.
        backgroundTask = UIApplication.shared.beginBackgroundTask(withName: "anefarm.batch") { [weak self] in
            self?.endBackgroundTask()
        }
        // The harness blocks for minutes (Core ML loads, timed loops, waits for async-only
        // Core ML calls): it gets a thread of its own, never a Swift concurrency task, whose
        // few cooperative threads must not block (CoreMLExecutor refuses to wait inside one).
        let foreground = foreground
        let worker = Thread {
            let report = Self.work(requested: requested, activity: foreground)
            Task { @MainActor in
                self.lastBatch = report.batch
                self.lastSummary = report.summary
                self.state = "idle"
                UIApplication.shared.isIdleTimerDisabled = false
                self.endBackgroundTask()
            }
        }
        worker.name = "anefarm.harness"
        worker.qualityOfService = .userInitiated
        worker.stackSize = 8 << 20
        worker.start()
    }

    private func endBackgroundTask() {
        guard backgroundTask != .invalid else { return }
        UIApplication.shared.endBackgroundTask(backgroundTask)
        backgroundTask = .invalid
    }

    /// `--batch <id>` from the agent's launch, else ANEFARM_BATCH_ID, else nil (every pending batch).
    nonisolated static func batch(from arguments: [String], environment: [String: String]) -> String? {
        if let index = arguments.firstIndex(of: "--batch"), index + 1 < arguments.count {
            return arguments[index + 1]
        }
        return environment["ANEFARM_BATCH_ID"]
    }

    nonisolated static func work(requested: String?, activity: AppActivity) -> (batch: String?, summary: String) {
        guard let documents = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask).first else {
            return (nil, "no Documents folder")
        }
        let mailbox = Mailbox(documents: documents)
        mailbox.cleanStale(maxAge: staleAfter)
        // One harness for the whole process: it knows which compiled models this process has
        // already loaded (a later cold load of one is `warm_cache`).
        let harness = Harness(executor: CoreMLExecutor(), cache: CompileCache(root: mailbox.compiledRoot),
                              activity: activity)
        var last: (String?, String) = (nil, "no batch in the inbox")
        for batch in requested.map({ [$0] }) ?? mailbox.pendingBatches() {
            do {
                let result = try mailbox.process(
                    batch, measure: { harness.run($0, modelURL: $1) },
                    failure: { harness.failure(batch: $0, error: $1, modelSha256: $2) })
                last = (batch, summary(result))
            } catch {
                last = (batch, "could not publish a result: \(error)")
            }
        }
        return last
    }

    /// RunnerCore's `summary(of:)`: a line per setting, or per model of a packed launch.
    nonisolated static func summary(_ result: RunnerResult) -> String {
        RunnerCore.summary(of: result)
    }
}

/// The app's trips out of the foreground, counted from UIApplication's notifications (posted
/// on the main thread) and read by the harness thread under a lock. Background, not
/// "inactive": a notification banner or Control Center makes the app inactive but leaves
/// its GPU work running; in the background iOS refuses GPU work and throttles the rest.
final class ForegroundMonitor: AppActivity, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var foreground = true
    private var observers: [NSObjectProtocol] = []

    var departures: Int { lock.lock(); defer { lock.unlock() }; return count }
    var inForeground: Bool { lock.lock(); defer { lock.unlock() }; return foreground }

    @MainActor func start(inForeground: Bool) {
        set(inForeground: inForeground)
        let center = NotificationCenter.default
        observers = [
            center.addObserver(forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: .main) { [weak self] _ in
                self?.set(inForeground: false)
            },
            center.addObserver(forName: UIApplication.willEnterForegroundNotification, object: nil, queue: .main) { [weak self] _ in
                self?.set(inForeground: true)
            },
        ]
    }

    private func set(inForeground now: Bool) {
        lock.lock()
        if foreground && !now { count += 1 }
        foreground = now
        lock.unlock()
    }
}

struct StatusView: View {
    @ObservedObject var runner: BatchRunner

    var body: some View {
        VStack(alignment: .leading, spacing: 12) {
            Text("anefarm runner").font(.title2).bold()
            Text("Version \(Bundle.main.object(forInfoDictionaryKey: "CFBundleVersion") as? String ?? "?")")
                .font(.footnote).foregroundStyle(.secondary)
            Text("State: \(runner.state)")
            Text("Last batch: \(runner.lastBatch ?? "none")")
            if let summary = runner.lastSummary {
                Text(summary).font(.system(.body, design: .monospaced))
            }
            Spacer()
        }
        .padding()
    }
}
