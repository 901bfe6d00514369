/// The contents of a pcapng file: its sections, interfaces and packets (SPEC §15).
///
/// Reads what PumpLink writes and what other tools write: either byte order (per section),
/// several sections (their interfaces appended in order), any `if_tsresol`, unknown block
/// types skipped. A file cut inside its last block, as a killed writer leaves it, reads up to
/// the last whole block with `truncatedTail` set. Anything else malformed throws a
/// `CaptureError` with the offset of the block at fault; no input makes it trap, and nothing
/// is allocated from a length field beyond the bytes actually present.
public struct Capture: Sendable, Hashable {
    public enum ByteOrder: String, Sendable, Hashable, Codable {
        case littleEndian
        case bigEndian
    }

    public struct Section: Sendable, Hashable {
        public var byteOrder: ByteOrder
        public var majorVersion: UInt16
        public var minorVersion: UInt16
        /// `shb_userappl`: the program that wrote the section.
        public var userApplication: String?
        public var hardware: String?
        public var operatingSystem: String?
        /// Index in `Capture.interfaces` of this section's interface 0.
        public var firstInterfaceIndex: Int
        /// Byte offset of the section header in the data.
        public var offset: Int
    }

    public struct Interface: Sendable, Hashable {
        public var linkType: UInt16
        public var snapLength: UInt32
        /// `if_name`: the port path for PumpLink interfaces.
        public var name: String?
        /// `if_description`: who is at the other end (`pump 3`, `host`, `side A`).
        public var description: String?
        /// The raw `if_tsresol` byte: bit 7 clear, 10^-n seconds; set, 2^-n. 6 if absent.
        public var timestampResolution: UInt8
        /// Which section described it (index in `Capture.sections`).
        public var section: Int

        public init(
            linkType: UInt16 = PcapngBlocks.linkTypeUser0, snapLength: UInt32 = 0, name: String? = nil,
            description: String? = nil, timestampResolution: UInt8 = 6, section: Int = 0
        ) {
            self.linkType = linkType
            self.snapLength = snapLength
            self.name = name
            self.description = description
            self.timestampResolution = timestampResolution
            self.section = section
        }
    }

    public struct Packet: Sendable, Hashable {
        /// Index in `Capture.interfaces` (across sections).
        public var interfaceIndex: Int
        /// Nanoseconds since 1970-01-01 UTC (saturating beyond the year 2554).
        public var timestampNanoseconds: UInt64
        public var direction: CaptureDirection?
        /// The captured bytes: for PumpLink, one line candidate as it was on the wire.
        public var data: [UInt8]
        /// The length on the wire; above `data.count` when the candidate was cut (SPEC §15).
        public var originalLength: Int

        public init(
            interfaceIndex: Int, timestampNanoseconds: UInt64, direction: CaptureDirection?, data: [UInt8],
            originalLength: Int
        ) {
            self.interfaceIndex = interfaceIndex
            self.timestampNanoseconds = timestampNanoseconds
            self.direction = direction
            self.data = data
            self.originalLength = originalLength
        }
    }

    public var sections: [Section] = []
    public var interfaces: [Interface] = []
    public var packets: [Packet] = []
    /// The data ends inside a block (ignored): the writer was killed or the file is still
    /// being written.
    public var truncatedTail = false
    /// Blocks of types this reader does not interpret (name resolution, statistics, ...).
    public var skippedBlocks = 0

    public init() {}

    /// Reads a whole pcapng file held in memory.
    public init(pcapng bytes: [UInt8]) throws(CaptureError) {
        let result: Result<Capture, CaptureError> = bytes.withUnsafeBytes { raw in
            do throws(CaptureError) {
                return .success(try Capture(pcapng: raw))
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    public init(pcapng bytes: UnsafeRawBufferPointer) throws(CaptureError) {
        var reader = PcapngReader(bytes)
        try reader.read(into: &self)
    }

    /// Reads the pcapng file at `path`.
    public init(contentsOfFile path: String) throws(CaptureError) {
        let bytes = try FileIO.readWholeFile(path)
        do {
            try self.init(pcapng: bytes)
        } catch {
            var error = error
            error.path = path
            throw error
        }
    }
}

extension Capture.Interface {
    /// Converts a timestamp in this interface's units to nanoseconds, saturating.
    public func nanoseconds(fromTimestamp ticks: UInt64) -> UInt64 {
        let exponent = Int(timestampResolution & 0x7F)
        if timestampResolution & 0x80 == 0 {
            // 10^-exponent seconds per tick.
            if exponent <= 9 {
                var factor: UInt64 = 1
                for _ in exponent..<9 { factor *= 10 }
                let (product, overflow) = ticks.multipliedReportingOverflow(by: factor)
                return overflow ? .max : product
            }
            var result = ticks
            for _ in 9..<exponent {
                result /= 10
                if result == 0 { break }
            }
            return result
        }
        // 2^-exponent seconds per tick: ticks * 10^9 / 2^exponent in 128 bits.
        let (high, low) = ticks.multipliedFullWidth(by: 1_000_000_000)
        if exponent == 0 { return high == 0 ? low : .max }
        if exponent >= 128 { return 0 }
        let shiftedLow: UInt64
        let shiftedHigh: UInt64
        if exponent >= 64 {
            shiftedLow = high >> UInt64(exponent - 64)
            shiftedHigh = 0
        } else {
            shiftedLow = (low >> UInt64(exponent)) | (high << UInt64(64 - exponent))
            shiftedHigh = high >> UInt64(exponent)
        }
        return shiftedHigh == 0 ? shiftedLow : .max
    }
}

/// The block-by-block parser behind `Capture`.
struct PcapngReader {
    private let bytes: UnsafeRawBufferPointer
    private var bigEndian = false
    /// Interfaces of the current section.
    private var sectionInterfaces = 0
    private var sectionFirstInterface = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func read(into capture: inout Capture) throws(CaptureError) {
        var offset = 0
        while offset < bytes.count {
            let remaining = bytes.count - offset
            if offset == 0 {
                try checkFileStart(remaining: remaining)
            }
            guard remaining >= 12 else {
                capture.truncatedTail = true
                return
            }
            let rawType = loadU32(at: offset, bigEndian: false)
            let isSectionHeader = rawType == PcapngBlocks.sectionHeaderType  // the same in both orders
            if isSectionHeader {
                let magic = loadU32(at: offset + 8, bigEndian: false)
                switch magic {
                case PcapngBlocks.byteOrderMagic: bigEndian = false
                case PcapngBlocks.byteOrderMagic.byteSwapped: bigEndian = true
                default: throw CaptureError(.badByteOrderMagic(magic), offset: offset)
                }
            }
            let type = isSectionHeader ? rawType : (bigEndian ? rawType.byteSwapped : rawType)
            let length32 = loadU32(at: offset + 4)
            guard length32 >= 12 else {
                throw CaptureError(.blockTooShort(blockType: type, length: length32), offset: offset)
            }
            guard length32 % 4 == 0 else {
                throw CaptureError(.blockLengthNotAligned(length: length32), offset: offset)
            }
            let length = Int(length32)
            guard length <= remaining else {
                capture.truncatedTail = true
                return
            }
            let trailing = loadU32(at: offset + length - 4)
            guard trailing == length32 else {
                throw CaptureError(.trailingLengthMismatch(leading: length32, trailing: trailing), offset: offset)
            }
            let block = Block(type: type, offset: offset, length: length)
            switch type {
            case PcapngBlocks.sectionHeaderType:
                try readSectionHeader(block, into: &capture)
            case PcapngBlocks.interfaceDescriptionType:
                try readInterfaceDescription(block, into: &capture)
            case PcapngBlocks.enhancedPacketType:
                try readEnhancedPacket(block, into: &capture)
            default:
                capture.skippedBlocks += 1
            }
            offset += length
        }
    }

    /// The first block must be a section header; checks as much of it as is there.
    private func checkFileStart(remaining: Int) throws(CaptureError) {
        let typeBytes: [UInt8] = [0x0A, 0x0D, 0x0D, 0x0A]
        for index in 0..<min(4, remaining) where bytes[index] != typeBytes[index] {
            let type = remaining >= 4 ? loadU32(at: 0, bigEndian: false) : UInt32(bytes[0])
            throw CaptureError(.notPcapng(blockType: type), offset: 0)
        }
        // A cut byte-order magic must still be the start of one of its two forms.
        if remaining > 8 && remaining < 12 {
            let little: [UInt8] = [0x4D, 0x3C, 0x2B, 0x1A]
            let big: [UInt8] = [0x1A, 0x2B, 0x3C, 0x4D]
            let present = (8..<remaining).map { bytes[$0] }
            guard present.elementsEqual(little.prefix(present.count)) || present.elementsEqual(big.prefix(present.count)) else {
                var magic: UInt32 = 0
                for byte in present { magic = magic << 8 | UInt32(byte) }
                throw CaptureError(.badByteOrderMagic(magic), offset: 0)
            }
        }
    }

    private struct Block {
        var type: UInt32
        var offset: Int
        var length: Int
        /// Where the body ends: before the trailing length.
        var bodyEnd: Int { offset + length - 4 }
    }

    private mutating func readSectionHeader(_ block: Block, into capture: inout Capture) throws(CaptureError) {
        // type, length, magic, major, minor, section length (8), ..., trailing length
        guard block.length >= 28 else {
            throw CaptureError(.blockTooShort(blockType: block.type, length: UInt32(block.length)), offset: block.offset)
        }
        let major = loadU16(at: block.offset + 12)
        let minor = loadU16(at: block.offset + 14)
        guard major == 1 else {
            throw CaptureError(.unsupportedVersion(major: major, minor: minor), offset: block.offset)
        }
        var section = Capture.Section(
            byteOrder: bigEndian ? .bigEndian : .littleEndian,
            majorVersion: major,
            minorVersion: minor,
            firstInterfaceIndex: capture.interfaces.count,
            offset: block.offset
        )
        try forEachOption(in: block, from: block.offset + 24) { (code, value) throws(CaptureError) in
            switch code {
            case PcapngBlocks.shbUserApplication: section.userApplication = string(value)
            case PcapngBlocks.shbHardware: section.hardware = string(value)
            case PcapngBlocks.shbOS: section.operatingSystem = string(value)
            default: break
            }
        }
        capture.sections.append(section)
        sectionFirstInterface = capture.interfaces.count
        sectionInterfaces = 0
    }

    private mutating func readInterfaceDescription(_ block: Block, into capture: inout Capture) throws(CaptureError) {
        guard block.length >= 20 else {
            throw CaptureError(.blockTooShort(blockType: block.type, length: UInt32(block.length)), offset: block.offset)
        }
        var interface = Capture.Interface(
            linkType: loadU16(at: block.offset + 8),
            snapLength: loadU32(at: block.offset + 12),
            timestampResolution: 6,
            section: max(0, capture.sections.count - 1)
        )
        try forEachOption(in: block, from: block.offset + 16) { (code, value) throws(CaptureError) in
            switch code {
            case PcapngBlocks.ifName: interface.name = string(value)
            case PcapngBlocks.ifDescription: interface.description = string(value)
            case PcapngBlocks.ifTimestampResolution:
                guard value.count == 1 else {
                    throw CaptureError(.badOptionLength(code: code, length: UInt16(value.count)), offset: block.offset)
                }
                interface.timestampResolution = bytes[value.lowerBound]
            default: break
            }
        }
        capture.interfaces.append(interface)
        sectionInterfaces += 1
    }

    private mutating func readEnhancedPacket(_ block: Block, into capture: inout Capture) throws(CaptureError) {
        let fixedEnd = block.offset + 8 + PcapngBlocks.enhancedPacketFixedLength
        guard fixedEnd <= block.bodyEnd else {
            throw CaptureError(.blockTooShort(blockType: block.type, length: UInt32(block.length)), offset: block.offset)
        }
        let interfaceID = loadU32(at: block.offset + 8)
        guard Int(interfaceID) < sectionInterfaces else {
            throw CaptureError(
                .unknownInterface(id: interfaceID, interfacesInSection: sectionInterfaces), offset: block.offset)
        }
        let timestamp = UInt64(loadU32(at: block.offset + 12)) << 32 | UInt64(loadU32(at: block.offset + 16))
        let capturedLength = loadU32(at: block.offset + 20)
        let originalLength = loadU32(at: block.offset + 24)
        let room = block.bodyEnd - fixedEnd
        guard Int(capturedLength) <= room else {
            throw CaptureError(.capturedLengthOverrun(capturedLength: capturedLength, room: room), offset: block.offset)
        }
        let dataEnd = fixedEnd + Int(capturedLength)
        var direction: CaptureDirection?
        let optionsStart = min(fixedEnd + PcapngBlocks.paddedLength(Int(capturedLength)), block.bodyEnd)
        try forEachOption(in: block, from: optionsStart) { (code, value) throws(CaptureError) in
            if code == PcapngBlocks.epbFlags {
                guard value.count == 4 else {
                    throw CaptureError(.badOptionLength(code: code, length: UInt16(value.count)), offset: block.offset)
                }
                direction = CaptureDirection(packetFlags: loadU32(at: value.lowerBound))
            }
        }
        let interfaceIndex = sectionFirstInterface + Int(interfaceID)
        let interface = capture.interfaces[interfaceIndex]
        capture.packets.append(
            Capture.Packet(
                interfaceIndex: interfaceIndex,
                timestampNanoseconds: interface.nanoseconds(fromTimestamp: timestamp),
                direction: direction,
                data: Array(UnsafeRawBufferPointer(rebasing: bytes[fixedEnd..<dataEnd])),
                originalLength: Int(originalLength)
            )
        )
    }

    /// Calls `body` with each option's code and value range, up to `opt_endofopt` or the end
    /// of the block's body.
    private func forEachOption(
        in block: Block,
        from start: Int,
        _ body: (UInt16, Range<Int>) throws(CaptureError) -> Void
    ) throws(CaptureError) {
        var offset = start
        while offset + 4 <= block.bodyEnd {
            let code = loadU16(at: offset)
            let length = loadU16(at: offset + 2)
            if code == PcapngBlocks.endOfOptions { return }
            let valueStart = offset + 4
            let valueEnd = valueStart + Int(length)
            guard valueEnd <= block.bodyEnd else {
                throw CaptureError(.optionOverrun(code: code, length: length), offset: block.offset)
            }
            try body(code, valueStart..<valueEnd)
            offset = valueStart + PcapngBlocks.paddedLength(Int(length))
        }
    }

    /// A string option: UTF-8 (invalid sequences replaced), trailing NULs some writers add dropped.
    private func string(_ range: Range<Int>) -> String {
        var end = range.upperBound
        while end > range.lowerBound && bytes[end - 1] == 0 { end -= 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range.lowerBound..<end]), as: UTF8.self)
    }

    private func loadU32(at offset: Int) -> UInt32 {
        loadU32(at: offset, bigEndian: bigEndian)
    }

    private func loadU32(at offset: Int, bigEndian: Bool) -> UInt32 {
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        return bigEndian ? UInt32(bigEndian: value) : UInt32(littleEndian: value)
    }

    private func loadU16(at offset: Int) -> UInt16 {
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        return bigEndian ? UInt16(bigEndian: value) : UInt16(littleEndian: value)
    }
}
