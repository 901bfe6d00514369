#if canImport(Glibc)
import Glibc
#endif

/// Thin helpers over the POSIX calls both openers share.
enum Posix {
    /// Follows symlinks (`/dev/serial/by-id/...`, socat's `link=`) to the device node.
    static func resolve(_ path: String) throws(SerialError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw SerialError.fromOpen(errno: Glibc.errno, path: path, operation: "realpath")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    enum NodeKind: Equatable {
        case pseudoTerminalSubordinate
        case characterDevice
        case other
    }

    /// Unix98 pty subordinates (/dev/pts/N) use majors 136 to 143 on Linux
    /// (UNIX98_PTY_SLAVE_MAJOR .. + UNIX98_PTY_MAJOR_COUNT - 1, Documentation/admin-guide/devices.txt).
    static let pseudoTerminalSubordinateMajors: ClosedRange<UInt32> = 136...143

    static func nodeKind(of resolvedPath: String, originalPath: String) throws(SerialError) -> NodeKind {
        var info = stat()
        guard stat(resolvedPath, &info) == 0 else {
            throw SerialError.fromOpen(errno: Glibc.errno, path: originalPath, operation: "stat")
        }
        guard (info.st_mode & S_IFMT) == S_IFCHR else { return .other }
        // By device number rather than by name: /dev/pts also holds ptmx, and a container may
        // mount devpts elsewhere.
        if pseudoTerminalSubordinateMajors.contains(major(of: info.st_rdev)) {
            return .pseudoTerminalSubordinate
        }
        return .characterDevice
    }

    /// glibc's `major()` is a macro that Swift does not import; this is its definition.
    static func major(of device: dev_t) -> UInt32 {
        UInt32(truncatingIfNeeded: ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff))
    }

    /// Opens a terminal device the POSIX way: non-blocking (the caller polls), not as our
    /// controlling terminal, not inherited by child processes.
    static func openTerminal(_ resolvedPath: String, reportedAs path: String) throws(SerialError) -> Int32 {
        let descriptor = open(resolvedPath, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw SerialError.fromOpen(errno: Glibc.errno, path: path, operation: "open")
        }
        return descriptor
    }

    /// An advisory lock so two daemons (or two ports in one) never share a device. libserialport
    /// takes no lock, and TIOCEXCL does not stop root, so flock is the one that works for both.
    ///
    /// A holder that is closing the port (its I/O thread still finishing, or a pseudo-terminal's
    /// number reused just after a hang-up) lets go within moments, so a held lock is tried again
    /// for up to half a second before the port is reported in use.
    static func lockExclusively(_ descriptor: Int32, path: String) throws(SerialError) {
        var waitedMs = 0
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let error = Glibc.errno
            if error == EINTR { continue }
            if error == EWOULDBLOCK, waitedMs < 500 {
                usleep(10_000)
                waitedMs += 10
                continue
            }
            throw SerialError.fromOpen(errno: error, path: path, operation: "flock")
        }
    }

    /// Ports opened by libserialport 0.1.1 lack close-on-exec (it opens with O_NOCTTY|O_NONBLOCK
    /// only, seen with strace); without it a spawned child would keep the device open.
    static func setCloseOnExecAndNonBlocking(_ descriptor: Int32, path: String) throws(SerialError) {
        let descriptorFlags = fcntl(descriptor, F_GETFD)
        guard descriptorFlags >= 0, fcntl(descriptor, F_SETFD, descriptorFlags | FD_CLOEXEC) == 0 else {
            throw SerialError(.ioFailed, path: path, operation: "fcntl(F_SETFD)", errno: Glibc.errno)
        }
        let statusFlags = fcntl(descriptor, F_GETFL)
        guard statusFlags >= 0, fcntl(descriptor, F_SETFL, statusFlags | O_NONBLOCK) == 0 else {
            throw SerialError(.ioFailed, path: path, operation: "fcntl(F_SETFL)", errno: Glibc.errno)
        }
    }

    static func readTermios(_ descriptor: Int32, path: String) throws(SerialError) -> termios {
        var settings = termios()
        guard tcgetattr(descriptor, &settings) == 0 else {
            let error = Glibc.errno
            let code: SerialError.Code = (error == ENOTTY || error == EINVAL) ? .notATerminal : .configurationFailed
            throw SerialError(code, path: path, operation: "tcgetattr", errno: error)
        }
        return settings
    }

    static func writeTermios(_ settings: termios, to descriptor: Int32, path: String) throws(SerialError) {
        var settings = settings
        guard tcsetattr(descriptor, TCSANOW, &settings) == 0 else {
            throw SerialError(.configurationFailed, path: path, operation: "tcsetattr", errno: Glibc.errno)
        }
    }

    /// Makes the termios state byte-transparent, whichever opener set up the rest:
    /// - no input or output processing (no CR/LF translation, no 8th-bit stripping, no echo,
    ///   no signals), which is what cfmakeraw does;
    /// - XON/XOFF off: with IXON the line discipline silently eats 0x11 and 0x13;
    /// - VMIN 1, VTIME 0. With O_NONBLOCK, VMIN 0 makes a read on an empty tty return 0 rather
    ///   than EAGAIN (n_tty_read checks its zero timeout before O_NONBLOCK; measured on a pty),
    ///   and 0 must stay unambiguous: it is how a hang-up shows. With VMIN 1 an empty read gives
    ///   EAGAIN and a read returns whatever is there, at once.
    static func makeTransparent(_ settings: inout termios) {
        cfmakeraw(&settings)
        settings.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY)
        settings.c_cflag |= tcflag_t(CLOCAL | CREAD)
        withUnsafeMutableBytes(of: &settings.c_cc) { controlCharacters in
            controlCharacters[Int(VMIN)] = 1
            controlCharacters[Int(VTIME)] = 0
        }
    }

    /// The complete POSIX configuration for ports libserialport does not handle.
    static func configure(
        _ descriptor: Int32,
        settings line: LineSettings,
        isPseudoTerminal: Bool,
        path: String
    ) throws(SerialError) {
        var settings = try readTermios(descriptor, path: path)
        makeTransparent(&settings)

        guard let size = characterSizeFlag(line.dataBits) else {
            throw SerialError(.configurationFailed, path: path, operation: "data bits \(line.dataBits)")
        }
        settings.c_cflag &= ~tcflag_t(CSIZE)
        settings.c_cflag |= size

        settings.c_cflag &= ~tcflag_t(PARENB | PARODD)
        switch line.parity {
        case .none: break
        case .odd: settings.c_cflag |= tcflag_t(PARENB | PARODD)
        case .even: settings.c_cflag |= tcflag_t(PARENB)
        }

        switch line.stopBits {
        case .one: settings.c_cflag &= ~tcflag_t(CSTOPB)
        case .two: settings.c_cflag |= tcflag_t(CSTOPB)
        }

        switch line.flowControl {
        case .none: settings.c_cflag &= ~tcflag_t(CRTSCTS)
        case .rtsCts: settings.c_cflag |= tcflag_t(CRTSCTS)
        }

        if let speed = speedConstant(forBaudRate: line.baudRate) {
            // A pty accepts any speed and ignores it, so this is harmless there.
            guard cfsetispeed(&settings, speed) == 0, cfsetospeed(&settings, speed) == 0 else {
                throw SerialError(
                    .configurationFailed,
                    path: path,
                    operation: "cfsetspeed \(line.baudRate)",
                    errno: Glibc.errno
                )
            }
        } else if !isPseudoTerminal {
            // Non-standard rates need termios2 (BOTHER); real adapters go through libserialport,
            // which does that, so only odd devices it refuses end up here.
            throw SerialError(.configurationFailed, path: path, operation: "baud rate \(line.baudRate)")
        }

        try writeTermios(settings, to: descriptor, path: path)
    }

    /// After libserialport has applied the line settings, clears whatever processing it leaves on
    /// and sets VMIN (it sets 0). Speed and framing are not touched, so a non-standard baud rate
    /// set through termios2 survives (TCSETS keeps the kernel's stored speeds).
    static func enforceTransparency(_ descriptor: Int32, path: String) throws(SerialError) {
        let current = try readTermios(descriptor, path: path)
        var wanted = current
        wanted.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF | IXANY)
        wanted.c_oflag &= ~tcflag_t(OPOST)
        wanted.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | ISIG | IEXTEN)
        wanted.c_cflag |= tcflag_t(CLOCAL | CREAD)
        withUnsafeMutableBytes(of: &wanted.c_cc) { controlCharacters in
            controlCharacters[Int(VMIN)] = 1
            controlCharacters[Int(VTIME)] = 0
        }
        if !sameFlags(current, wanted) {
            try writeTermios(wanted, to: descriptor, path: path)
        }
    }

    private static func sameFlags(_ lhs: termios, _ rhs: termios) -> Bool {
        var lhsControl = lhs.c_cc
        var rhsControl = rhs.c_cc
        let sameControl = withUnsafeBytes(of: &lhsControl) { left in
            withUnsafeBytes(of: &rhsControl) { right in left.elementsEqual(right) }
        }
        return lhs.c_iflag == rhs.c_iflag && lhs.c_oflag == rhs.c_oflag && lhs.c_cflag == rhs.c_cflag
            && lhs.c_lflag == rhs.c_lflag && sameControl
    }

    private static func characterSizeFlag(_ dataBits: Int) -> tcflag_t? {
        switch dataBits {
        case 5: tcflag_t(CS5)
        case 6: tcflag_t(CS6)
        case 7: tcflag_t(CS7)
        case 8: tcflag_t(CS8)
        default: nil
        }
    }

    /// The standard Linux `Bnnn` constants; termios cannot express other rates.
    static func speedConstant(forBaudRate rate: Int) -> speed_t? {
        switch rate {
        case 50: speed_t(B50)
        case 75: speed_t(B75)
        case 110: speed_t(B110)
        case 134: speed_t(B134)
        case 150: speed_t(B150)
        case 200: speed_t(B200)
        case 300: speed_t(B300)
        case 600: speed_t(B600)
        case 1200: speed_t(B1200)
        case 1800: speed_t(B1800)
        case 2400: speed_t(B2400)
        case 4800: speed_t(B4800)
        case 9600: speed_t(B9600)
        case 19200: speed_t(B19200)
        case 38400: speed_t(B38400)
        case 57600: speed_t(B57600)
        case 115_200: speed_t(B115200)
        case 230_400: speed_t(B230400)
        case 460_800: speed_t(B460800)
        case 500_000: speed_t(B500000)
        case 576_000: speed_t(B576000)
        case 921_600: speed_t(B921600)
        case 1_000_000: speed_t(B1000000)
        case 1_152_000: speed_t(B1152000)
        case 1_500_000: speed_t(B1500000)
        case 2_000_000: speed_t(B2000000)
        case 2_500_000: speed_t(B2500000)
        case 3_000_000: speed_t(B3000000)
        case 3_500_000: speed_t(B3500000)
        case 4_000_000: speed_t(B4000000)
        default: nil
        }
    }

    /// Closes a descriptor once; EINTR is not retried because Linux has already released it.
    static func closeDescriptor(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }
}
