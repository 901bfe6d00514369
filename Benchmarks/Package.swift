// swift-tools-version: 6.1
import PackageDescription

// Codec benchmarks, kept in their own package so that the main package does not depend on the
// benchmark harness (as swift-nio and swift-log do). Run them with `tools/bench` from the
// repository root, or `swift package benchmark` from this folder.
let package = Package(
    name: "benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "PumpLink", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Link timings over real pseudo-terminals: round trips against a raw echo, bulk
        // transfers against the emulated line rate. A plain timing program (tools/link-bench).
        .executableTarget(
            name: "LinkBench",
            dependencies: [
                .product(name: "PumpEmulator", package: "PumpLink"),
                .product(name: "PumpModel", package: "PumpLink"),
                .product(name: "PumpProtocol", package: "PumpLink"),
                .product(name: "PumpSession", package: "PumpLink"),
                .product(name: "SerialTransport", package: "PumpLink"),
            ],
            path: "LinkBench"
        ),
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PumpProtocol", package: "PumpLink"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
