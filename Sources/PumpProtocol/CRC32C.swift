/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value 0xFFFFFFFF, final XOR
/// 0xFFFFFFFF. Check value: CRC-32C("123456789") = 0xE3069283 (SPEC §3).
///
/// Slicing-by-8: eight table look-ups per 8 bytes, no branches in the inner loop.
public struct CRC32C: Sendable {
    public private(set) var value: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The finished check of everything fed so far.
    public var checksum: UInt32 { ~value }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        value = Self.update(value, bytes)
    }

    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            value = Self.update(value, UnsafeRawBufferPointer(buffer))
        }
        if done == nil {
            for byte in bytes {
                value = crc32cTables[Int(UInt8(truncatingIfNeeded: value) ^ byte)] ^ (value >> 8)
            }
        }
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        ~update(0xFFFF_FFFF, bytes)
    }

    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.checksum
    }

    @inline(__always)
    static func update(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        withTables { t in
            var crc = start
            var offset = 0
            let count = bytes.count
            while count - offset >= 8 {
                crc = step8(crc, bytes.baseAddress! + offset, t)
                offset += 8
            }
            while offset < count {
                crc = t[Int(UInt8(truncatingIfNeeded: crc) ^ bytes[offset])] ^ (crc >> 8)
                offset += 1
            }
            return crc
        }
    }

    /// Calls `body` with the eight tables, for loops that call `step8` themselves.
    @inline(__always)
    static func withTables<R>(_ body: (UnsafeBufferPointer<UInt32>) -> R) -> R {
        crc32cTables.withUnsafeBufferPointer(body)
    }

    /// Eight bytes at `bytes` into the running (not finished) value `crc`.
    @inline(__always)
    static func step8(_ crc: UInt32, _ bytes: UnsafeRawPointer, _ t: UnsafeBufferPointer<UInt32>) -> UInt32 {
        let one = UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)) ^ crc
        let two = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        return t[7 * 256 + Int(one & 0xFF)]
            ^ t[6 * 256 + Int((one >> 8) & 0xFF)]
            ^ t[5 * 256 + Int((one >> 16) & 0xFF)]
            ^ t[4 * 256 + Int(one >> 24)]
            ^ t[3 * 256 + Int(two & 0xFF)]
            ^ t[2 * 256 + Int((two >> 8) & 0xFF)]
            ^ t[1 * 256 + Int((two >> 16) & 0xFF)]
            ^ t[Int(two >> 24)]
    }
}

/// Eight 256-entry tables, flattened: table k at [k * 256 ..< (k + 1) * 256].
private let crc32cTables: [UInt32] = {
    var tables = [UInt32](repeating: 0, count: 8 * 256)
    for index in 0..<256 {
        var crc = UInt32(index)
        for _ in 0..<8 {
            crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
        }
        tables[index] = crc
    }
    for index in 0..<256 {
        for k in 1..<8 {
            let previous = tables[(k - 1) * 256 + index]
            tables[k * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
        }
    }
    return tables
}()
