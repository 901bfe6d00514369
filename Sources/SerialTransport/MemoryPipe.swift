import Synchronization

/// An in-memory `ByteLink` pair: what one end sends, the other receives, in order.
///
/// Closing one end finishes its own `incoming` and ends the other's with `.portVanished`,
/// the way a pulled cable looks from the far side. Sends never wait (the buffer is unbounded).
public final class MemoryPipe: ByteLink, Sendable {
    /// A name for error messages, e.g. "memory:a".
    public let name: String
    public let incoming: AsyncThrowingStream<[UInt8], any Error>

    private let shared: Shared
    private let side: Int

    /// Both ends' state, behind one lock so a send and the peer's close are ordered.
    private final class Shared: Sendable {
        let continuations: [AsyncThrowingStream<[UInt8], any Error>.Continuation]
        let closed = Mutex([false, false])

        init(continuations: [AsyncThrowingStream<[UInt8], any Error>.Continuation]) {
            self.continuations = continuations
        }
    }

    private init(name: String, incoming: AsyncThrowingStream<[UInt8], any Error>, shared: Shared, side: Int) {
        self.name = name
        self.incoming = incoming
        self.shared = shared
        self.side = side
    }

    deinit {
        close()
    }

    /// Two connected ends.
    public static func makePair(names: (String, String) = ("memory:a", "memory:b")) -> (MemoryPipe, MemoryPipe) {
        let (streamA, continuationA) = AsyncThrowingStream.makeStream(of: [UInt8].self, throwing: (any Error).self)
        let (streamB, continuationB) = AsyncThrowingStream.makeStream(of: [UInt8].self, throwing: (any Error).self)
        let shared = Shared(continuations: [continuationA, continuationB])
        return (
            MemoryPipe(name: names.0, incoming: streamA, shared: shared, side: 0),
            MemoryPipe(name: names.1, incoming: streamB, shared: shared, side: 1)
        )
    }

    public func send(_ bytes: [UInt8]) async throws(SerialError) {
        let peer = 1 - side
        try shared.closed.withLock { (closed: inout [Bool]) throws(SerialError) in
            if closed[side] { throw SerialError(.closed, path: name) }
            if closed[peer] { throw SerialError(.portVanished, path: name, operation: "send") }
            // Yielding under the lock keeps concurrent sends and the peer's close() ordered.
            if !bytes.isEmpty {
                shared.continuations[peer].yield(bytes)
            }
        }
    }

    public func close() {
        let peer = 1 - side
        let first: Bool = shared.closed.withLock { closed in
            guard !closed[side] else { return false }
            closed[side] = true
            return true
        }
        guard first else { return }
        shared.continuations[side].finish()
        shared.continuations[peer].finish(throwing: SerialError(.portVanished, path: name))
    }
}
