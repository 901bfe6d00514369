/// How the line is framed. The defaults (115200 8N1, no flow control) are what the pumps speak.
public struct LineSettings: Sendable, Hashable {
    public enum Parity: Sendable, Hashable {
        case none, odd, even
    }

    public enum StopBits: Sendable, Hashable {
        case one, two
    }

    /// Software flow control (XON/XOFF) is deliberately absent: it swallows 0x11 and 0x13,
    /// which a binary protocol sends as ordinary bytes.
    public enum FlowControl: Sendable, Hashable {
        case none
        case rtsCts
    }

    public var baudRate: Int
    /// 5 to 8.
    public var dataBits: Int
    public var parity: Parity
    public var stopBits: StopBits
    public var flowControl: FlowControl

    public init(
        baudRate: Int = 115_200,
        dataBits: Int = 8,
        parity: Parity = .none,
        stopBits: StopBits = .one,
        flowControl: FlowControl = .none
    ) {
        self.baudRate = baudRate
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.flowControl = flowControl
    }
}
