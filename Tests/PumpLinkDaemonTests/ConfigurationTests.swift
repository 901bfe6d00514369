import Foundation
import PumpLinkDaemon
import SerialTransport
import Testing

@Suite("pumplinkd configuration")
struct ConfigurationTests {
    static func load(_ json: String) throws(DaemonError) -> DaemonConfiguration {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pumplinkd-config-\(UUID())")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("pumplinkd.json")
        try? Data(json.utf8).write(to: file)
        return try DaemonConfiguration.load(from: file.path)
    }

    static func configuration(pump: String) -> String {
        #"{"pumps": [\#(pump)], "dataDirectory": "data", "api": {"tokens": []}}"#
    }

    @Test func pumpsAreFoundByPathOrByUSBIds() throws {
        let configuration = try Self.load(Self.configuration(pump: """
            {"id": "a", "port": "/dev/ttyUSB0", "keyFile": "a.key"},
            {"id": "b", "usb": {"vendorId": "0403", "productId": "6001", "serialNumber": "A10K3"}, "keyFile": "/keys/b.key"},
            {"id": "c", "usb": {"vendorId": "10C4", "productId": "ea60"}, "keyFile": "c.key", "baud": 9600}
            """))
        #expect(configuration.pumps.map(\.baud) == [115_200, 115_200, 9600])
        #expect(configuration.pumps.map(\.port) == ["/dev/ttyUSB0", "usb:0403:6001:A10K3", "usb:10c4:ea60"])
        #expect(configuration.pumps[0].usb == nil)
        #expect(configuration.pumps[1].usb == .init(vendorID: 0x0403, productID: 0x6001, serialNumber: "A10K3"))
        #expect(configuration.pumps[2].usb == .init(vendorID: 0x10C4, productID: 0xEA60))
        #expect(configuration.pumps[1].keyFile == "/keys/b.key")
        #expect(configuration.pumps[0].keyFile.hasSuffix("/a.key") && configuration.pumps[0].keyFile.hasPrefix("/"))
        // Written back, an entry keeps the form it was given in.
        let again = try JSONDecoder().decode(DaemonConfiguration.self, from: JSONEncoder().encode(configuration))
        #expect(again.pumps == configuration.pumps)
    }

    @Test(arguments: [
        (#"{"id": "a", "keyFile": "a.key"}"#, "either 'port' or 'usb'"),
        (#"{"id": "a", "port": "/dev/ttyUSB0", "usb": {"vendorId": "0403", "productId": "6001"}, "keyFile": "a.key"}"#, "either 'port' or 'usb'"),
        (#"{"id": "a", "usb": {"vendorId": "403", "productId": "6001"}, "keyFile": "a.key"}"#, "four hexadecimal digits"),
        (#"{"id": "a", "usb": {"vendorId": "0403", "productId": "60G1"}, "keyFile": "a.key"}"#, "four hexadecimal digits"),
        (#"{"id": "a", "usb": {"vendorId": "0403"}, "keyFile": "a.key"}"#, "productId"),
        (#"{"id": "a", "port": "/dev/ttyUSB0", "keyFile": "a.key", "baud": 0}"#, "baud is a bit rate above 0"),
    ])
    func badPumpEntriesAreRefusedClearly(entry: String, message: String) {
        #expect {
            try Self.load(Self.configuration(pump: entry))
        } throws: { error in
            (error as? DaemonError)?.code == .badRequest && (error as? DaemonError)?.message.contains(message) == true
        }
    }

    @Test func aUSBAdapterIsTheOnePortThatMatches() throws {
        func port(_ path: String, _ vendor: UInt16?, _ product: UInt16?, _ serial: String?, byID: String? = nil) -> SerialPortInfo {
            SerialPortInfo(path: path, byIDPath: byID, transport: .usb, usbVendorID: vendor, usbProductID: product, usbSerialNumber: serial)
        }
        let ports = [
            port("/dev/ttyS0", nil, nil, nil),
            port("/dev/ttyUSB0", 0x0403, 0x6001, "A10K3", byID: "/dev/serial/by-id/usb-FTDI_A10K3-if00-port0"),
            port("/dev/ttyUSB1", 0x0403, 0x6001, "B22Q9"),
            port("/dev/ttyUSB2", 0x10C4, 0xEA60, "0001"),
        ]
        let ftdi = DaemonConfiguration.USBDevice(vendorID: 0x0403, productID: 0x6001, serialNumber: "B22Q9")
        #expect(try ftdi.port(among: ports) == "/dev/ttyUSB1")
        // The by-id name survives re-plugging, so it is preferred when udev made one.
        let first = DaemonConfiguration.USBDevice(vendorID: 0x0403, productID: 0x6001, serialNumber: "A10K3")
        #expect(try first.port(among: ports) == "/dev/serial/by-id/usb-FTDI_A10K3-if00-port0")
        #expect(try DaemonConfiguration.USBDevice(vendorID: 0x10C4, productID: 0xEA60).port(among: ports) == "/dev/ttyUSB2")
        // Two adapters of the same kind and no serial number: ambiguous, not a guess.
        #expect {
            try DaemonConfiguration.USBDevice(vendorID: 0x0403, productID: 0x6001).port(among: ports)
        } throws: { error in
            (error as? DaemonError)?.message.contains("add its serialNumber") == true
        }
        #expect {
            try DaemonConfiguration.USBDevice(vendorID: 0x0403, productID: 0x6015).port(among: ports)
        } throws: { error in
            (error as? DaemonError)?.code == .linkDown
        }
    }
}
