import PumpProtocol
import Testing

@testable import PumpEmulator

@Suite("Request record: duplicate suppression and the replay window")
struct RequestRecordTests {
    private func remember(_ record: inout RequestRecord, _ id: UInt32, payload: [UInt8] = [1, 2, 3]) {
        record.remember(requestID: id, messageType: 26, payload: payload[...], responseType: 26, responsePayload: [UInt8(id & 0xFF)])
    }

    @Test func repeatOfAProcessedRequestIsAnsweredFromTheRecord() {
        var record = RequestRecord()
        remember(&record, 10)
        guard case .repeated(let entry) = record.verdict(requestID: 10, messageType: 26, payload: [1, 2, 3][...]) else {
            Issue.record("expected a repeat")
            return
        }
        #expect(entry.responsePayload == [10])
    }

    @Test func sameIDWithOtherContentIsAConflict() {
        var record = RequestRecord()
        remember(&record, 10)
        #expect(record.verdict(requestID: 10, messageType: 26, payload: [9][...]) == .conflict)
        #expect(record.verdict(requestID: 10, messageType: 25, payload: [1, 2, 3][...]) == .conflict)
    }

    @Test func aHeldBackRequestCannotRunAfterALaterOne() {
        var record = RequestRecord(capacity: 8)
        // 11 was held back; 12 ran. 11 arriving late is a replay.
        remember(&record, 12)
        #expect(record.verdict(requestID: 11, messageType: 26, payload: [1][...]) == .stale)
        #expect(record.verdict(requestID: 13, messageType: 26, payload: [1][...]) == .fresh)
    }

    @Test func evictedIDsAreStale() {
        var record = RequestRecord(capacity: 8)
        for id: UInt32 in 1...40 { remember(&record, id) }
        #expect(record.entries.count == 8)
        #expect(record.oldestRememberedRequestID == 33)
        #expect(record.verdict(requestID: 32, messageType: 26, payload: [1][...]) == .stale)
        #expect(record.verdict(requestID: 0, messageType: 26, payload: [1][...]) == .stale)
        if case .repeated = record.verdict(requestID: 33, messageType: 26, payload: [1, 2, 3][...]) {} else {
            Issue.record("33 should still be remembered")
        }
    }

    @Test func outOfOrderArrivalKeepsTheNewestIDs() {
        var record = RequestRecord(capacity: 4)
        for id: UInt32 in [5, 9, 6, 8, 7, 3] { remember(&record, id) }
        #expect(record.entries.map(\.requestID).sorted() == [6, 7, 8, 9])
        #expect(record.lastExecutedRequestID == 9)
    }
}

@Suite("Program staging")
struct ProgramStagingTests {
    private let program = Program(
        programId: 7,
        drug: .baclofen,
        concentrationMicrogramsPerMilliliter: 500,
        lowReservoirThresholdMicroliters: 2000,
        steps: [DoseStep(dayMask: 0x7F, startMinute: 0, doseRateMicrogramsPerDay: 300)],
        periodicBoluses: [],
        patientBolus: PatientBolusSettings(doseMicrograms: 0, durationMinutes: 0, lockoutMinutes: 0, maxPerDay: 0)
    )

    @Test func chunksInAnyOrderAndRepeatedGiveTheProgram() throws {
        let bytes = try program.encoded()
        var staging = ProgramStaging(programID: 7, length: bytes.count, checksum: CRC32C.checksum(bytes))
        let written1 = staging.write(Array(bytes[10...]), at: 10)
        #expect(written1)
        #expect(!staging.isComplete)
        #expect(staging.program() == .failure(.incomplete))
        let written2 = staging.write(Array(bytes[10...]), at: 10)
        #expect(written2)
        let written3 = staging.write(Array(bytes[..<10]), at: 0)
        #expect(written3)
        #expect(staging.receivedLength == bytes.count)
        #expect(staging.program() == .success(program))
    }

    @Test func wrongChecksumOrIDOrOverrunIsRefused() throws {
        let bytes = try program.encoded()
        var staging = ProgramStaging(programID: 7, length: bytes.count, checksum: CRC32C.checksum(bytes) ^ 1)
        let written4 = staging.write([1, 2], at: bytes.count - 1)
        #expect(!written4)
        let written5 = staging.write(bytes, at: 0)
        #expect(written5)
        #expect(staging.program() == .failure(.checksumMismatch(computed: CRC32C.checksum(bytes))))

        var other = ProgramStaging(programID: 8, length: bytes.count, checksum: CRC32C.checksum(bytes))
        let written6 = other.write(bytes, at: 0)
        #expect(written6)
        #expect(other.program() == .failure(.programIDMismatch(decoded: 7)))
    }
}

@Suite("Link faults")
struct LinkFaultTests {
    @Test func parsesAndPrintsSettings() throws {
        let settings = try LinkFaultSettings(parsing: "seed=9, ber=0.001,drop=1e-4,dup=0.5,garbage=0.25,delay=20,silent=0")
        #expect(settings.seed == 9)
        #expect(settings.bitErrorRate == 0.001)
        #expect(settings.dropRate == 0.0001)
        #expect(settings.duplicateRate == 0.5)
        #expect(settings.garbageRate == 0.25)
        #expect(settings.delayMilliseconds == 20)
        #expect(!settings.silent)
        #expect(try LinkFaultSettings(parsing: settings.description) == settings)
        #expect(throws: LinkFaultError.unknownKey("loss")) { try LinkFaultSettings(parsing: "loss=1") }
        #expect(throws: LinkFaultError.invalidValue(key: "ber", value: "2")) { try LinkFaultSettings(parsing: "ber=2") }
    }

    @Test func sameSeedSameFaults() throws {
        let settings = try LinkFaultSettings(parsing: "seed=42,ber=0.01,drop=0.01,dup=0.2,garbage=0.2")
        let frames = (0..<200).map { index in (0..<64).map { UInt8(truncatingIfNeeded: $0 * 7 + index) } }
        var first = LinkFaultInjector(settings)
        var second = LinkFaultInjector(settings)
        let a = frames.map { first.outgoing($0) }
        let b = frames.map { second.outgoing($0) }
        #expect(a == b)
        #expect(first.counts == second.counts)
        #expect(a != frames)

        var third = LinkFaultInjector(try LinkFaultSettings(parsing: "seed=43,ber=0.01,drop=0.01,dup=0.2,garbage=0.2"))
        #expect(frames.map { third.outgoing($0) } != a)
    }

    @Test func ratesAreWhatWasAskedFor() throws {
        // 10^6 bytes at a bit error rate of 10^-3: about 8000 flipped bits (σ ≈ 89).
        var injector = LinkFaultInjector(try LinkFaultSettings(parsing: "seed=1,ber=0.001,drop=0.01"))
        let input = [UInt8](repeating: 0x55, count: 1_000_000)
        let output = injector.incoming(input)
        #expect(abs(injector.counts.bitsFlipped - 8000) < 500)
        #expect(abs(injector.counts.bytesDropped - 10_000) < 500)
        #expect(output.count == input.count - injector.counts.bytesDropped)
        let flipped = output.reduce(0) { $0 + ($1 ^ 0x55).nonzeroBitCount }
        #expect(flipped == injector.counts.bitsFlipped)
    }

    @Test func silenceDropsEverything() throws {
        var injector = LinkFaultInjector(try LinkFaultSettings(parsing: "silent"))
        #expect(injector.outgoing([1, 2, 3]).isEmpty)
        #expect(injector.incoming([1, 2, 3]).isEmpty)
    }
}
