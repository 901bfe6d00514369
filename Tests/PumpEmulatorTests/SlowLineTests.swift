import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

/// Waits for answers that allow for the line's speed (SPEC §7.2).
@Suite("Slow lines")
struct SlowLineTests {
    @Test func theWaitAddsTheLineTimeOfEverythingAhead() {
        var configuration = SessionConfiguration()
        configuration.bitsPerSecond = 9600  // 960 bytes a second at 10 bits a byte
        // Alone: 500 ms, then 96 request bytes (100 ms) and a 960-byte answer (1 s).
        #expect(configuration.responseDeadline(requestBytes: 96, requestsAhead: 0, bytesAhead: 0, answerBytes: 960)
                == .milliseconds(1600))
        // Behind 3 requests of 96 bytes: their requests (300 ms) and answers (3 s) come first.
        #expect(configuration.responseDeadline(requestBytes: 96, requestsAhead: 3, bytesAhead: 288, answerBytes: 960)
                == .milliseconds(4900))
        configuration.bitsPerSecond = 115_200
        #expect(configuration.lineTime(bytes: 1152) == .milliseconds(100))
        // A link without a bit rate (memory) waits the fixed part alone.
        configuration.bitsPerSecond = nil
        #expect(configuration.responseDeadline(requestBytes: 96, requestsAhead: 7, bytesAhead: 672, answerBytes: 1088)
                == configuration.responseTimeout)
    }

    /// A pipelined download over a pseudo-terminal from an emulated pump paced at 9600 bit/s:
    /// about 1.1 s per full answer, 3 of them in flight at once, the last arriving 3.3 s after
    /// its request. A fixed wait (even of 2 s) retransmits; the line-time wait needs none. The
    /// fixed part is 2 s here rather than 500 ms: the whole test suite runs at once, and a
    /// starved emulator answers late.
    @Test func aPipelinedDownloadAt9600BitsPerSecondNeedsNoRetransmission() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplink-slow-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = PairingKey.generate()
        let pump = EmulatedPump.test(serial: "SLOW-0001", key: key, baudRate: 9600)
        // 75 suspend/resume pairs: 152 events with the first two, four answers of 38.
        for _ in 0..<75 {
            _ = await pump.withDevice { device, now in
                _ = device.suspend(nowMs: now, requestID: 0)
                _ = device.resume(nowMs: now, requestID: 0)
            }
        }
        let linkPath = directory.appendingPathComponent("pump0").path
        let host = PumpHost(index: 0, serial: "SLOW-0001", pump: pump, linkPath: linkPath, portPath: nil, announce: { _ in })
        try await host.start()

        var configuration = SessionConfiguration()
        configuration.bitsPerSecond = 9600
        configuration.responseTimeout = .seconds(2)
        configuration.keepaliveInterval = .seconds(30)  // only the download on the line
        let session = PumpSession(
            link: try SerialPort.open(path: linkPath, settings: LineSettings(baudRate: 9600)), key: key, configuration: configuration)
        try await session.connect()
        let started = ContinuousClock.now
        let (_, events) = try await session.readEvents(from: 1)
        let elapsed = ContinuousClock.now - started
        let counters = await session.counters
        await session.close()
        await host.stop()

        #expect(events.map(\.sequence) == Array(1...152))
        #expect(counters.retransmissions == 0)
        // Four answers of about 1 KB at 960 bytes a second: the line, not the waits, sets the pace.
        #expect(elapsed > .seconds(3) && elapsed < .seconds(12))
    }
}
