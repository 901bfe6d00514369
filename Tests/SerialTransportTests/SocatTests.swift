import Glibc
import SerialTransport
import Testing

private let socatPath = findExecutable("socat")

@Suite("A socat pseudo-terminal pair")
struct SocatTests {
    @Test(
        "bytes flow both ways through socat's symlinks",
        .enabled(if: socatPath != nil, "socat is not installed (apt-get install socat)")
    )
    func bytesThroughSocatPair() async throws {
        let socat = try #require(socatPath)
        let directory = try #require(makeTemporaryDirectory())
        defer { removeTemporaryDirectory(directory) }
        let left = "\(directory)/left"
        let right = "\(directory)/right"

        let child = try #require(
            ChildProcess(
                executable: socat,
                arguments: ["-d", "-d", "pty,raw,echo=0,link=\(left)", "pty,raw,echo=0,link=\(right)"]
            )
        )
        defer { child.stop() }
        try #require(await waitForPaths([left, right], seconds: 20), "socat did not create its links")

        let a = try SerialPort.open(path: left)
        defer { a.close() }
        let b = try SerialPort.open(path: right)
        defer { b.close() }
        #expect(a.opener == .posixTermios && b.opener == .posixTermios)
        #expect(a.resolvedPath.hasPrefix("/dev/pts/"))

        let everyByte = (0...255).map { UInt8($0) }
        let bulk = pattern(count: 64 * 1024, seed: 5)
        try await withWatchdog(closing: [a, b]) {
            var atA = ByteCollector(a)
            var atB = ByteCollector(b)
            try await a.send(everyByte)
            #expect(try await atB.take(256) == everyByte)
            try await b.send(everyByte)
            #expect(try await atA.take(256) == everyByte)

            async let received = atA.take(bulk.count)
            try await b.send(bulk)
            #expect(try await received == bulk)
        }

        // socat ending is a hang-up for both ports.
        child.stop()
        let ended = await withWatchdog(seconds: 2, closing: [a]) { () -> (any Error)? in
            do {
                for try await _ in a.incoming {}
                return nil
            } catch {
                return error
            }
        }
        #expect((ended as? SerialError)?.code == .portVanished)
    }
}
