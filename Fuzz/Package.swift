// swift-tools-version: 6.1
import PackageDescription

// Coverage-guided fuzzing of the codec, the program rules, the API's request parsing, the
// capture reader and the pump side of the protocol with libFuzzer and AddressSanitizer. Run it
// with `tools/fuzz` from the repository root (see README.md).
//
// The modules under test are the repository's own sources, reached through symbolic links in
// Sources/ (PumpProtocol -> ../../Sources/PumpProtocol, ...), so that they can be compiled
// here with per-target sanitizer flags: only the code under test carries libFuzzer's coverage
// instrumentation and AddressSanitizer, while swift-crypto (BoringSSL) builds as usual. Their
// dependencies must match the main Package.swift; a new one there fails this build loudly.

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]
/// Coverage instrumentation for libFuzzer and AddressSanitizer.
let instrumented: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-sanitize=fuzzer,address"]),
]
/// Links libFuzzer (whose driver the target's `main` calls) and the AddressSanitizer runtime.
/// lld: gold stops on an internal error over the DWARF of the sanitized objects.
let fuzzerLink: [LinkerSetting] = [
    .unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"]),
]

let package = Package(
    name: "PumpLinkFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // The modules under test (symbolic links to the repository's Sources/).
        .target(
            name: "PumpProtocol",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: instrumented
        ),
        .target(name: "PumpModel", dependencies: ["PumpProtocol"], swiftSettings: instrumented),
        .target(name: "PumpSafety", dependencies: ["PumpProtocol", "PumpModel"], swiftSettings: instrumented),
        .target(name: "PumpAPIRequests", dependencies: ["PumpProtocol", "PumpSafety"], swiftSettings: instrumented),
        .target(name: "PumpCapture", dependencies: ["PumpProtocol", "SerialTransport"], swiftSettings: instrumented),
        .target(
            name: "PumpEmulator",
            dependencies: [
                "PumpCapture", "PumpModel", "PumpProtocol", "SerialTransport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: instrumented
        ),
        // Needed by PumpCapture (its recording link), not fuzzed: built as usual.
        .systemLibrary(name: "CLibSerialPort", pkgConfig: "libserialport", providers: [.apt(["libserialport-dev"])]),
        .target(name: "SerialTransport", dependencies: ["CLibSerialPort"], swiftSettings: swiftSettings),

        // libFuzzer's driver entry, and the helpers every fuzz target shares.
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], swiftSettings: swiftSettings),

        // One executable per fuzz target; each is a libFuzzer binary (flags as usual:
        // `-runs=`, `-max_total_time=`, corpus folders, `-minimize_crash=1`, ...).
        .executableTarget(
            name: "FrameDecoderFuzzer",
            dependencies: ["FuzzSupport", "PumpProtocol"],
            swiftSettings: instrumented,
            linkerSettings: fuzzerLink
        ),
        .executableTarget(
            name: "MessageFuzzer",
            dependencies: ["FuzzSupport", "PumpProtocol"],
            swiftSettings: instrumented,
            linkerSettings: fuzzerLink
        ),
        .executableTarget(
            name: "ProgramFuzzer",
            dependencies: ["FuzzSupport", "PumpProtocol", "PumpModel", "PumpSafety"],
            swiftSettings: instrumented,
            linkerSettings: fuzzerLink
        ),
        .executableTarget(
            name: "JSONBodyFuzzer",
            dependencies: ["FuzzSupport", "PumpProtocol", "PumpModel", "PumpSafety"],
            swiftSettings: instrumented,
            linkerSettings: fuzzerLink
        ),
        .executableTarget(
            name: "APIBodyFuzzer",
            dependencies: ["FuzzSupport", "PumpAPIRequests", "PumpProtocol", "PumpSafety"],
            swiftSettings: instrumented,
            linkerSettings: fuzzerLink
        ),
        .executableTarget(
            name: "EndpointFuzzer",
            dependencies: ["FuzzSupport", "PumpEmulator", "PumpModel", "PumpProtocol"],
            swiftSettings: instrumented,
            linkerSettings: fuzzerLink
        ),
        .executableTarget(
            name: "PcapngFuzzer",
            dependencies: ["FuzzSupport", "PumpCapture", "PumpProtocol"],
            swiftSettings: instrumented,
            linkerSettings: fuzzerLink
        ),
    ]
)
