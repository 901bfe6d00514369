import Foundation

/// pumplinkd's one configuration file (JSON). Relative paths are relative to the file.
///
/// ```json
/// {
///   "pumps": [{"id": "bed-12", "port": "/dev/serial/by-id/usb-FTDI_...", "keyFile": "keys/bed-12.key"}],
///   "drugLibrary": "drug-library.json",
///   "dataDirectory": "/var/lib/pumplink",
///   "telemetryIntervalMs": 1000,
///   "api": {"host": "127.0.0.1", "port": 8750, "tokens": [{"token": "...", "name": "dr-lee", "role": "clinician"}]}
/// }
/// ```
public struct DaemonConfiguration: Sendable, Codable {
    public struct PumpEntry: Sendable, Codable, Hashable {
        /// The daemon's name for the pump, used in the API.
        public var id: String
        /// Its serial port (a device, a by-id link, a pseudo-terminal or a symlink to one).
        public var port: String
        /// File holding its pairing key (64 hex digits).
        public var keyFile: String

        public init(id: String, port: String, keyFile: String) {
            self.id = id
            self.port = port
            self.keyFile = keyFile
        }
    }

    public var pumps: [PumpEntry]
    /// A drug library file overriding the shipped default; nil for the default.
    public var drugLibrary: String?
    /// Where the database lives.
    public var dataDirectory: String
    public var telemetryIntervalMs: UInt32?
    public var api: APIConfiguration

    public init(pumps: [PumpEntry], drugLibrary: String? = nil, dataDirectory: String, telemetryIntervalMs: UInt32? = nil, api: APIConfiguration) {
        self.pumps = pumps
        self.drugLibrary = drugLibrary
        self.dataDirectory = dataDirectory
        self.telemetryIntervalMs = telemetryIntervalMs
        self.api = api
    }

    /// Reads and checks a configuration file, resolving relative paths against its folder.
    public static func load(from path: String) throws(DaemonError) -> DaemonConfiguration {
        let url = URL(fileURLWithPath: path)
        var configuration: DaemonConfiguration
        do {
            configuration = try JSONDecoder().decode(DaemonConfiguration.self, from: Data(contentsOf: url))
        } catch let error as DecodingError {
            throw DaemonError(.badRequest, "\(path): \(Self.describe(error))")
        } catch {
            throw DaemonError(.badRequest, "\(path): \(error.localizedDescription)")
        }
        let base = url.deletingLastPathComponent()
        func resolve(_ relative: String) -> String {
            relative.hasPrefix("/") ? relative : base.appendingPathComponent(relative).standardized.path
        }
        configuration.dataDirectory = resolve(configuration.dataDirectory)
        configuration.drugLibrary = configuration.drugLibrary.map(resolve)
        for index in configuration.pumps.indices {
            configuration.pumps[index].keyFile = resolve(configuration.pumps[index].keyFile)
        }
        try configuration.check()
        return configuration
    }

    public func check() throws(DaemonError) {
        var seen = Set<String>()
        for pump in pumps {
            guard !pump.id.isEmpty, pump.id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
                throw DaemonError(.badRequest, "pump id '\(pump.id)': use letters, digits, '-', '_' and '.'")
            }
            guard seen.insert(pump.id).inserted else { throw DaemonError(.badRequest, "pump id '\(pump.id)' appears twice") }
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            "missing '\(key.stringValue)' at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            "\(context.debugDescription) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        @unknown default:
            "\(error)"
        }
    }
}
