// Link timings over real pseudo-terminals (docs/PERFORMANCE.md): each figure is
// printed beside its floor or ceiling measured in the same run.
//
//   tools/link-bench            full run
//   tools/link-bench --smoke    a few iterations of each

import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport

let smoke = CommandLine.arguments.contains("--smoke")
let roundTrips = smoke ? 200 : 5000
let eventCount = smoke ? 400 : 4000

func percentile(_ samples: [Duration], _ p: Double) -> Duration {
    let sorted = samples.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

func micros(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    return String(format: "%.1f µs", Double(seconds) * 1e6 + Double(attoseconds) / 1e12)
}

/// Reads from `link` until `count` bytes have arrived.
func receive(_ count: Int, from iterator: inout AsyncThrowingStream<[UInt8], any Error>.Iterator, pending: inout Int) async throws {
    while pending < count {
        guard let chunk = try await iterator.next() else { throw SerialError(.portVanished) }
        pending += chunk.count
    }
    pending -= count
}

/// The floor: a request of the size of GetStatus sent over a pseudo-terminal, answered by
/// a Status-sized reply from a process that does nothing else.
func rawEcho(requestSize: Int, replySize: Int) async throws -> [Duration] {
    let terminal = try PseudoTerminal.open()
    let controller = try SerialPort.controller(of: terminal)
    let client = try SerialPort.open(path: terminal.subordinatePath)
    defer {
        client.close()
        controller.close()
    }
    let reply = [UInt8](repeating: 0x55, count: replySize)
    let echo = Task {
        var iterator = controller.incoming.makeAsyncIterator()
        var pending = 0
        while true {
            do {
                try await receive(requestSize, from: &iterator, pending: &pending)
                try await controller.send(reply)
            } catch {
                return
            }
        }
    }
    defer { echo.cancel() }
    let request = [UInt8](repeating: 0x2A, count: requestSize)
    var iterator = client.incoming.makeAsyncIterator()
    var pending = 0
    var samples: [Duration] = []
    for _ in 0..<roundTrips {
        let start = ContinuousClock.now
        try await client.send(request)
        try await receive(replySize, from: &iterator, pending: &pending)
        samples.append(ContinuousClock.now - start)
    }
    return samples
}

func makePump(baudRate: Int?, events: Int) async -> (EmulatedPump<ModelPump>, PairingKey) {
    let key = PairingKey.generate()
    var configuration = PumpConfiguration()
    configuration.initialProgram = ModelPump.defaultProgram
    let startMs = VirtualClock.wallClockMs()
    var pump = Pump(configuration: configuration, nowMs: startMs)
    for _ in 0..<(events / 2) {
        _ = try? pump.suspend(nowMs: startMs, requestId: 0)
        _ = try? pump.resume(nowMs: startMs, requestId: 0)
    }
    let emulated = EmulatedPump(
        endpoint: PumpEndpoint(device: ModelPump(pump), key: key),
        clock: VirtualClock(startMs: startMs),
        baudRate: baudRate
    )
    return (emulated, key)
}

/// A pump on a pseudo-terminal and a session on the other side.
func connect(baudRate: Int?, events: Int) async throws -> (PumpSession, PumpHost<ModelPump>) {
    let (pump, key) = await makePump(baudRate: baudRate, events: events)
    let host = PumpHost(index: 0, serial: "BENCH", pump: pump, linkPath: nil, portPath: nil, announce: { _ in })
    try await host.start()
    guard let path = await host.terminalPath else { throw SerialError(.noSuchPort) }
    var configuration = SessionConfiguration()
    configuration.responseTimeout = .seconds(2)
    let session = PumpSession(link: try SerialPort.open(path: path), key: key, configuration: configuration)
    try await session.connect()
    return (session, host)
}

func statusRoundTrips() async throws -> [Duration] {
    let (session, host) = try await connect(baudRate: nil, events: 0)
    var samples: [Duration] = []
    for _ in 0..<roundTrips {
        let start = ContinuousClock.now
        _ = try await session.status()
        samples.append(ContinuousClock.now - start)
    }
    await session.close()
    await host.stop()
    return samples
}

/// Sizes on the line of a GetStatus request and of its answer.
func statusFrameSizes() throws -> (request: Int, reply: Int) {
    var encoder = FrameEncoder()
    let request = try encoder.encode(GetStatusRequest(), requestID: 1000)
    let status = Status(pumpTimeMs: 1, utcOffsetMinutes: 0, therapyState: .running, reservoirMicroliters: 1, reservoirCapacityMicroliters: 20_000,
                        currentDoseRateMicrogramsPerDay: 1, currentFlowMicrolitersPerDay: 1, totalDeliveredMicroliters: 1, totalDeliveredMicrograms: 1,
                        activeProgramId: 1, activeProgramChecksum: 1, bolusActive: 0, bolusRemainingMicroliters: 0, batteryState: .ok, batteryPercent: 99,
                        batteryDaysToEndOfService: 1000, alarmConditionMask: 0, alarmUnacknowledgedMask: 0, patientBolusAvailableInSeconds: 0,
                        patientBolusesInLast24h: 0, lastEventSequence: 1, lastExecutedRequestId: 1)
    let reply = try encoder.encode(GetStatusResponse(status: status), requestID: 1000)
    return (request.count, reply.count)
}

func bulkDownload(baudRate: Int) async throws -> (seconds: Double, payloadBytes: Int, lineBytes: Int) {
    let (session, host) = try await connect(baudRate: baudRate, events: eventCount)
    let start = ContinuousClock.now
    let (_, events) = try await session.readEvents(from: 1)
    let elapsed = ContinuousClock.now - start
    await session.close()
    await host.stop()
    // What crossed the line from the pump: the ReadEvents answers, re-encoded exactly.
    var encoder = FrameEncoder()
    var lineBytes = 0
    var index = 0
    while index < events.count {
        let page = Array(events[index..<min(index + 38, events.count)])
        let frame = try encoder.encode(ReadEventsResponse(oldestSequence: 1, lastSequence: UInt32(events.count), events: page), requestID: 1)
        lineBytes += frame.count
        index += page.count
    }
    let (seconds, attoseconds) = elapsed.components
    return (Double(seconds) + Double(attoseconds) / 1e18, events.count * 26, lineBytes)
}

func programUpload(baudRate: Int) async throws -> Double {
    let (session, host) = try await connect(baudRate: baudRate, events: 0)
    var program = ModelPump.defaultProgram
    program.programId = 2
    let start = ContinuousClock.now
    _ = try await session.pushProgram(program)
    let elapsed = ContinuousClock.now - start
    await session.close()
    await host.stop()
    let (seconds, attoseconds) = elapsed.components
    return Double(seconds) + Double(attoseconds) / 1e18
}

let sizes = try statusFrameSizes()
print("Round trip over a pseudo-terminal, \(roundTrips) each (request \(sizes.request) B, answer \(sizes.reply) B on the line)")
let floor = try await rawEcho(requestSize: sizes.request, replySize: sizes.reply)
let status = try await statusRoundTrips()
print("  raw echo (floor)          p50 \(micros(percentile(floor, 0.5)))   p99 \(micros(percentile(floor, 0.99)))")
print("  GetStatus via session     p50 \(micros(percentile(status, 0.5)))   p99 \(micros(percentile(status, 0.99)))")
let ratio = Double(percentile(status, 0.5).components.attoseconds + percentile(status, 0.5).components.seconds * 1_000_000_000_000_000_000)
    / Double(percentile(floor, 0.5).components.attoseconds + percentile(floor, 0.5).components.seconds * 1_000_000_000_000_000_000)
print(String(format: "  p50 ratio to the floor    %.2fx", ratio))

for baud in [115_200, 921_600] {
    let lineRate = Double(baud) / 10
    let bulk = try await bulkDownload(baudRate: baud)
    let payloadRate = Double(bulk.payloadBytes) / bulk.seconds
    print("Event log download at \(baud) bit/s (line rate \(Int(lineRate)) B/s), \(eventCount) events")
    print(String(format: "  %.2f s; event bytes %.0f B/s = %.1f %% of the line rate", bulk.seconds, payloadRate, 100 * payloadRate / lineRate))
    print(String(format: "  pump-to-host line bytes %.0f B/s = %.1f %% busy; protocol overhead %.1f %% of line bytes",
                 Double(bulk.lineBytes) / bulk.seconds, 100 * Double(bulk.lineBytes) / bulk.seconds / lineRate,
                 100 * Double(bulk.lineBytes - bulk.payloadBytes) / Double(bulk.lineBytes)))
    let upload = try await programUpload(baudRate: baud)
    print(String(format: "  program push (begin, data, verify, read-back, activate): %.1f ms", upload * 1000))
}
