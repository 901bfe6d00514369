import PumpProtocol

/// The pump's record of the changing requests it has executed (SPEC §7.3, §7.4): what makes a
/// retransmitted request safe. A request id the record holds is answered from it and never
/// executed again; any other id not above the last executed one is refused as stale, so a
/// held-back copy of a request cannot run after a later one did.
///
/// The record keeps the newest `capacity` ids (evicting the smallest first) and is persisted
/// with the pump's state, so neither a new session nor a restart makes the pump forget.
public struct RequestRecord: Sendable, Hashable, Codable {
    public struct Entry: Sendable, Hashable, Codable {
        public var requestID: UInt32
        public var messageType: UInt8
        /// `requestDigest` of the request: the same id with other content is a conflict.
        public var digest: [UInt8]
        public var responseType: UInt8
        public var responsePayload: [UInt8]
    }

    public enum Verdict: Sendable, Hashable {
        /// Not seen: process it.
        case fresh
        /// Processed before: send this response again.
        case repeated(Entry)
        /// The id was used for different content.
        case conflict
        /// Not above the last executed id and not remembered: refused as a replay.
        case stale
    }

    public static let defaultCapacity = 64
    /// QueryRequest's `responsePayload` holds at most this many bytes (SPEC §6.9).
    static let maxStoredAnswerBytes = 960

    public private(set) var entries: [Entry] = []
    public private(set) var lastExecutedRequestID: UInt32 = 0
    public let capacity: Int

    public init(capacity: Int = RequestRecord.defaultCapacity) {
        self.capacity = max(capacity, 1)
    }

    private enum CodingKeys: String, CodingKey {
        case entries, lastExecutedRequestID, capacity
    }

    /// Reads a persisted record, refusing one the pump could never have kept: a capacity
    /// outside 1...4096, more entries than that, an id twice or above the last executed one,
    /// or a stored answer too long for QueryRequest (SPEC §6.9: 960 bytes).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entries = try container.decode([Entry].self, forKey: .entries)
        lastExecutedRequestID = try container.decode(UInt32.self, forKey: .lastExecutedRequestID)
        capacity = try container.decode(Int.self, forKey: .capacity)
        func corrupt(_ key: CodingKeys, _ reason: String) -> DecodingError {
            DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: reason)
        }
        guard (1...4096).contains(capacity) else { throw corrupt(.capacity, "\(capacity) is not 1...4096") }
        guard entries.count <= capacity else { throw corrupt(.entries, "more entries than the capacity") }
        guard Set(entries.map(\.requestID)).count == entries.count else { throw corrupt(.entries, "an id twice") }
        guard entries.allSatisfy({ $0.requestID > 0 && $0.requestID <= lastExecutedRequestID }) else {
            throw corrupt(.entries, "an id above lastExecutedRequestID or 0")
        }
        guard entries.allSatisfy({ $0.responsePayload.count <= Self.maxStoredAnswerBytes }) else {
            throw corrupt(.entries, "a stored answer too long to report")
        }
    }

    public var oldestRememberedRequestID: UInt32 { entries.map(\.requestID).min() ?? 0 }

    public func entry(for requestID: UInt32) -> Entry? {
        entries.first { $0.requestID == requestID }
    }

    public func verdict(requestID: UInt32, messageType: UInt8, payload: ArraySlice<UInt8>) -> Verdict {
        if let entry = entry(for: requestID) {
            let same = entry.messageType == messageType
                && entry.digest == requestDigest(messageType: messageType, payload: payload)
            return same ? .repeated(entry) : .conflict
        }
        return requestID > lastExecutedRequestID ? .fresh : .stale
    }

    public mutating func remember(
        requestID: UInt32,
        messageType: UInt8,
        payload: ArraySlice<UInt8>,
        responseType: UInt8,
        responsePayload: [UInt8]
    ) {
        entries.append(Entry(
            requestID: requestID,
            messageType: messageType,
            digest: requestDigest(messageType: messageType, payload: payload),
            responseType: responseType,
            responsePayload: responsePayload
        ))
        lastExecutedRequestID = max(lastExecutedRequestID, requestID)
        if entries.count > capacity {
            entries.sort { $0.requestID < $1.requestID }
            entries.removeFirst(entries.count - capacity)
        }
    }
}
