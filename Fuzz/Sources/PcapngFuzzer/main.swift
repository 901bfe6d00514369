// Fuzz target: the pcapng capture reader (SPEC §15; PumpCapture's `Capture(pcapng:)`).
//
// Input: the bytes of a file. The reader must never trap (it promises a CaptureError for
// anything malformed). A capture it accepts must:
// - decode (`decoded()`: every packet through the frame decoder) and render as text, and as
//   JSON when it has at most 4 records (JSON is slow; every record kind fits in 4);
// - be written again with PcapngBlocks (one section, the same interfaces in nanoseconds, the
//   same packets) into a file that reads back complete, with the same interfaces and packets.

import FuzzSupport
import PumpCapture
import PumpProtocol

runFuzzer { input in
    let capture: Capture
    do {
        capture = try Capture(pcapng: input)
    } catch {
        return
    }
    let decoded = capture.decoded()
    _ = decoded.text()
    // JSON costs most of a run over many packets; small captures reach every record kind.
    if decoded.records.count <= 4 {
        _ = decoded.json(prettyPrinted: false)
    }
    PcapngProperties.checkRewrite(capture, input: input)
}

enum PcapngProperties {
    static func checkRewrite(_ capture: Capture, input: UnsafeRawBufferPointer) {
        guard capture.packets.allSatisfy({ capture.interfaces.indices.contains($0.interfaceIndex) }) else { return }
        var file: [UInt8] = []
        PcapngBlocks.appendSectionHeader(userApplication: "fuzz", to: &file)
        for interface in capture.interfaces {
            PcapngBlocks.appendInterfaceDescription(
                linkType: interface.linkType, snapLength: interface.snapLength, name: interface.name,
                description: interface.description, timestampResolution: PcapngBlocks.nanosecondResolution, to: &file)
        }
        for packet in capture.packets {
            do {
                try PcapngBlocks.appendEnhancedPacket(
                    interface: CaptureInterfaceID(rawValue: UInt32(packet.interfaceIndex)),
                    timestamp: packet.timestampNanoseconds, data: packet.data, originalLength: packet.originalLength,
                    direction: packet.direction, to: &file)
            } catch {
                violated("packet \(packet) of \(hex(input)) cannot be written again: \(error)")
            }
        }
        let again: Capture
        do {
            again = try Capture(pcapng: file)
        } catch {
            violated("\(hex(input)) rewritten as \(hex(file)) does not read: \(error)")
        }
        require(!again.truncatedTail && again.skippedBlocks == 0 && again.sections.count == 1,
                "\(hex(input)) rewritten as \(hex(file)) reads as \(again)")
        require(again.interfaces.count == capture.interfaces.count, "\(hex(input)) rewritten as \(hex(file)): interfaces \(again.interfaces), were \(capture.interfaces)")
        for (before, after) in zip(capture.interfaces, again.interfaces) {
            require(before.linkType == after.linkType && before.snapLength == after.snapLength
                        && before.name == after.name && before.description == after.description,
                    "\(hex(input)) rewritten as \(hex(file)): interface \(after), was \(before)")
        }
        require(again.packets.count == capture.packets.count, "\(hex(input)) rewritten as \(hex(file)): \(again.packets.count) packets, were \(capture.packets.count)")
        for (before, after) in zip(capture.packets, again.packets) {
            require(before.interfaceIndex == after.interfaceIndex && before.timestampNanoseconds == after.timestampNanoseconds
                        && before.direction == after.direction && before.data == after.data
                        && max(before.originalLength, before.data.count) == after.originalLength,
                    "\(hex(input)) rewritten as \(hex(file)): packet \(after), was \(before)")
        }
    }
}
