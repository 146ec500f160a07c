// swift-tools-version:5.9
// RunnerCore: the platform-independent core of the anefarm runner app (manifest and
// result types, validation, statistics). Builds and tests on Linux; the Core ML
// executor and the iOS app shell come on top of it (see README.md).
import PackageDescription

let package = Package(
    name: "ios-runner",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "RunnerCore", targets: ["RunnerCore"]),
    ],
    targets: [
        .target(name: "RunnerCore", path: "Sources/RunnerCore"),
        .testTarget(name: "RunnerCoreTests", dependencies: ["RunnerCore"], path: "Tests/RunnerCoreTests"),
    ]
)
