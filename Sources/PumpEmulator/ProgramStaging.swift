import PumpProtocol

/// The staged program slot (SPEC §9): bytes arrive in chunks, in any order, any number of
/// times; the active program is untouched until activation takes a complete, verified copy.
public struct ProgramStaging: Sendable, Hashable, Codable {
    public static let maxLength = 4096

    public let programID: UInt32
    public let statedChecksum: UInt32
    public private(set) var bytes: [UInt8]
    private var received: [Bool]
    public private(set) var receivedLength = 0

    public init(programID: UInt32, length: Int, checksum: UInt32) {
        self.programID = programID
        self.statedChecksum = checksum
        self.bytes = [UInt8](repeating: 0, count: length)
        self.received = [Bool](repeating: false, count: length)
    }

    private enum CodingKeys: String, CodingKey {
        case programID, statedChecksum, bytes, received, receivedLength
    }

    /// Reads a persisted staged slot, refusing one that staging could never have produced (a
    /// length outside 1...4096, byte and received-mark counts that differ, a wrong count).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        programID = try container.decode(UInt32.self, forKey: .programID)
        statedChecksum = try container.decode(UInt32.self, forKey: .statedChecksum)
        bytes = try container.decode([UInt8].self, forKey: .bytes)
        received = try container.decode([Bool].self, forKey: .received)
        receivedLength = try container.decode(Int.self, forKey: .receivedLength)
        guard (1...Self.maxLength).contains(bytes.count) else {
            throw DecodingError.dataCorruptedError(forKey: .bytes, in: container, debugDescription: "\(bytes.count) bytes is not 1...\(Self.maxLength)")
        }
        guard received.count == bytes.count, receivedLength == received.count(where: { $0 }) else {
            throw DecodingError.dataCorruptedError(forKey: .received, in: container, debugDescription: "does not match the staged bytes")
        }
    }

    public var isComplete: Bool { receivedLength == bytes.count }
    public var checksum: UInt32 { CRC32C.checksum(bytes) }

    /// Writes a chunk; false if it does not fit inside the stated length.
    public mutating func write(_ data: [UInt8], at offset: Int) -> Bool {
        guard offset >= 0, offset <= bytes.count, data.count <= bytes.count - offset else { return false }
        for (index, byte) in data.enumerated() {
            let position = offset + index
            bytes[position] = byte
            if !received[position] {
                received[position] = true
                receivedLength += 1
            }
        }
        return true
    }

    public enum Problem: Error, Hashable, Sendable {
        case incomplete
        case checksumMismatch(computed: UInt32)
        case undecodable(WireError)
        case programIDMismatch(decoded: UInt32)
    }

    /// The program, if the staged bytes are complete, match the stated checksum, decode, and
    /// carry the staged id.
    public func program() -> Result<Program, Problem> {
        guard isComplete else { return .failure(.incomplete) }
        let computed = checksum
        guard computed == statedChecksum else { return .failure(.checksumMismatch(computed: computed)) }
        let program: Program
        do {
            program = try Program(payload: bytes)
        } catch {
            return .failure(.undecodable(error))
        }
        guard program.programId == programID else { return .failure(.programIDMismatch(decoded: program.programId)) }
        return .success(program)
    }
}
