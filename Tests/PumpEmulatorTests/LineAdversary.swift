import PumpEmulator
import PumpModel
import PumpProtocol
import PumpSession
import SerialTransport
import Synchronization

/// Someone on the line between a host and a pump, with the line but not the key (SPEC §8.7): it
/// sees every frame both ways and decides what goes on instead (the frame, nothing, something
/// altered, something more), and can inject frames of its own at any time.
final class LineAdversary: Sendable {
    enum Direction: Sendable, Hashable {
        case toPump
        case toHost
    }

    /// What to send on for one frame (its line bytes; `frame` is nil for a candidate that is no
    /// frame): a list of lines, empty to drop it.
    typealias Rule = @Sendable (_ frame: Frame?, _ line: [UInt8], _ direction: Direction) -> [[UInt8]]

    static let forwardAll: Rule = { _, line, _ in [line] }

    private let rule: Mutex<Rule>
    private let reply: Mutex<Rule?> = Mutex(nil)
    private let seen: Mutex<[(Direction, Frame)]> = Mutex([])
    let hostSide: any ByteLink
    let pumpSide: any ByteLink

    private init(hostSide: any ByteLink, pumpSide: any ByteLink) {
        self.hostSide = hostSide
        self.pumpSide = pumpSide
        rule = Mutex(Self.forwardAll)
    }

    /// The adversary between two new pipes: the host's end and the pump's end are returned.
    static func between() -> (adversary: LineAdversary, hostEnd: any ByteLink, pumpEnd: any ByteLink) {
        let (hostEnd, towardHost) = MemoryPipe.makePair()
        let (towardPump, pumpEnd) = MemoryPipe.makePair()
        return (LineAdversary(hostSide: towardHost, pumpSide: towardPump), hostEnd, pumpEnd)
    }

    func setRule(_ new: @escaping Rule) {
        rule.withLock { $0 = new }
    }

    /// What to send back toward a frame's sender, as if from the other side (nil: nothing).
    func setReply(_ new: Rule?) {
        reply.withLock { $0 = new }
    }

    /// Every frame that came past, in order.
    var frames: [(Direction, Frame)] { seen.withLock { $0 } }

    func inject(_ line: [UInt8], _ direction: Direction) async {
        try? await (direction == .toPump ? pumpSide : hostSide).send(line)
    }

    /// Relays both ways until either side closes.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.relay(from: self.hostSide, to: self.pumpSide, .toPump) }
            group.addTask { await self.relay(from: self.pumpSide, to: self.hostSide, .toHost) }
            await group.next()
            hostSide.close()
            pumpSide.close()
        }
    }

    private func relay(from source: any ByteLink, to destination: any ByteLink, _ direction: Direction) async {
        var candidate: [UInt8] = []
        do {
            for try await chunk in source.incoming {
                for byte in chunk {
                    guard byte == 0 else {
                        candidate.append(byte)
                        continue
                    }
                    guard !candidate.isEmpty else { continue }
                    let line = [0] + candidate + [0]
                    candidate.removeAll()
                    var decoder = FrameDecoder()
                    var frame: Frame?
                    decoder.decode(line) { if case .frame(let decoded) = $0 { frame = decoded } }
                    if let frame { seen.withLock { $0.append((direction, frame)) } }
                    let rule = self.rule.withLock { $0 }
                    for out in rule(frame, line, direction) {
                        try await destination.send(out)
                    }
                    if let reply = self.reply.withLock({ $0 }) {
                        for back in reply(frame, line, direction) {
                            try await source.send(back)
                        }
                    }
                }
            }
        } catch {}
    }
}

extension LineAdversary {
    /// A frame in clear, as anyone can make one: any header, payload and flags, a correct check.
    static func clearFrame(
        _ payload: some MessagePayload, requestID: UInt32, version: UInt8 = 1
    ) -> [UInt8] {
        var encoder = FrameEncoder()
        return (try? encoder.encode(payload, requestID: requestID, version: version)) ?? []
    }

    /// A frame that claims to be sealed, with a counter far ahead and ciphertext and tag of the
    /// adversary's choosing.
    static func fakeSealed(type: MessageType, requestID: UInt32, response: Bool, counter: UInt64 = 1 << 40) -> [UInt8] {
        var packet: [UInt8] = [2, response ? 0x05 : 0x04, type.rawValue]
        withUnsafeBytes(of: requestID.littleEndian) { packet += $0 }
        packet += [8 + 16, 0]
        withUnsafeBytes(of: counter.littleEndian) { packet += $0 }
        packet += [UInt8](repeating: 0xA5, count: 16)  // "ciphertext"
        packet += [UInt8](repeating: 0x5A, count: 16)  // "tag"
        return packetLine(packet)
    }

    /// The line form of a decoded frame, exactly as it crossed the line.
    static func line(of frame: Frame) -> [UInt8] {
        packetLine(Array(frame.packet) + (frame.tag?.bytes ?? []))
    }

    /// `line` with its packet (header, payload, tag) changed by `edit` and the check recomputed.
    static func rewritten(_ line: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var decoder = FrameDecoder()
        var frame: Frame?
        decoder.decode(line) { if case .frame(let decoded) = $0 { frame = decoded } }
        guard let frame else { return line }
        var packet = Array(frame.packet) + (frame.tag?.bytes ?? [])
        edit(&packet)
        return packetLine(packet)
    }

    /// 00, COBS(packet + its CRC-32C), 00.
    private static func packetLine(_ packet: [UInt8]) -> [UInt8] {
        var packet = packet
        let check = packet.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: check.littleEndian) { packet += $0 }
        var out: [UInt8] = [0]
        COBS.encode(packet, into: &out)
        out.append(0)
        return out
    }
}

/// An emulated pump and a session with a `LineAdversary` on the line between them.
struct AdversaryRig {
    let pump: EmulatedPump<ModelPump>
    /// A session on the host's end (not connected yet); or use `hostEnd` and `key` directly.
    let session: PumpSession
    let adversary: LineAdversary
    let hostEnd: any ByteLink
    let key: PairingKey
    let tasks: [Task<Void, Never>]

    static func make(
        pumpVersions: ClosedRange<UInt8> = 2...2,
        definitions: MessageDefinitions = .current,
        configuration: SessionConfiguration = SessionConfiguration()
    ) -> AdversaryRig {
        let key = PairingKey.generate()
        var pumpConfiguration = PumpConfiguration()
        pumpConfiguration.serialNumber = "ADV-0001"
        pumpConfiguration.initialProgram = ModelPump.defaultProgram
        var endpoint = PumpEndpoint(
            device: ModelPump(Pump(configuration: pumpConfiguration, nowMs: MemoryRig.startMs)), key: key,
            protocolVersions: pumpVersions)
        endpoint.definitions = definitions
        let pump = EmulatedPump(endpoint: endpoint, clock: VirtualClock(startMs: MemoryRig.startMs))
        let (adversary, hostEnd, pumpEnd) = LineAdversary.between()
        var configuration = configuration
        configuration.bitsPerSecond = nil
        let session = PumpSession(link: hostEnd, key: key, configuration: configuration)
        let tasks = [Task { await pump.serve(pumpEnd) }, Task { await adversary.run() }]
        return AdversaryRig(pump: pump, session: session, adversary: adversary, hostEnd: hostEnd, key: key, tasks: tasks)
    }

    func stop() async {
        await session.close()
        for task in tasks { await task.value }
    }

    func pumpEvents() async -> [Event] {
        await pump.withDevice { device, _ in device.events(from: 1, maxCount: .max).events }
    }
}
