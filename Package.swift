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
        .executable(name: "pump-emulator", targets: ["pump-emulator"]),
        .executable(name: "pumpctl", targets: ["pumpctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
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
        .executableTarget(
            name: "pump-emulator",
            dependencies: [
                "PumpEmulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pumpctl",
            dependencies: [
                "PumpSession",
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
            name: "PumpModelTests",
            dependencies: ["PumpModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PumpEmulatorTests",
            dependencies: ["PumpEmulator", "PumpSession"],
            swiftSettings: swiftSettings
        ),
    ]
)
