// Fuzz target: the generated message decoders (SPEC §4, §6; Generated/Messages.swift).
//
// Input: byte 0 chooses the message type and direction (every pair of MessageType.allCases and
// request/response, the Error request included, which must be refused); the rest is the
// payload. A payload that decodes must:
// - be the message of that type and direction;
// - validate and encode again to exactly the same bytes (every v1 encoding is canonical: fixed
//   widths, explicit counts, no trailing bytes), and decode again to the same message;
// - go through a frame (FrameEncoder, FrameDecoder, Frame.message()) unchanged, when it fits;
// - survive the JSON form the API uses (JSONEncoder, JSONDecoder) unchanged;
// - render as a WireValue.

import Foundation
import FuzzSupport
import PumpProtocol

let pairs: [(type: MessageType, isResponse: Bool)] = MessageType.allCases.flatMap { [($0, false), ($0, true)] }

runFuzzer { input in
    guard let selector = input.first else { return }
    let (type, isResponse) = pairs[Int(selector) % pairs.count]
    let payload = Array(input.dropFirst())
    MessageProperties.check(type: type, isResponse: isResponse, payload: payload)
}

enum MessageProperties {
    static func check(type: MessageType, isResponse: Bool, payload: [UInt8]) {
        let message: Message
        do {
            message = try Message(type: type, isResponse: isResponse, payload: payload[...])
        } catch {
            if case .noSuchDirection = error {
                require(type == .error && !isResponse, "\(type.name) \(isResponse ? "response" : "request") refused as \(error)")
            }
            return
        }
        func name() -> String { "\(type.name) \(isResponse ? "response" : "request") \(hex(payload))" }
        require(!(type == .error && !isResponse), "an Error request decoded: \(name())")

        let body = message.payload
        require(Swift.type(of: body).messageType == type && Swift.type(of: body).isResponse == isResponse,
                "\(name()) decoded as \(Swift.type(of: body))")

        let encoded: [UInt8]
        do {
            encoded = try body.encoded()
        } catch {
            violated("\(name()) decoded to \(message), which does not validate: \(error)")
        }
        require(encoded == payload, "\(name()) decoded to \(message), which encodes to \(hex(encoded))")
        do {
            let again = try Message(type: type, isResponse: isResponse, payload: encoded[...])
            require(again == message, "\(name()): \(message) decodes again as \(again)")
        } catch {
            violated("\(name()): its own encoding \(hex(encoded)) does not decode: \(error)")
        }

        checkFrame(body, message: message, name: name())
        checkJSON(body, name: name())
        _ = body.wireValue
    }

    /// Through a frame: what the link does with it.
    static func checkFrame(_ body: some MessagePayload, message: Message, name: @autoclosure () -> String) {
        var encoder = FrameEncoder()
        let line: [UInt8]
        do {
            line = try encoder.encode(body, requestID: 0x0102_0304)
        } catch {
            // Only a payload above the frame's limit may be refused.
            guard case .tooLong(field: "payload", _, _) = error else {
                violated("\(name()) does not frame: \(error)")
            }
            return
        }
        var decoder = FrameDecoder()
        let events = decoder.decode(line)
        guard events.count == 1, case .frame(let frame) = events[0] else {
            violated("\(name()) framed as \(hex(line)) decodes to \(events)")
        }
        require(frame.header.requestID == 0x0102_0304, "\(name()): request id \(frame.header.requestID) after framing")
        do {
            let decoded = try frame.message()
            require(decoded == message, "\(name()): framed and decoded as \(decoded)")
        } catch {
            violated("\(name()): framed, its payload does not decode: \(error)")
        }
    }

    /// The API shows statuses, events and programs as JSON (the generated Codable conformances).
    static func checkJSON(_ body: some MessagePayload, name: @autoclosure () -> String) {
        guard let codable = body as? any (Codable & Hashable) else {
            violated("\(name()): \(Swift.type(of: body)) is not Codable")
        }
        roundTrip(codable, name: name())
    }

    static func roundTrip<T: Codable & Hashable>(_ value: T, name: @autoclosure () -> String) {
        let json: Data
        do {
            json = try JSONEncoder().encode(value)
        } catch {
            violated("\(name()): \(value) does not encode as JSON: \(error)")
        }
        do {
            let again = try JSONDecoder().decode(T.self, from: json)
            require(again == value, "\(name()): \(value) comes back from JSON \(String(decoding: json, as: UTF8.self)) as \(again)")
        } catch {
            violated("\(name()): JSON \(String(decoding: json, as: UTF8.self)) does not decode: \(error)")
        }
    }
}
