import Foundation
import PumpProtocol
@testable import PumpStore

/// A fresh directory under the system's temporary directory, removed by `cleanUp()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("PumpStoreTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func cleanUp() { try? FileManager.default.removeItem(at: url) }
}

func event(_ sequence: UInt32, kind: EventKind = .bolusCompleted, timeMs: UInt64? = nil, requestId: UInt32 = 0) -> Event {
    Event(
        sequence: sequence, timeMs: timeMs ?? 1_700_000_000_000 + UInt64(sequence) * 1000, kind: kind,
        code: UInt8(truncatingIfNeeded: sequence), requestId: requestId, value1: sequence &* 3, value2: sequence &* 7)
}

func events(_ sequences: some Sequence<UInt32>) -> [Event] { sequences.map { event($0) } }

/// An in-memory store with the pump "p1" registered.
func storeWithPump(_ id: String = "p1") throws -> PumpStore {
    let store = try PumpStore.inMemory()
    try store.registerPump(id: id, port: "/dev/ttyUSB0")
    return store
}
