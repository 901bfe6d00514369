import PumpProtocol

/// How a request ended when it did not end with the response asked for (SPEC §7).
///
/// The distinction that matters for safety is between `timedOut` (a read: nothing changed,
/// retry at will), `refused` (the pump said no and changed nothing) and `uncertain` (a
/// changing request was sent and no answer came: it may or may not have run, and must be
/// resolved from the pump's own record before anything else is dosed).
public enum SessionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No session: `connect()` has not succeeded, or the link went down.
    case notConnected
    /// A read got no answer after every retransmission. Nothing changed.
    case timedOut(MessageType)
    /// A changing request was sent but its outcome could not be learned.
    case uncertain(requestID: UInt32, MessageType)
    /// The pump refused the request and changed nothing.
    case refused(ErrorCode, detail: UInt32, MessageType)
    /// The pump answered with something that is not a response to the request.
    case unexpectedResponse(MessageType, received: UInt8)
    /// The pump's Hello response failed authentication: it does not hold this key.
    case authenticationFailed
    /// The pump was built from other message definitions; talking on would be unsafe.
    case definitionsMismatch(pump: [UInt8])
    /// The pump was built from another definition of this message (SPEC §5.4): it is neither
    /// sent nor accepted on this link.
    case messageDefinitionDiffers(MessageType)
    /// No protocol version in common.
    case unsupportedVersion(pumpChose: UInt8)
    /// A response did not decode.
    case malformedResponse(MessageType, WireError)
    /// A bulk read found the pump's log or program inconsistent with itself.
    case inconsistentData(String)
    /// A changing request was not sent because it could not be recorded first.
    case notSent(MessageType, String)
    /// A step of a program push failed; the previously active program still runs.
    case pushFailed(String)

    public var description: String {
        switch self {
        case .notConnected: "not connected to the pump"
        case .timedOut(let type): "\(type.name): no answer from the pump"
        case .uncertain(let id, let type): "\(type.name) (request \(id)): sent, but the outcome is unknown"
        case .refused(let code, let detail, let type): "\(type.name) refused by the pump: \(code.name) (detail \(detail))"
        case .unexpectedResponse(let type, let received): "\(type.name): unexpected response type \(received)"
        case .authenticationFailed: "the pump failed authentication: wrong pairing key?"
        case .definitionsMismatch(let pump): "the pump uses other message definitions (\(pump.hexadecimal))"
        case .messageDefinitionDiffers(let type): "\(type.name): the pump was built from another definition of this message; it is not used on this link"
        case .unsupportedVersion(let chose): "no protocol version in common (pump chose \(chose))"
        case .malformedResponse(let type, let error): "\(type.name): malformed response: \(error)"
        case .inconsistentData(let what): "inconsistent data from the pump: \(what)"
        case .notSent(let type, let why): "\(type.name) not sent: \(why)"
        case .pushFailed(let why): "program push failed, the previous program still runs: \(why)"
        }
    }
}
