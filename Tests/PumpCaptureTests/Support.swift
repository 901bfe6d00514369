#if canImport(Glibc)
import Glibc
#endif
import PumpCapture
import PumpProtocol
import Synchronization
import Testing

/// A seeded generator (SplitMix64), so a failing random case can be reproduced.
struct SeededGenerator: RandomNumberGenerator {
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

func randomBytes(_ count: Int, nonZero: Bool = false, using rng: inout some RandomNumberGenerator) -> [UInt8] {
    (0..<count).map { _ in nonZero ? UInt8.random(in: 1...255, using: &rng) : UInt8.random(in: 0...255, using: &rng) }
}

/// Bytes from hexadecimal with spaces allowed.
func hex(_ text: String) -> [UInt8] {
    [UInt8](hexadecimal: text.filter { !$0.isWhitespace }) ?? []
}

/// Little- or big-endian integer bytes, for building blocks by hand.
func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
func le16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

/// A raw little-endian block: type, length, body, length (the body padded to 4).
func rawBlock(type: UInt32, body: [UInt8], length: UInt32? = nil, trailing: UInt32? = nil) -> [UInt8] {
    var padded = body
    while padded.count % 4 != 0 { padded.append(0) }
    let total = length ?? UInt32(padded.count + 12)
    return le32(type) + le32(total) + padded + le32(trailing ?? total)
}

/// A capture built with `PcapngBlocks`, remembering where each block ends.
struct CaptureBuilder {
    var bytes: [UInt8] = []
    var blockEnds: [Int] = []

    mutating func section(_ application: String? = "PumpLink tests") {
        PcapngBlocks.appendSectionHeader(userApplication: application, to: &bytes)
        blockEnds.append(bytes.count)
    }

    mutating func interface(_ name: String?, _ description: String?, resolution: UInt8? = 9) {
        PcapngBlocks.appendInterfaceDescription(
            name: name, description: description, timestampResolution: resolution, to: &bytes)
        blockEnds.append(bytes.count)
    }

    mutating func packet(
        _ interface: UInt32, _ timestamp: UInt64, _ data: [UInt8], original: Int? = nil, _ direction: CaptureDirection?
    ) throws {
        try PcapngBlocks.appendEnhancedPacket(
            interface: CaptureInterfaceID(rawValue: interface), timestamp: timestamp, data: data,
            originalLength: original, direction: direction, to: &bytes)
        blockEnds.append(bytes.count)
    }

    mutating func raw(_ block: [UInt8]) {
        bytes += block
        blockEnds.append(bytes.count)
    }
}

/// A fresh directory under /tmp, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/pumpcapture-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) } != nil
        }
        try #require(made, "mkdtemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func file(_ name: String) -> String { path + "/" + name }

    func exists(_ name: String) -> Bool { access(file(name), F_OK) == 0 }

    func contents(_ name: String) -> [UInt8] {
        guard let handle = fopen(file(name), "rb") else { return [] }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, handle)
            if count <= 0 { return bytes }
            bytes += chunk[0..<count]
        }
    }

    func write(_ name: String, _ bytes: [UInt8]) {
        guard let handle = fopen(file(name), "wb") else { return }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        fclose(handle)
    }

    func remove() {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { unlink(file(name)) }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}

/// A sink that keeps what it is given, for checking a link's recording.
final class MemorySink: CaptureSink {
    struct Entry: Hashable, Sendable {
        var bytes: [UInt8]
        var originalLength: Int
        var direction: CaptureDirection
        var interface: CaptureInterfaceID
    }

    private let storage = Mutex<[Entry]>([])

    var entries: [Entry] { storage.withLock { $0 } }

    func candidates(_ direction: CaptureDirection) -> [RecordedCandidate] {
        entries.filter { $0.direction == direction }.map { RecordedCandidate(bytes: $0.bytes, originalLength: $0.originalLength) }
    }

    func record(_ bytes: UnsafeRawBufferPointer, originalLength: Int, direction: CaptureDirection, interface: CaptureInterfaceID) {
        let entry = Entry(bytes: Array(bytes), originalLength: originalLength, direction: direction, interface: interface)
        storage.withLock { $0.append(entry) }
    }
}

/// The candidates of a whole stream, the simple way: split at every zero, drop empty pieces
/// and the unfinished tail.
func referenceCandidates(_ stream: [UInt8], cap: Int = CandidateSplitter.defaultMaxRecordedLength) -> [RecordedCandidate] {
    var pieces = stream.split(separator: 0, omittingEmptySubsequences: false)
    pieces.removeLast()  // after the last delimiter: not finished
    return pieces.filter { !$0.isEmpty }.map { RecordedCandidate(bytes: Array($0.prefix(cap)), originalLength: $0.count) }
}

/// The line form of a random frame stream: `count` Pings with random echo values.
func pingLines(count: Int, firstID: UInt32 = 1, response: Bool = false, using rng: inout some RandomNumberGenerator) throws -> [[UInt8]] {
    var encoder = FrameEncoder()
    return try (0..<count).map { index in
        let echo = UInt64.random(in: 0...UInt64.max, using: &rng)
        return response
            ? try encoder.encode(PingResponse(echo: echo), requestID: firstID + UInt32(index))
            : try encoder.encode(PingRequest(echo: echo), requestID: firstID + UInt32(index))
    }
}

/// Cuts `bytes` into chunks of 1 to `maxChunk` bytes.
func randomChunks(_ bytes: [UInt8], maxChunk: Int, using rng: inout some RandomNumberGenerator) -> [[UInt8]] {
    var chunks: [[UInt8]] = []
    var index = 0
    while index < bytes.count {
        let end = min(bytes.count, index + Int.random(in: 1...maxChunk, using: &rng))
        chunks.append(Array(bytes[index..<end]))
        index = end
    }
    return chunks
}
