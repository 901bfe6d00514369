/// What can go wrong turning a payload into a message or a message into a payload.
public enum WireError: Error, Hashable, Sendable {
    /// The payload ended inside a field: `needed` more bytes were wanted at `offset`.
    case truncated(offset: Int, needed: Int)
    /// Bytes were left over after the last field.
    case trailingBytes(count: Int)
    /// An integer field is outside the range the definitions allow.
    case outOfRange(field: String, value: Int64)
    /// An enumeration field holds a value the definitions do not list.
    case invalidEnum(field: String, value: UInt64)
    /// A string, blob or array is longer than its maximum.
    case tooLong(field: String, count: Int, max: Int)
    /// A fixed-size byte field has the wrong length (when encoding).
    case wrongLength(field: String, count: Int, expected: Int)
    /// A string field is not valid UTF-8.
    case invalidUTF8(field: String)
    /// The message type has no form in this direction (for example an Error request).
    case noSuchDirection(type: MessageType, isResponse: Bool)
}

/// A value with a wire form: structures and message payloads (SPEC §6).
public protocol WireCodable: Sendable, Hashable {
    /// Throws if a field is outside what the definitions allow.
    func validate() throws(WireError)
    /// Appends the fields, packed in order, little-endian. Call `validate()` first.
    func encode(into writer: inout WireWriter)
    /// Reads the fields, checking every range, enumeration and length.
    init(from reader: inout WireReader) throws(WireError)
    /// The fields by name, for display, JSON and conformance vectors.
    var wireValue: WireValue { get }
}

/// The payload of one message type in one direction.
public protocol MessagePayload: WireCodable {
    static var messageType: MessageType { get }
    static var isResponse: Bool { get }
}

extension WireCodable {
    /// Decodes a whole payload: every byte must belong to a field.
    public init(payload: ArraySlice<UInt8>) throws(WireError) {
        let result: Result<Self, WireError> = payload.withUnsafeBytes { raw in
            var reader = WireReader(raw)
            do throws(WireError) {
                let value = try Self(from: &reader)
                guard reader.remaining == 0 else { throw .trailingBytes(count: reader.remaining) }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    public init(payload: [UInt8]) throws(WireError) {
        try self.init(payload: payload[...])
    }

    /// The validated wire form.
    public func encoded() throws(WireError) -> [UInt8] {
        try validate()
        var writer = WireWriter()
        encode(into: &writer)
        return writer.bytes
    }
}

/// Reads little-endian fields from a payload. Only valid inside the `withUnsafeBytes` that made it.
public struct WireReader {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public var remaining: Int { bytes.count - offset }

    @inline(__always)
    private mutating func take<T: FixedWidthInteger>(_: T.Type) throws(WireError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .truncated(offset: offset, needed: size - remaining) }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }

    @inline(__always)
    public mutating func readU8() throws(WireError) -> UInt8 { try take(UInt8.self) }
    @inline(__always)
    public mutating func readU16() throws(WireError) -> UInt16 { try take(UInt16.self) }
    @inline(__always)
    public mutating func readU32() throws(WireError) -> UInt32 { try take(UInt32.self) }
    @inline(__always)
    public mutating func readU64() throws(WireError) -> UInt64 { try take(UInt64.self) }
    @inline(__always)
    public mutating func readI16() throws(WireError) -> Int16 { try take(Int16.self) }

    public mutating func readBytes(count: Int) throws(WireError) -> [UInt8] {
        guard remaining >= count else { throw .truncated(offset: offset, needed: count - remaining) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
        offset += count
        return Array(slice)
    }

    /// An array's element count (u8), checked against the field's maximum.
    public mutating func readCount(max: Int, field: String) throws(WireError) -> Int {
        let count = Int(try readU8())
        guard count <= max else { throw .tooLong(field: field, count: count, max: max) }
        return count
    }

    /// A u16 byte count and that many bytes.
    public mutating func readBlob(max: Int, field: String) throws(WireError) -> [UInt8] {
        let count = Int(try readU16())
        guard count <= max else { throw .tooLong(field: field, count: count, max: max) }
        return try readBytes(count: count)
    }

    /// A u8 byte count and that many bytes of UTF-8.
    public mutating func readString(max: Int, field: String) throws(WireError) -> String {
        let count = Int(try readU8())
        guard count <= max else { throw .tooLong(field: field, count: count, max: max) }
        let utf8 = try readBytes(count: count)
        guard let string = String(validating: utf8, as: UTF8.self) else { throw .invalidUTF8(field: field) }
        return string
    }
}

/// Appends little-endian fields to a byte array.
public struct WireWriter: Sendable {
    public var bytes: [UInt8]

    public init(reservingCapacity capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func writeBytes(_ value: [UInt8]) {
        bytes.append(contentsOf: value)
    }

    /// An array's element count as u8 (validated against its maximum beforehand).
    public mutating func writeCount(_ count: Int) {
        write(UInt8(truncatingIfNeeded: count))
    }

    public mutating func writeBlob(_ value: [UInt8]) {
        write(UInt16(truncatingIfNeeded: value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func writeString(_ value: String) {
        write(UInt8(truncatingIfNeeded: value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }
}

/// A decoded value by field name: what `pumpctl`, the JSON API and the vectors show.
public indirect enum WireValue: Sendable, Hashable {
    case unsigned(UInt64)
    case signed(Int64)
    case string(String)
    case bytes([UInt8])
    case enumeration(String)
    case list([WireValue])
    case record([WireField])
}

public struct WireField: Sendable, Hashable {
    public var name: String
    public var value: WireValue

    public init(_ name: String, _ value: WireValue) {
        self.name = name
        self.value = value
    }
}
