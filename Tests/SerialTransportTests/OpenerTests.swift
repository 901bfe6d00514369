import Glibc
import Testing

@testable import SerialTransport

@Suite("Opening, enumeration and what libserialport does")
struct OpenerTests {
    @Test("enumeration works; every listed port has a path")
    func enumeration() throws {
        let ports = try SerialPorts.list()
        for port in ports {
            #expect(!port.path.isEmpty)
            if port.transport != .usb {
                #expect(port.usbVendorID == nil && port.usbProductID == nil)
            }
        }
        // Pseudo-terminals are not serial hardware and libserialport does not list them.
        let terminal = try PseudoTerminal.open()
        defer { terminal.close() }
        #expect(try !SerialPorts.list().contains { $0.path == terminal.subordinatePath })
    }

    @Test("a missing path is noSuchPort")
    func missingPath() {
        let path = "/dev/serial/by-id/usb-PumpLink_no_such_adapter-if00-port0"
        #expect(throws: SerialError(.noSuchPort, path: path, operation: "realpath", errno: ENOENT)) {
            _ = try SerialPort.open(path: path)
        }
    }

    @Test("a regular file is notATerminal")
    func regularFile() throws {
        let directory = try #require(makeTemporaryDirectory())
        defer { removeTemporaryDirectory(directory) }
        let path = "\(directory)/not-a-port"
        let descriptor = Glibc.open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        try #require(descriptor >= 0)
        Glibc.close(descriptor)

        #expect {
            _ = try SerialPort.open(path: path)
        } throws: { error in
            let error = error as? SerialError
            return error?.code == .notATerminal && error?.path == path
        }
    }

    @Test("a character device that is not a tty (/dev/null) is notATerminal")
    func characterDeviceThatIsNotATerminal() {
        #expect {
            _ = try SerialPort.open(path: "/dev/null")
        } throws: { error in
            let error = error as? SerialError
            return error?.code == .notATerminal && error?.errno == ENOTTY
        }
    }

    /// The behaviour measured on Debian's libserialport 0.1.1 (see LibSerialPort.swift), pinned so
    /// that a library upgrade that changes it is noticed.
    @Test("libserialport refuses pseudo-terminals; the POSIX opener handles them")
    func libserialportOnPseudoTerminals() throws {
        let terminal = try PseudoTerminal.open()
        defer { terminal.close() }

        // /dev/pts/N: it looks up /sys/class/tty/pts/N, which does not exist.
        #expect(LibSerialPort.lookUp(terminal.subordinatePath) == .refused(errno: ENOENT))
        guard case .refused = LibSerialPort.open(terminal.subordinatePath, reportedAs: terminal.subordinatePath) else {
            Issue.record("libserialport opened a pseudo-terminal; the opener choice can be revisited")
            return
        }

        // A name outside /dev, even a link to a real device node, is refused without a look.
        let directory = try #require(makeTemporaryDirectory())
        defer { removeTemporaryDirectory(directory) }
        let link = "\(directory)/pump0"
        try terminal.link(at: link)
        #expect(LibSerialPort.lookUp(link) == .refused(errno: 0))

        // /dev/ptmx has a sysfs entry, so the lookup succeeds, but sp_open fails on TIOCMGET.
        if LibSerialPort.lookUp("/dev/ptmx") == .known {
            guard case .refused(let reason) = LibSerialPort.open("/dev/ptmx", reportedAs: "/dev/ptmx") else {
                Issue.record("sp_open accepted /dev/ptmx")
                return
            }
            #expect(reason == "sp_open: errno \(ENOTTY)")
        }

        // Our opener takes both the node and the link to the POSIX path.
        for path in [terminal.subordinatePath, link] {
            let port = try SerialPort.open(path: path)
            #expect(port.opener == .posixTermios)
            port.close()
        }
    }

    @Test("the opened pty is raw: no echo, no translation, no XON/XOFF, VMIN 1")
    func termiosStateAfterOpen() throws {
        let terminal = try PseudoTerminal.open()
        defer { terminal.close() }
        let port = try SerialPort.open(path: terminal.subordinatePath)
        defer { port.close() }

        var settings = termios()
        try #require(tcgetattr(port.fileDescriptor, &settings) == 0)
        let inputProcessing: tcflag_t = tcflag_t(IXON | IXOFF | IXANY | ICRNL | INLCR | IGNCR | ISTRIP)
        let localProcessing: tcflag_t = tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        let framingExtras: tcflag_t = tcflag_t(PARENB | CSTOPB) | tcflag_t(CRTSCTS)
        let receiverOn: tcflag_t = tcflag_t(CLOCAL | CREAD)
        #expect(settings.c_iflag & inputProcessing == 0)
        #expect(settings.c_oflag & tcflag_t(OPOST) == 0)
        #expect(settings.c_lflag & localProcessing == 0)
        #expect(settings.c_cflag & tcflag_t(CSIZE) == tcflag_t(CS8))
        #expect(settings.c_cflag & framingExtras == 0)
        #expect(settings.c_cflag & receiverOn == receiverOn)
        let (minimum, time) = withUnsafeBytes(of: settings.c_cc) { ($0[Int(VMIN)], $0[Int(VTIME)]) }
        #expect(minimum == 1 && time == 0)
        #expect(cfgetospeed(&settings) == speed_t(B115200))
    }

    @Test("an unsupported setting is a configuration error")
    func unsupportedDataBits() throws {
        let terminal = try PseudoTerminal.open()
        defer { terminal.close() }
        #expect {
            _ = try SerialPort.open(path: terminal.subordinatePath, settings: LineSettings(dataBits: 9))
        } throws: { error in
            (error as? SerialError)?.code == .configurationFailed
        }
    }

    @Test("errors describe themselves with path, call and errno")
    func errorDescription() {
        let error = SerialError(.permissionDenied, path: "/dev/ttyUSB0", operation: "sp_open", errno: EACCES)
        #expect(
            error.description == "serial port /dev/ttyUSB0: permission denied (sp_open: errno 13, Permission denied)"
        )
    }
}

/// Opening real hardware changes its line settings and raises DTR/RTS, so it is opt-in:
/// `PUMPLINK_TEST_REAL_PORT=/dev/ttyUSB0 swift test --filter SerialTransportTests`.
private let realPortPath = getenv("PUMPLINK_TEST_REAL_PORT").map { String(cString: $0) }

@Suite("A real serial port")
struct RealPortTests {
    @Test(
        "libserialport opens it raw, non-blocking, close-on-exec and locked",
        .enabled(if: realPortPath != nil, "set PUMPLINK_TEST_REAL_PORT to a serial device to run")
    )
    func realPortThroughLibserialport() throws {
        let path = try #require(realPortPath)
        let port = try SerialPort.open(path: path, settings: LineSettings(baudRate: 57_600))
        defer { port.close() }
        #expect(port.opener == .libserialport)

        let descriptor = port.fileDescriptor
        #expect(fcntl(descriptor, F_GETFD) & FD_CLOEXEC != 0)
        #expect(fcntl(descriptor, F_GETFL) & O_NONBLOCK != 0)

        var settings = termios()
        try #require(tcgetattr(descriptor, &settings) == 0)
        let softwareFlowControl: tcflag_t = tcflag_t(IXON | IXOFF | IXANY)
        let localProcessing: tcflag_t = tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        #expect(settings.c_iflag & softwareFlowControl == 0)
        #expect(settings.c_oflag & tcflag_t(OPOST) == 0)
        #expect(settings.c_lflag & localProcessing == 0)
        #expect(settings.c_cflag & tcflag_t(CSIZE) == tcflag_t(CS8))
        #expect(settings.c_cflag & tcflag_t(CRTSCTS) == 0)
        #expect(cfgetospeed(&settings) == speed_t(B57600))
        let minimum = withUnsafeBytes(of: settings.c_cc) { $0[Int(VMIN)] }
        #expect(minimum == 1)

        #expect {
            _ = try SerialPort.open(path: path)
        } throws: { error in
            (error as? SerialError)?.code == .busy
        }
    }
}
