import PumpProtocol

/// The traffic a daemon's decoder sees on a busy link, built with the real message types and
/// `FrameEncoder`, so its bytes are exactly what a pump puts on the line.
///
/// One cycle of 32 frames: 25 unsolicited status frames (GetStatus responses, request id 0),
/// two Ping exchanges, one ReadEvents response with 38 events (the most a payload holds) and
/// two authenticated ProgramStageData requests of about 900 bytes. Frames are mostly status,
/// bytes mostly bulk transfers. Field values change from frame to frame (a PRNG with a fixed
/// seed), so COBS sees realistic runs of zeros rather than one repeated frame.
struct TelemetryMix: Sendable {
    enum Item: Sendable {
        case status(GetStatusResponse)
        case pingRequest(PingRequest, requestID: UInt32)
        case pingResponse(PingResponse, requestID: UInt32)
        case events(ReadEventsResponse, requestID: UInt32)
        case stageData(ProgramStageDataRequest, requestID: UInt32)

        var isStatus: Bool {
            if case .status = self { return true }
            return false
        }
    }

    static let framesPerCycle = 32

    /// The messages of the mix, in line order.
    let items: [Item]
    /// The session key material for authenticated frames.
    let authenticator: FrameAuthenticator
    /// The line bytes of every item: `0x00, COBS(packet), 0x00` per frame.
    let bytes: [UInt8]
    /// The line bytes of the status frames only.
    let statusBytes: [UInt8]
    let statusFrameCount: Int

    var frameCount: Int { items.count }

    /// A mix of whole cycles whose line form is at least `minimumBytes` long.
    init(minimumBytes: Int) {
        var random = SplitMix64(seed: 0x5075_6D70_4C69_6E6B)
        authenticator = FrameAuthenticator(
            key: try! PairingKey(bytes: (0..<32).map { _ in random.nextByte() }),
            hostNonce: (0..<8).map { _ in random.nextByte() },
            pumpNonce: (0..<8).map { _ in random.nextByte() }
        )

        var items: [Item] = []
        var encoder = FrameEncoder()
        var bytes: [UInt8] = []
        var statusBytes: [UInt8] = []
        var state = PumpState()
        bytes.reserveCapacity(minimumBytes + 8 * FrameLayout.maxEncodedLength)
        statusBytes.reserveCapacity(minimumBytes)

        while bytes.count < minimumBytes {
            let cycle = state.nextCycle(&random)
            for item in cycle {
                Self.encode(item, with: &encoder, authenticator: authenticator, into: &bytes)
                if item.isStatus {
                    Self.encode(item, with: &encoder, authenticator: authenticator, into: &statusBytes)
                }
            }
            items += cycle
        }
        self.items = items
        self.bytes = bytes
        self.statusBytes = statusBytes
        self.statusFrameCount = items.count { $0.isStatus }
    }

    /// Appends the line form of `item`; authenticated items use `authenticator`.
    @inline(__always)
    static func encode(
        _ item: Item,
        with encoder: inout FrameEncoder,
        authenticator: FrameAuthenticator,
        into output: inout [UInt8]
    ) {
        do {
            switch item {
            case .status(let message):
                try encoder.encode(message, requestID: 0, into: &output)
            case .pingRequest(let message, let requestID):
                try encoder.encode(message, requestID: requestID, into: &output)
            case .pingResponse(let message, let requestID):
                try encoder.encode(message, requestID: requestID, into: &output)
            case .events(let message, let requestID):
                try encoder.encode(message, requestID: requestID, into: &output)
            case .stageData(let message, let requestID):
                try encoder.encode(message, requestID: requestID, authenticator: authenticator, into: &output)
            }
        } catch {
            preconditionFailure("the mix holds only valid messages: \(error)")
        }
    }
}

/// A pump whose telemetry drifts plausibly from one status frame to the next.
private struct PumpState {
    var timeMs: UInt64 = 1_760_000_000_000
    var reservoirMicroliters: UInt32 = 18_400_000
    var deliveredMicroliters: UInt64 = 2_315_000
    var deliveredMicrograms: UInt64 = 57_875_000
    var eventSequence: UInt32 = 41_200
    var requestID: UInt32 = 7_000
    var programOffset = 0

    mutating func nextCycle(_ random: inout SplitMix64) -> [TelemetryMix.Item] {
        var cycle: [TelemetryMix.Item] = []
        cycle.reserveCapacity(TelemetryMix.framesPerCycle)
        for index in 0..<25 {
            cycle.append(.status(GetStatusResponse(status: nextStatus(&random))))
            switch index {
            case 5, 17:
                requestID += 1
                let echo = random.next()
                cycle.append(.pingRequest(PingRequest(echo: echo), requestID: requestID))
                cycle.append(.pingResponse(PingResponse(echo: echo), requestID: requestID))
            case 9:
                requestID += 1
                cycle.append(.events(nextEvents(&random), requestID: requestID))
            case 13, 21:
                requestID += 1
                cycle.append(.stageData(nextStageData(&random), requestID: requestID))
            default:
                break
            }
        }
        precondition(cycle.count == TelemetryMix.framesPerCycle)
        return cycle
    }

    private mutating func nextStatus(_ random: inout SplitMix64) -> Status {
        timeMs += 1_000 + random.next() % 50
        let flowMicroliters = UInt64(random.next() % 3)
        reservoirMicroliters -= UInt32(flowMicroliters)
        deliveredMicroliters += flowMicroliters
        deliveredMicrograms += flowMicroliters * 25
        return Status(
            pumpTimeMs: timeMs,
            utcOffsetMinutes: 60,
            therapyState: .running,
            reservoirMicroliters: reservoirMicroliters,
            reservoirCapacityMicroliters: 20_000_000,
            currentDoseRateMicrogramsPerDay: 1_200,
            currentFlowMicrolitersPerDay: 48,
            totalDeliveredMicroliters: deliveredMicroliters,
            totalDeliveredMicrograms: deliveredMicrograms,
            activeProgramId: 12,
            activeProgramChecksum: 0x9A3C_51E7,
            bolusActive: random.next() % 8 == 0 ? 2 : 0,
            bolusRemainingMicroliters: UInt32(random.next() % 400),
            batteryState: .ok,
            batteryPercent: 87,
            batteryDaysToEndOfService: 1_410,
            alarmConditionMask: random.next() % 16 == 0 ? 1 << 3 : 0,
            alarmUnacknowledgedMask: 0,
            patientBolusAvailableInSeconds: UInt32(random.next() % 3_600),
            patientBolusesInLast24h: UInt8(random.next() % 4),
            lastEventSequence: eventSequence,
            lastExecutedRequestId: requestID
        )
    }

    private mutating func nextEvents(_ random: inout SplitMix64) -> ReadEventsResponse {
        let kinds = EventKind.allCases
        let first = eventSequence - 37
        let events = (0..<38).map { index in
            Event(
                sequence: first + UInt32(index),
                timeMs: timeMs - UInt64(38 - index) * 60_000,
                kind: kinds[Int(random.next() % UInt64(kinds.count))],
                code: UInt8(random.next() % 12),
                requestId: random.next() % 3 == 0 ? requestID - UInt32(random.next() % 50) : 0,
                value1: UInt32(random.next() % 100_000),
                value2: UInt32(random.next() % 1_000)
            )
        }
        eventSequence += 38
        return ReadEventsResponse(oldestSequence: 1, lastSequence: eventSequence, events: events)
    }

    /// 890 bytes of program: packed little-endian fields, so zeros come in runs as they do in
    /// a real encoded Program.
    private mutating func nextStageData(_ random: inout SplitMix64) -> ProgramStageDataRequest {
        var data: [UInt8] = []
        data.reserveCapacity(892)
        while data.count < 890 {
            let value = UInt32(truncatingIfNeeded: random.next() % 40_000)
            withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
        }
        data.removeLast(data.count - 890)
        defer { programOffset = (programOffset + 890) % 30_000 }
        return ProgramStageDataRequest(programId: 13, offset: UInt16(programOffset), data: data)
    }
}

/// A small deterministic generator (Steele, Lea and Flood's SplitMix64), so every run decodes
/// the same bytes.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func nextByte() -> UInt8 {
        UInt8(truncatingIfNeeded: next())
    }
}
