import CLibSerialPort

#if canImport(Glibc)
import Glibc
#endif

/// libserialport, for real ports: enumeration with USB metadata, opening, line settings.
///
/// What Debian's libserialport 0.1.1 does here (measured with strace; pinned by the tests):
/// - `sp_get_port_by_name` only accepts names under /dev/ whose basename-after-/dev/ has a
///   /sys/class/tty entry. /dev/pts/N looks up /sys/class/tty/pts/N, which does not exist, so it
///   returns SP_ERR_ARG (errno ENOENT). A name outside /dev (socat's `link=/tmp/...`, even a
///   symlink to a real port) returns SP_ERR_ARG without touching the file system.
/// - `sp_open` calls TIOCMGET, which ptys do not implement (ENOTTY), so even /dev/ptmx, which
///   does have a sysfs entry, fails to open.
/// - `sp_list_ports` skips every tty without a parent device, so ptys are never listed.
/// Hence the caller resolves symlinks first and sends pseudo-terminals (and anything this
/// library refuses) to the POSIX opener.
enum LibSerialPort {
    /// An open libserialport port: the `sp_port` it must be closed and freed through, and its fd.
    struct OpenPort {
        var handle: OpaquePointer
        var descriptor: Int32
    }

    enum OpenOutcome {
        case opened(OpenPort)
        /// libserialport does not handle this device (no sysfs entry, or TIOCMGET unsupported);
        /// the reason is for diagnostics.
        case refused(reason: String)
        case failed(SerialError)
    }

    /// What `sp_get_port_by_name` says about a name, without opening anything.
    enum Lookup: Equatable {
        case known
        /// SP_ERR_ARG with the errno libserialport left (0 when it did not even look).
        case refused(errno: Int32)
        case failed(code: Int32, errno: Int32)
    }

    static func lookUp(_ name: String) -> Lookup {
        var port: OpaquePointer?
        // sp_last_error_code() is plain errno, and SP_ERR_ARG paths do not always set it.
        Glibc.errno = 0
        let result = sp_get_port_by_name(name, &port)
        if result == SP_OK {
            sp_free_port(port)
            return .known
        }
        let error = sp_last_error_code()
        return result == SP_ERR_ARG ? .refused(errno: error) : .failed(code: result.rawValue, errno: error)
    }

    static func open(_ resolvedPath: String, reportedAs path: String) -> OpenOutcome {
        var port: OpaquePointer?
        Glibc.errno = 0
        let lookup = sp_get_port_by_name(resolvedPath, &port)
        guard lookup == SP_OK, let handle = port else {
            if lookup == SP_ERR_MEM {
                return .failed(SerialError(.ioFailed, path: path, operation: "sp_get_port_by_name", errno: ENOMEM))
            }
            return .refused(reason: "sp_get_port_by_name: errno \(sp_last_error_code())")
        }

        guard sp_open(handle, SP_MODE_READ_WRITE) == SP_OK else {
            let error = sp_last_error_code()
            sp_free_port(handle)
            // ENOTTY: the TIOCMGET trap (a pty or another tty without modem lines). The POSIX
            // opener can still drive such a device; it reports notATerminal if it really is not one.
            if error == ENOTTY || error == EINVAL {
                return .refused(reason: "sp_open: errno \(error)")
            }
            return .failed(SerialError.fromOpen(errno: error, path: path, operation: "sp_open"))
        }

        var descriptor: Int32 = -1
        guard sp_get_port_handle(handle, &descriptor) == SP_OK, descriptor >= 0 else {
            let error = sp_last_error_code()
            close(OpenPort(handle: handle, descriptor: -1))
            return .failed(SerialError(.ioFailed, path: path, operation: "sp_get_port_handle", errno: error))
        }
        return .opened(OpenPort(handle: handle, descriptor: descriptor))
    }

    static func configure(_ port: OpenPort, settings line: LineSettings, path: String) throws(SerialError) {
        guard let baudRate = Int32(exactly: line.baudRate), baudRate > 0 else {
            throw SerialError(.configurationFailed, path: path, operation: "baud rate \(line.baudRate)")
        }
        guard (5...8).contains(line.dataBits) else {
            throw SerialError(.configurationFailed, path: path, operation: "data bits \(line.dataBits)")
        }

        var configPointer: OpaquePointer?
        guard sp_new_config(&configPointer) == SP_OK, let config = configPointer else {
            throw SerialError(.configurationFailed, path: path, operation: "sp_new_config", errno: ENOMEM)
        }
        defer { sp_free_config(config) }

        let parity: sp_parity =
            switch line.parity {
            case .none: SP_PARITY_NONE
            case .odd: SP_PARITY_ODD
            case .even: SP_PARITY_EVEN
            }
        let flowControl: sp_flowcontrol =
            switch line.flowControl {
            case .none: SP_FLOWCONTROL_NONE
            case .rtsCts: SP_FLOWCONTROL_RTSCTS
            }
        let steps: [(String, () -> sp_return)] = [
            ("sp_set_config_baudrate", { sp_set_config_baudrate(config, baudRate) }),
            ("sp_set_config_bits", { sp_set_config_bits(config, Int32(line.dataBits)) }),
            ("sp_set_config_parity", { sp_set_config_parity(config, parity) }),
            ("sp_set_config_stopbits", { sp_set_config_stopbits(config, line.stopBits == .one ? 1 : 2) }),
            ("sp_set_config_flowcontrol", { sp_set_config_flowcontrol(config, flowControl) }),
            ("sp_set_config", { sp_set_config(port.handle, config) }),
        ]
        for (operation, step) in steps where step() != SP_OK {
            throw SerialError(.configurationFailed, path: path, operation: operation, errno: sp_last_error_code())
        }
    }

    /// Closes the fd through libserialport and frees the port structure.
    static func close(_ port: OpenPort) {
        if port.descriptor >= 0 {
            _ = sp_close(port.handle)
        }
        sp_free_port(port.handle)
    }

    static func listPorts() throws(SerialError) -> [SerialPortInfo] {
        var listPointer: UnsafeMutablePointer<OpaquePointer?>?
        let result = sp_list_ports(&listPointer)
        guard result == SP_OK, let list = listPointer else {
            throw SerialError(.enumerationFailed, operation: "sp_list_ports", errno: sp_last_error_code())
        }
        defer { sp_free_port_list(list) }

        let byID = serialLinksByTarget()
        var ports: [SerialPortInfo] = []
        var index = 0
        while let port = list[index] {
            index += 1
            guard let name = string(sp_get_port_name(port)), !name.isEmpty else { continue }
            var info = SerialPortInfo(path: name)
            info.description = string(sp_get_port_description(port)) ?? ""
            info.byIDPath = byID[(try? Posix.resolve(name)) ?? name]
            switch sp_get_port_transport(port) {
            case SP_TRANSPORT_NATIVE: info.transport = .native
            case SP_TRANSPORT_USB: info.transport = .usb
            case SP_TRANSPORT_BLUETOOTH: info.transport = .bluetooth
            default: info.transport = .unknown
            }
            if info.transport == .usb {
                var vendor: Int32 = 0
                var product: Int32 = 0
                if sp_get_port_usb_vid_pid(port, &vendor, &product) == SP_OK {
                    info.usbVendorID = UInt16(exactly: vendor)
                    info.usbProductID = UInt16(exactly: product)
                }
                info.usbSerialNumber = string(sp_get_port_usb_serial(port))
                info.manufacturer = string(sp_get_port_usb_manufacturer(port))
                info.product = string(sp_get_port_usb_product(port))
            }
            ports.append(info)
        }
        return ports.sorted { $0.path < $1.path }
    }

    private static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    /// Maps each device node to its /dev/serial/by-id link (udev's stable, per-adapter names).
    private static func serialLinksByTarget() -> [String: String] {
        let directory = "/dev/serial/by-id"
        guard let stream = opendir(directory) else { return [:] }
        defer { closedir(stream) }
        var links: [String: String] = [:]
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name != ".", name != ".." else { continue }
            let link = "\(directory)/\(name)"
            if let target = try? Posix.resolve(link) {
                links[target] = link
            }
        }
        return links
    }
}
