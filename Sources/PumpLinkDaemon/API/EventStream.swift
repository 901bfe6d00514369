import Foundation
import Hummingbird
import ServiceLifecycle
import Synchronization

/// `GET /v1/stream`: the service's updates as Server-Sent Events (`event: link|status|event`,
/// `data:` the JSON of `LinkUpdateData`, `StatusUpdateData` or `EventUpdateData`).
///
/// Each client has its own queue of the newest `bufferSize` updates, filled by the `StreamHub`,
/// so a client that reads slowly, or not at all, loses its oldest updates and holds up nobody:
/// not the links, not other clients. Every update gets an `id:` counting the updates this
/// client was offered, so a gap in the ids tells the client it lost some (it can then re-read
/// `/v1/pumps/{id}` and `/events`).
struct EventStream: Sendable {
    let subscription: StreamSubscription
    /// A comment line this often, so a client that went away is noticed (the write fails)
    /// even when no update comes.
    let heartbeatInterval: Duration

    var response: Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/event-stream; charset=utf-8",
                .cacheControl: "no-cache",
            ],
            body: ResponseBody { writer in
                try await run(&writer)
            })
    }

    private func run(_ writer: inout any ResponseBodyWriter) async throws {
        let subscription = self.subscription
        defer { subscription.cancel() }
        // The first bytes tell the client the subscription is in place.
        try await writer.write(ByteBuffer(string: ": connected\n\n"))
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { [heartbeatInterval] in
                    while true {
                        try await Task.sleep(for: heartbeatInterval)
                        subscription.heartbeat()
                    }
                }
                // Everything queued since the last write goes out as one write.
                for await _ in subscription.doorbell {
                    if let bytes = subscription.take() { try await writer.write(bytes) }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            subscription.finish()
        }
        try await writer.finish(nil)
    }

    /// An update's SSE `event` and one-line `data` (JSON escapes every newline), ending the
    /// message; the `id` line goes before it, per client.
    static func body(of update: PumpUpdate) throws -> ByteBuffer {
        let json = JSONEncoding()
        let name: String
        let data: Data
        switch update {
        case .link(let pumpID, let state):
            name = "link"
            data = try json.encode(LinkUpdateData(pumpID: pumpID, link: state))
        case .status(let pumpID, let status):
            name = "status"
            data = try json.encode(StatusUpdateData(pumpID: pumpID, status: status))
        case .event(let pumpID, let event):
            name = "event"
            data = try json.encode(EventUpdateData(pumpID: pumpID, event: event))
        }
        var body = ByteBuffer(string: "event: \(name)\ndata: ")
        body.writeBytes(data)
        body.writeString("\n\n")
        return body
    }
}

/// The fan-out behind `/v1/stream`: one subscription to the service's updates for all clients.
/// Each update is encoded once; the updates of one short tick go to every client together, so
/// a client gets one write per tick however many pumps report.
final class StreamHub: Sendable {
    /// How long updates gather before they go to the clients: at most this much latency, for
    /// one write per client per tick instead of one per update.
    static let tick: Duration = .milliseconds(20)

    private struct Pending {
        var pumpID: String
        var body: ByteBuffer
    }

    private struct State {
        var started = false
        var nextClient = 0
        var clients: [Int: StreamSubscription] = [:]
        var pending: [Pending] = []
        var flushScheduled = false
    }

    private let state = Mutex(State())

    /// Subscribes to the service's updates, the first time only.
    func start(_ service: some PumpService) async {
        guard state.withLock({ state in
            defer { state.started = true }
            return !state.started
        }) else { return }
        let updates = await service.updates()
        Task { [weak self] in
            for await update in updates {
                guard let self else { return }
                self.publish(update)
            }
            self?.finishAll()
        }
    }

    /// A new client's queue of at most `bufferSize` updates, of one pump if `pumpID` is set.
    func subscribe(pumpID: String?, bufferSize: Int) -> StreamSubscription {
        state.withLock { state in
            state.nextClient += 1
            let id = state.nextClient
            let subscription = StreamSubscription(pumpID: pumpID, bufferSize: bufferSize) { [weak self] in
                self?.state.withLock { state in _ = state.clients.removeValue(forKey: id) }
            }
            state.clients[id] = subscription
            return subscription
        }
    }

    private func publish(_ update: PumpUpdate) {
        // With no client, nothing is encoded.
        guard state.withLock({ !$0.clients.isEmpty }), let body = try? EventStream.body(of: update) else { return }
        let schedule = state.withLock { state in
            guard !state.clients.isEmpty else { return false }
            state.pending.append(Pending(pumpID: update.pumpID, body: body))
            defer { state.flushScheduled = true }
            return !state.flushScheduled
        }
        if schedule {
            Task { [weak self] in
                try? await Task.sleep(for: Self.tick)
                self?.flush()
            }
        }
    }

    private func flush() {
        let (pending, clients) = state.withLock { state in
            defer {
                state.pending = []
                state.flushScheduled = false
            }
            return (state.pending, Array(state.clients.values))
        }
        guard !pending.isEmpty else { return }
        let all = pending.map(\.body)
        var byPump: [String: [ByteBuffer]] = [:]
        for client in clients {
            guard let pumpID = client.pumpID else {
                client.push(all)
                continue
            }
            if byPump[pumpID] == nil { byPump[pumpID] = pending.filter { $0.pumpID == pumpID }.map(\.body) }
            client.push(byPump[pumpID] ?? [])
        }
    }

    private func finishAll() {
        let clients = state.withLock { Array($0.clients.values) }
        for client in clients { client.finish() }
    }
}

/// One stream client's queue: update bodies with their ids, the newest `bufferSize` kept, and
/// a doorbell rung when the queue stops being empty. Bodies are shared between clients
/// (copy-on-write buffers), only the `id:` line is the client's own.
final class StreamSubscription: Sendable {
    let pumpID: String?
    private let bufferSize: Int
    private let onCancel: @Sendable () -> Void
    let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation

    private struct State {
        /// Updates offered to this client so far: the id of the newest.
        var offered: UInt64 = 0
        var queue: [(id: UInt64, body: ByteBuffer)] = []
        var head = 0
        var heartbeat = false
        var rung = false

        /// Whether this is the first thing queued since the writer last took: ring the doorbell.
        mutating func ring() -> Bool {
            defer { rung = true }
            return !rung
        }
    }

    private let state = Mutex(State())

    init(pumpID: String?, bufferSize: Int, onCancel: @escaping @Sendable () -> Void) {
        self.pumpID = pumpID
        self.bufferSize = max(1, bufferSize)
        self.onCancel = onCancel
        (doorbell, ring) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func push(_ bodies: [ByteBuffer]) {
        guard !bodies.isEmpty else { return }
        let wasQuiet = state.withLock { state in
            for body in bodies {
                state.offered += 1
                state.queue.append((state.offered, body))
            }
            // The oldest go first when the client falls behind.
            let excess = state.queue.count - state.head - bufferSize
            if excess > 0 { state.head += excess }
            return state.ring()
        }
        if wasQuiet { ring.yield() }
    }

    func heartbeat() {
        let wasQuiet = state.withLock { state in
            state.heartbeat = true
            return state.ring()
        }
        if wasQuiet { ring.yield() }
    }

    /// Everything queued, as the bytes of one write; nil if nothing is.
    func take() -> ByteBuffer? {
        state.withLock { state in
            defer {
                state.queue.removeAll(keepingCapacity: true)
                state.head = 0
                state.heartbeat = false
                state.rung = false
            }
            var bytes = ByteBuffer()
            if state.heartbeat { bytes.writeString(": keepalive\n\n") }
            for index in state.head..<state.queue.count {
                bytes.writeString("id: \(state.queue[index].id)\n")
                var body = state.queue[index].body
                bytes.writeBuffer(&body)
            }
            return bytes.readableBytes > 0 ? bytes : nil
        }
    }

    /// Ends the client's stream (the server is shutting down, or the updates ended).
    func finish() { ring.finish() }

    /// The client went away: no more updates are queued for it.
    func cancel() {
        ring.finish()
        onCancel()
    }
}

extension PumpUpdate {
    var pumpID: String {
        switch self {
        case .link(let pumpID, _), .status(let pumpID, _), .event(let pumpID, _): pumpID
        }
    }
}
