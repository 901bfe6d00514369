import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PumpLinkDaemon
import PumpProtocol
import ServiceLifecycle
import Synchronization
import Testing

/// One message of a Server-Sent Events stream.
struct SSEMessage: Sendable, Equatable {
    var id: String?
    var event: String?
    var data: String?
}

/// A raw HTTP/1.1 client that reads a response as it arrives, for `/v1/stream`.
final class StreamingClient: Sendable {
    private let channel: any Channel
    private let received = Mutex<(chunks: [String], finished: Bool)>(([], false))
    /// Chunks already returned by `read`.
    private let consumed = Mutex<Int>(0)

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPClientResponsePart
        let client: StreamingClient

        init(_ client: StreamingClient) { self.client = client }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                client.append("HTTP \(head.status.code)\n\(head.headers[canonicalForm: "content-type"].joined())\n\n")
            case .body(let buffer): client.append(String(buffer: buffer))
            case .end: client.finish()
            }
        }

        func channelInactive(context: ChannelHandlerContext) { client.finish() }
    }

    private func append(_ chunk: String) { received.withLock { $0.chunks.append(chunk) } }
    private func finish() { received.withLock { $0.finished = true } }

    /// Connects and sends `GET uri`. A client that does not read (`reading: false`) leaves
    /// everything in a small socket buffer, like a stalled consumer.
    init(host: String = "127.0.0.1", port: Int? = nil, unixSocket: String? = nil, uri: String, token: String?, reading: Bool = true) async throws {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHTTPClientHandlers() }
            }
        if !reading {
            bootstrap = bootstrap
                .channelOption(ChannelOptions.autoRead, value: false)
                .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 2048)
        }
        if let unixSocket {
            self.channel = try await bootstrap.connect(unixDomainSocketPath: unixSocket).get()
        } else {
            self.channel = try await bootstrap.connect(host: host, port: port ?? 0).get()
        }
        // Nothing arrives before the request is sent, so the collector is in place in time.
        try await channel.pipeline.addHandler(Collector(self)).get()
        var headers = HTTPHeaders([("Host", "localhost"), ("Accept", "text/event-stream")])
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        try await channel.writeAndFlush(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)))
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
    }

    /// Starts reading a client made with `reading: false`.
    func resumeReading() {
        channel.eventLoop.execute { [channel] in
            channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in channel.read() }
        }
    }

    /// The server ended the response or closed the connection.
    var isFinished: Bool { received.withLock { $0.finished } }

    func close() async {
        try? await channel.close()
    }

    /// What arrived since the previous `read`, once `done` says it is enough (or the response
    /// ended), within `timeout`. `done` sees the new text with a little of what came before it,
    /// enough for the short markers the tests look for.
    func read(timeout: Duration = .seconds(20), until done: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        let start = consumed.withLock { $0 }
        var text = ""
        var seen = start
        while true {
            let (chunks, finished) = received.withLock { ($0.chunks, $0.finished) }
            if chunks.count > seen {
                let fresh = chunks[seen...].joined()
                let window = String(text.suffix(4096)) + fresh
                text += fresh
                seen = chunks.count
                if done(window) {
                    consumed.withLock { $0 = seen }
                    return text
                }
            }
            if finished {
                consumed.withLock { $0 = seen }
                return text
            }
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out after \(timeout)")
                return text
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Whether `text` holds a whole message (up to its blank line) containing `marker`.
    static func hasCompleteMessage(_ text: String, containing marker: String) -> Bool {
        guard let range = text.range(of: marker) else { return false }
        return text[range.upperBound...].contains("\n\n")
    }

    /// The messages of an SSE text (comments and the head skipped).
    static func messages(_ text: String) -> [SSEMessage] {
        // The last block is empty or not complete yet.
        let blocks = text.components(separatedBy: "\n\n").dropLast()
        return blocks.compactMap { block in
            var message = SSEMessage()
            for line in block.split(separator: "\n") where !line.hasPrefix(":") {
                if line.hasPrefix("id: ") { message.id = String(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { message.event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { message.data = String(line.dropFirst(6)) }
            }
            return message.event == nil ? nil : message
        }
    }
}

@Suite("HTTP API, live")
struct APIStreamTests {
    typealias Support = APITestSupport

    static func update(_ index: Int) -> PumpUpdate {
        switch index % 3 {
        case 0: .event(pumpID: "pump-1", event: FakePumpService.event(sequence: UInt32(index)))
        case 1:
            .status(pumpID: index % 2 == 0 ? "pump-1" : "pump-2", status: {
                var status = FakePumpService.status
                status.lastEventSequence = UInt32(index)
                return status
            }())
        default: .link(pumpID: "pump-2", state: .down(reason: "update \(index)"))
        }
    }

    static func waitForSubscribers(_ fake: FakePumpService, _ count: Int) async throws {
        for _ in 0..<500 where await fake.subscriberCount < count {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await fake.subscriberCount == count)
    }

    @Test func updatesReachEveryClientInOrder() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.live) { client in
            let port = try #require(client.port)
            let first = try await StreamingClient(port: port, uri: "/v1/stream", token: Support.observerToken)
            let second = try await StreamingClient(port: port, uri: "/v1/stream", token: Support.patientToken)
            let onlyPump1 = try await StreamingClient(port: port, uri: "/v1/stream?pump=pump-1", token: Support.clinicianToken)
            for stream in [first, second, onlyPump1] {
                let head = try await stream.read { $0.contains(": connected\n\n") }
                #expect(head.hasPrefix("HTTP 200\ntext/event-stream"))
            }
            // One subscription to the service serves every client.
            try await Self.waitForSubscribers(fake, 1)

            let updates = (1...60).map(Self.update)
            for update in updates { await fake.publish(update) }

            let expected = updates.map(Self.expectedMessage)
            for stream in [first, second] {
                let text = try await stream.read { StreamingClient.hasCompleteMessage($0, containing: "id: \(expected.count)\n") }
                let messages = StreamingClient.messages(text)
                #expect(messages.map(\.event) == expected.map(\.event))
                #expect(messages.map(\.data) == expected.map(\.data))
                #expect(messages.map(\.id) == (1...60).map { String($0) })
            }
            let expectedPump1 = expected.enumerated().filter { updates[$0.offset].pumpIDForTest == "pump-1" }.map(\.element)
            let text = try await onlyPump1.read { StreamingClient.hasCompleteMessage($0, containing: "id: \(expectedPump1.count)\n") }
            #expect(StreamingClient.messages(text).map(\.data) == expectedPump1.map(\.data))
            for stream in [first, second, onlyPump1] { await stream.close() }
        }
    }

    @Test func aClientThatNeverReadsDoesNotHoldUpAnother() async throws {
        let fake = FakePumpService()
        let batch = 200
        try await Support.app(fake, configuration: Support.configuration(streamBufferSize: 256)).test(.live) { client in
            let port = try #require(client.port)
            let stalled = try await StreamingClient(port: port, uri: "/v1/stream", token: Support.observerToken, reading: false)
            let reader = try await StreamingClient(port: port, uri: "/v1/stream", token: Support.observerToken)
            _ = try await reader.read { $0.contains(": connected\n\n") }
            try await Self.waitForSubscribers(fake, 1)

            // About 6 MB of JSON: more than the socket buffers of the stalled client hold (4 MB at most).
            // Published in batches the reader keeps up with, so it must lose nothing.
            let count = 8_000
            var status = FakePumpService.status
            var readerText = ""
            for first in stride(from: 1, through: count, by: batch) {
                for index in first..<(first + batch) {
                    status.lastEventSequence = UInt32(index)
                    await fake.publish(.status(pumpID: "pump-1", status: status))
                }
                let last = first + batch - 1
                readerText += try await reader.read { StreamingClient.hasCompleteMessage($0, containing: "id: \(last)\n") }
            }
            await fake.publish(.link(pumpID: "pump-1", state: .down(reason: "last")))
            readerText += try await reader.read { StreamingClient.hasCompleteMessage($0, containing: #""reason":"last""#) }
            let readerIDs = StreamingClient.messages(readerText).compactMap { $0.id.flatMap(Int.init) }
            #expect(readerIDs == Array(1...(count + 1)), "the reader got every update, in order")

            // The stalled client, once it reads, finds the newest updates and a gap: it lost
            // the ones its buffer could not hold, and nobody waited for it.
            stalled.resumeReading()
            let stalledText = try await stalled.read(timeout: .seconds(30)) {
                StreamingClient.hasCompleteMessage($0, containing: #""reason":"last""#)
            }
            let stalledIDs = StreamingClient.messages(stalledText).compactMap { $0.id.flatMap(Int.init) }
            #expect(stalledIDs.last == count + 1)
            #expect(stalledIDs == stalledIDs.sorted() && Set(stalledIDs).count == stalledIDs.count)
            #expect(stalledIDs.count < count, "a stalled client's queue is bounded: \(stalledIDs.count) of \(count + 1)")
            await stalled.close()
            await reader.close()
        }
    }

    @Test func theStreamNeedsAToken() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.live) { client in
            let port = try #require(client.port)
            let stream = try await StreamingClient(port: port, uri: "/v1/stream", token: nil)
            let text = try await stream.read { $0.contains("unauthorized") }
            #expect(text.hasPrefix("HTTP 401"))
            await stream.close()
        }
        #expect(await fake.subscriberCount == 0)
    }

    @Test func theAPIServesAUnixSocket() async throws {
        let path = NSTemporaryDirectory() + "pumplinkd-api-\(UUID().uuidString.prefix(8)).sock"
        let configuration = APIConfiguration(unixSocket: path, tokens: Support.configuration().tokens)
        let app = buildAPI(service: FakePumpService(), configuration: configuration, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let group = ServiceGroup(services: [app], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var client: StreamingClient?
            for _ in 0..<200 where client == nil {
                client = try? await StreamingClient(unixSocket: path, uri: "/v1/health", token: nil)
                if client == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let health = try #require(client)
            let text = try await health.read { $0.contains(#""status":"ok"}"#) }
            #expect(text.hasPrefix("HTTP 200"))
            await health.close()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func aGracefulShutdownEndsOpenStreams() async throws {
        let path = NSTemporaryDirectory() + "pumplinkd-api-\(UUID().uuidString.prefix(8)).sock"
        let fake = FakePumpService()
        let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let app = buildAPI(service: fake, configuration: APIConfiguration(unixSocket: path, tokens: Support.configuration().tokens), logger: quiet)
        let group = ServiceGroup(services: [app], logger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var client: StreamingClient?
            for _ in 0..<200 where client == nil {
                client = try? await StreamingClient(unixSocket: path, uri: "/v1/stream", token: Support.observerToken)
                if client == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let stream = try #require(client)
            _ = try await stream.read { $0.contains(": connected\n\n") }
            await fake.publish(.link(pumpID: "pump-1", state: .connecting))
            _ = try await stream.read { $0.contains("event: link") }

            await group.triggerGracefulShutdown()
            // The server ends the response (and so lets the daemon stop) instead of waiting for the client.
            try await tasks.waitForAll()
            _ = try await stream.read(timeout: .seconds(5)) { _ in false }
            #expect(stream.isFinished)
            await stream.close()
        }
    }

    static func expectedMessage(_ update: PumpUpdate) -> SSEMessage {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func json(_ object: [String: any Encodable]) -> String {
            // The server's data objects are {pumpID, <one field>}, keys sorted.
            let parts = object.keys.sorted().map { key in
                "\"\(key)\":" + String(decoding: try! encoder.encode(object[key]!), as: UTF8.self)
            }
            return "{" + parts.joined(separator: ",") + "}"
        }
        switch update {
        case .link(let id, let state): return SSEMessage(id: nil, event: "link", data: json(["pumpID": id, "link": state]))
        case .status(let id, let status): return SSEMessage(id: nil, event: "status", data: json(["pumpID": id, "status": status]))
        case .event(let id, let event): return SSEMessage(id: nil, event: "event", data: json(["pumpID": id, "event": event]))
        }
    }
}

extension PumpUpdate {
    var pumpIDForTest: String {
        switch self {
        case .link(let id, _), .status(let id, _), .event(let id, _): id
        }
    }
}
