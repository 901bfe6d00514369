import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where recorded candidates go. Recording never fails the link: a sink that cannot store a
/// candidate counts it and keeps its error for whoever watches the capture.
public protocol CaptureSink: AnyObject, Sendable {
    /// Records one line candidate seen now on `interface`. `bytes` is valid only during the call.
    func record(
        _ bytes: UnsafeRawBufferPointer,
        originalLength: Int,
        direction: CaptureDirection,
        interface: CaptureInterfaceID
    )
}

/// Writes a capture to pcapng files (SPEC §15), safe to share between tasks and threads.
///
/// The first file is `path`; when a packet would take a file past `maxFileBytes`, the file is
/// closed and the next is opened as `name-0002.pcapng`, `name-0003.pcapng`, ..., each starting
/// with its own section header and every interface known so far. Each block is written with one
/// `write(2)`, so a process killed at any moment leaves whole blocks and at most one partial
/// block at the end, which readers ignore.
///
/// Writes happen under a lock on the calling thread: they are small and go to the page cache.
/// A write that fails (disk full, file removed, ...) stops the capture; `statistics` says how
/// many packets were dropped and why.
public final class CaptureWriter: CaptureSink {
    public struct Options: Sendable {
        /// Start a new file before a packet would take the current one past this size; nil
        /// for one file of any size. A file always holds at least one packet.
        public var maxFileBytes: Int?
        /// Keep at most this many files, removing the oldest this writer made; nil keeps all.
        public var maxFiles: Int?
        /// Overwrite files that exist; otherwise creating one that exists fails.
        public var replaceExisting: Bool
        /// `shb_userappl` of every section.
        public var userApplication: String

        public init(
            maxFileBytes: Int? = nil,
            maxFiles: Int? = nil,
            replaceExisting: Bool = false,
            userApplication: String = "PumpLink"
        ) {
            self.maxFileBytes = maxFileBytes
            self.maxFiles = maxFiles
            self.replaceExisting = replaceExisting
            self.userApplication = userApplication
        }
    }

    /// An interface as the writer describes it (`if_name`, `if_description`).
    public struct Interface: Sendable, Hashable {
        public var name: String
        public var description: String?

        public init(name: String, description: String? = nil) {
            self.name = name
            self.description = description
        }
    }

    public struct Statistics: Sendable, Hashable {
        public var packetsWritten = 0
        /// Bytes written to all files, blocks of every kind.
        public var bytesWritten = 0
        /// Packets not written: the writer had failed or was closed.
        public var packetsDropped = 0
        /// The files written so far, oldest first (removed ones included).
        public var files: [String] = []
        /// The error that stopped the capture, if one did.
        public var failure: CaptureError?
        /// The last error removing a file beyond `maxFiles` (the capture goes on).
        public var removalFailure: CaptureError?
    }

    /// Nanoseconds since 1970-01-01 UTC.
    public typealias Clock = @Sendable () -> UInt64

    /// The wall clock, `CLOCK_REALTIME`, in nanoseconds.
    public static let wallClock: Clock = { FileIO.wallClockNanoseconds() }

    public let path: String
    public let options: Options
    private let clock: Clock
    private let state: Mutex<State>

    private struct State {
        var descriptor: Int32?
        var fileNumber = 1
        var fileSize = 0
        var packetsInFile = 0
        var interfaces: [Interface] = []
        /// Reused for every block, so recording does not allocate once it has grown.
        var scratch: [UInt8] = []
        var statistics = Statistics()
        var closed = false
    }

    /// Creates the first file and writes its section header and `interfaces`.
    public init(
        path: String,
        interfaces: [Interface] = [],
        options: Options = Options(),
        clock: @escaping Clock = CaptureWriter.wallClock
    ) throws(CaptureError) {
        self.path = path
        self.options = options
        self.clock = clock
        var state = State()
        state.interfaces = interfaces
        state.scratch.reserveCapacity(4096)
        try Self.openFile(path, number: 1, state: &state, options: options)
        self.state = Mutex(state)
    }

    deinit {
        close()
    }

    /// The file name of rotation `number`: `path` itself for 1, then `stem-0002.ext`, ...
    public static func fileName(base path: String, number: Int) -> String {
        guard number > 1 else { return path }
        let digits = String(number)
        let numbered = "-" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        let slash = path.lastIndex(of: "/")
        if let dot = path.lastIndex(of: "."), slash.map({ dot > path.index(after: $0) }) ?? (dot > path.startIndex) {
            return String(path[..<dot]) + numbered + String(path[dot...])
        }
        return path + numbered + ".pcapng"
    }

    /// The interface's id, adding its description block to the file if it is new. Registering
    /// the same name and description again returns the same id.
    public func addInterface(_ interface: Interface) throws(CaptureError) -> CaptureInterfaceID {
        let result: Result<CaptureInterfaceID, CaptureError> = state.withLock { state in
            if let index = state.interfaces.firstIndex(of: interface) {
                return .success(CaptureInterfaceID(rawValue: UInt32(index)))
            }
            if state.closed { return .failure(CaptureError(.closed, path: path)) }
            if let failure = state.statistics.failure { return .failure(failure) }
            state.interfaces.append(interface)
            state.scratch.removeAll(keepingCapacity: true)
            Self.appendDescription(of: interface, to: &state.scratch)
            do throws(CaptureError) {
                try Self.writeScratch(&state)
            } catch {
                Self.fail(&state, error)
                return .failure(error)
            }
            return .success(CaptureInterfaceID(rawValue: UInt32(state.interfaces.count - 1)))
        }
        return try result.get()
    }

    public func addInterface(name: String, description: String? = nil) throws(CaptureError) -> CaptureInterfaceID {
        try addInterface(Interface(name: name, description: description))
    }

    public var interfaces: [Interface] {
        state.withLock { $0.interfaces }
    }

    public var statistics: Statistics {
        state.withLock { $0.statistics }
    }

    public func record(
        _ bytes: UnsafeRawBufferPointer,
        originalLength: Int,
        direction: CaptureDirection,
        interface: CaptureInterfaceID
    ) {
        record(bytes, originalLength: originalLength, direction: direction, interface: interface, timestampNanoseconds: nil)
    }

    /// Records one candidate; `timestampNanoseconds` nil means now (the writer's clock).
    /// Candidates on an interface the writer does not know are dropped.
    public func record(
        _ bytes: UnsafeRawBufferPointer,
        originalLength: Int,
        direction: CaptureDirection,
        interface: CaptureInterfaceID,
        timestampNanoseconds: UInt64?
    ) {
        state.withLock { state in
            guard !state.closed, state.statistics.failure == nil,
                Int(interface.rawValue) < state.interfaces.count
            else {
                state.statistics.packetsDropped += 1
                return
            }
            let timestamp = timestampNanoseconds ?? clock()
            state.scratch.removeAll(keepingCapacity: true)
            do throws(CaptureError) {
                try PcapngBlocks.appendEnhancedPacket(
                    interface: interface, timestamp: timestamp, data: bytes,
                    originalLength: originalLength, direction: direction, to: &state.scratch)
            } catch {
                state.statistics.packetsDropped += 1  // too large for pcapng: this packet only
                return
            }
            do throws(CaptureError) {
                if let limit = options.maxFileBytes, state.packetsInFile > 0,
                    state.fileSize + state.scratch.count > limit
                {
                    try rotate(&state)
                }
                try Self.writeScratch(&state)
            } catch {
                Self.fail(&state, error)
                state.statistics.packetsDropped += 1
                return
            }
            state.packetsInFile += 1
            state.statistics.packetsWritten += 1
        }
    }

    /// `record` for an array.
    public func record(
        _ bytes: [UInt8],
        originalLength: Int? = nil,
        direction: CaptureDirection,
        interface: CaptureInterfaceID,
        timestampNanoseconds: UInt64? = nil
    ) {
        bytes.withUnsafeBytes { raw in
            record(
                raw, originalLength: originalLength ?? bytes.count, direction: direction,
                interface: interface, timestampNanoseconds: timestampNanoseconds)
        }
    }

    /// Closes the current file. Later records are dropped. Idempotent.
    public func close() {
        state.withLock { state in
            state.closed = true
            if let descriptor = state.descriptor {
                FileIO.close(descriptor)
                state.descriptor = nil
            }
        }
    }

    // MARK: - Files

    /// Closes the current file and opens the next, with the section and interfaces again; then
    /// removes the oldest files beyond `maxFiles`. Keeps the packet block in `scratch`.
    private func rotate(_ state: inout State) throws(CaptureError) {
        if let descriptor = state.descriptor {
            FileIO.close(descriptor)
            state.descriptor = nil
        }
        let packet = state.scratch
        let number = state.fileNumber + 1
        try Self.openFile(Self.fileName(base: path, number: number), number: number, state: &state, options: options)
        state.scratch = packet
        // One file more than allowed at most: the one that fell out of the window. Failing to
        // remove it (someone else's permissions) is no reason to stop capturing.
        let files = state.statistics.files
        if let maxFiles = options.maxFiles, maxFiles > 0, files.count > maxFiles {
            do throws(CaptureError) {
                try FileIO.remove(files[files.count - maxFiles - 1])
            } catch {
                state.statistics.removalFailure = error
            }
        }
    }

    private static func openFile(_ file: String, number: Int, state: inout State, options: Options) throws(CaptureError) {
        let descriptor = try FileIO.create(file, replacingExisting: options.replaceExisting)
        state.descriptor = descriptor
        state.fileNumber = number
        state.fileSize = 0
        state.packetsInFile = 0
        state.statistics.files.append(file)
        state.scratch.removeAll(keepingCapacity: true)
        PcapngBlocks.appendSectionHeader(userApplication: options.userApplication, to: &state.scratch)
        for interface in state.interfaces {
            appendDescription(of: interface, to: &state.scratch)
        }
        do throws(CaptureError) {
            try writeScratch(&state)
        } catch {
            FileIO.close(descriptor)
            state.descriptor = nil
            throw error
        }
    }

    private static func appendDescription(of interface: Interface, to buffer: inout [UInt8]) {
        PcapngBlocks.appendInterfaceDescription(name: interface.name, description: interface.description, to: &buffer)
    }

    /// One `write(2)` of the blocks in `scratch`.
    private static func writeScratch(_ state: inout State) throws(CaptureError) {
        guard let descriptor = state.descriptor else { throw CaptureError(.closed) }
        let file = state.statistics.files.last ?? ""
        let size = state.fileSize
        let result: Result<Int, CaptureError> = state.scratch.withUnsafeBytes { raw in
            do throws(CaptureError) {
                try FileIO.writeBlock(descriptor, raw, fileSize: size, path: file)
                return .success(raw.count)
            } catch {
                return .failure(error)
            }
        }
        let count = try result.get()
        state.fileSize += count
        state.statistics.bytesWritten += count
    }

    private static func fail(_ state: inout State, _ error: CaptureError) {
        if state.statistics.failure == nil { state.statistics.failure = error }
    }
}
