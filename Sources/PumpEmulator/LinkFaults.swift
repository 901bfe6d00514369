import Foundation

/// Faults injected on the emulator's link, seeded so that a run can be reproduced (docs/RELIABILITY.md).
///
/// Written as `key=value` pairs separated by commas, e.g.
/// `seed=7,ber=1e-3,drop=1e-4,dup=0.01,garbage=0.02,delay=15`:
///
/// | key     | meaning                                                            |
/// |---------|--------------------------------------------------------------------|
/// | seed    | seed of the fault generator (same seed and traffic, same faults)   |
/// | ber     | probability that each bit is flipped, both directions              |
/// | drop    | probability that each byte is lost, both directions                |
/// | dup     | probability that an outgoing frame is sent twice                   |
/// | garbage | probability of 1-16 random bytes before an outgoing frame          |
/// | delay   | milliseconds added before each outgoing frame                      |
/// | silent  | `silent` or `silent=1`: nothing is sent or received                |
///
/// `none` (or an empty text) is a clean link.
public struct LinkFaultSettings: Sendable, Hashable, Codable, CustomStringConvertible {
    public var seed: UInt64 = 1
    public var bitErrorRate = 0.0
    public var dropRate = 0.0
    public var duplicateRate = 0.0
    public var garbageRate = 0.0
    public var delayMilliseconds = 0
    public var silent = false

    public init() {}

    public static let none = LinkFaultSettings()

    public var isClean: Bool {
        bitErrorRate == 0 && dropRate == 0 && duplicateRate == 0 && garbageRate == 0
            && delayMilliseconds == 0 && !silent
    }

    public init(parsing text: String) throws(LinkFaultError) {
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts[0]
            let value = parts.count > 1 ? parts[1] : ""
            func probability() throws(LinkFaultError) -> Double {
                guard let number = Double(value), number >= 0, number <= 1 else {
                    throw .invalidValue(key: key, value: value)
                }
                return number
            }
            switch key {
            case "none" where parts.count == 1:
                self = .none
            case "seed":
                guard let number = UInt64(value) else { throw .invalidValue(key: key, value: value) }
                seed = number
            case "ber": bitErrorRate = try probability()
            case "drop": dropRate = try probability()
            case "dup": duplicateRate = try probability()
            case "garbage": garbageRate = try probability()
            case "delay":
                guard let number = Int(value), number >= 0, number <= 60_000 else {
                    throw .invalidValue(key: key, value: value)
                }
                delayMilliseconds = number
            case "silent":
                guard value.isEmpty || value == "1" || value == "0" else { throw .invalidValue(key: key, value: value) }
                silent = value != "0"
            default:
                throw .unknownKey(key)
            }
        }
    }

    public var description: String {
        var parts = ["seed=\(seed)"]
        if bitErrorRate > 0 { parts.append("ber=\(bitErrorRate)") }
        if dropRate > 0 { parts.append("drop=\(dropRate)") }
        if duplicateRate > 0 { parts.append("dup=\(duplicateRate)") }
        if garbageRate > 0 { parts.append("garbage=\(garbageRate)") }
        if delayMilliseconds > 0 { parts.append("delay=\(delayMilliseconds)") }
        if silent { parts.append("silent") }
        return parts.joined(separator: ",")
    }
}

public enum LinkFaultError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownKey(String)
    case invalidValue(key: String, value: String)

    public var description: String {
        switch self {
        case .unknownKey(let key): "unknown fault '\(key)' (known: seed, ber, drop, dup, garbage, delay, silent; or none)"
        case .invalidValue(let key, let value): "invalid value '\(value)' for fault '\(key)'"
        }
    }
}

/// Applies `LinkFaultSettings` to the bytes crossing the link, deterministically from the seed.
public struct LinkFaultInjector: Sendable {
    public private(set) var settings: LinkFaultSettings
    private var random: SplitMix64
    /// Bits until the next flipped bit, and bytes until the next dropped byte.
    private var bitsToNextError: Double
    private var bytesToNextDrop: Double
    public private(set) var counts = Counts()

    public struct Counts: Sendable, Hashable, CustomStringConvertible {
        public var bitsFlipped = 0
        public var bytesDropped = 0
        public var framesDuplicated = 0
        public var garbageBursts = 0

        public static func + (lhs: Self, rhs: Self) -> Self {
            Self(
                bitsFlipped: lhs.bitsFlipped + rhs.bitsFlipped,
                bytesDropped: lhs.bytesDropped + rhs.bytesDropped,
                framesDuplicated: lhs.framesDuplicated + rhs.framesDuplicated,
                garbageBursts: lhs.garbageBursts + rhs.garbageBursts)
        }

        public var description: String {
            "bitsFlipped=\(bitsFlipped) bytesDropped=\(bytesDropped) framesDuplicated=\(framesDuplicated) garbageBursts=\(garbageBursts)"
        }
    }

    public init(_ settings: LinkFaultSettings) {
        self.settings = settings
        random = SplitMix64(seed: settings.seed)
        bitsToNextError = 0
        bytesToNextDrop = 0
        bitsToNextError = nextGap(settings.bitErrorRate)
        bytesToNextDrop = nextGap(settings.dropRate)
    }

    /// The bytes to write for one outgoing frame.
    public mutating func outgoing(_ frame: [UInt8]) -> [UInt8] {
        guard !settings.silent else { return [] }
        var bytes: [UInt8] = []
        if chance(settings.garbageRate) {
            counts.garbageBursts += 1
            for _ in 0..<Int.random(in: 1...16, using: &random) { bytes.append(UInt8.random(in: 0...255, using: &random)) }
        }
        bytes += corrupt(frame)
        if chance(settings.duplicateRate) {
            counts.framesDuplicated += 1
            bytes += corrupt(frame)
        }
        return bytes
    }

    /// The bytes the pump gets of a chunk that arrived.
    public mutating func incoming(_ chunk: [UInt8]) -> [UInt8] {
        guard !settings.silent else { return [] }
        return corrupt(chunk)
    }

    private mutating func corrupt(_ input: [UInt8]) -> [UInt8] {
        guard settings.bitErrorRate > 0 || settings.dropRate > 0 else { return input }
        var output: [UInt8] = []
        output.reserveCapacity(input.count)
        for var byte in input {
            if settings.dropRate > 0 {
                bytesToNextDrop -= 1
                if bytesToNextDrop < 0 {
                    bytesToNextDrop = nextGap(settings.dropRate)
                    counts.bytesDropped += 1
                    continue
                }
            }
            if settings.bitErrorRate > 0 {
                bitsToNextError -= 8
                // A gap of g clean bits before this byte puts the error at bit g of it.
                while bitsToNextError < 0 {
                    let bit = Int(bitsToNextError + 8)
                    byte ^= 1 << UInt8(bit)
                    counts.bitsFlipped += 1
                    bitsToNextError += 1 + nextGap(settings.bitErrorRate)
                }
            }
            output.append(byte)
        }
        return output
    }

    private mutating func chance(_ probability: Double) -> Bool {
        probability > 0 && Double.random(in: 0..<1, using: &random) < probability
    }

    /// A geometric gap: how many trials pass before the next event of probability `rate`.
    private mutating func nextGap(_ rate: Double) -> Double {
        guard rate > 0 else { return .infinity }
        guard rate < 1 else { return 0 }
        let uniform = Double.random(in: Double.ulpOfOne..<1, using: &random)
        return (log(uniform) / log1p(-rate)).rounded(.down)
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood, 2014). Not for secrets.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
