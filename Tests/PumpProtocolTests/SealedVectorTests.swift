import Foundation
import PumpProtocol
import Testing

/// protocol/vectors/sealed.json: the version 2 handshake tag, the session keys, sealed frames
/// byte for byte, and what a receiver makes of replayed, reordered and altered frames (SPEC §8.3,
/// §8.4). The vectors come from the independent Python implementation.
@Suite("Vectors: sealed frames (version 2)")
struct SealedVectorTests {
    struct File: Decodable, Sendable {
        struct Hello: Decodable, Sendable {
            struct Side: Decodable, Sendable {
                let payload: String?
                let packet: String?
                let line: String
                let tag: String?
            }

            struct Check: Decodable, Sendable {
                let name: String
                let requestPayload: String
                let authentic: Bool
            }

            let request: Side
            let answer: Side
            let checks: [Check]
        }

        struct SealedFrame: Decodable, Sendable, CustomTestStringConvertible {
            let name: String
            let messageType: UInt8
            let direction: String
            let requestId: UInt32
            let counter: UInt64
            let payload: String
            let packet: String
            let line: String
            var testDescription: String { name }
        }

        struct Open: Decodable, Sendable, CustomTestStringConvertible {
            let name: String
            let receiver: String
            let lastCounter: UInt64
            let line: String
            let outcome: String
            let lastCounterAfter: UInt64
            let payload: String?
            var testDescription: String { name }
        }

        let key: String
        let hello: Hello
        let keys: [String: String]
        let frames: [SealedFrame]
        let open: [Open]
    }

    static let file = Vectors.load("sealed.json", as: File.self)
    static var opens: [File.Open] { (try? file.get().open) ?? [] }

    /// The Hello answer frame and the two sides' channels, as a host and a pump derive them.
    static func session() throws -> (answer: Frame, requestPayload: [UInt8], host: SecureChannel, pump: SecureChannel) {
        let vectors = try file.get()
        let key = try PairingKey(hex: vectors.key)
        let requestPayload = try hexBytes(try #require(vectors.hello.request.payload))
        let answer = try #require(decodeWhole(try hexBytes(vectors.hello.answer.line)).first?.frame)
        let tag = try #require(answer.tag)
        func channel(_ side: SecureChannel.Side) -> SecureChannel {
            SecureChannel(key: key, helloRequestPayload: requestPayload, helloAnswerPacket: answer.packet, helloAnswerTag: tag, side: side)
        }
        return (answer, requestPayload, channel(.host), channel(.pump))
    }

    @Test func theHelloAnswersTagCoversTheWholeRequest() throws {
        let vectors = try Self.file.get()
        let key = try PairingKey(hex: vectors.key)
        let (answer, _, _, _) = try Self.session()
        #expect(answer.tag?.bytes.hexadecimal == vectors.hello.answer.tag)
        #expect(FrameAuthenticator.helloDomain == Array("PumpLink/2 hello".utf8))
        #expect(vectors.hello.checks.count >= 4)
        for check in vectors.hello.checks {
            let authenticator = FrameAuthenticator(key: key, helloRequestPayload: try hexBytes(check.requestPayload))
            #expect(authenticator.isAuthentic(answer) == check.authentic, "\(check.name)")
        }
    }

    @Test func bothSidesDeriveTheVectorsKeys() throws {
        let vectors = try Self.file.get()
        let (_, _, host, pump) = try Self.session()
        #expect(host.keysForVectors.hostToPump.hexadecimal == vectors.keys["hostToPump"])
        #expect(host.keysForVectors.pumpToHost.hexadecimal == vectors.keys["pumpToHost"])
        #expect(pump.keysForVectors.hostToPump.hexadecimal == vectors.keys["hostToPump"])
        #expect(pump.keysForVectors.pumpToHost.hexadecimal == vectors.keys["pumpToHost"])
    }

    /// Each side seals its frames in the order given and gets the vectors' bytes; the other side
    /// opens them to the same payload.
    @Test func sealingInOrderGivesTheVectorsBytesAndTheOtherSideOpensThem() throws {
        var (_, _, host, pump) = try Self.session()
        var receivingHost = host
        var receivingPump = pump
        var encoder = FrameEncoder()
        let frames = try Self.file.get().frames
        #expect(frames.count >= 8)
        for vector in frames {
            let response = vector.direction == "response"
            let payload = try hexBytes(vector.payload)
            var line: [UInt8] = []
            if response {
                try encoder.encode(messageType: vector.messageType, response: true, requestID: vector.requestId,
                                   payload: payload, sealingWith: &pump, into: &line)
            } else {
                try encoder.encode(messageType: vector.messageType, response: false, requestID: vector.requestId,
                                   payload: payload, sealingWith: &host, into: &line)
            }
            #expect(line.hexadecimal == vector.line, "\(vector.name)")
            #expect(encoder.lastPacket.hexadecimal == vector.packet, "\(vector.name)")
            let frame = try #require(decodeWhole(line).first?.frame)
            #expect(frame.sealedCounter == vector.counter)
            // Without the keys a sealed payload is no message (a capture shows it sealed).
            #expect(throws: FrameMessageError.sealed(counter: vector.counter)) { try frame.message() }
            let opened = response ? try receivingHost.open(frame) : try receivingPump.open(frame)
            #expect(Array(opened.payload) == payload, "\(vector.name)")
            #expect(opened.header.requestID == vector.requestId && opened.header.messageType == vector.messageType)
            #expect(!opened.header.isSealed)
        }
    }

    @Test("what a receiver makes of each frame", arguments: opens)
    func open(_ vector: File.Open) throws {
        var (_, _, host, pump) = try Self.session()
        var receiver = vector.receiver == "host" ? host : pump
        // Bring the receiver to the vector's last counter by opening that many frames first.
        var encoder = FrameEncoder()
        for _ in 0..<vector.lastCounter {
            var line: [UInt8] = []
            if vector.receiver == "host" {
                try encoder.encode(PingResponse(echo: 0), requestID: 9, sealingWith: &pump, into: &line)
            } else {
                try encoder.encode(PingRequest(echo: 0), requestID: 9, sealingWith: &host, into: &line)
            }
            _ = try receiver.open(try #require(decodeWhole(line).first?.frame))
        }
        #expect(receiver.receivedCounter == vector.lastCounter)
        let frame = try #require(decodeWhole(try hexBytes(vector.line)).first?.frame)
        let outcome: String
        var payload: [UInt8]?
        do {
            payload = Array(try receiver.open(frame).payload)
            outcome = "opened"
        } catch .notSealed {
            outcome = "notSealed"
        } catch .wrongDirection {
            outcome = "wrongDirection"
        } catch .replayed {
            outcome = "replayed"
        } catch .forged {
            outcome = "forged"
        }
        #expect(outcome == vector.outcome)
        #expect(receiver.receivedCounter == vector.lastCounterAfter)
        #expect(payload?.hexadecimal == vector.payload)
    }

    @Test func theVectorsCoverEveryOutcome() throws {
        let outcomes = Set(try Self.file.get().open.map(\.outcome))
        #expect(outcomes == ["opened", "notSealed", "wrongDirection", "replayed", "forged"])
    }
}
