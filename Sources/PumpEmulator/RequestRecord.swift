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

    public private(set) var entries: [Entry] = []
    public private(set) var lastExecutedRequestID: UInt32 = 0
    public let capacity: Int

    public init(capacity: Int = RequestRecord.defaultCapacity) {
        self.capacity = capacity
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
