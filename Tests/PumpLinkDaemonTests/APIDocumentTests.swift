import Foundation
import Hummingbird
import Logging
import PumpLinkDaemon
import Testing

/// protocol/openapi.json describes exactly the routes the router serves, with the roles they
/// require, and its protocol types have the fields of protocol/messages.json.
@Suite("OpenAPI document")
struct APIDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func load(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: root.appendingPathComponent(path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func operations() throws -> [String: [String: Any]] {
        let document = try load("protocol/openapi.json")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var result: [String: [String: Any]] = [:]
        for (path, item) in paths {
            for (method, operation) in item {
                result["\(method.uppercased()) \(path)"] = try #require(operation as? [String: Any])
            }
        }
        return result
    }

    @Test func theDocumentAndTheRouterHaveTheSameRoutes() throws {
        let router = buildRouter(
            service: FakePumpService(), configuration: APITestSupport.configuration(), logger: Logger(label: "test"))
        let served = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
        let documented = Set(try Self.operations().keys)
        #expect(served == documented, "served only: \(served.subtracting(documented)); documented only: \(documented.subtracting(served))")
        #expect(served.count == APIEndpoint.allCases.count)
    }

    @Test func everyOperationNamesItsEndpointAndRole() throws {
        let operations = try Self.operations()
        for endpoint in APIEndpoint.allCases {
            let operation = try #require(operations["\(endpoint.method.rawValue) \(endpoint.path)"], "\(endpoint)")
            #expect(operation["operationId"] as? String == endpoint.rawValue)
            #expect(operation["x-required-role"] as? String == endpoint.requiredRole?.rawValue, "\(endpoint)")
            let responses = try #require(operation["responses"] as? [String: Any])
            #expect(responses["200"] != nil)
            if endpoint.requiredRole != nil {
                #expect(responses["401"] != nil, "\(endpoint)")
                #expect(operation["security"] == nil, "\(endpoint) must not waive the token")
            } else {
                #expect((operation["security"] as? [Any])?.isEmpty == true, "\(endpoint) needs no token")
            }
            if endpoint.requiredRole == .patient || endpoint.requiredRole == .clinician {
                #expect(responses["403"] != nil, "\(endpoint)")
            }
            let queries = Set(((operation["parameters"] as? [[String: Any]]) ?? []).filter { $0["in"] as? String == "query" }.compactMap { $0["name"] as? String })
            #expect(queries == endpoint.queryParameters, "\(endpoint)")
        }
    }

    @Test func everyReferenceResolves() throws {
        let document = try Self.load("protocol/openapi.json")
        let components = try #require(document["components"] as? [String: [String: Any]])
        var references: Set<String> = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                if let reference = object["$ref"] as? String { references.insert(reference) }
                object.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(document)
        #expect(!references.isEmpty)
        for reference in references {
            let parts = reference.split(separator: "/").map(String.init)
            #expect(parts.count == 4 && parts[0] == "#" && parts[1] == "components", "\(reference)")
            #expect(components[parts[2]]?[parts[3]] != nil, "unresolved \(reference)")
        }
    }

    @Test func theErrorCodesAreDaemonErrorCodes() throws {
        let document = try Self.load("protocol/openapi.json")
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        let codes = try #require((schemas["ErrorCode"] as? [String: Any])?["enum"] as? [String])
        #expect(codes == DaemonError.Code.allCases.map(\.rawValue))
    }

    @Test func protocolSchemasFollowTheDefinitions() throws {
        let definitions = try Self.load("protocol/messages.json")
        var fieldsByType: [String: [String]] = [:]
        for (name, value) in try #require(definitions["structs"] as? [String: [String: Any]]) {
            fieldsByType[name] = try #require(value["fields"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        }
        for message in try #require(definitions["messages"] as? [[String: Any]]) {
            let name = try #require(message["name"] as? String)
            for (direction, suffix) in [("request", "Request"), ("response", "Response")] {
                if let fields = message[direction] as? [[String: Any]] {
                    fieldsByType[name + suffix] = fields.compactMap { $0["name"] as? String }
                }
            }
        }
        var valuesByEnum: [String: [String]] = [:]
        for (name, value) in try #require(definitions["enums"] as? [String: [String: Any]]) {
            valuesByEnum[name] = try #require(value["values"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        }

        let document = try Self.load("protocol/openapi.json")
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: [String: Any]])
        var checked = 0
        for (name, schema) in schemas {
            guard let protocolType = schema["x-protocol-type"] as? String else { continue }
            checked += 1
            if let values = schema["enum"] as? [String] {
                #expect(values == valuesByEnum[protocolType], "\(name)")
            } else {
                let properties = try #require(schema["properties"] as? [String: Any])
                let expected = try #require(fieldsByType[protocolType], "\(name) is not in messages.json")
                #expect(Set(properties.keys) == Set(expected), "\(name)")
                #expect(schema["required"] as? [String] == expected, "\(name)")
            }
        }
        #expect(checked >= 20)
    }
}
