// swift-tools-version: 6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "PumpLink",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "PumpProtocol", targets: ["PumpProtocol"]),
        .library(name: "SerialTransport", targets: ["SerialTransport"]),
        .library(name: "PumpModel", targets: ["PumpModel"]),
        .library(name: "PumpEmulator", targets: ["PumpEmulator"]),
        .library(name: "PumpSession", targets: ["PumpSession"]),
        .library(name: "PumpCapture", targets: ["PumpCapture"]),
        .executable(name: "pump-emulator", targets: ["pump-emulator"]),
        .executable(name: "pumpctl", targets: ["pumpctl"]),
        .executable(name: "pumplinkd", targets: ["pumplinkd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        // libserialport from Debian's libserialport-dev, for real serial ports.
        .systemLibrary(
            name: "CLibSerialPort",
            pkgConfig: "libserialport",
            providers: [.apt(["libserialport-dev"])]
        ),
        // The pure codec: frames, messages, integrity and authentication. No I/O.
        .target(
            name: "PumpProtocol",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Serial ports: libserialport for real devices, POSIX termios for pseudo-terminals.
        .target(
            name: "SerialTransport",
            dependencies: ["CLibSerialPort"],
            swiftSettings: swiftSettings
        ),
        // The pump domain: programs, doses, delivery arithmetic, alarms, event log.
        .target(
            name: "PumpModel",
            dependencies: ["PumpProtocol"],
            swiftSettings: swiftSettings
        ),
        // The software pump: the model behind the pump side of the protocol.
        .target(
            name: "PumpEmulator",
            dependencies: [
                "PumpCapture",
                "PumpModel",
                "PumpProtocol",
                "SerialTransport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The host side of a link: handshake, authentication, retransmission, windows, outcomes.
        .target(
            name: "PumpSession",
            dependencies: [
                "PumpProtocol",
                "SerialTransport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Link captures: pcapng writing, reading and rotation, a recording byte link, frame decoding.
        .target(
            name: "PumpCapture",
            dependencies: ["PumpProtocol", "SerialTransport"],
            swiftSettings: swiftSettings
        ),
        // The daemon's safety rules: drug library, program review (dry run), refill and bolus checks.
        .target(
            name: "PumpSafety",
            dependencies: ["PumpProtocol", "PumpModel"],
            swiftSettings: swiftSettings
        ),
        // The API's request bodies and query parameters, decoded strictly (no HTTP: fuzzed alone).
        .target(
            name: "PumpAPIRequests",
            dependencies: ["PumpProtocol", "PumpSafety"],
            swiftSettings: swiftSettings
        ),
        // The daemon's database: each pump's event history and the audit log, in SQLite.
        .target(
            name: "PumpStore",
            dependencies: [
                "PumpProtocol",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon: the fleet of pump connections and its HTTP API.
        .target(
            name: "PumpLinkDaemon",
            dependencies: [
                "PumpAPIRequests",
                "PumpCapture",
                "PumpProtocol",
                "PumpModel",
                "PumpSafety",
                "PumpSession",
                "PumpStore",
                "SerialTransport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pumplinkd",
            dependencies: [
                "PumpLinkDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pump-emulator",
            dependencies: [
                "PumpCapture",
                "PumpEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pumpctl",
            dependencies: [
                "PumpCapture",
                "PumpSafety",
                "PumpSession",
                "PumpStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpProtocolTests",
            dependencies: ["PumpProtocol"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SerialTransportTests",
            dependencies: ["SerialTransport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpCaptureTests",
            dependencies: ["PumpCapture", "PumpProtocol", "SerialTransport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpModelTests",
            dependencies: ["PumpModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpSafetyTests",
            dependencies: ["PumpSafety"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpAPIRequestsTests",
            dependencies: ["PumpAPIRequests", "PumpProtocol", "PumpSafety"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpStoreTests",
            dependencies: ["PumpStore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpLinkDaemonTests",
            dependencies: [
                "PumpLinkDaemon",
                "PumpEmulator",
                "PumpSession",
                "PumpStore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpEmulatorTests",
            dependencies: ["PumpCapture", "PumpEmulator", "PumpSession"],
            swiftSettings: swiftSettings
        ),
    ]
)
