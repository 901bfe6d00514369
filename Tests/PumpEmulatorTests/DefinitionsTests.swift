import PumpEmulator
import PumpProtocol
import PumpSession
import Testing

/// A pump built from other message definitions (SPEC §1.3, §5.4): only the messages whose
/// fingerprints differ are refused, each where it is used and by name; Hello, Error or
/// Definitions differing refuses the pump.
@Suite("Message definitions that differ", .timeLimit(.minutes(1)))
struct DefinitionsTests {
    /// This build's definitions with `changed` given other fingerprints, and the hash to match.
    static func definitions(changing changed: Set<MessageType>) -> MessageDefinitions {
        var definitions = MessageDefinitions.current
        definitions.fingerprints = definitions.fingerprints.map { entry in
            guard let type = MessageType(rawValue: entry.messageType), changed.contains(type) else { return entry }
            return MessageFingerprint(messageType: entry.messageType, fingerprint: ~entry.fingerprint)
        }
        definitions.hash = [0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 1]
        return definitions
    }

    @Test func onlyTheChangedMessageIsRefusedAndItIsNamed() async throws {
        let rig = AdversaryRig.make(definitions: Self.definitions(changing: [.clinicianBolus]))
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        #expect(await rig.session.incompatibleMessages == [.clinicianBolus])
        // Everything else works.
        let status = try await rig.session.status()
        #expect(status.therapyState == .running)
        _ = try await rig.session.suspend()
        // The changed message is never sent.
        let sent = rig.adversary.frames.count
        do {
            _ = try await rig.session.clinicianBolus(
                ClinicianBolusRequest(kind: .single, doseMicrograms: 100, volumeMicroliters: 0, durationMinutes: 10))
            Issue.record("a message of another definition was sent")
        } catch {
            #expect(error == .messageDefinitionDiffers(.clinicianBolus))
            #expect("\(error)".contains("ClinicianBolus"))
        }
        #expect(rig.adversary.frames.count == sent)
        #expect(await rig.pumpEvents().allSatisfy { $0.kind != .bolusStarted })
    }

    @Test("a pump whose Hello, Error or Definitions differs is refused", arguments: [
        MessageType.hello, .error, .definitions,
    ])
    func coreMessagesDiffering(type: MessageType) async throws {
        let rig = AdversaryRig.make(definitions: Self.definitions(changing: [type]))
        defer { Task { await rig.stop() } }
        await #expect(throws: SessionError.definitionsMismatch(pump: [0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 1])) {
            try await rig.session.connect()
        }
    }

    @Test func equalHashesAskNothing() async throws {
        let rig = AdversaryRig.make()
        defer { Task { await rig.stop() } }
        try await rig.session.connect()
        #expect(await rig.session.incompatibleMessages.isEmpty)
        #expect(!rig.adversary.frames.contains { $0.1.header.messageType == MessageType.definitions.rawValue })
    }
}
