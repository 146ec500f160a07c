import Foundation
import XCTest
@testable import RunnerCore

/// The fixtures shared with pytest (ios-runner/Fixtures), located from this file.
private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

private func files(_ folder: String, prefix: String) throws -> [URL] {
    let dir = fixtures.appendingPathComponent(folder)
    return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
        .filter { $0.lastPathComponent.hasPrefix(prefix + "-") && $0.pathExtension == "json" }
        .sorted { $0.lastPathComponent < $1.lastPathComponent }
}

final class ContractTests: XCTestCase {
    func testEveryValidResultDecodesAndRoundTrips() throws {
        let found = try files("valid", prefix: "runner-result")
        XCTAssertGreaterThanOrEqual(found.count, 4)
        for url in found {
            let result = try Codec.decodeResult(Data(contentsOf: url))
            let again = try Codec.decodeResult(Codec.encoder().encode(result))
            XCTAssertEqual(result, again, url.lastPathComponent)
        }
    }

    func testEveryValidManifestDecodes() throws {
        for url in try files("valid", prefix: "runner-manifest") {
            let manifest = try Codec.decodeManifest(Data(contentsOf: url))
            XCTAssertEqual(manifest.computeUnits.count, 4)
        }
    }

    func testEveryInvalidResultIsRejected() throws {
        let found = try files("invalid", prefix: "runner-result")
        XCTAssertGreaterThanOrEqual(found.count, 8)
        for url in found {
            XCTAssertThrowsError(try Codec.decodeResult(Data(contentsOf: url)), url.lastPathComponent)
        }
    }

    func testEveryInvalidManifestIsRejected() throws {
        for url in try files("invalid", prefix: "runner-manifest") {
            XCTAssertThrowsError(try Codec.decodeManifest(Data(contentsOf: url)), url.lastPathComponent)
        }
    }

    // cold_load defaults to "process" as in Python: a manifest from an agent that predates the
    // field is still measured; "fresh_compile" is read from its fixture.
    func testColdLoadIsReadAndDefaultsToProcess() throws {
        let fresh = try Codec.decodeManifest(Data(contentsOf: fixtures.appendingPathComponent("valid/runner-manifest-fresh-compile.json")))
        XCTAssertEqual(fresh.coldLoad, .freshCompile)
        let url = fixtures.appendingPathComponent("valid/runner-manifest-ok.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        XCTAssertEqual(json.removeValue(forKey: "cold_load") as? String, "process")
        let older = try Codec.decodeManifest(JSONSerialization.data(withJSONObject: json))
        XCTAssertEqual(older.coldLoad, .process)
    }

    func testUnknownSchemaVersionSaysSo() throws {
        let url = fixtures.appendingPathComponent("invalid/runner-manifest-bad-version.json")
        XCTAssertThrowsError(try Codec.decodeManifest(Data(contentsOf: url))) { error in
            XCTAssertTrue("\(error)".contains("schema_version"))
        }
    }

    func testStatisticsMatchThePythonVectors() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("stats-vectors.json"))
        let vectors = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(vectors.count, 5)
        for vector in vectors {
            let samples = try XCTUnwrap(vector["samples"] as? [Double])
            let expected = try XCTUnwrap(vector["expected"] as? [String: Double])
            let got = try XCTUnwrap(Statistics.summarize(samples))
            let pairs: [(String, Double)] = [("min", got.min), ("max", got.max), ("mean", got.mean),
                                             ("std", got.std), ("p50", got.p50), ("p90", got.p90), ("p99", got.p99)]
            for (key, value) in pairs {
                let want = try XCTUnwrap(expected[key])
                XCTAssertEqual(value, want, accuracy: Swift.max(1e-12, abs(want) * 1e-12), key)
            }
            XCTAssertEqual(Double(got.count), try XCTUnwrap(expected["count"]))
        }
    }
}
