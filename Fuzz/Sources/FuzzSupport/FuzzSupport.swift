import CLibFuzzer

#if canImport(Glibc)
import Glibc
#endif

/// The test of one input, set once before libFuzzer's driver starts calling it.
nonisolated(unsafe) private var testOneInput: ((UnsafeRawBufferPointer) -> Void)?

/// Hands the process to libFuzzer: it parses the command line (corpus folders, `-runs=`, ...)
/// and calls `test` with each input. A property that does not hold calls `violated(_:)`, whose
/// trap libFuzzer reports as a crash and saves as an artifact.
public func runFuzzer(_ test: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    testOneInput = test
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        testOneInput?(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
    exit(status)
}

/// Stops the run: a property the target checks does not hold.
public func violated(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("property violated: \(message)", file: file, line: line)
}

/// Checks a property of the code under test.
@inline(__always)
public func require(
    _ condition: Bool,
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition { violated(message(), file: file, line: line) }
}

/// Lowercase hexadecimal, for messages.
public func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    var text = ""
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return text
}

/// Reads fuzzer-chosen parameters from the front of an input; past its end every read is 0.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public var remaining: Int { max(0, bytes.count - offset) }

    public mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size {
            value |= T(u8()) << (8 * index)
        }
        return value
    }

    /// The bytes not read yet.
    public var rest: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[min(offset, bytes.count)...])
    }
}

/// A small deterministic generator (xorshift64*): read splits chosen by the input, so a crash
/// reproduces from its artifact alone.
public struct SplitGenerator {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// Read sizes that cover `count` bytes: mostly short, sometimes long, now and then empty.
    public mutating func chunkSizes(covering count: Int) -> [Int] {
        var sizes: [Int] = []
        var covered = 0
        while covered < count {
            let draw = next()
            let size: Int
            switch draw % 8 {
            case 0: size = 0
            case 1, 2, 3: size = 1 + Int((draw >> 8) % 4)
            case 4, 5: size = 1 + Int((draw >> 8) % 32)
            default: size = 1 + Int((draw >> 8) % 600)
            }
            let clamped = min(size, count - covered)
            sizes.append(clamped)
            covered += clamped
        }
        return sizes
    }
}
