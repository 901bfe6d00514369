import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// Many slow or abandoned connections do not starve the others.
@Suite("API under slow and abandoned connections")
struct SlowClientTests {
    typealias Support = APITestSupport

    /// A TCP connection to the API on loopback that sends `bytes` and then nothing more.
    static func stall(port: Int, sending bytes: String) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0)
        if !bytes.isEmpty {
            let sent = bytes.withCString { send(descriptor, $0, strlen($0), 0) }
            try #require(sent == bytes.utf8.count)
        }
        return descriptor
    }

    @Test func stalledConnectionsDoNotHoldUpARealClient() async throws {
        let fake = FakePumpService()
        try await Support.app(fake).test(.live) { client in
            let port = try #require(client.port)
            var stalled: [Int32] = []
            defer { for descriptor in stalled { close(descriptor) } }
            // 100 that connect and say nothing, 100 that stop in the middle of their headers,
            // 100 that promise a body and never send it.
            for _ in 0..<100 { stalled.append(try Self.stall(port: port, sending: "")) }
            for _ in 0..<100 { stalled.append(try Self.stall(port: port, sending: "GET /v1/pumps HTTP/1.1\r\nHost: a\r\nAuthoriz")) }
            for _ in 0..<100 {
                stalled.append(try Self.stall(
                    port: port,
                    sending: "POST /v1/pumps/pump-1/suspend HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer \(Support.clinicianToken)\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"))
            }
            // A real client is served at once, every time.
            let start = ContinuousClock.now
            for _ in 0..<20 {
                let response = try await client.execute(uri: "/v1/pumps", method: .get, headers: Support.headers(Support.observerToken))
                #expect(response.status == .ok)
            }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed < .seconds(5), "20 requests took \(elapsed) beside 300 stalled connections")
            // The stalled suspends never reached the service.
            #expect(await fake.calls.filter { $0.hasPrefix("suspend") }.isEmpty)
        }
    }
}
