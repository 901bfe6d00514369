#if canImport(Glibc)
import Glibc
#endif

/// Cuts the bytes of one direction of a link into line candidates, the unit a capture records
/// (SPEC §15): the bytes between two `0x00` delimiters, delimiters excluded. Empty candidates
/// (back-to-back delimiters) yield nothing.
///
/// Feed chunks as they arrive, in any splits: a candidate that spans chunks is kept until its
/// delimiter comes. A candidate longer than `maxRecordedLength` keeps only its first bytes and
/// reports its full length when it finally ends. A candidate that lies within one chunk is
/// passed on without copying; only one that spans chunks is copied, into one buffer allocated
/// once.
public struct CandidateSplitter: Sendable {
    /// What SPEC §15 records of an overlong candidate.
    public static let defaultMaxRecordedLength = 2048

    public let maxRecordedLength: Int
    /// The recorded part of the unfinished candidate.
    private var pending: [UInt8] = []
    /// The unfinished candidate's full length so far.
    private var pendingLength = 0
    /// Bytes up to the first delimiter are the tail of a candidate whose start was not seen.
    private var skippingToDelimiter: Bool

    /// - Parameter joinedMidStream: the bytes fed start somewhere inside the stream (recording
    ///   switched on while the link was running), so everything before the first delimiter is
    ///   dropped instead of being recorded as a candidate cut at its start.
    public init(maxRecordedLength: Int = defaultMaxRecordedLength, joinedMidStream: Bool = false) {
        self.maxRecordedLength = max(1, maxRecordedLength)
        self.skippingToDelimiter = joinedMidStream
    }

    /// Bytes of a candidate that has not ended yet (its full length so far).
    public var unfinishedLength: Int { pendingLength }

    /// Forgets any unfinished candidate; with `joinedMidStream`, also drops bytes up to the next
    /// delimiter.
    public mutating func reset(joinedMidStream: Bool = false) {
        pending.removeAll(keepingCapacity: true)
        pendingLength = 0
        skippingToDelimiter = joinedMidStream
    }

    /// Splits `bytes`, calling `handle` with each finished candidate's recorded bytes (valid
    /// only during the call) and its full length, in order.
    public mutating func split(
        _ bytes: UnsafeRawBufferPointer,
        _ handle: (_ recorded: UnsafeRawBufferPointer, _ originalLength: Int) throws -> Void
    ) rethrows {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var index = 0
        while index < count {
            let delimiter: Int
            if let found = memchr(base + index, 0, count - index) {
                delimiter = base.distance(to: UnsafeRawPointer(found))
            } else {
                delimiter = count
            }
            if skippingToDelimiter {
                guard delimiter < count else { return }
                skippingToDelimiter = false
                index = delimiter + 1
                continue
            }
            let segment = UnsafeRawBufferPointer(rebasing: bytes[index..<delimiter])
            if delimiter == count {
                keep(segment)
                return
            }
            if pendingLength == 0 {
                if segment.count > 0 {
                    let recorded = UnsafeRawBufferPointer(rebasing: segment.prefix(maxRecordedLength))
                    try handle(recorded, segment.count)
                }
            } else {
                keep(segment)
                let length = pendingLength
                defer {
                    pending.removeAll(keepingCapacity: true)
                    pendingLength = 0
                }
                try pending.withUnsafeBytes { try handle($0, length) }
            }
            index = delimiter + 1
        }
    }

    /// Splits an array; convenient where allocation does not matter.
    public mutating func split(_ bytes: [UInt8]) -> [RecordedCandidate] {
        var candidates: [RecordedCandidate] = []
        bytes.withUnsafeBytes { raw in
            split(raw) { recorded, length in
                candidates.append(RecordedCandidate(bytes: Array(recorded), originalLength: length))
            }
        }
        return candidates
    }

    private mutating func keep(_ segment: UnsafeRawBufferPointer) {
        guard segment.count > 0 else { return }
        let room = maxRecordedLength - pending.count
        if room > 0 {
            if pending.capacity == 0 { pending.reserveCapacity(maxRecordedLength) }
            pending.append(contentsOf: segment.prefix(room))
        }
        pendingLength += segment.count
    }
}

/// A finished candidate: what is recorded of it and its length on the wire.
public struct RecordedCandidate: Sendable, Hashable {
    public var bytes: [UInt8]
    public var originalLength: Int

    public init(bytes: [UInt8], originalLength: Int) {
        self.bytes = bytes
        self.originalLength = originalLength
    }
}
