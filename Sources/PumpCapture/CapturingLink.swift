import SerialTransport
import Synchronization

/// The switch between a link and a capture: where a `CapturingLink` records, if anywhere.
///
/// Start and stop it at any time, from any thread (a daemon starting and stopping the capture
/// of one pump without reconnecting). While it is off a link pays one atomic load per chunk.
public final class CaptureTap: Sendable {
    /// Where a tap records, and which start of the tap it belongs to.
    struct Recording: Sendable {
        let sink: any CaptureSink
        let interface: CaptureInterfaceID
        /// Increases with every start, so links notice a restart and resynchronise.
        let generation: UInt64
    }

    private struct State {
        var recording: Recording?
        var generation: UInt64 = 0
    }

    private let active = Atomic<Bool>(false)
    private let state = Mutex(State())

    /// A tap that is off.
    public init() {}

    /// A tap recording from the start.
    public init(recordingTo sink: any CaptureSink, interface: CaptureInterfaceID) {
        start(recordingTo: sink, interface: interface)
    }

    /// Records onto `interface` of `sink` from now on (replacing any earlier recording).
    public func start(recordingTo sink: any CaptureSink, interface: CaptureInterfaceID) {
        state.withLock { state in
            state.generation += 1
            state.recording = Recording(sink: sink, interface: interface, generation: state.generation)
            active.store(true, ordering: .releasing)
        }
    }

    /// Registers `interface` with `writer` (or finds it there) and records onto it.
    @discardableResult
    public func start(recordingTo writer: CaptureWriter, interface: CaptureWriter.Interface) throws(CaptureError) -> CaptureInterfaceID {
        let id = try writer.addInterface(interface)
        start(recordingTo: writer, interface: id)
        return id
    }

    /// Stops recording. A candidate in progress is not recorded.
    public func stop() {
        state.withLock { state in
            state.recording = nil
            active.store(false, ordering: .releasing)
        }
    }

    public var isRecording: Bool {
        active.load(ordering: .acquiring)
    }

    /// The current recording; nil (without taking the lock) while the tap is off.
    @inline(__always)
    func current() -> Recording? {
        guard active.load(ordering: .acquiring) else { return nil }
        return state.withLock { $0.recording }
    }
}

/// A `ByteLink` that passes everything through unchanged and, while its tap is on, records the
/// candidates of both directions (SPEC §15): what `send` hands to the wrapped link as outbound,
/// what arrives from the wrapped link's `incoming` as inbound.
///
/// An outbound candidate is recorded when the bytes that end it are handed to the wrapped link;
/// an inbound one when the chunk holding its closing delimiter comes out of `incoming`. When
/// recording starts while bytes are already flowing, each direction skips to its next
/// delimiter, so no candidate is recorded without its start.
public final class CapturingLink: ByteLink {
    public let wrapped: any ByteLink
    public let tap: CaptureTap
    /// The wrapped link's `incoming`, recorded on the way through. Finishes when it finishes and
    /// throws what it throws.
    public let incoming: AsyncThrowingStream<[UInt8], any Error>

    private let outbound: DirectionRecorder
    private let inbound: DirectionRecorder

    public init(wrapping link: any ByteLink, tap: CaptureTap = CaptureTap()) {
        wrapped = link
        self.tap = tap
        let outbound = DirectionRecorder(direction: .outbound, tap: tap)
        let inbound = DirectionRecorder(direction: .inbound, tap: tap)
        let source = IncomingSource(link)
        self.outbound = outbound
        self.inbound = inbound
        incoming = AsyncThrowingStream(unfolding: {
            guard let chunk = try await source.next() else { return nil }
            inbound.observe(chunk)
            return chunk
        })
    }

    public func send(_ bytes: [UInt8]) async throws {
        outbound.observe(bytes)
        try await wrapped.send(bytes)
    }

    public func close() {
        wrapped.close()
    }
}

/// One direction's splitter, resynchronised whenever its tap starts a new recording.
private final class DirectionRecorder: Sendable {
    let direction: CaptureDirection
    let tap: CaptureTap
    /// Bytes have passed in this direction (so a later start joins mid-stream).
    private let sawBytes = Atomic<Bool>(false)
    private let state = Mutex(State())

    private struct State {
        var splitter = CandidateSplitter()
        /// The tap generation the splitter is serving; 0 for none.
        var generation: UInt64 = 0
    }

    init(direction: CaptureDirection, tap: CaptureTap) {
        self.direction = direction
        self.tap = tap
    }

    func observe(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        defer {
            if !sawBytes.load(ordering: .relaxed) { sawBytes.store(true, ordering: .relaxed) }
        }
        guard let recording = tap.current() else { return }
        let joinedMidStream = sawBytes.load(ordering: .relaxed)
        state.withLock { state in
            if state.generation != recording.generation {
                state.generation = recording.generation
                state.splitter.reset(joinedMidStream: joinedMidStream)
            }
            bytes.withUnsafeBytes { raw in
                state.splitter.split(raw) { candidate, originalLength in
                    recording.sink.record(
                        candidate, originalLength: originalLength, direction: direction, interface: recording.interface)
                }
            }
        }
    }
}

/// Pulls the wrapped link's `incoming`, created on first use (a serial port starts its reader
/// when `incoming` is first asked for).
///
/// Unchecked: `incoming` has a single consumer (the `ByteLink` contract), and the stream built
/// with `unfolding` calls `next()` once at a time, so the iterator is never used concurrently.
private final class IncomingSource: @unchecked Sendable {
    private let link: any ByteLink
    private var iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator?

    init(_ link: any ByteLink) {
        self.link = link
    }

    func next() async throws -> [UInt8]? {
        var current = iterator ?? link.incoming.makeAsyncIterator()
        defer { iterator = current }
        return try await current.next()
    }
}
