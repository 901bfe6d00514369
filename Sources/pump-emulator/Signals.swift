import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM, caught from the moment this is made: a signal that arrives while the
/// pumps are still starting (before anyone waits) is kept, not lost. Made at the start of
/// `run()`, before any pump announces its terminal, so whoever stops the emulator after the
/// announcement is always heard.
final class TerminationSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var received = false
    private var continuation: CheckedContinuation<Void, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.receive() }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }

    /// Returns once SIGINT or SIGTERM has arrived (at once if one already has).
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if received {
                lock.unlock()
                continuation.resume()
            } else {
                self.continuation = continuation
                lock.unlock()
            }
        }
    }

    private func receive() {
        lock.lock()
        received = true
        let pending = continuation
        continuation = nil
        lock.unlock()
        pending?.resume()
    }
}
