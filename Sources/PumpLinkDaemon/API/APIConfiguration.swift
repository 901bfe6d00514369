/// How the daemon's HTTP API listens and whom it lets in (README, protocol/openapi.json).
///
/// JSON form (every key optional except `tokens`):
/// `{"host": "127.0.0.1", "port": 8750, "unixSocket": "/run/pumplinkd.sock",
///   "tokens": [{"token": "...", "name": "dr-lee", "role": "clinician"}],
///   "maxRequestBodyBytes": 65536, "streamBufferSize": 256}`
public struct APIConfiguration: Sendable, Hashable, Codable {
    /// TCP address to listen on; loopback by default, so the API is local unless asked otherwise.
    public var host: String
    public var port: Int
    /// If set, listen on this Unix domain socket instead of TCP.
    public var unixSocket: String?
    /// The API tokens and the role each one grants.
    public var tokens: [TokenGrant]
    /// Request bodies larger than this are refused with 413 before they are decoded.
    public var maxRequestBodyBytes: Int
    /// Updates buffered per `/v1/stream` client; a client that falls further behind loses the
    /// oldest ones (it never slows the links or other clients).
    public var streamBufferSize: Int

    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 8750
    public static let defaultMaxRequestBodyBytes = 64 * 1024
    public static let defaultStreamBufferSize = 256

    public init(
        host: String = Self.defaultHost,
        port: Int = Self.defaultPort,
        unixSocket: String? = nil,
        tokens: [TokenGrant] = [],
        maxRequestBodyBytes: Int = Self.defaultMaxRequestBodyBytes,
        streamBufferSize: Int = Self.defaultStreamBufferSize
    ) {
        self.host = host
        self.port = port
        self.unixSocket = unixSocket
        self.tokens = tokens
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.streamBufferSize = streamBufferSize
    }

    private enum CodingKeys: String, CodingKey {
        case host, port, unixSocket, tokens, maxRequestBodyBytes, streamBufferSize
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            host: try container.decodeIfPresent(String.self, forKey: .host) ?? Self.defaultHost,
            port: try container.decodeIfPresent(Int.self, forKey: .port) ?? Self.defaultPort,
            unixSocket: try container.decodeIfPresent(String.self, forKey: .unixSocket),
            tokens: try container.decode([TokenGrant].self, forKey: .tokens),
            maxRequestBodyBytes: try container.decodeIfPresent(Int.self, forKey: .maxRequestBodyBytes)
                ?? Self.defaultMaxRequestBodyBytes,
            streamBufferSize: try container.decodeIfPresent(Int.self, forKey: .streamBufferSize)
                ?? Self.defaultStreamBufferSize
        )
    }

    /// Checks what `buildAPI` relies on; the executable calls it before starting.
    public func validate() throws(APIConfigurationError) {
        if unixSocket == nil {
            guard (0...65535).contains(port) else { throw .invalid("port \(port) is not in 0...65535") }
            guard !host.isEmpty else { throw .invalid("host is empty") }
        } else if unixSocket?.isEmpty == true {
            throw .invalid("unixSocket is empty")
        }
        guard maxRequestBodyBytes >= 1024 else {
            throw .invalid("maxRequestBodyBytes \(maxRequestBodyBytes) is below 1024 (a program does not fit)")
        }
        guard streamBufferSize >= 1 else { throw .invalid("streamBufferSize must be at least 1") }
        var seen: Set<String> = []
        for grant in tokens {
            // Short tokens can be guessed; 16 characters is the least a generated token has.
            guard grant.token.utf8.count >= 16 else {
                throw .invalid("the token of \(grant.name) is shorter than 16 characters")
            }
            guard seen.insert(grant.token).inserted else {
                throw .invalid("the token of \(grant.name) is given twice")
            }
        }
    }
}

public struct APIConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    static func invalid(_ message: String) -> Self { Self(message: message) }

    public var description: String { "invalid API configuration: \(message)" }
}

/// One API token: who holds it and what it may do.
public struct TokenGrant: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The bearer token, sent as `Authorization: Bearer <token>`.
    public var token: String
    /// Who holds it; recorded as the actor in the audit log.
    public var name: String
    public var role: Role

    public init(token: String, name: String, role: Role) {
        self.token = token
        self.name = name
        self.role = role
    }

    /// Never prints the token itself, so a logged configuration does not leak it.
    public var description: String { "TokenGrant(name: \(name), role: \(role.rawValue))" }
}
