import Foundation
import Hummingbird
import ServiceLifecycle

/// `GET /v1/stream`: the service's updates as Server-Sent Events (`event: link|status|event`,
/// `data:` the JSON of `LinkUpdateData`, `StatusUpdateData` or `EventUpdateData`).
///
/// Each client has its own queue of the newest `bufferSize` updates, filled by a task that
/// drains the service's stream at once, so a client that reads slowly, or not at all, loses
/// its oldest updates and holds up nobody: not the links, not other clients. Every update gets
/// an `id:` counting the updates this client was offered, so a gap in the ids tells the client
/// it lost some (it can then re-read `/v1/pumps/{id}` and `/events`).
struct EventStream: Sendable {
    enum Item: Sendable {
        case update(id: UInt64, PumpUpdate)
        case heartbeat
    }

    let updates: AsyncStream<PumpUpdate>
    /// Only this pump's updates, if set.
    let pumpID: String?
    let bufferSize: Int
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
        let (queue, queueInput) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingNewest(bufferSize))
        // The first bytes tell the client the subscription is in place.
        try await writer.write(ByteBuffer(string: ": connected\n\n"))
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { [updates, pumpID] in
                    var id: UInt64 = 0
                    for await update in updates where pumpID == nil || update.pumpID == pumpID {
                        id += 1
                        queueInput.yield(.update(id: id, update))
                    }
                    queueInput.finish()
                }
                group.addTask { [heartbeatInterval] in
                    while true {
                        try await Task.sleep(for: heartbeatInterval)
                        queueInput.yield(.heartbeat)
                    }
                }
                for await item in queue {
                    try await writer.write(ByteBuffer(bytes: try Self.encode(item)))
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            queueInput.finish()
        }
        try await writer.finish(nil)
    }

    /// One SSE message: `id`, `event` and a one-line `data` (JSON escapes every newline).
    static func encode(_ item: Item) throws -> Data {
        let json = JSONEncoding()
        switch item {
        case .heartbeat:
            return Data(": keepalive\n\n".utf8)
        case .update(let id, let update):
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
            var message = Data("id: \(id)\nevent: \(name)\ndata: ".utf8)
            message.append(data)
            message.append(contentsOf: Array("\n\n".utf8))
            return message
        }
    }
}

extension PumpUpdate {
    var pumpID: String {
        switch self {
        case .link(let pumpID, _), .status(let pumpID, _), .event(let pumpID, _): pumpID
        }
    }
}
