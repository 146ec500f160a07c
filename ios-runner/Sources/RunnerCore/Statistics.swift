// Latency statistics with exactly the definition of orchestrator/stats.py: percentiles by
// linear interpolation between closest ranks (rank = q × (n − 1), Hyndman & Fan type 7),
// sample standard deviation (n − 1), 0 for a single sample. ../Fixtures/stats-vectors.json
// is checked by both sides.
import Foundation

public enum Statistics {
    public static func percentile(sorted: [Double], _ q: Double) -> Double {
        precondition(!sorted.isEmpty && (0...1).contains(q))
        let rank = q * Double(sorted.count - 1)
        let low = Int(rank.rounded(.down))
        let high = Int(rank.rounded(.up))
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
    }

    public static func summarize(_ samples: [Double]) -> LatencyStats? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        let n = Double(sorted.count)
        let mean = sorted.reduce(0, +) / n
        let variance = sorted.count > 1 ? sorted.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1) : 0
        return LatencyStats(
            count: sorted.count, min: sorted[0], max: sorted[sorted.count - 1], mean: mean,
            std: variance.squareRoot(), p50: percentile(sorted: sorted, 0.5),
            p90: percentile(sorted: sorted, 0.9), p99: percentile(sorted: sorted, 0.99)
        )
    }
}
