/// The message definitions a side was built from, as Hello and Definitions state them (SPEC §1.3,
/// §5.4): the hash, and each message's fingerprint.
public struct MessageDefinitions: Sendable, Hashable {
    public var hash: [UInt8]
    public var fingerprints: [MessageFingerprint]

    public init(hash: [UInt8], fingerprints: [MessageFingerprint]) {
        self.hash = hash
        self.fingerprints = fingerprints
    }

    /// The definitions this build was generated from.
    public static let current = MessageDefinitions(
        hash: ProtocolDefinitions.hash,
        fingerprints: MessageType.allCases.map { MessageFingerprint(messageType: $0.rawValue, fingerprint: $0.fingerprint) }
    )

    /// The messages this build knows whose fingerprint `other` does not share: changed there,
    /// or not known there at all.
    public func differing(from other: [MessageFingerprint]) -> Set<MessageType> {
        var theirs: [UInt8: UInt32] = [:]
        for entry in other { theirs[entry.messageType] = entry.fingerprint }
        return Set(MessageType.allCases.filter { theirs[$0.rawValue] != $0.fingerprint })
    }
}
