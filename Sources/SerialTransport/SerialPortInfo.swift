/// One serial port as the system lists it, with the USB descriptor strings when it is a USB adapter.
public struct SerialPortInfo: Sendable, Hashable {
    public enum Transport: Sendable, Hashable {
        case native
        case usb
        case bluetooth
        case unknown
    }

    /// The device node, e.g. `/dev/ttyUSB0`.
    public var path: String
    /// The `/dev/serial/by-id` link that points at `path`, if udev made one. Unlike `path` it
    /// survives re-plugging, so it is the name to store in configuration.
    public var byIDPath: String?
    public var description: String
    public var transport: Transport
    public var usbVendorID: UInt16?
    public var usbProductID: UInt16?
    public var usbSerialNumber: String?
    public var manufacturer: String?
    public var product: String?

    public init(
        path: String,
        byIDPath: String? = nil,
        description: String = "",
        transport: Transport = .unknown,
        usbVendorID: UInt16? = nil,
        usbProductID: UInt16? = nil,
        usbSerialNumber: String? = nil,
        manufacturer: String? = nil,
        product: String? = nil
    ) {
        self.path = path
        self.byIDPath = byIDPath
        self.description = description
        self.transport = transport
        self.usbVendorID = usbVendorID
        self.usbProductID = usbProductID
        self.usbSerialNumber = usbSerialNumber
        self.manufacturer = manufacturer
        self.product = product
    }
}
