/// The emulator's clock: wall time, optionally accelerated so that rigs can watch days pass
/// (`timeScale` 3600 makes an hour of pump time pass each second).
public struct VirtualClock: Sendable {
    public let timeScale: UInt64
    private let originMs: UInt64
    private let originInstant: ContinuousClock.Instant

    /// Starts at `startMs` (milliseconds since the epoch) now.
    public init(startMs: UInt64, timeScale: UInt64 = 1) {
        self.timeScale = max(timeScale, 1)
        self.originMs = startMs
        self.originInstant = .now
    }

    /// Milliseconds since the epoch, exact in integers.
    public func nowMs() -> UInt64 {
        let elapsed = ContinuousClock.now - originInstant
        let (seconds, attoseconds) = elapsed.components
        let elapsedMs = UInt64(max(seconds, 0)) * 1000 + UInt64(max(attoseconds, 0) / 1_000_000_000_000_000)
        // Saturating: the pump model treats any time after 9999 as 9999 (PumpCalendar.latestTimeMs).
        let (scaled, overflow) = elapsedMs.multipliedReportingOverflow(by: timeScale)
        let (sum, carry) = originMs.addingReportingOverflow(scaled)
        return overflow || carry ? .max : sum
    }

    /// Wall-clock milliseconds since the epoch.
    public static func wallClockMs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
import Glibc
#endif
