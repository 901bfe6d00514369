import Foundation
import SerialTransport

/// pumplinkd's one configuration file (JSON). Relative paths are relative to the file.
///
/// ```json
/// {
///   "pumps": [
///     {"id": "bed-12", "port": "/dev/serial/by-id/usb-FTDI_...", "keyFile": "keys/bed-12.key", "baud": 57600},
///     {"id": "bed-14", "usb": {"vendorId": "0403", "productId": "6001", "serialNumber": "A10K3"}, "keyFile": "keys/bed-14.key"}
///   ],
///   "drugLibrary": "drug-library.json",
///   "dataDirectory": "/var/lib/pumplink",
///   "telemetryIntervalMs": 1000,
///   "maxClockDistanceSeconds": 86400,
///   "api": {"host": "127.0.0.1", "port": 8750, "tokens": [{"token": "...", "name": "dr-lee", "role": "clinician"}]}
/// }
/// ```
public struct DaemonConfiguration: Sendable, Codable {
    public struct PumpEntry: Sendable, Codable, Hashable {
        /// The daemon's name for the pump, used in the API.
        public var id: String
        /// Its serial port (a device, a by-id link, a pseudo-terminal or a symlink to one); for a
        /// pump found by `usb`, a description of the match (`usb:0403:6001:A12`).
        public var port: String
        /// Find the port by USB vendor and product id (and serial number) at each connection,
        /// instead of by path: the adapter may be re-plugged under another device name.
        public var usb: USBDevice?
        /// File holding its pairing key (64 hex digits).
        public var keyFile: String
        /// The line's bit rate (8N1), 115 200 unless given; waits for answers allow for its line
        /// time (SPEC §7.2).
        public var baud = 115_200
        /// The lowest protocol version offered to the pump (SPEC §5.2): 2 for a pump known to
        /// seal, so that nobody on the line can talk the link down to version 1 (in clear); 1
        /// (the default) also serves version 1 pumps.
        public var minimumProtocolVersion: UInt8 = 1

        public init(id: String, port: String, keyFile: String) {
            self.id = id
            self.port = port
            self.keyFile = keyFile
        }

        public init(id: String, usb: USBDevice, keyFile: String) {
            self.id = id
            self.port = usb.description
            self.usb = usb
            self.keyFile = keyFile
        }

        private enum CodingKeys: String, CodingKey { case id, port, usb, keyFile, baud, minimumProtocolVersion }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(String.self, forKey: .id)
            keyFile = try container.decode(String.self, forKey: .keyFile)
            usb = try container.decodeIfPresent(USBDevice.self, forKey: .usb)
            baud = try container.decodeIfPresent(Int.self, forKey: .baud) ?? 115_200
            guard baud > 0 else {
                throw DecodingError.dataCorruptedError(
                    forKey: .baud, in: container, debugDescription: "pump '\(id)': baud is a bit rate above 0, e.g. 9600 or 115200")
            }
            minimumProtocolVersion = try container.decodeIfPresent(UInt8.self, forKey: .minimumProtocolVersion) ?? 1
            guard (1...2).contains(minimumProtocolVersion) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .minimumProtocolVersion, in: container,
                    debugDescription: "pump '\(id)': minimumProtocolVersion is 1 or 2")
            }
            let port = try container.decodeIfPresent(String.self, forKey: .port)
            switch (port, usb) {
            case (let port?, nil): self.port = port
            case (nil, let usb?): self.port = usb.description
            default:
                throw DecodingError.dataCorruptedError(
                    forKey: .port, in: container, debugDescription: "pump '\(id)': give either 'port' or 'usb'")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(keyFile, forKey: .keyFile)
            if let usb { try container.encode(usb, forKey: .usb) } else { try container.encode(port, forKey: .port) }
            if baud != 115_200 { try container.encode(baud, forKey: .baud) }
            if minimumProtocolVersion != 1 { try container.encode(minimumProtocolVersion, forKey: .minimumProtocolVersion) }
        }
    }

    /// A USB serial adapter, by the ids in its descriptor: `{"vendorId": "0403", "productId":
    /// "6001", "serialNumber": "A12"}` (ids in hexadecimal, serial number optional).
    public struct USBDevice: Sendable, Codable, Hashable, CustomStringConvertible {
        public var vendorID: UInt16
        public var productID: UInt16
        public var serialNumber: String?

        public init(vendorID: UInt16, productID: UInt16, serialNumber: String? = nil) {
            self.vendorID = vendorID
            self.productID = productID
            self.serialNumber = serialNumber
        }

        private enum CodingKeys: String, CodingKey {
            case vendorID = "vendorId", productID = "productId", serialNumber
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func id(_ key: CodingKeys) throws -> UInt16 {
                let text = try container.decode(String.self, forKey: key)
                guard text.count == 4, let value = UInt16(text, radix: 16) else {
                    throw DecodingError.dataCorruptedError(
                        forKey: key, in: container, debugDescription: "'\(text)': four hexadecimal digits, e.g. \"0403\"")
                }
                return value
            }
            vendorID = try id(.vendorID)
            productID = try id(.productID)
            serialNumber = try container.decodeIfPresent(String.self, forKey: .serialNumber)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(Self.hex(vendorID), forKey: .vendorID)
            try container.encode(Self.hex(productID), forKey: .productID)
            try container.encodeIfPresent(serialNumber, forKey: .serialNumber)
        }

        public var description: String {
            "usb:\(Self.hex(vendorID)):\(Self.hex(productID))" + (serialNumber.map { ":\($0)" } ?? "")
        }

        private static func hex(_ value: UInt16) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 4 - digits.count) + digits
        }

        /// The one listed port this adapter is; an error when none or several match.
        public func port(among ports: [SerialPortInfo]) throws(DaemonError) -> String {
            let matches = ports.filter {
                $0.usbVendorID == vendorID && $0.usbProductID == productID
                    && (serialNumber == nil || $0.usbSerialNumber == serialNumber)
            }
            switch matches.count {
            case 1: return matches[0].byIDPath ?? matches[0].path
            case 0: throw DaemonError(.linkDown, "no serial port is the USB device \(self)")
            default:
                throw DaemonError(
                    .linkDown,
                    "\(matches.count) serial ports are USB devices \(self) (\(matches.map(\.path).joined(separator: ", "))): add its serialNumber")
            }
        }
    }

    /// Link captures (SPEC §15): where they go, how they rotate, whether they always run.
    public struct CaptureSettings: Sendable, Codable, Hashable {
        /// Folder of the capture files; relative to the configuration file.
        public var directory: String
        /// Capture every pump from the start (otherwise: started per pump through the API).
        public var alwaysOn: Bool
        /// Start a new numbered file when one reaches this size.
        public var maxFileBytes: Int?
        /// Keep at most this many files per capture, removing the oldest.
        public var maxFiles: Int?

        public init(directory: String, alwaysOn: Bool = false, maxFileBytes: Int? = 64 << 20, maxFiles: Int? = 16) {
            self.directory = directory
            self.alwaysOn = alwaysOn
            self.maxFileBytes = maxFileBytes
            self.maxFiles = maxFiles
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            directory = try container.decode(String.self, forKey: .directory)
            alwaysOn = try container.decodeIfPresent(Bool.self, forKey: .alwaysOn) ?? false
            maxFileBytes = try container.decodeIfPresent(Int.self, forKey: .maxFileBytes) ?? 64 << 20
            maxFiles = try container.decodeIfPresent(Int.self, forKey: .maxFiles) ?? 16
        }
    }

    public var pumps: [PumpEntry]
    /// A drug library file overriding the shipped default; nil for the default.
    public var drugLibrary: String?
    /// Where the database lives.
    public var dataDirectory: String
    public var telemetryIntervalMs: UInt32?
    public var api: APIConfiguration
    /// How far (in seconds) from the host's clock `POST /v1/pumps/{id}/clock` may set a pump's
    /// clock without an override; `defaultMaxClockDistanceSeconds` unless given.
    public var maxClockDistanceSeconds: UInt64?
    public static let defaultMaxClockDistanceSeconds: UInt64 = 24 * 3600
    /// Link captures; by default in `<dataDirectory>/captures`, started per pump.
    public var capture: CaptureSettings?

    /// `capture`, or its defaults.
    public var captureSettings: CaptureSettings {
        capture ?? CaptureSettings(directory: URL(fileURLWithPath: dataDirectory).appendingPathComponent("captures").path)
    }

    public init(
        pumps: [PumpEntry], drugLibrary: String? = nil, dataDirectory: String, telemetryIntervalMs: UInt32? = nil,
        api: APIConfiguration, capture: CaptureSettings? = nil, maxClockDistanceSeconds: UInt64? = nil
    ) {
        self.capture = capture
        self.maxClockDistanceSeconds = maxClockDistanceSeconds
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
        if let capture = configuration.capture { configuration.capture?.directory = resolve(capture.directory) }
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
        if let capture {
            guard (capture.maxFileBytes ?? 1 << 20) >= 4096 else { throw DaemonError(.badRequest, "capture.maxFileBytes: at least 4096") }
            guard (capture.maxFiles ?? 1) >= 1 else { throw DaemonError(.badRequest, "capture.maxFiles: at least 1") }
        }
    }

    /// The database's file name in `dataDirectory`, beside its `-wal` and `-shm` files.
    public static let databaseFileName = "pumplink.sqlite"

    /// Checks, before anything is opened, that what the daemon keeps is private to its user:
    /// the data and capture folders (if they exist) open to nobody else, the database, its WAL
    /// and SHM and the capture files neither, and every pump's key file present, a readable
    /// regular file, open to nobody else. The daemon creates its files under umask 077; an
    /// existing file that others may read is refused, not silently changed, and the error names
    /// the path, its mode and the fix. A missing key is an error: the daemon never creates one.
    public func checkPrivateFiles() throws(DaemonError) {
        try Self.checkPrivate(dataDirectory, what: "data folder", directory: true)
        for suffix in ["", "-wal", "-shm"] {
            let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent(Self.databaseFileName + suffix).path
            try Self.checkPrivate(path, what: "database file", directory: false)
        }
        let captures = captureSettings.directory
        try Self.checkPrivate(captures, what: "capture folder", directory: true)
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: captures)) ?? []).sorted() {
            let path = URL(fileURLWithPath: captures).appendingPathComponent(name).path
            try Self.checkPrivate(path, what: "capture file", directory: nil)
        }
        for pump in pumps {
            guard let mode = try Self.mode(of: pump.keyFile) else {
                throw DaemonError(
                    .badRequest,
                    "pump \(pump.id): its key file \(pump.keyFile) does not exist (the daemon never creates a key: put the pump's pairing key there, mode 0600)")
            }
            guard mode & S_IFMT == S_IFREG else {
                throw DaemonError(.badRequest, "pump \(pump.id): its key file \(pump.keyFile) is not a regular file")
            }
            guard access(pump.keyFile, R_OK) == 0 else {
                throw DaemonError(
                    .badRequest, "pump \(pump.id): its key file \(pump.keyFile) cannot be read: \(String(cString: strerror(errno)))")
            }
            try Self.checkPrivate(pump.keyFile, what: "pump \(pump.id): its key file", directory: false)
        }
    }

    /// The mode of `path` (following links); nil if nothing is there.
    private static func mode(of path: String) throws(DaemonError) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw DaemonError(.badRequest, "\(path): \(String(cString: strerror(errno)))")
        }
        return info.st_mode
    }

    /// Refuses `path` if it exists and group or others have any access to it; `directory`:
    /// what it must be (nil: either).
    private static func checkPrivate(_ path: String, what: String, directory: Bool?) throws(DaemonError) {
        guard let mode = try mode(of: path) else { return }
        let isDirectory = mode & S_IFMT == S_IFDIR
        if let directory, directory != isDirectory {
            throw DaemonError(.badRequest, "\(what) \(path) is \(directory ? "not a folder" : "a folder")")
        }
        let permissions = mode & 0o7777
        guard permissions & 0o077 == 0 else {
            let octal = String(permissions, radix: 8)
            let shown = String(repeating: "0", count: max(0, 4 - octal.count)) + octal
            throw DaemonError(
                .badRequest,
                "\(what) \(path) has mode \(shown): group or others may use it; fix it with chmod \(isDirectory ? "700" : "600") \(path)",
                details: ["path": path, "mode": shown])
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
