import PumpProtocol
import Testing

/// Runs the conformance vectors of protocol/vectors (made by tools/vectors/generate_vectors.py,
/// an independent implementation) against the Swift codec.
@Suite("Conformance vectors")
struct VectorTests {
    @Test("the vector files load and cover every message form")
    func vectorFilesLoad() throws {
        let frames = try Vectors.framesFile.get().frames
        let streams = try Vectors.brokenFile.get().streams
        let auth = try Vectors.authFile.get()
        let primitives = try Vectors.primitivesFile.get()
        #expect(frames.count >= RandomMessages.forms.count)
        #expect(streams.count >= 20)
        #expect(auth.checks.count >= 5)
        #expect(!primitives.crc32c.isEmpty && !primitives.cobs.isEmpty)

        let covered = Set(frames.map { $0.message + ($0.direction == "request" ? "Request" : "Response") })
        #expect(covered == Set(RandomMessages.forms))
    }

    // MARK: frames.json

    @Test("a valid frame decodes whole, byte by byte and in splits", arguments: Vectors.frames)
    func validFrame(_ vector: FrameVector) throws {
        let line = try hexBytes(vector.line)
        let runs = [
            ("whole", decodeWhole(line)),
            ("byte by byte", decodeByteByByte(line)),
            ("splits \(vector.splits)", decodeEvents(line, splits: vector.splits)),
        ]
        for (how, events) in runs {
            try #require(events.count == 1, "\(how)")
            let frame = try #require(events[0].frame, "\(how): \(events[0])")
            #expect(frame.header.flags.rawValue == vector.flags, "\(how)")
            #expect(frame.header.messageType == vector.messageType, "\(how)")
            #expect(frame.header.requestID == vector.requestId, "\(how)")
            #expect(frame.header.payloadLength == vector.payloadLength, "\(how)")
            #expect(frame.header.isResponse == (vector.direction == "response"), "\(how)")
            #expect(frame.header.isAuthenticated == (vector.authentication != nil), "\(how)")
            #expect(Array(frame.payload).hexadecimal == vector.payload, "\(how)")
            #expect(frame.tag?.bytes.hexadecimal == vector.authentication?.tag, "\(how)")
            #expect(frame.messageType?.name == vector.message, "\(how)")

            let message = try frame.message()
            #expect(JSON(message.payload.wireValue) == vector.fields, "\(how)")
            #expect(type(of: message.payload).isResponse == (vector.direction == "response"))
        }
    }

    @Test("a valid frame re-encodes to the same bytes", arguments: Vectors.frames)
    func reencode(_ vector: FrameVector) throws {
        let line = try hexBytes(vector.line)
        let packet = try hexBytes(vector.packet)
        let authenticator = try vector.authentication?.session.authenticator()
        let frame = try #require(decodeWhole(line).first?.frame)
        let message = try frame.message()

        var encoder = FrameEncoder()
        let typed = try lineForm(message, requestID: vector.requestId, authenticator: authenticator, encoder: &encoder)
        #expect(typed == line)

        var raw: [UInt8] = []
        try encoder.encode(
            messageType: vector.messageType,
            response: vector.direction == "response",
            requestID: vector.requestId,
            payload: try hexBytes(vector.payload),
            authenticator: authenticator,
            into: &raw
        )
        #expect(raw == line)

        #expect(CRC32C.checksum(packet.dropLast(4)) == vector.check)
        if let authenticator {
            #expect(authenticator.isAuthentic(frame))
        } else {
            #expect(frame.tag == nil)
        }
    }

    // MARK: broken.json

    @Test("a stream gives the expected decoder outcomes", arguments: Vectors.streams)
    func stream(_ vector: StreamVector) throws {
        let stream = try hexBytes(vector.stream)
        let runs = [
            ("whole", decodeWhole(stream)),
            ("byte by byte", decodeByteByByte(stream)),
            ("splits", decodeEvents(stream, splits: vector.splits)),
        ]
        var decoder = FrameDecoder()
        let events = decoder.decode(stream)
        let frames = events.count { $0.frame != nil }
        #expect(decoder.statistics.bytes == stream.count)
        #expect(decoder.statistics.frames == frames)
        #expect(decoder.statistics.discarded == events.count - frames)
        #expect(decoder.statistics.checkFailures == vector.events.count { $0["error"] == "checkFailed" })

        for (how, events) in runs {
            let actual = events.map(JSON.init)
            #expect(actual.count == vector.events.count, "\(how)")
            for (index, (got, expected)) in zip(actual, vector.events).enumerated() {
                #expect(got == expected, "\(how), event \(index)")
            }
        }
    }

    // MARK: auth.json

    @Test("an authentication check", arguments: Vectors.authChecks)
    func authenticationCheck(_ vector: AuthVectors.Check) throws {
        let events = decodeWhole(try hexBytes(vector.line))
        try #require(events.count == 1)
        let authenticator = try vector.session.authenticator()
        switch events[0] {
        case .frame(let frame):
            #expect(vector.decoder == "frame")
            guard let authentic = vector.authentic else {
                Issue.record("a frame check without `authentic`")
                return
            }
            #expect(authenticator.isAuthentic(frame) == authentic)
        case .discarded:
            var expected = vector.decoder.objectFields
            expected["event"] = "discarded"
            #expect(JSON(events[0]) == .object(expected))
        }
    }

    @Test("the Hello exchange carries the session's nonces")
    func helloNonces() throws {
        let vectors = try Vectors.authFile.get()
        #expect(FrameAuthenticator.domain.hexadecimal == vectors.domain)
        let request = try #require(decodeWhole(try hexBytes(vectors.hello["request"] ?? "")).first?.frame)
        let response = try #require(decodeWhole(try hexBytes(vectors.hello["response"] ?? "")).first?.frame)
        guard case .helloRequest(let hello) = try request.message(),
            case .helloResponse(let answer) = try response.message()
        else {
            Issue.record("not a Hello exchange")
            return
        }
        #expect(hello.hostNonce.hexadecimal == vectors.session.hostNonce)
        #expect(answer.pumpNonce.hexadecimal == vectors.session.pumpNonce)
        #expect(!request.header.isAuthenticated)
        #expect(try vectors.session.authenticator().isAuthentic(response))
        #expect(try !vectors.otherSession.authenticator().isAuthentic(response))
    }

    @Test("the replay sequence's frames say what the request record decided")
    func replay() throws {
        let vectors = try Vectors.authFile.get()
        let authenticator = try vectors.session.authenticator()
        var executedResponse: String?
        var lastExecuted = vectors.replay.initialRecord.lastExecutedRequestId
        for step in vectors.replay.steps {
            let request = try #require(decodeWhole(try hexBytes(step.request)).first?.frame, "\(step.description)")
            let response = try #require(decodeWhole(try hexBytes(step.response)).first?.frame, "\(step.description)")
            #expect(authenticator.isAuthentic(request), "\(step.description)")
            #expect(authenticator.isAuthentic(response), "\(step.description)")
            #expect(response.header.requestID == request.header.requestID, "\(step.description)")
            #expect(request.messageType?.requiresAuthentication == true)
            switch step.outcome {
            case "executed":
                #expect(request.header.requestID > lastExecuted)
                #expect(response.header.messageType == request.header.messageType)
                executedResponse = step.response
            case "answeredFromRecord":
                #expect(step.response == executedResponse, "the stored response, byte for byte")
            case "error":
                guard case .errorResponse(let error) = try response.message() else {
                    Issue.record("\(step.description): not an Error response")
                    continue
                }
                #expect(error.code.name == step.errorCode)
                #expect(error.requestType == request.header.messageType)
                if error.code == .staleRequestId {
                    #expect(request.header.requestID < vectors.replay.initialRecord.oldestRememberedRequestId)
                    // SPEC §13: the detail is the pump's lastExecutedRequestId.
                    #expect(error.detail == lastExecuted)
                }
            default:
                Issue.record("unknown outcome \(step.outcome)")
            }
            lastExecuted = step.lastExecutedRequestIdAfter
        }
    }

    // MARK: primitives.json

    @Test("CRC-32C", arguments: Vectors.crcs)
    func crc(_ vector: PrimitiveVectors.CRC) throws {
        let input = try hexBytes(vector.input)
        #expect(CRC32C.checksum(input) == vector.crc32c)
        #expect(input.withUnsafeBytes { CRC32C.checksum($0) } == vector.crc32c)
        // Not contiguous: the byte-at-a-time path.
        #expect(CRC32C.checksum(AnySequence(input)) == vector.crc32c)
        for split in 0...input.count {
            var crc = CRC32C()
            crc.update(input[..<split])
            crc.update(input[split...])
            #expect(crc.checksum == vector.crc32c, "split at \(split)")
        }
    }

    @Test("COBS encoding", arguments: Vectors.cobs)
    func cobs(_ vector: PrimitiveVectors.COBSVector) throws {
        var encoded: [UInt8] = [0xAA]  // appends after what is there
        COBS.encode(try hexBytes(vector.decoded), into: &encoded)
        #expect(Array(encoded.dropFirst()).hexadecimal == vector.encoded)
        #expect(!encoded.contains(0))
    }

    @Test("the limits agree with the codec's")
    func limits() throws {
        let limits = try Vectors.primitivesFile.get().limits
        #expect(limits["version"] == Int(FrameLayout.version))
        #expect(limits["headerLength"] == FrameLayout.headerLength)
        #expect(limits["tagLength"] == FrameLayout.tagLength)
        #expect(limits["checkLength"] == FrameLayout.checkLength)
        #expect(limits["maxPayloadLength"] == FrameLayout.maxPayloadLength)
        #expect(limits["minPacketLength"] == FrameLayout.minPacketLength)
        #expect(limits["maxPacketLength"] == FrameLayout.maxPacketLength)
    }
}

/// primitives.json's message fingerprints, from the Python implementation of SPEC §1.3, against
/// the generated ones.
@Suite("Vectors: message fingerprints")
struct FingerprintVectorTests {
    struct File: Decodable {
        struct Fingerprints: Decodable {
            struct Entry: Decodable {
                let messageType: UInt8
                let name: String
                let wireForm: String
                let fingerprint: UInt32
            }
            let messages: [Entry]
            let definitionsHash: String
        }
        let fingerprints: Fingerprints
    }

    @Test func everyMessagesFingerprintAndTheHash() throws {
        let file = try Vectors.load("primitives.json", as: File.self).get()
        #expect(file.fingerprints.messages.map(\.messageType) == MessageType.allCases.map(\.rawValue).sorted())
        for entry in file.fingerprints.messages {
            let type = try #require(MessageType(rawValue: entry.messageType))
            #expect(type.name == entry.name)
            #expect(type.fingerprint == entry.fingerprint, "\(entry.name)")
            #expect(!entry.wireForm.contains("\"doc\""))
        }
        #expect(ProtocolDefinitions.hash.hexadecimal == file.fingerprints.definitionsHash)
        #expect(MessageDefinitions.current.differing(from: MessageDefinitions.current.fingerprints).isEmpty)
    }
}
