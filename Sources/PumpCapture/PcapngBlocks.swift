/// Writes the pcapng blocks of a PumpLink capture (SPEC §15, draft-ietf-opsawg-pcapng):
/// little-endian, every block and option value padded to 4 bytes, options ended by
/// `opt_endofopt`, the block's total length repeated after its body.
///
/// Pure: each function appends one whole block to a buffer, so a writer can hand that buffer
/// to a single `write(2)`.
public enum PcapngBlocks {
    /// `LINKTYPE_USER0`: the link type of PumpLink serial interfaces.
    public static let linkTypeUser0: UInt16 = 147
    /// `if_tsresol` 9: timestamps in nanoseconds.
    public static let nanosecondResolution: UInt8 = 9

    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let interfaceDescriptionType: UInt32 = 0x0000_0001
    static let enhancedPacketType: UInt32 = 0x0000_0006
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    // Option codes.
    static let endOfOptions: UInt16 = 0
    static let shbHardware: UInt16 = 2
    static let shbOS: UInt16 = 3
    static let shbUserApplication: UInt16 = 4
    static let ifName: UInt16 = 2
    static let ifDescription: UInt16 = 3
    static let ifTimestampResolution: UInt16 = 9
    static let epbFlags: UInt16 = 2

    /// Block type, total length, trailing total length.
    static let blockOverhead = 12
    /// Interface id, timestamp (2 words), captured length, original length.
    static let enhancedPacketFixedLength = 20

    /// Appends a Section Header Block: version 1.0, section length unknown (-1, so files can
    /// be appended to), and `shb_userappl` naming the writing program.
    public static func appendSectionHeader(userApplication: String?, to buffer: inout [UInt8]) {
        let start = beginBlock(sectionHeaderType, in: &buffer)
        append(byteOrderMagic, to: &buffer)
        append(UInt16(1), to: &buffer)  // major version
        append(UInt16(0), to: &buffer)  // minor version
        append(UInt64.max, to: &buffer)  // section length: not specified
        var options = false
        if let userApplication {
            appendOption(shbUserApplication, utf8: userApplication, to: &buffer)
            options = true
        }
        if options { appendEndOfOptions(to: &buffer) }
        finishBlock(startingAt: start, in: &buffer)
    }

    /// Appends an Interface Description Block. `timestampResolution` is the raw `if_tsresol`
    /// byte (9 = nanoseconds; nil leaves the option out, which means microseconds).
    public static func appendInterfaceDescription(
        linkType: UInt16 = linkTypeUser0,
        snapLength: UInt32 = 0,
        name: String?,
        description: String?,
        timestampResolution: UInt8? = nanosecondResolution,
        to buffer: inout [UInt8]
    ) {
        let start = beginBlock(interfaceDescriptionType, in: &buffer)
        append(linkType, to: &buffer)
        append(UInt16(0), to: &buffer)  // reserved
        append(snapLength, to: &buffer)
        var options = false
        if let name {
            appendOption(ifName, utf8: name, to: &buffer)
            options = true
        }
        if let description {
            appendOption(ifDescription, utf8: description, to: &buffer)
            options = true
        }
        if let timestampResolution {
            appendOptionHeader(ifTimestampResolution, length: 1, to: &buffer)
            buffer.append(timestampResolution)
            pad(afterValueOf: 1, in: &buffer)
            options = true
        }
        if options { appendEndOfOptions(to: &buffer) }
        finishBlock(startingAt: start, in: &buffer)
    }

    /// Appends an Enhanced Packet Block. `timestamp` is in the interface's resolution
    /// (nanoseconds since 1970 for PumpLink's interfaces); `direction` goes to `epb_flags`.
    ///
    /// Throws if the block would exceed pcapng's 32-bit length.
    public static func appendEnhancedPacket(
        interface: CaptureInterfaceID,
        timestamp: UInt64,
        data: UnsafeRawBufferPointer,
        originalLength: Int,
        direction: CaptureDirection?,
        to buffer: inout [UInt8]
    ) throws(CaptureError) {
        // 32 fixed bytes, data padded, epb_flags (8) and opt_endofopt (4).
        let length = blockOverhead + enhancedPacketFixedLength + paddedLength(data.count) + 12
        guard length <= Int(UInt32.max) - 3, originalLength <= Int(UInt32.max) else {
            throw CaptureError(.blockTooLarge(length: max(length, originalLength)))
        }
        let start = beginBlock(enhancedPacketType, in: &buffer)
        append(interface.rawValue, to: &buffer)
        append(UInt32(truncatingIfNeeded: timestamp >> 32), to: &buffer)
        append(UInt32(truncatingIfNeeded: timestamp), to: &buffer)
        append(UInt32(data.count), to: &buffer)
        append(UInt32(max(originalLength, data.count)), to: &buffer)
        buffer.append(contentsOf: data)
        pad(afterValueOf: data.count, in: &buffer)
        if let direction {
            appendOptionHeader(epbFlags, length: 4, to: &buffer)
            append(direction.packetFlags, to: &buffer)
            appendEndOfOptions(to: &buffer)
        }
        finishBlock(startingAt: start, in: &buffer)
    }

    /// `appendEnhancedPacket` for an array.
    public static func appendEnhancedPacket(
        interface: CaptureInterfaceID,
        timestamp: UInt64,
        data: [UInt8],
        originalLength: Int? = nil,
        direction: CaptureDirection?,
        to buffer: inout [UInt8]
    ) throws(CaptureError) {
        let result: Result<Void, CaptureError> = data.withUnsafeBytes { raw in
            do throws(CaptureError) {
                try appendEnhancedPacket(
                    interface: interface, timestamp: timestamp, data: raw,
                    originalLength: originalLength ?? data.count, direction: direction, to: &buffer)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    // MARK: - Pieces

    static func paddedLength(_ count: Int) -> Int {
        (count + 3) & ~3
    }

    private static func beginBlock(_ type: UInt32, in buffer: inout [UInt8]) -> Int {
        let start = buffer.count
        append(type, to: &buffer)
        append(UInt32(0), to: &buffer)  // total length, set by finishBlock
        return start
    }

    private static func finishBlock(startingAt start: Int, in buffer: inout [UInt8]) {
        let length = UInt32(truncatingIfNeeded: buffer.count - start + 4)
        append(length, to: &buffer)
        withUnsafeBytes(of: length.littleEndian) { bytes in
            for index in 0..<4 { buffer[start + 4 + index] = bytes[index] }
        }
    }

    private static func appendOptionHeader(_ code: UInt16, length: Int, to buffer: inout [UInt8]) {
        append(code, to: &buffer)
        append(UInt16(truncatingIfNeeded: length), to: &buffer)
    }

    /// A string option; cut (at a character boundary) to the 65 535 bytes an option holds.
    private static func appendOption(_ code: UInt16, utf8 text: String, to buffer: inout [UInt8]) {
        var bytes = Array(text.utf8)
        if bytes.count > Int(UInt16.max) {
            var end = Int(UInt16.max)
            while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a character
            bytes.removeSubrange(end...)
        }
        appendOptionHeader(code, length: bytes.count, to: &buffer)
        buffer.append(contentsOf: bytes)
        pad(afterValueOf: bytes.count, in: &buffer)
    }

    private static func appendEndOfOptions(to buffer: inout [UInt8]) {
        appendOptionHeader(endOfOptions, length: 0, to: &buffer)
    }

    /// Zeros after a value of `count` bytes, up to the next multiple of 4 (relative to the
    /// block, so the buffer need not start aligned).
    private static func pad(afterValueOf count: Int, in buffer: inout [UInt8]) {
        for _ in count..<paddedLength(count) { buffer.append(0) }
    }

    @inline(__always)
    private static func append<T: FixedWidthInteger>(_ value: T, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }
}
