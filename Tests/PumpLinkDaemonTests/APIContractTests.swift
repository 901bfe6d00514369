import Foundation
import PumpAPIRequests
import PumpLinkDaemon
import PumpProtocol
import Testing

/// protocol/openapi.json allows exactly what the server takes and declares what it sends:
/// the values the server refuses are outside the document's schemas, the statuses it answers
/// are in it (tools/schemathesis checks the same against the running daemon).
@Suite("OpenAPI document is the contract")
struct APIContractTests {
    static func schemas() throws -> [String: [String: Any]] {
        let document = try APIDocumentTests.load("protocol/openapi.json")
        return try #require((document["components"] as? [String: Any])?["schemas"] as? [String: [String: Any]])
    }

    @Test func bolusKindsAreTheOnesAClinicianGives() throws {
        let schemas = try Self.schemas()
        let properties = try #require(schemas["ClinicianBolusBody"]?["properties"] as? [String: [String: Any]])
        let reference = try #require(properties["kind"]?["$ref"] as? String)
        let name = try #require(reference.split(separator: "/").last.map(String.init))
        let kinds = try #require(schemas[name]?["enum"] as? [String])
        #expect(kinds == ClinicianBolusRequest.clinicianKinds.map(\.name))
    }

    @Test func alarmMasksAreExactlyTheNonzeroCombinationsOfDefinedAlarms() throws {
        let schemas = try Self.schemas()
        let forms = try #require(schemas["AcknowledgeAlarmsBody"]?["oneOf"] as? [[String: Any]])
        let masks = forms.compactMap { ($0["properties"] as? [String: [String: Any]])?["mask"] }
        let mask = try #require(masks.first)
        let documented = Set(try #require(mask["enum"] as? [Int]).map(UInt32.init))
        let defined = AcknowledgeAlarmsBody.definedBits
        var accepted: Set<UInt32> = []
        // Every subset of the defined bits, and a few masks with other bits.
        var subset: UInt32 = defined
        while true {
            if (try? AcknowledgeAlarmsBody(mask: subset).alarmMask()) != nil { accepted.insert(subset) }
            if subset == 0 { break }
            subset = (subset - 1) & defined
        }
        for other in [UInt32(1 << 5), 1 << 31, UInt32.max] {
            #expect((try? AcknowledgeAlarmsBody(mask: other).alarmMask()) == nil)
            #expect(!documented.contains(other))
        }
        #expect(documented == accepted)
    }

    @Test func theClockBodyHasTheServersBoundsAndAnOverride() throws {
        let body = try #require(try Self.schemas()["SetClockBody"])
        let properties = try #require(body["properties"] as? [String: [String: Any]])
        let time = try #require(properties["timeMs"])
        #expect((time["minimum"] as? NSNumber)?.uint64Value == SetClockBody.timeMsRange.lowerBound)
        #expect((time["maximum"] as? NSNumber)?.uint64Value == SetClockBody.timeMsRange.upperBound)
        #expect(properties["override"]?["$ref"] as? String == "#/components/schemas/Override")
        #expect(body["additionalProperties"] as? Bool == false)
        let operations = try APIDocumentTests.operations()
        let clock = try #require(operations["POST /v1/pumps/{id}/clock"])
        let schema = (((clock["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/json"] as? [String: Any])?["schema"]
        #expect((schema as? [String: Any])?["$ref"] as? String == "#/components/schemas/SetClockBody")
    }

    @Test func everyStatusTheServerSendsIsDeclared() throws {
        let operations = try APIDocumentTests.operations()
        for endpoint in APIEndpoint.allCases {
            let operation = try #require(operations["\(endpoint.method.rawValue) \(endpoint.path)"])
            let responses = try #require(operation["responses"] as? [String: Any])
            // Every route refuses an unknown or repeated query parameter.
            #expect(responses["400"] != nil, "\(endpoint)")
            if endpoint.method == .post {
                #expect(responses["413"] != nil, "\(endpoint)")
            }
        }
        // The review reads the pump's status and program over the link.
        let review = try #require(operations["POST /v1/pumps/{id}/program/review"]?["responses"] as? [String: Any])
        #expect(review["503"] != nil && review["409"] != nil)
    }

    @Test func requestBodiesAllowNoOtherFields() throws {
        let schemas = try Self.schemas()
        for name in ["ProgramBody", "RefillBody", "EmptyBody", "ClinicianBolusBody", "SetClockBody", "Override", "Program", "DoseStep"] {
            #expect(schemas[name]?["additionalProperties"] as? Bool == false, "\(name)")
        }
    }

    @Test func methodsServedAtAPathAreFoundForItsConcreteForm() {
        #expect(APIEndpoint.methods(servedAt: "/v1/pumps/bed-1/program") == [.get, .post])
        #expect(APIEndpoint.methods(servedAt: "/v1/pumps/bed-1/suspend") == [.post])
        #expect(APIEndpoint.methods(servedAt: "/v1/pumps//suspend") == [])
        #expect(APIEndpoint.methods(servedAt: "/v1/pumps/bed-1/suspend/x") == [])
        #expect(APIEndpoint.methods(servedAt: "/v2/pumps") == [])
    }
}
