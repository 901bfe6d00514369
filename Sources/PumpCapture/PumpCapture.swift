// Link captures in pcapng (SPEC §15).
//
// - `PcapngBlocks` writes the three block types a PumpLink capture uses; `Capture` reads any
//   pcapng file (both byte orders, several sections, unknown blocks skipped, a partial last
//   block tolerated) and throws `CaptureError` on anything malformed.
// - `CandidateSplitter` cuts one direction's bytes into the line candidates that get recorded.
// - `CaptureWriter` is the file sink: one `write(2)` per block, rotation by size.
// - `CapturingLink` wraps any `ByteLink` and records what passes through it while its
//   `CaptureTap` is on.
// - `Capture.decoded()` runs every recorded candidate through the frame decoder for people
//   (`DecodedCapture.text()`) and scripts (`DecodedCapture.json()`).

/// Which way a candidate crossed the interface it was recorded on (pcapng `epb_flags` bits 0-1).
public enum CaptureDirection: String, Sendable, Hashable, Codable, CaseIterable {
    /// Received on the interface: `01`.
    case inbound
    /// Sent on the interface: `10`.
    case outbound

    /// The `epb_flags` word for this direction.
    public var packetFlags: UInt32 {
        switch self {
        case .inbound: 1
        case .outbound: 2
        }
    }

    /// The direction in an `epb_flags` word; nil for "not known" (`00`) and the invalid `11`.
    public init?(packetFlags: UInt32) {
        switch packetFlags & 0b11 {
        case 1: self = .inbound
        case 2: self = .outbound
        default: return nil
        }
    }
}

/// An interface of a capture file: its position among the file's Interface Description Blocks.
public struct CaptureInterfaceID: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public var description: String { "\(rawValue)" }
}

/// What went wrong reading or writing a capture: a code with the offending values, and where.
public struct CaptureError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        // The format. `offset` is the start of the block at fault.

        /// The data does not start with a Section Header Block (block type 0x0A0D0D0A).
        case notPcapng(blockType: UInt32)
        /// A section header's byte-order magic is neither 0x1A2B3C4D nor its byte swap.
        case badByteOrderMagic(UInt32)
        /// A section of a major version other than 1: its layout is unknown.
        case unsupportedVersion(major: UInt16, minor: UInt16)
        /// A block's total length is below 12 bytes or below its type's fixed fields.
        case blockTooShort(blockType: UInt32, length: UInt32)
        /// A block's total length is not a multiple of 4.
        case blockLengthNotAligned(length: UInt32)
        /// The total length at the end of a block differs from the one at its start.
        case trailingLengthMismatch(leading: UInt32, trailing: UInt32)
        /// An option's value runs past the end of its block.
        case optionOverrun(code: UInt16, length: UInt16)
        /// An option whose value has the wrong size for its code (e.g. `if_tsresol` not 1 byte).
        case badOptionLength(code: UInt16, length: UInt16)
        /// A packet block names an interface its section has not described.
        case unknownInterface(id: UInt32, interfacesInSection: Int)
        /// A packet block's captured length exceeds the room its block has for data.
        case capturedLengthOverrun(capturedLength: UInt32, room: Int)

        // Files.

        /// The file could not be created, opened, written, read or removed; see `errno`.
        case fileSystem
        /// A file to be created already exists (the writer never overwrites unless asked).
        case fileExists
        /// The writer was closed.
        case closed
        /// A block would not fit the 32-bit length field of pcapng.
        case blockTooLarge(length: Int)
    }

    public var code: Code
    /// The byte offset in the data of the block at fault, for format errors.
    public var offset: Int?
    /// The file concerned, for file errors.
    public var path: String?
    /// The system call that failed, e.g. `open`, `write`.
    public var operation: String?
    public var errno: Int32?

    public init(_ code: Code, offset: Int? = nil, path: String? = nil, operation: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.offset = offset
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        var text = path.map { "capture \($0): " } ?? "capture: "
        switch code {
        case .notPcapng(let blockType):
            text += "not a pcapng file (first block type 0x\(hex(blockType)), expected 0x0a0d0d0a)"
        case .badByteOrderMagic(let magic):
            text += "bad byte-order magic 0x\(hex(magic))"
        case .unsupportedVersion(let major, let minor):
            text += "unsupported pcapng version \(major).\(minor)"
        case .blockTooShort(let blockType, let length):
            text += "block of type 0x\(hex(blockType)) too short (\(length) bytes)"
        case .blockLengthNotAligned(let length):
            text += "block length \(length) is not a multiple of 4"
        case .trailingLengthMismatch(let leading, let trailing):
            text += "block length \(leading) at the start but \(trailing) at the end"
        case .optionOverrun(let code, let length):
            text += "option \(code) of \(length) bytes runs past its block"
        case .badOptionLength(let code, let length):
            text += "option \(code) has a value of \(length) bytes"
        case .unknownInterface(let id, let count):
            text += "packet on interface \(id), but the section describes \(count)"
        case .capturedLengthOverrun(let captured, let room):
            text += "captured length \(captured) exceeds the block's \(room) bytes of data"
        case .fileSystem:
            text += "file system error"
        case .fileExists:
            text += "file exists"
        case .closed:
            text += "writer closed"
        case .blockTooLarge(let length):
            text += "block of \(length) bytes is too large"
        }
        if let offset { text += " at offset \(offset)" }
        switch (operation, errno) {
        case (let operation?, let errno?): text += " (\(operation): \(errnoText(errno)))"
        case (let operation?, nil): text += " (\(operation))"
        case (nil, let errno?): text += " (\(errnoText(errno)))"
        case (nil, nil): break
        }
        return text
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
