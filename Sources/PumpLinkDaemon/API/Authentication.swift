import Hummingbird

/// What a route requires of the caller.
enum Access: Sendable, Hashable {
    /// No token (the health check only).
    case open
    /// A token whose role is this one or above (observer < patient < clinician).
    case role(Role)
}

extension Role {
    /// observer < patient < clinician: each role may do everything the ones below it may.
    var rank: Int {
        switch self {
        case .observer: 0
        case .patient: 1
        case .clinician: 2
        }
    }

    func includes(_ required: Role) -> Bool { rank >= required.rank }
}

/// Maps a bearer token to the grant it belongs to, comparing in constant time so the response
/// time does not tell how much of a guessed token was right.
struct TokenAuthenticator: Sendable {
    private let grants: [(token: [UInt8], actor: Actor)]

    init(_ grants: [TokenGrant]) {
        // An empty token would match an empty header; such a grant can never be used.
        self.grants = grants.filter { !$0.token.isEmpty }.map { (Array($0.token.utf8), Actor(name: $0.name, role: $0.role)) }
    }

    /// The actor of the request's token. 401 if there is none or it is unknown, 403 if its
    /// role is below `required`.
    func authorize(_ request: Request, required: Role) throws(APIError) -> Actor {
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "an API token is required (Authorization: Bearer <token>)")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError(.unauthorized, "the Authorization header must be \"Bearer <token>\"")
        }
        let presented = Array(parts[1].utf8)
        var match: Actor?
        // Every grant is compared, whichever matches, so the time does not depend on which.
        for grant in grants where Self.constantTimeEquals(grant.token, presented) {
            match = grant.actor
        }
        guard let actor = match else { throw APIError(.unauthorized, "unknown API token") }
        guard actor.role.includes(required) else {
            throw APIError(
                .forbidden, "the role \(actor.role.rawValue) may not do this; it needs \(required.rawValue)",
                details: ["role": actor.role.rawValue, "required": required.rawValue])
        }
        return actor
    }

    /// Equal iff same length and same bytes; the time depends only on the longer length.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt64(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= UInt64(x ^ y)
        }
        return difference == 0
    }
}
