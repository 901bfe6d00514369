import Glibc
import Testing

@testable import SerialTransport

/// A client port on the subordinate side and a controller port, as the daemon and the software
/// pump see a pty.
private func makeConnectedPair() throws -> (client: SerialPort, controller: SerialPort) {
    let terminal = try PseudoTerminal.open()
    let client: SerialPort
    do {
        client = try SerialPort.open(path: terminal.subordinatePath)
    } catch {
        terminal.close()
        throw error
    }
    let controller = try SerialPort.controller(of: terminal)
    return (client, controller)
}

/// Serialized: the 1 MiB transfers would otherwise keep the (two-thread) cooperative pool busy
/// while the hang-up test measures how soon its reader wakes.
@Suite("SerialPort over a pseudo-terminal", .serialized)
struct PseudoTerminalPortTests {
    @Test("all 256 byte values pass unchanged both ways")
    func everyByteValueBothWays() async throws {
        let (client, controller) = try makeConnectedPair()
        defer {
            client.close()
            controller.close()
        }
        #expect(client.opener == .posixTermios)
        #expect(controller.opener == .pseudoTerminalController)

        // 0x00, 0x11 (XON), 0x13 (XOFF), 0x0A/0x0D (CR/LF translation), 0x03 (VINTR), 0x7F, 0xFF.
        let everyByte = (0...255).map { UInt8($0) }
        let reversed = Array(everyByte.reversed())
        try await withWatchdog(closing: [client, controller]) {
            var fromClient = ByteCollector(controller)
            var fromController = ByteCollector(client)
            try await client.send(everyByte)
            #expect(try await fromClient.take(256) == everyByte)
            try await controller.send(reversed)
            #expect(try await fromController.take(256) == reversed)
        }
    }

    @Test("1 MiB each way with back-pressure, while the other side reads")
    func largeTransfersBothWays() async throws {
        let (client, controller) = try makeConnectedPair()
        defer {
            client.close()
            controller.close()
        }
        let size = 1 << 20
        let upstream = pattern(count: size, seed: 7)
        let downstream = pattern(count: size, seed: 11)
        try await withWatchdog(seconds: 10, closing: [client, controller]) {
            // A pty holds a few KiB, so both sends must wait for the reader many times over.
            async let sentUp: Void = client.send(upstream)
            async let sentDown: Void = controller.send(downstream)
            var atController = ByteCollector(controller)
            var atClient = ByteCollector(client)
            async let receivedDown = atClient.take(size)
            let receivedUp = try await atController.take(size)
            #expect(sameBytes(receivedUp, upstream))
            #expect(sameBytes(try await receivedDown, downstream))
            try await sentUp
            try await sentDown
        }
    }

    @Test("many small sends arrive in order")
    func manySmallChunks() async throws {
        let (client, controller) = try makeConnectedPair()
        defer {
            client.close()
            controller.close()
        }
        let payload = pattern(count: 20_000, seed: 3)
        var chunks: [[UInt8]] = []
        var index = 0
        while index < payload.count {
            let length = min(1 + index % 7, payload.count - index)
            chunks.append(Array(payload[index..<(index + length)]))
            index += length
        }
        try await withWatchdog(closing: [client, controller]) {
            var collector = ByteCollector(client)
            async let received = collector.take(payload.count)
            for chunk in chunks {
                try await controller.send(chunk)
            }
            #expect(try await received == payload)
        }
    }

    @Test("closing the controller ends the client's stream with portVanished within 1 s")
    func hangUpFromController() async throws {
        let terminal = try PseudoTerminal.open()
        let client = try SerialPort.open(path: terminal.subordinatePath)
        defer { client.close() }

        let reader = Task { () -> (any Error)? in
            do {
                for try await _ in client.incoming {}
                return nil
            } catch {
                return error
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        let start = ContinuousClock.now
        terminal.close()
        let ended = await withWatchdog(seconds: 2, closing: [client]) { await reader.value }
        let elapsed = ContinuousClock.now - start
        #expect((ended as? SerialError)?.code == .portVanished)
        #expect(elapsed < .seconds(1))

        // Every later call reports the same thing.
        await #expect(throws: SerialError.self) { try await client.send([1]) }
    }

    @Test("without holding the subordinate, the controller sees the last client leave")
    func hangUpFromClient() async throws {
        let terminal = try PseudoTerminal.open()
        let client = try SerialPort.open(path: terminal.subordinatePath)
        let controller = try SerialPort.controller(of: terminal, holdingSubordinateOpen: false)
        defer { controller.close() }

        let reader = Task { () -> (any Error)? in
            do {
                for try await _ in controller.incoming {}
                return nil
            } catch {
                return error
            }
        }
        client.close()
        let ended = await withWatchdog(seconds: 2, closing: [controller]) { await reader.value }
        #expect((ended as? SerialError)?.code == .portVanished)
    }

    @Test("holding the subordinate, clients can leave and come back")
    func clientsComeAndGo() async throws {
        let terminal = try PseudoTerminal.open()
        let path = terminal.subordinatePath
        let controller = try SerialPort.controller(of: terminal, holdingSubordinateOpen: true)
        defer { controller.close() }

        try await withWatchdog(closing: [controller]) {
            var atController = ByteCollector(controller)
            for round in 0..<3 {
                let client = try SerialPort.open(path: path)
                let message = pattern(count: 100, seed: UInt32(round + 20))
                try await client.send(message)
                #expect(try await atController.take(100) == message)
                client.close()
            }
        }
    }

    @Test("close() wakes the reader, ends the stream cleanly and closes the descriptor")
    func closeEndsReaderCleanly() async throws {
        let terminal = try PseudoTerminal.open()
        defer { Glibc.close(terminal.controllerDescriptor) }
        let client = try SerialPort.open(path: terminal.subordinatePath)

        let reader = Task { () -> Result<Int, any Error> in
            do {
                var chunks = 0
                for try await _ in client.incoming { chunks += 1 }
                return .success(chunks)
            } catch {
                return .failure(error)
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        client.close()
        let outcome = await reader.value
        #expect(throws: Never.self) { try outcome.get() }

        // Once close() returns the client's descriptor is closed: with the terminal's own
        // subordinate descriptor closed too, the controller now reads EIO (no subordinate open).
        Glibc.close(terminal.subordinateDescriptor)
        var byte: UInt8 = 0
        let count = read(terminal.controllerDescriptor, &byte, 1)
        let error = errno
        #expect(count == -1 && error == EIO)

        await #expect(throws: SerialError(.closed, path: terminal.subordinatePath)) {
            try await client.send([1, 2, 3])
        }
        client.close()  // idempotent
    }

    @Test("a send that has not started is withdrawn on cancellation; queued sends fail on close")
    func cancellationAndCloseOfQueuedSends() async throws {
        let (client, controller) = try makeConnectedPair()
        defer { controller.close() }

        // Nobody reads the controller, so this fills the pty and then waits, already started.
        let big = Task { try await client.send(pattern(count: 1 << 20)) }
        try await Task.sleep(for: .milliseconds(50))
        let small = Task { try await client.send([1, 2, 3]) }
        try await Task.sleep(for: .milliseconds(50))
        small.cancel()
        await #expect(throws: SerialError(.cancelled, path: client.path)) { try await small.value }

        client.close()
        await #expect(throws: SerialError(.closed, path: client.path)) { try await big.value }
    }

    @Test("a second open of the same device reports busy")
    func secondOpenIsBusy() throws {
        let terminal = try PseudoTerminal.open()
        defer { terminal.close() }
        let first = try SerialPort.open(path: terminal.subordinatePath)
        defer { first.close() }
        #expect {
            _ = try SerialPort.open(path: terminal.subordinatePath)
        } throws: { error in
            (error as? SerialError)?.code == .busy
        }
    }

    @Test("a symlink outside /dev (socat's link=, an emulator's /tmp/pump0) opens the pty")
    func symlinkToPseudoTerminal() async throws {
        let directory = try #require(makeTemporaryDirectory())
        defer { removeTemporaryDirectory(directory) }
        let terminal = try PseudoTerminal.open()
        let link = "\(directory)/pump0"
        try terminal.link(at: link)
        defer { terminal.removeLink(at: link) }
        let controller = try SerialPort.controller(of: terminal)
        defer { controller.close() }

        let client = try SerialPort.open(path: link)
        defer { client.close() }
        #expect(client.path == link)
        #expect(client.resolvedPath == terminal.subordinatePath)
        #expect(client.opener == .posixTermios)
        try await withWatchdog(closing: [client, controller]) {
            var atClient = ByteCollector(client)
            try await controller.send([0x11, 0x13, 0x0D, 0x0A, 0x00])
            #expect(try await atClient.take(5) == [0x11, 0x13, 0x0D, 0x0A, 0x00])
        }
    }

    @Test("the synchronous interface: write, wait, read, hang-up")
    func synchronousInterface() throws {
        let terminal = try PseudoTerminal.open()
        let client = try SerialPort.open(path: terminal.subordinatePath)
        defer { client.close() }

        var buffer = [UInt8](repeating: 0, count: 64)
        let nothing = try buffer.withUnsafeMutableBytes { raw in try client.read(into: raw) }
        #expect(nothing == .wouldBlock)
        #expect(try client.waitUntilReadable(timeout: .milliseconds(10)) == false)

        try client.write([0x00, 0x11, 0x13, 0xFF])
        var received = [UInt8](repeating: 0, count: 4)
        #expect(Glibc.read(terminal.controllerDescriptor, &received, 4) == 4)
        #expect(received == [0x00, 0x11, 0x13, 0xFF])

        let sent: [UInt8] = [0x0D, 0x0A, 0x03, 0x7F]
        #expect(Glibc.write(terminal.controllerDescriptor, sent, sent.count) == sent.count)
        #expect(try client.waitUntilReadable(timeout: .seconds(1)))
        let got = try buffer.withUnsafeMutableBytes { raw in try client.read(into: raw) }
        #expect(got == .bytes(4))
        #expect(Array(buffer.prefix(4)) == sent)

        terminal.close()
        #expect(try client.waitUntilReadable(timeout: .seconds(1)))
        #expect(throws: SerialError(.portVanished, path: terminal.subordinatePath, operation: "read")) {
            _ = try buffer.withUnsafeMutableBytes { raw in try client.read(into: raw) }
        }
    }

    @Test("synchronous calls are refused once the asynchronous side owns the port")
    func mixingInterfacesIsRefused() throws {
        let (client, controller) = try makeConnectedPair()
        defer {
            client.close()
            controller.close()
        }
        _ = client.incoming
        #expect(throws: SerialError(.invalidUse, path: client.path)) { try client.write([1]) }
    }
}
