import Foundation
import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Testing

/// An emulated pump serving one end of a memory pipe, and a session on the other end.
struct MemoryRig {
    let pump: EmulatedPump<ModelPump>
    let session: PumpSession
    let key: PairingKey
    let serving: Task<Void, Never>

    static let startMs: UInt64 = 1_790_000_000_000

    static func make(
        program: Program? = ModelPump.defaultProgram,
        initialVolumeMicroliters: UInt32 = 20_000,
        faults: LinkFaultSettings = .none,
        sessionKey: PairingKey? = nil,
        configuration: SessionConfiguration = SessionConfiguration(),
        timeScale: UInt64 = 1,
        beforeSendingChange: PumpSession.BeforeSendingChange? = nil
    ) -> MemoryRig {
        let key = PairingKey.generate()
        var pumpConfiguration = PumpConfiguration()
        pumpConfiguration.serialNumber = "TEST-0001"
        pumpConfiguration.initialReservoirMicroliters = initialVolumeMicroliters
        pumpConfiguration.initialProgram = program
        let device = ModelPump(Pump(configuration: pumpConfiguration, nowMs: startMs))
        let pump = EmulatedPump(
            endpoint: PumpEndpoint(device: device, key: key),
            clock: VirtualClock(startMs: startMs, timeScale: timeScale),
            faults: faults
        )
        let (hostEnd, pumpEnd) = MemoryPipe.makePair()
        let serving = Task { await pump.serve(pumpEnd) }
        var configuration = configuration
        configuration.bitsPerSecond = nil  // a memory pipe has no line time
        let session = PumpSession(
            link: hostEnd, key: sessionKey ?? key, configuration: configuration, beforeSendingChange: beforeSendingChange)
        return MemoryRig(pump: pump, session: session, key: key, serving: serving)
    }

    func stop() async {
        await session.close()
        await serving.value
    }

    /// Every event the pump logged, read from the model directly (not over the link).
    func pumpEvents() async -> [Event] {
        await pump.withDevice { device, _ in device.events(from: 1, maxCount: .max).events }
    }
}

extension EmulatedPump where Device == ModelPump {
    /// A model pump of `serial` running the default program, on the wall clock.
    static func test(serial: String, key: PairingKey, stateFile: URL? = nil, baudRate: Int? = nil) -> EmulatedPump<ModelPump> {
        var configuration = PumpConfiguration()
        configuration.serialNumber = serial
        configuration.initialProgram = ModelPump.defaultProgram
        let startMs = VirtualClock.wallClockMs()
        return EmulatedPump(
            endpoint: PumpEndpoint(device: ModelPump(Pump(configuration: configuration, nowMs: startMs)), key: key),
            clock: VirtualClock(startMs: startMs), stateFile: stateFile, baudRate: baudRate)
    }
}

extension Program {
    static func test(id: UInt32, doseRateMicrogramsPerDay: UInt32 = 3000, patientBolusMicrograms: UInt32 = 250) -> Program {
        Program(
            programId: id,
            drug: .morphine,
            concentrationMicrogramsPerMilliliter: 10_000,
            lowReservoirThresholdMicroliters: 2000,
            steps: [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: doseRateMicrogramsPerDay)],
            periodicBoluses: [],
            patientBolus: PatientBolusSettings(
                doseMicrograms: patientBolusMicrograms,
                durationMinutes: patientBolusMicrograms == 0 ? 0 : 10,
                lockoutMinutes: patientBolusMicrograms == 0 ? 0 : 60,
                maxPerDay: patientBolusMicrograms == 0 ? 0 : 6
            )
        )
    }
}

/// The one frame in `bytes` (an endpoint's answer, an encoder's output); fails the test otherwise.
func decodeOne(_ bytes: [UInt8]) throws -> Frame {
    var decoder = FrameDecoder()
    let frames = decoder.decode(bytes).compactMap { event -> Frame? in
        if case .frame(let frame) = event { return frame }
        return nil
    }
    return try #require(frames.count == 1 ? frames[0] : nil)
}
