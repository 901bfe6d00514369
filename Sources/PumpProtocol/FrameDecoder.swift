#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a byte stream into frames, whatever the chunking (SPEC §3.4).
///
/// Incremental: feed bytes as they arrive, in any splits; every delimiter ends a candidate
/// frame, so after garbage, loss or corruption the decoder is back in step at the next intact
/// frame, and no length field can make it wait for bytes that will not come. COBS decoding is
/// done on the fly into one fixed buffer, so decoding a valid frame allocates nothing.
public struct FrameDecoder: Sendable {
    public enum Event: Sendable, Hashable {
        case frame(Frame)
        case discarded(FrameError)
    }

    public struct Statistics: Sendable, Hashable {
        public var bytes = 0
        public var frames = 0
        public var discarded = 0
        public var checkFailures = 0
    }

    private var buffer: [UInt8]
    private var count = 0
    /// Data bytes still expected in the current COBS block.
    private var blockRemaining = 0
    /// The current block's code byte; 0 before the first block of a frame.
    private var blockCode: UInt8 = 0
    /// The candidate outgrew the largest packet: skip to the next delimiter.
    private var overflow = false
    /// The CRC-32C of the current candidate, when the fast path computed it.
    private var computedCheck: UInt32?
    public private(set) var statistics = Statistics()

    public init() {
        buffer = [UInt8](repeating: 0, count: FrameLayout.maxPacketLength)
    }

    /// Decodes `bytes`, calling `handle` for each frame or discarded candidate, in order.
    public mutating func decode(_ bytes: UnsafeRawBufferPointer, _ handle: (Event) throws -> Void) rethrows {
        statistics.bytes += bytes.count
        var index = 0
        while index < bytes.count {
            index = consume(bytes, from: index)
            guard index < bytes.count else { return }
            index += 1  // the delimiter
            if let event = finishCandidate() {
                try handle(event)
            }
        }
    }

    public mutating func decode(_ bytes: some Sequence<UInt8>, _ handle: (Event) throws -> Void) rethrows {
        let done: Void? = try bytes.withContiguousStorageIfAvailable { buffer in
            try decode(UnsafeRawBufferPointer(buffer), handle)
        }
        if done == nil {
            try Array(bytes).withUnsafeBytes { raw in try decode(raw, handle) }
        }
    }

    /// All events for `bytes`; convenient where allocation does not matter.
    public mutating func decode(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events: [Event] = []
        decode(bytes) { events.append($0) }
        return events
    }

    /// Forgets a partial candidate, as after reopening a port.
    public mutating func reset() {
        count = 0
        blockRemaining = 0
        blockCode = 0
        overflow = false
        computedCheck = nil
    }

    /// Consumes bytes up to the next delimiter; returns its index, or `input.count`.
    private mutating func consume(_ input: UnsafeRawBufferPointer, from start: Int) -> Int {
        let end = input.count
        if start < end, input[start] == 0 { return start }
        if count == 0, blockCode == 0, !overflow, start < end,
            let found = memchr(input.baseAddress! + start, 0, end - start)
        {
            let delimiter = UnsafeRawPointer(found) - input.baseAddress!
            if decodeWhole(UnsafeRawBufferPointer(rebasing: input[start..<delimiter])) { return delimiter }
        }
        var count = self.count
        var blockRemaining = self.blockRemaining
        var blockCode = self.blockCode
        var overflow = self.overflow
        defer {
            self.count = count
            self.blockRemaining = blockRemaining
            self.blockCode = blockCode
            self.overflow = overflow
        }
        return buffer.withUnsafeMutableBytes { out in
            let capacity = out.count
            var i = start
            while i < end {
                let byte = input[i]
                if byte == 0 { return i }
                if overflow {
                    i += 1
                    continue
                }
                if blockRemaining == 0 {
                    // A code byte: the previous block (unless full) ended with a zero.
                    if blockCode != 0 && blockCode != 0xFF {
                        guard count < capacity else {
                            overflow = true
                            continue
                        }
                        out[count] = 0
                        count += 1
                    }
                    blockCode = byte
                    blockRemaining = Int(byte) - 1
                    i += 1
                    continue
                }
                // A run of data bytes, up to the block's end, the input's end or a delimiter.
                // Status payloads make short blocks, so copy while scanning, byte by byte.
                let runEnd = min(i + blockRemaining, end)
                let copyEnd = min(runEnd, i + (capacity - count))
                var j = i
                while j < copyEnd {
                    let data = input[j]
                    if data == 0 { break }
                    out[count &+ (j &- i)] = data
                    j &+= 1
                }
                count += j - i
                blockRemaining -= j - i
                if j == copyEnd, copyEnd < runEnd, input[j] != 0 {
                    overflow = true  // no room left in the largest packet
                }
                i = j
            }
            return end
        }
    }

    /// The fast path for a candidate wholly in one read (the usual case). Without a full
    /// (0xFF) block before the last, decoded byte k is line byte k + 1, except that each code
    /// byte but the first stands for a zero: so the candidate is copied in one go, and one walk
    /// over its code bytes writes the zeros. That walk is a chain of dependent loads (a status
    /// frame has a code byte every few bytes); the CRC over the bytes already final is
    /// interleaved with it, so that the two run side by side rather than one after the other.
    ///
    /// Leaves the state exactly as the byte-by-byte loop would, with the check in
    /// `computedCheck`; returns false, with the state untouched, for a candidate with a full
    /// block inside or too long to copy, which the loop then decodes.
    private mutating func decodeWhole(_ line: UnsafeRawBufferPointer) -> Bool {
        let length = line.count
        guard length > 0, length - 1 <= buffer.count else { return false }
        // The check covers the decoded packet but its last four bytes.
        let checkedEnd = length - 1 - FrameLayout.checkLength
        return buffer.withUnsafeMutableBytes { out -> Bool in
            let start = out.baseAddress!
            start.copyMemory(from: line.baseAddress! + 1, byteCount: length - 1)
            return CRC32C.withTables { tables -> Bool in
                var crc: UInt32 = 0xFFFF_FFFF
                var checked = 0
                var position = 0
                while true {
                    let code = Int(line[position])
                    let next = position &+ code
                    if next >= length {
                        // The last block, complete when it ends exactly at the delimiter.
                        count = length - 1
                        blockCode = UInt8(code)
                        blockRemaining = next - length
                        if checkedEnd >= checked {
                            crc = CRC32C.update(crc, UnsafeRawBufferPointer(start: start + checked, count: checkedEnd - checked))
                            computedCheck = ~crc
                        }
                        return true
                    }
                    if code == 0xFF { return false }
                    out[next &- 1] = 0
                    position = next
                    // Decoded bytes before `next` are final; the check keeps its distance
                    // from the zeros just written, so that its wide loads do not wait on them.
                    let ready = min(next &- 32, checkedEnd)
                    while ready &- checked >= 8 {
                        crc = CRC32C.step8(crc, start + checked, tables)
                        checked &+= 8
                    }
                }
            }
        }
    }

    private mutating func finishCandidate() -> Event? {
        defer { reset() }
        if overflow { return discard(.oversize) }
        if count == 0 && blockCode == 0 { return nil }  // back-to-back delimiters
        if blockRemaining != 0 { return discard(.truncated(length: count)) }
        if count < FrameLayout.minPacketLength { return discard(.tooShort(length: count)) }

        let length = count
        let checked: Result<Frame, FrameError> = buffer.withUnsafeBytes { raw in
            let body = UnsafeRawBufferPointer(rebasing: raw[0..<length - FrameLayout.checkLength])
            let computed = computedCheck ?? CRC32C.checksum(body)
            let received = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self))
            guard computed == received else { return .failure(.checkFailed(received: received, computed: computed)) }
            let version = raw[0]
            guard FrameLayout.versions ~= version else { return .failure(.unsupportedVersion(version)) }
            let flags = FrameFlags(rawValue: raw[1])
            guard flags.isSubset(of: .defined(version: version)), !flags.isSuperset(of: [.authenticated, .sealed]) else {
                return .failure(.reservedFlags(raw[1]))
            }
            let payloadLength = Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 7, as: UInt16.self)))
            let tagLength = flags.isDisjoint(with: [.authenticated, .sealed]) ? 0 : FrameLayout.tagLength
            let expected = FrameLayout.headerLength + payloadLength + tagLength + FrameLayout.checkLength
            guard payloadLength <= FrameLayout.maxPayloadLength, expected == length,
                  !flags.contains(.sealed) || payloadLength >= FrameLayout.counterLength
            else {
                return .failure(.lengthMismatch(declared: payloadLength, packetLength: length))
            }
            let header = FrameHeader(
                version: version,
                flags: flags,
                messageType: raw[2],
                requestID: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 3, as: UInt32.self)),
                payloadLength: payloadLength
            )
            let packetEnd = FrameLayout.headerLength + payloadLength
            let tag = tagLength == 0 ? nil : AuthenticationTag(UnsafeRawBufferPointer(rebasing: raw[packetEnd...]))
            return .success(Frame(header: header, packet: [], tag: tag))
        }
        switch checked {
        case .success(var frame):
            frame.packet = buffer[0..<FrameLayout.headerLength + frame.header.payloadLength]
            statistics.frames += 1
            return .frame(frame)
        case .failure(let error):
            if case .checkFailed = error { statistics.checkFailures += 1 }
            return discard(error)
        }
    }

    private mutating func discard(_ error: FrameError) -> Event {
        statistics.discarded += 1
        return .discarded(error)
    }
}
