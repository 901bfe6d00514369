import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Which code opened and configured a port.
public enum SerialOpener: Sendable, Hashable {
    /// libserialport: real serial hardware (UART, USB adapter, Bluetooth rfcomm).
    case libserialport
    /// Plain POSIX open + termios: pseudo-terminals (including socat pairs) and any tty
    /// libserialport refuses.
    case posixTermios
    /// The controller side of a pseudo-terminal this process created.
    case pseudoTerminalController
}

/// An open serial port: a non-blocking file descriptor in raw 8-bit mode.
///
/// Two ways to drive it, not to be mixed on one port:
/// - asynchronously, as a `ByteLink`: `incoming` and `send(_:)`. The first use starts one
///   I/O thread for the port that sleeps in poll() until the port is readable, writable (when
///   writes are queued) or closed; no busy-waiting and no thread per caller.
/// - synchronously, for callers with their own loop: `read(into:)`, `write(_:)`,
///   `waitUntilReadable(timeout:)`. These throw `.invalidUse` once the asynchronous side started.
///
/// A hang-up (read of 0 bytes, EIO, POLLHUP) ends `incoming` with `.portVanished` and fails
/// every later call with it; the owner then closes the port and opens it again.
public final class SerialPort: ByteLink, Sendable {
    /// The path as given by the caller.
    public let path: String
    /// The device node the path resolves to.
    public let resolvedPath: String
    public let opener: SerialOpener
    public let settings: LineSettings

    private let core: PortCore

    private init(path: String, resolvedPath: String, opener: SerialOpener, settings: LineSettings, core: PortCore) {
        self.path = path
        self.resolvedPath = resolvedPath
        self.opener = opener
        self.settings = settings
        self.core = core
    }

    deinit {
        core.close()
    }

    /// Opens a port by path (a device node, or a symlink to one such as /dev/serial/by-id/...),
    /// choosing the opener from what the resolved node is.
    public static func open(path: String, settings: LineSettings = LineSettings()) throws(SerialError) -> SerialPort {
        let resolved = try Posix.resolve(path)
        switch try Posix.nodeKind(of: resolved, originalPath: path) {
        case .other:
            throw SerialError(.notATerminal, path: path, operation: "stat")
        case .pseudoTerminalSubordinate:
            return try openWithTermios(path: path, resolved: resolved, settings: settings, isPseudoTerminal: true)
        case .characterDevice:
            switch LibSerialPort.open(resolved, reportedAs: path) {
            case .opened(let port):
                return try finishLibSerialPortOpen(port, path: path, resolved: resolved, settings: settings)
            case .refused:
                return try openWithTermios(path: path, resolved: resolved, settings: settings, isPseudoTerminal: false)
            case .failed(let error):
                throw error
            }
        }
    }

    /// Wraps the controller side of a pseudo-terminal, taking ownership of both its descriptors.
    ///
    /// The controller sees a hang-up whenever no subordinate descriptor is open, e.g. between
    /// two clients. Holding the subordinate open (the default) lets clients come and go, which
    /// is what a device emulator wants; bytes written while no client is connected then wait in
    /// the subordinate's input queue for the next one. Without it, the last client closing
    /// ends `incoming` with `.portVanished`.
    public static func controller(
        of terminal: PseudoTerminal,
        holdingSubordinateOpen: Bool = true
    ) throws(SerialError) -> SerialPort {
        do {
            try Posix.setCloseOnExecAndNonBlocking(terminal.controllerDescriptor, path: terminal.subordinatePath)
        } catch {
            terminal.close()
            throw error
        }
        var held: Int32? = terminal.subordinateDescriptor
        if !holdingSubordinateOpen {
            Posix.closeDescriptor(terminal.subordinateDescriptor)
            held = nil
        }
        let resources = PortCore.Resources(
            descriptor: terminal.controllerDescriptor,
            libSerialPort: nil,
            heldSubordinate: held
        )
        let core = try PortCore.make(resources: resources, path: terminal.subordinatePath)
        return SerialPort(
            path: terminal.subordinatePath,
            resolvedPath: terminal.subordinatePath,
            opener: .pseudoTerminalController,
            settings: LineSettings(),
            core: core
        )
    }

    private static func openWithTermios(
        path: String,
        resolved: String,
        settings: LineSettings,
        isPseudoTerminal: Bool
    ) throws(SerialError) -> SerialPort {
        let descriptor = try Posix.openTerminal(resolved, reportedAs: path)
        do {
            try Posix.lockExclusively(descriptor, path: path)
            try Posix.configure(descriptor, settings: settings, isPseudoTerminal: isPseudoTerminal, path: path)
        } catch {
            Posix.closeDescriptor(descriptor)
            throw error
        }
        let resources = PortCore.Resources(descriptor: descriptor, libSerialPort: nil, heldSubordinate: nil)
        let core = try PortCore.make(resources: resources, path: path)
        return SerialPort(path: path, resolvedPath: resolved, opener: .posixTermios, settings: settings, core: core)
    }

    private static func finishLibSerialPortOpen(
        _ port: sending LibSerialPort.OpenPort,
        path: String,
        resolved: String,
        settings: LineSettings
    ) throws(SerialError) -> SerialPort {
        do {
            try Posix.setCloseOnExecAndNonBlocking(port.descriptor, path: path)
            try Posix.lockExclusively(port.descriptor, path: path)
            try LibSerialPort.configure(port, settings: settings, path: path)
            try Posix.enforceTransparency(port.descriptor, path: path)
        } catch {
            LibSerialPort.close(port)
            throw error
        }
        let resources = PortCore.Resources(descriptor: port.descriptor, libSerialPort: port, heldSubordinate: nil)
        let core = try PortCore.make(resources: resources, path: path)
        return SerialPort(path: path, resolvedPath: resolved, opener: .libserialport, settings: settings, core: core)
    }

    // MARK: Asynchronous interface

    /// Everything read from the port, in chunks as they arrive. Single consumer. Ends without
    /// error on `close()`, with `SerialError(.portVanished)` on a hang-up.
    ///
    /// Chunks are buffered without bound while nobody iterates; a serial line is slow enough
    /// for that, and dropping bytes would be worse.
    public var incoming: AsyncThrowingStream<[UInt8], any Error> {
        core.startIOThread()
        return core.incoming
    }

    /// Writes all of `bytes`, in order with other sends, returning once the kernel has taken
    /// them. Waits (without blocking a thread) while the port's output buffer is full.
    /// Cancellation withdraws the bytes if none of them has gone out yet; a send that has
    /// started completes, so a frame is never cut in half.
    public func send(_ bytes: [UInt8]) async throws(SerialError) {
        guard !bytes.isEmpty else { return }
        core.startIOThread()
        try await core.send(bytes)
    }

    /// Closes the port: wakes and ends the reader (`incoming` finishes without error), fails
    /// queued sends with `.closed`, stops the I/O thread and closes the descriptor. Idempotent.
    public func close() {
        core.close()
    }

    // MARK: Synchronous interface

    public enum ReadResult: Sendable, Hashable {
        /// This many bytes were stored at the start of the buffer (never 0).
        case bytes(Int)
        /// Nothing to read now.
        case wouldBlock
    }

    /// The descriptor, for callers that poll it themselves. Valid until `close()`; do not close it.
    public var fileDescriptor: Int32 { core.descriptor }

    /// Reads what is available, without waiting. A hang-up throws `.portVanished`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> ReadResult {
        try core.readNow(into: buffer)
    }

    /// Writes all of `bytes`, sleeping in poll() while the output buffer is full. Returns early
    /// only by throwing (`.closed` if another thread closes the port meanwhile).
    public func write(_ bytes: [UInt8]) throws(SerialError) {
        try core.writeBlocking(bytes)
    }

    /// Sleeps until the port has bytes to read (or a hang-up to report): true, or until the
    /// timeout passes: false. A nil timeout waits indefinitely (until data or `close()`).
    public func waitUntilReadable(timeout: Duration?) throws(SerialError) -> Bool {
        try core.waitUntilReadable(timeout: timeout)
    }
}

/// The state shared by a `SerialPort` and its I/O thread. The thread holds this, not the
/// `SerialPort`, so dropping the last `SerialPort` reference still runs its `deinit` (and closes).
final class PortCore: Sendable {
    struct Resources {
        var descriptor: Int32
        var libSerialPort: LibSerialPort.OpenPort?
        var heldSubordinate: Int32?
    }

    private struct PendingWrite {
        var id: UInt64
        var bytes: [UInt8]
        var offset: Int
        /// Set under the lock before the first byte goes out; a started write is not cancelled.
        var started: Bool
        var continuation: CheckedContinuation<Result<Void, SerialError>, Never>
    }

    private enum Lifecycle {
        case open
        case vanished(SerialError)
        case closed
    }

    private struct State {
        var lifecycle = Lifecycle.open
        /// Owners of the descriptors right now: the I/O thread while it runs, synchronous calls
        /// while in progress, `close()` while it runs. The descriptors are closed by whoever
        /// leaves last after `close()`, so no call ever uses a number that was reused.
        var users = 0
        var resources: Resources?
        var ioThreadStarted = false
        var ioThread: pthread_t?
        var writes: [PendingWrite] = []
        var nextWriteID: UInt64 = 0
    }

    let descriptor: Int32
    let path: String
    let incoming: AsyncThrowingStream<[UInt8], any Error>
    private let incomingContinuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    /// A pipe written to wake the I/O thread (new writes queued, close). The read end is polled.
    /// (Swift's Glibc module does not export eventfd.)
    private let wakeDescriptor: Int32
    private let wakeWriteDescriptor: Int32
    private let state: Mutex<State>
    private let ioThreadExited = DispatchSemaphore(value: 0)

    private init(resources: sending Resources, wake: (read: Int32, write: Int32), path: String) {
        self.descriptor = resources.descriptor
        self.path = path
        self.wakeDescriptor = wake.read
        self.wakeWriteDescriptor = wake.write
        (incoming, incomingContinuation) = AsyncThrowingStream.makeStream(of: [UInt8].self, throwing: (any Error).self)
        state = Mutex(State(resources: resources))
    }

    /// Takes ownership of `resources`; on failure they are released.
    static func make(resources: sending Resources, path: String) throws(SerialError) -> PortCore {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            let error = SerialError(.ioFailed, path: path, operation: "pipe", errno: Glibc.errno)
            release(resources)
            throw error
        }
        for end in ends {
            let descriptorFlags = fcntl(end, F_GETFD)
            let statusFlags = fcntl(end, F_GETFL)
            guard descriptorFlags >= 0, statusFlags >= 0,
                fcntl(end, F_SETFD, descriptorFlags | FD_CLOEXEC) == 0,
                fcntl(end, F_SETFL, statusFlags | O_NONBLOCK) == 0
            else {
                let error = SerialError(.ioFailed, path: path, operation: "fcntl(pipe)", errno: Glibc.errno)
                for end in ends { Posix.closeDescriptor(end) }
                release(resources)
                throw error
            }
        }
        return PortCore(resources: resources, wake: (ends[0], ends[1]), path: path)
    }

    private static func release(_ resources: Resources) {
        if let port = resources.libSerialPort {
            LibSerialPort.close(port)
        } else {
            Posix.closeDescriptor(resources.descriptor)
        }
        if let held = resources.heldSubordinate {
            Posix.closeDescriptor(held)
        }
    }

    /// A full pipe already means "wake up", so a failed write (EAGAIN) is fine to ignore.
    private func wake() {
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWriteDescriptor, &byte, 1)
    }

    private func drainWake() {
        withUnsafeTemporaryAllocation(byteCount: 64, alignment: 1) { sink in
            while Glibc.read(wakeDescriptor, sink.baseAddress, sink.count) > 0 {}
        }
    }

    // MARK: Users and closing

    /// Registers a synchronous call as a user of the descriptors.
    private func enterSynchronousCall() throws(SerialError) {
        try state.withLock { (state: inout State) throws(SerialError) in
            switch state.lifecycle {
            case .closed: throw SerialError(.closed, path: path)
            case .vanished(let error): throw error
            case .open: break
            }
            if state.ioThreadStarted {
                throw SerialError(.invalidUse, path: path)
            }
            state.users += 1
        }
    }

    private func leave() {
        let finished: Resources? = state.withLock { state in
            state.users -= 1
            guard case .closed = state.lifecycle, state.users == 0, let resources = state.resources else {
                return nil
            }
            state.resources = nil
            return resources
        }
        if let finished {
            Self.release(finished)
            Posix.closeDescriptor(wakeDescriptor)
            Posix.closeDescriptor(wakeWriteDescriptor)
        }
    }

    func close() {
        let outcome: (writes: [PendingWrite], waitForThread: Bool)? = state.withLock { state in
            if case .closed = state.lifecycle { return nil }
            state.lifecycle = .closed
            state.users += 1
            let writes = state.writes
            state.writes = []
            let onIOThread = state.ioThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
            return (writes, state.ioThreadStarted && !onIOThread)
        }
        guard let outcome else { return }
        wake()
        for write in outcome.writes {
            write.continuation.resume(returning: .failure(SerialError(.closed, path: path)))
        }
        incomingContinuation.finish()
        // The I/O thread notices within one poll() wake-up; waiting makes close() mean
        // "the descriptor is closed and the thread is gone" for the caller.
        if outcome.waitForThread {
            ioThreadExited.wait()
        }
        leave()
    }

    /// Records a hang-up or failure seen on the port: ends `incoming` with it, fails queued writes.
    private func vanish(_ error: SerialError) {
        let writes: [PendingWrite]? = state.withLock { state in
            guard case .open = state.lifecycle else { return nil }
            state.lifecycle = .vanished(error)
            let writes = state.writes
            state.writes = []
            return writes
        }
        guard let writes else { return }
        for write in writes {
            write.continuation.resume(returning: .failure(error))
        }
        incomingContinuation.finish(throwing: error)
    }

    // MARK: The I/O thread

    func startIOThread() {
        let start: Bool = state.withLock { state in
            guard case .open = state.lifecycle, !state.ioThreadStarted else { return false }
            state.ioThreadStarted = true
            state.users += 1
            return true
        }
        guard start else { return }

        let context = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(
            &thread,
            nil,
            { raw in
                guard let raw else { return nil }
                let core = Unmanaged<PortCore>.fromOpaque(raw).takeRetainedValue()
                core.runIOThread()
                return nil
            },
            context.toOpaque()
        )
        if result != 0 {
            context.release()
            vanish(SerialError(.ioFailed, path: path, operation: "pthread_create", errno: result))
            leave()
            ioThreadExited.signal()
            return
        }
        pthread_detach(thread)
    }

    private func runIOThread() {
        state.withLock { $0.ioThread = pthread_self() }
        defer {
            // Leave before signalling: close() holds its own use until the signal, so its
            // leave() is then the last one and the descriptor is closed before close() returns.
            leave()
            ioThreadExited.signal()
        }

        // A tty hands over at most its own buffer (4 KiB) per read; a bigger buffer here would
        // cost resident memory per port (64 ports: 4 MB at 64 KiB) and read nothing more.
        var buffer = [UInt8](repeating: 0, count: 4 * 1024)
        var descriptors = [
            pollfd(fd: descriptor, events: 0, revents: 0),
            pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let wantsToWrite: Bool? = state.withLock { state in
                guard case .open = state.lifecycle else { return nil }
                return !state.writes.isEmpty
            }
            guard let wantsToWrite else { return }

            // Always reading: that is also how a hang-up is noticed while nobody writes.
            descriptors[0].events = Int16(POLLIN) | (wantsToWrite ? Int16(POLLOUT) : 0)
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                let error = Glibc.errno
                if error == EINTR { continue }
                vanish(SerialError(.ioFailed, path: path, operation: "poll", errno: error))
                return
            }
            if descriptors[1].revents != 0 {
                drainWake()
            }

            let events = descriptors[0].revents
            if events & Int16(POLLNVAL) != 0 {
                vanish(SerialError(.ioFailed, path: path, operation: "poll", errno: EBADF))
                return
            }
            if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                guard readAvailable(into: &buffer, hangUpReported: events & Int16(POLLHUP | POLLERR) != 0) else {
                    return
                }
            }
            if events & Int16(POLLOUT) != 0 {
                guard flushQueuedWrites() else { return }
            }
        }
    }

    /// Reads until EAGAIN (bounded, so queued writes get their turn) and yields each chunk.
    /// Returns false once the port is gone.
    private func readAvailable(into buffer: inout [UInt8], hangUpReported: Bool) -> Bool {
        for _ in 0..<16 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                incomingContinuation.yield(Array(buffer[0..<count]))
                continue
            }
            if count == 0 {
                vanish(SerialError(.portVanished, path: path, operation: "read"))
                return false
            }
            let error = Glibc.errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK {
                // POLLHUP/POLLERR with nothing to read and no error from read(): still a hang-up,
                // and polling again would spin.
                if hangUpReported {
                    vanish(SerialError(.portVanished, path: path, operation: "poll"))
                    return false
                }
                return true
            }
            vanish(SerialError.fromTransfer(errno: error, path: path, operation: "read"))
            return false
        }
        return true
    }

    /// Writes queued bytes until the kernel pushes back. Returns false once the port is gone.
    private func flushQueuedWrites() -> Bool {
        while true {
            let head: (id: UInt64, bytes: [UInt8], offset: Int)? = state.withLock { state in
                guard case .open = state.lifecycle, !state.writes.isEmpty else { return nil }
                state.writes[0].started = true
                return (state.writes[0].id, state.writes[0].bytes, state.writes[0].offset)
            }
            guard let head else { return true }

            let written = head.bytes.withUnsafeBytes { raw in
                Glibc.write(descriptor, raw.baseAddress.map { $0 + head.offset }, raw.count - head.offset)
            }
            // A tty never takes 0 of a non-empty write, but if one did, poll again rather than spin.
            if written == 0 { return true }
            if written < 0 {
                let error = Glibc.errno
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK { return true }
                vanish(SerialError.fromTransfer(errno: error, path: path, operation: "write"))
                return false
            }

            let completed: CheckedContinuation<Result<Void, SerialError>, Never>? = state.withLock { state in
                guard let first = state.writes.first, first.id == head.id else { return nil }
                state.writes[0].offset += written
                guard state.writes[0].offset == state.writes[0].bytes.count else { return nil }
                return state.writes.removeFirst().continuation
            }
            completed?.resume(returning: .success(()))
        }
    }

    // MARK: Asynchronous writes

    func send(_ bytes: [UInt8]) async throws(SerialError) {
        let id: UInt64 = state.withLock { state in
            state.nextWriteID += 1
            return state.nextWriteID
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, SerialError>, Never>) in
                enqueue(bytes, id: id, continuation: continuation)
            }
        } onCancel: {
            cancelWrite(id: id)
        }
        try result.get()
    }

    private enum EnqueueOutcome {
        case done
        case failed(SerialError)
        case queued
    }

    private func enqueue(
        _ bytes: [UInt8],
        id: UInt64,
        continuation: CheckedContinuation<Result<Void, SerialError>, Never>
    ) {
        let outcome: EnqueueOutcome = state.withLock { state in
            switch state.lifecycle {
            case .closed: return .failed(SerialError(.closed, path: path))
            case .vanished(let error): return .failed(error)
            case .open: break
            }
            // Checked under the lock that cancelWrite takes, so a cancellation is seen either here
            // or there.
            if Task.isCancelled {
                return .failed(SerialError(.cancelled, path: path))
            }
            var offset = 0
            // Fast path: nothing queued ahead, so write now on the caller's thread (non-blocking,
            // under the lock so concurrent sends cannot interleave). Only the rest is queued.
            if state.writes.isEmpty {
                while offset < bytes.count {
                    let written = bytes.withUnsafeBytes { raw in
                        Glibc.write(descriptor, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    }
                    if written > 0 {
                        offset += written
                        continue
                    }
                    if written == 0 { break }
                    let error = Glibc.errno
                    if error == EINTR { continue }
                    if error == EAGAIN || error == EWOULDBLOCK { break }
                    return .failed(SerialError.fromTransfer(errno: error, path: path, operation: "write"))
                }
                if offset == bytes.count { return .done }
            }
            state.writes.append(
                PendingWrite(id: id, bytes: bytes, offset: offset, started: offset > 0, continuation: continuation)
            )
            return .queued
        }
        switch outcome {
        case .done: continuation.resume(returning: .success(()))
        case .failed(let error): continuation.resume(returning: .failure(error))
        case .queued: wake()
        }
    }

    private func cancelWrite(id: UInt64) {
        let cancelled: CheckedContinuation<Result<Void, SerialError>, Never>? = state.withLock { state in
            guard let index = state.writes.firstIndex(where: { $0.id == id }), !state.writes[index].started else {
                return nil
            }
            return state.writes.remove(at: index).continuation
        }
        cancelled?.resume(returning: .failure(SerialError(.cancelled, path: path)))
    }

    // MARK: Synchronous calls

    func readNow(into buffer: UnsafeMutableRawBufferPointer) throws(SerialError) -> SerialPort.ReadResult {
        guard buffer.count > 0 else { return .wouldBlock }
        try enterSynchronousCall()
        defer { leave() }
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count > 0 { return .bytes(count) }
            if count == 0 {
                let error = SerialError(.portVanished, path: path, operation: "read")
                markVanished(error)
                throw error
            }
            let error = Glibc.errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return .wouldBlock }
            let failure = SerialError.fromTransfer(errno: error, path: path, operation: "read")
            if failure.code == .portVanished { markVanished(failure) }
            throw failure
        }
    }

    func writeBlocking(_ bytes: [UInt8]) throws(SerialError) {
        try enterSynchronousCall()
        defer { leave() }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.write(descriptor, raw.baseAddress.map { $0 + offset }, raw.count - offset)
            }
            if written > 0 {
                offset += written
                continue
            }
            let error = written == 0 ? EAGAIN : Glibc.errno
            if error == EINTR { continue }
            guard error == EAGAIN || error == EWOULDBLOCK else {
                let failure = SerialError.fromTransfer(errno: error, path: path, operation: "write")
                if failure.code == .portVanished { markVanished(failure) }
                throw failure
            }
            _ = try pollSynchronously(events: Int16(POLLOUT), timeoutMilliseconds: -1)
        }
    }

    func waitUntilReadable(timeout: Duration?) throws(SerialError) -> Bool {
        try enterSynchronousCall()
        defer { leave() }
        var milliseconds: Int32 = -1
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            let total = max(0, seconds) * 1000 + max(0, attoseconds) / 1_000_000_000_000_000
            milliseconds = Int32(clamping: total)
        }
        return try pollSynchronously(events: Int16(POLLIN), timeoutMilliseconds: milliseconds)
    }

    /// poll() on the port and the wake pipe; true when the port is ready (or reports a hang-up,
    /// which the following read or write turns into an error), false on timeout.
    private func pollSynchronously(events: Int16, timeoutMilliseconds: Int32) throws(SerialError) -> Bool {
        while true {
            var descriptors = [
                pollfd(fd: descriptor, events: events, revents: 0),
                pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&descriptors, 2, timeoutMilliseconds)
            if ready < 0 {
                let error = Glibc.errno
                if error == EINTR { continue }
                throw SerialError(.ioFailed, path: path, operation: "poll", errno: error)
            }
            if descriptors[1].revents != 0 {
                // Only close() writes the wake pipe while the port is driven synchronously.
                throw SerialError(.closed, path: path)
            }
            return ready > 0
        }
    }

    private func markVanished(_ error: SerialError) {
        state.withLock { state in
            if case .open = state.lifecycle {
                state.lifecycle = .vanished(error)
            }
        }
        incomingContinuation.finish(throwing: error)
    }
}
