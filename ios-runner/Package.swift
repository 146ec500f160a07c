// swift-tools-version:6.0
// RunnerCore: the platform-independent core of the anefarm runner app (manifest and
// result types, validation, statistics, the harness) and its Core ML executor. Tools 6.0
// puts every target in Swift 6 language mode (strict concurrency checking), as Xcode 16+
// will build them for the app.
//
// On Linux there is no CoreML or CoreVideo, so RunnerCore depends on CoreMLShim there
// (Apple's declarations for exactly what CoreMLExecutor calls, over a programmable fake):
// CoreMLExecutor.swift is compiled and tested on every `swift test`. On Apple platforms the
// shim is not a dependency and the real frameworks are imported.
import PackageDescription

let linuxOnly = TargetDependencyCondition.when(platforms: [.linux])

let package = Package(
    name: "ios-runner",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "RunnerCore", targets: ["RunnerCore"]),
    ],
    targets: [
        .target(name: "CoreMLShim", path: "Shims/CoreMLShim"),
        .target(name: "RunnerCore", dependencies: [.target(name: "CoreMLShim", condition: linuxOnly)],
                path: "Sources/RunnerCore"),
        .testTarget(name: "RunnerCoreTests",
                    dependencies: ["RunnerCore", .target(name: "CoreMLShim", condition: linuxOnly)],
                    path: "Tests/RunnerCoreTests"),
    ]
)
