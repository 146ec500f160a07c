// CoreMLExecutor against the real Core ML, where it exists (`make mac-check`): the Linux
// tests drive it through CoreMLShim's fake; these check what only the real framework can
// answer. Compiled out on Linux.
#if canImport(CoreML)
import CoreML
import Foundation
import XCTest
@testable import RunnerCore

final class CoreMLExecutorMacTests: XCTestCase {
    // The protocol's settings map onto the real MLComputeUnits one to one.
    func testEverySettingMapsToItsComputeUnits() throws {
        let expected: [ComputeUnits: MLComputeUnits] = [.all: .all, .cpuAndGPU: .cpuAndGPU, .cpuOnly: .cpuOnly,
                                                         .cpuAndNeuralEngine: .cpuAndNeuralEngine]
        for (units, real) in expected {
            XCTAssertEqual(try CoreMLExecutor.configuration(units).computeUnits, real, units.rawValue)
        }
    }

    // The async compile is awaited from a plain thread through AsyncBridge, and Core ML's
    // refusal of a file that is not a model comes back as kind `compile` (a model error).
    func testAFileThatIsNotAModelIsACompileError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mac-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("NotAModel.mlmodel")
        try Data("not a model".utf8).write(to: model)
        XCTAssertThrowsError(try CoreMLExecutor(asyncTimeout: 60).compile(modelURL: model)) {
            XCTAssertEqual(($0 as? ExecutorError)?.kind, .compile, "\($0)")
        }
    }

    // The facts a result carries decode as the protocol wants them on this machine too.
    func testDeviceFactsAndThermalStateAreReadable() {
        let executor = CoreMLExecutor()
        XCTAssertFalse(executor.device.osVersion.isEmpty)
        XCTAssertNotEqual(executor.device.osBuild, "unknown")  // sysctl kern.osversion answers on Darwin
        XCTAssertFalse(executor.simulated)
        _ = executor.thermalState
    }
}
#endif
