import PumpProtocol

extension DecodedCapture {
    /// The capture with the sealed payloads of its version 2 sessions opened, for a reader who
    /// holds the pump's pairing key (SPEC §8.3, §8.4, §15). On each interface, every Hello
    /// answer of version 2 whose tag verifies under `key` over the Hello request it answers
    /// gives that session's keys; the session's sealed frames are then opened in the order
    /// recorded, as the two sides did. A frame that does not open (a duplicate, another key,
    /// damage) stays sealed. Opened frames keep their counter in `DecodedFrame.openedCounter`.
    public func opened(with key: PairingKey) -> DecodedCapture {
        struct Session {
            var host: SecureChannel
            var pump: SecureChannel
        }
        var helloRequests: [Int: [UInt32: [UInt8]]] = [:]
        var sessions: [Int: Session] = [:]
        var result = self
        for index in result.records.indices {
            guard case .frame(let decoded) = result.records[index].outcome else { continue }
            let interface = result.records[index].interfaceIndex
            let header = decoded.header
            if header.messageType == MessageType.hello.rawValue, !header.isSealed {
                if !header.isResponse {
                    helloRequests[interface, default: [:]][header.requestID] = decoded.payload
                } else if case .success(.helloResponse(let answer)) = decoded.message, answer.protocolVersion >= 2,
                          let request = helloRequests[interface]?[header.requestID], let tag = decoded.tag
                {
                    let frame = decoded.frame
                    guard FrameAuthenticator(key: key, helloRequestPayload: request).isAuthentic(frame) else { continue }
                    func channel(_ side: SecureChannel.Side) -> SecureChannel {
                        SecureChannel(key: key, helloRequestPayload: request, helloAnswerPacket: frame.packet, helloAnswerTag: tag, side: side)
                    }
                    sessions[interface] = Session(host: channel(.host), pump: channel(.pump))
                }
                continue
            }
            guard header.isSealed, var session = sessions[interface], let counter = decoded.frame.sealedCounter else { continue }
            let opened: Frame
            do {
                // The host's channel opens what the pump sent, the pump's what the host sent.
                opened = header.isResponse ? try session.host.open(decoded.frame) : try session.pump.open(decoded.frame)
            } catch {
                continue
            }
            sessions[interface] = session
            var frame = DecodedFrame(opened)
            frame.openedCounter = counter
            result.records[index].outcome = .frame(frame)
        }
        return result
    }
}

extension DecodedFrame {
    /// The frame as the decoder gave it.
    var frame: Frame {
        var packet: [UInt8] = []
        packet.reserveCapacity(FrameLayout.headerLength + payload.count)
        packet.append(header.version)
        packet.append(header.flags.rawValue)
        packet.append(header.messageType)
        withUnsafeBytes(of: header.requestID.littleEndian) { packet.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(truncatingIfNeeded: payload.count).littleEndian) { packet.append(contentsOf: $0) }
        packet.append(contentsOf: payload)
        return Frame(header: header, packet: packet[...], tag: tag)
    }
}
