import Foundation
import PumpProtocol
import Testing
@testable import PumpSafety

@Suite struct DrugLibraryTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The standard library with morphine's entry replaced, as a JSON document.
    static func document(morphine: String, extra: String = "") -> Data {
        Data("{\(extra)\"drugs\": {\"morphine\": \(morphine)}}".utf8)
    }

    static func json(_ limits: DrugLimits) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(limits)) ?? Data(), as: UTF8.self)
    }

    static func decodeError(_ data: Data) -> DrugLibraryError? {
        do {
            _ = try DrugLibrary.decode(data)
            return nil
        } catch {
            return error
        }
    }

    @Test func standardCoversEveryDrugConsistently() throws {
        let library = DrugLibrary.standard
        #expect(Set(library.drugs.keys) == Set(Drug.allCases))
        for (drug, limits) in library.drugs {
            try limits.check(drug: drug)
        }
        // Only morphine and ziconotide (pain) and baclofen (spasticity) are approved.
        let approved = Set(library.drugs.filter { $0.value.label == .approved }.keys)
        #expect(approved == [.morphine, .ziconotide, .baclofen])
        #expect(library.drugs[.baclofen]?.approvedIndication == "spasticity")
        #expect(library.drugs[.morphine]?.concentrationMicrogramsPerMilliliter == ConcentrationLimits(minimum: 10_000, maximum: 25_000))
        #expect(library.drugs[.ziconotide]?.dailyDoseMicrograms.hard == 19)
        #expect(library.drugs[.ziconotide]?.startingDoseMaximumMicrogramsPerDay == 2)
        // Off-label drugs carry at least one assumed figure; fentanyl's are all assumed.
        #expect(library.drugs[.fentanyl]?.assumed.contains("dailyDoseMicrograms") == true)
    }

    @Test func encodingRoundTrips() throws {
        let data = DrugLibrary.standard.encoded()
        #expect(try DrugLibrary.decode(data) == DrugLibrary.standard)
        var custom = DrugLibrary.standard
        custom.lowReservoirNoticeDays = 10
        custom.drugs[.clonidine]?.dailyDoseMicrograms = SoftHardLimit(soft: 500, hard: 900)
        #expect(try DrugLibrary.decode(custom.encoded()) == custom)
    }

    @Test func shippedFileIsTheStandardLibrary() throws {
        let url = Self.packageRoot.appendingPathComponent("protocol/drug-library.json")
        let library = try DrugLibrary.load(from: url)
        #expect(library == DrugLibrary.standard)
        // Every drug is written out in full, not inherited from the default.
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        let drugs = object?["drugs"] as? [String: Any]
        #expect(Set(drugs?.keys.map { $0 } ?? []) == Set(Drug.allCases.map(\.name)))
    }

    @Test func fileOverridesOnlyWhatItNames() throws {
        var morphine = try #require(DrugLibrary.standard.drugs[.morphine])
        morphine.dailyDoseMicrograms = SoftHardLimit(soft: 10_000, hard: 12_000)
        let library = try DrugLibrary.decode(Self.document(morphine: Self.json(morphine), extra: "\"lowReservoirNoticeDays\": 14, "))
        #expect(library.drugs[.morphine] == morphine)
        #expect(library.lowReservoirNoticeDays == 14)
        #expect(library.hardIncreaseFactor == 10)
        #expect(library.drugs[.baclofen] == DrugLibrary.standard.drugs[.baclofen])
        // An empty document is the standard library.
        #expect(try DrugLibrary.decode(Data("{}".utf8)) == DrugLibrary.standard)
    }

    @Test func unknownDrugIsRefused() throws {
        let morphine = Self.json(try #require(DrugLibrary.standard.drugs[.morphine]))
        let data = Data("{\"drugs\": {\"oxycodone\": \(morphine)}}".utf8)
        #expect(Self.decodeError(data) == .unknownDrug("oxycodone"))
    }

    @Test func minimumAboveMaximumIsRefused() throws {
        var morphine = try #require(DrugLibrary.standard.drugs[.morphine])
        morphine.concentrationMicrogramsPerMilliliter = ConcentrationLimits(minimum: 25_000, maximum: 10_000)
        #expect(Self.decodeError(Self.document(morphine: Self.json(morphine)))
            == .minimumAboveMaximum(drug: "morphine", field: "concentrationMicrogramsPerMilliliter", minimum: 25_000, maximum: 10_000))
    }

    @Test func softAboveHardIsRefused() throws {
        var morphine = try #require(DrugLibrary.standard.drugs[.morphine])
        morphine.patientBolusDoseMicrograms = SoftHardLimit(soft: 800, hard: 600)
        #expect(Self.decodeError(Self.document(morphine: Self.json(morphine)))
            == .softAboveHard(drug: "morphine", field: "patientBolusDoseMicrograms", soft: 800, hard: 600))
        morphine = try #require(DrugLibrary.standard.drugs[.morphine])
        morphine.dailyDoseMicrograms = SoftHardLimit(soft: 30_000, hard: 20_000)
        #expect(Self.decodeError(Self.document(morphine: Self.json(morphine)))
            == .softAboveHard(drug: "morphine", field: "dailyDoseMicrograms", soft: 30_000, hard: 20_000))
    }

    @Test func standardStrengthOutsideTheRangeIsRefused() throws {
        var morphine = try #require(DrugLibrary.standard.drugs[.morphine])
        morphine.concentrationMicrogramsPerMilliliter.standard = [10_000, 50_000]
        #expect(Self.decodeError(Self.document(morphine: Self.json(morphine)))
            == .standardStrengthOutsideRange(drug: "morphine", strength: 50_000))
    }

    @Test func misspeltAndMissingFieldsAreRefused() throws {
        let morphine = Self.json(try #require(DrugLibrary.standard.drugs[.morphine]))
        // A misspelt optional field would otherwise drop the limit silently.
        let misspelt = "{\"startingDoseMaximumMicrogramPerDay\": 5, " + morphine.dropFirst()
        #expect(Self.decodeError(Self.document(morphine: misspelt)) == .unknownField(path: "drugs.morphine.startingDoseMaximumMicrogramPerDay"))
        #expect(Self.decodeError(Data("{\"lowReservoirDays\": 3}".utf8)) == .unknownField(path: "lowReservoirDays"))
        let missing = morphine.replacingOccurrences(of: "\"maximumIncreasePercent\":50,", with: "")
        #expect(missing != morphine)
        #expect(Self.decodeError(Self.document(morphine: missing)) == .missingField(path: "drugs.morphine.maximumIncreasePercent"))
    }

    @Test func badJSONAndBadSettingsAreRefused() {
        guard case .invalid = Self.decodeError(Data("{\"drugs\": [".utf8)) else {
            Issue.record("truncated JSON must be invalid")
            return
        }
        guard case .invalid = Self.decodeError(Data("{\"hardIncreaseFactor\": -1}".utf8)) else {
            Issue.record("a negative factor must be invalid")
            return
        }
        #expect(Self.decodeError(Data("{\"hardIncreaseFactor\": 1}".utf8)) == .invalidSetting(name: "hardIncreaseFactor", value: 1))
    }

    @Test func unreadableFileIsReported() {
        let url = URL(fileURLWithPath: "/nonexistent/drug-library.json")
        #expect {
            _ = try DrugLibrary.load(from: url)
        } throws: { error in
            guard case let .unreadable(path, _) = error as? DrugLibraryError else { return false }
            return path == "/nonexistent/drug-library.json"
        }
    }

    /// Every rule id is documented in DrugLibrary's table, and ids are unique.
    @Test func everyRuleIsDocumented() throws {
        let source = try String(contentsOf: Self.packageRoot.appendingPathComponent("Sources/PumpSafety/DrugLibrary.swift"), encoding: .utf8)
        for rule in SafetyRule.allCases {
            #expect(source.contains("/// | `\(rule.rawValue)` |"), "\(rule.rawValue) is not in the rule table")
        }
        #expect(Set(SafetyRule.allCases.map(\.rawValue)).count == SafetyRule.allCases.count)
    }
}
