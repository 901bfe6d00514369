import PumpProtocol

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded generator, so that every property
/// test draws the same values on every run and machine.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random field values for the generated `random(using:)` functions. They lean towards the
/// edges of each range and towards empty and full collections, where codecs break.
enum RandomWire {
    static func integer<T: FixedWidthInteger>(_ range: ClosedRange<T>, using rng: inout some RandomNumberGenerator) -> T {
        switch rng.next() % 8 {
        case 0: range.lowerBound
        case 1: range.upperBound
        default: T.random(in: range, using: &rng)
        }
    }

    static func element<T: CaseIterable>(using rng: inout some RandomNumberGenerator) -> T {
        let all = Array(T.allCases)
        return all[Int.random(in: 0..<all.count, using: &rng)]
    }

    /// A collection size: 0 or `max` one time in eight each, otherwise anything in between.
    static func count(max: Int, using rng: inout some RandomNumberGenerator) -> Int {
        switch rng.next() % 8 {
        case 0: 0
        case 1: max
        default: Int.random(in: 0...max, using: &rng)
        }
    }

    static func bytes(count: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    static func bytes(maxCount: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        bytes(count: count(max: maxCount, using: &rng), using: &rng)
    }

    static func array<T, R: RandomNumberGenerator>(max: Int, using rng: inout R, _ element: (inout R) -> T) -> [T] {
        let count = count(max: max, using: &rng)
        var result: [T] = []
        result.reserveCapacity(count)
        for _ in 0..<count { result.append(element(&rng)) }
        return result
    }

    /// Characters of 1 to 4 UTF-8 bytes, a NUL and a combining accent among them.
    private static let characters: [String] = [
        "a", "Z", "0", " ", "-", "\u{0}", "é", "µ", "ß", "e\u{301}", "€", "水", "→", "𝄞", "💊",
    ]

    /// A UTF-8 string of at most `maxBytes` bytes.
    static func string(maxBytes: Int, using rng: inout some RandomNumberGenerator) -> String {
        let target = count(max: maxBytes, using: &rng)
        var text = ""
        var length = 0
        while length < target {
            var character = characters[Int.random(in: 0..<characters.count, using: &rng)]
            if length + character.utf8.count > target { character = "x" }
            text += character
            length += character.utf8.count
        }
        return text
    }
}
