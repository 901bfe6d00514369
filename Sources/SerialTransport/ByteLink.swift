/// A duplex byte pipe: a serial port in production, a `MemoryPipe` in tests.
///
/// Bytes arrive in arbitrary chunks: a frame may be split across chunks or share one with the
/// next, so readers decode incrementally.
public protocol ByteLink: Sendable {
    /// Everything received, in order. Single consumer. Finishes without error after `close()`,
    /// and throws `SerialError(.portVanished)` when the other side goes away.
    var incoming: AsyncThrowingStream<[UInt8], any Error> { get }

    /// Sends all of `bytes`, in order with other sends; waits while the link pushes back.
    func send(_ bytes: [UInt8]) async throws

    /// Ends the link: `incoming` finishes, pending and later sends fail with `.closed`.
    func close()
}
