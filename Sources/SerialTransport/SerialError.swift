#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one error type of this module: what went wrong, on which port, and the `errno` behind it.
public struct SerialError: Error, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The path does not exist, or names a device that is not there.
        case noSuchPort
        case permissionDenied
        /// Another process (or another `SerialPort` in this one) holds the port.
        case busy
        /// The path exists but is not a terminal device (a regular file, /dev/null, ...).
        case notATerminal
        /// The device went away: cable pulled, adapter unplugged, other side of a pty closed.
        case portVanished
        /// The line settings could not be applied (unsupported baud rate, tcsetattr failed, ...).
        case configurationFailed
        /// A read, write or poll failed for a reason other than a hang-up.
        case ioFailed
        /// The port was closed by its owner.
        case closed
        /// Listing the system's serial ports failed.
        case enumerationFailed
        /// The task waiting in `send` was cancelled before any of its bytes went out.
        case cancelled
        /// The synchronous calls were used after the asynchronous interface took over the port.
        case invalidUse
    }

    public var code: Code
    /// The port's path as the caller gave it, if the error concerns a port.
    public var path: String?
    /// The system call or library call that failed, e.g. `open`, `tcsetattr`, `sp_open`.
    public var operation: String?
    /// The `errno` reported by the failing call, if there was one.
    public var errno: Int32?

    public init(_ code: Code, path: String? = nil, operation: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        var text = path.map { "serial port \($0): " } ?? "serial: "
        text += Self.summary(of: code)
        switch (operation, errno) {
        case (let operation?, let errno?):
            text += " (\(operation): \(Self.errnoText(errno)))"
        case (let operation?, nil):
            text += " (\(operation))"
        case (nil, let errno?):
            text += " (\(Self.errnoText(errno)))"
        case (nil, nil):
            break
        }
        return text
    }

    private static func summary(of code: Code) -> String {
        switch code {
        case .noSuchPort: "no such port"
        case .permissionDenied: "permission denied"
        case .busy: "port is in use"
        case .notATerminal: "not a terminal device"
        case .portVanished: "port vanished (hang-up)"
        case .configurationFailed: "could not apply line settings"
        case .ioFailed: "I/O failed"
        case .closed: "port is closed"
        case .enumerationFailed: "could not list serial ports"
        case .cancelled: "write cancelled"
        case .invalidUse: "synchronous call on a port driven asynchronously"
        }
    }

    private static func errnoText(_ value: Int32) -> String {
        guard let message = strerror(value) else { return "errno \(value)" }
        return "errno \(value), \(String(cString: message))"
    }

    /// Maps the errno of a failed `open` (or `sp_open`) to a code.
    static func fromOpen(errno value: Int32, path: String, operation: String) -> SerialError {
        let code: Code =
            switch value {
            case ENOENT, ENXIO, ENODEV, ENOTDIR: .noSuchPort
            case EACCES, EPERM, EROFS: .permissionDenied
            case EBUSY, EWOULDBLOCK: .busy
            case ENOTTY: .notATerminal
            default: .ioFailed
            }
        return SerialError(code, path: path, operation: operation, errno: value)
    }

    /// Maps the errno of a failed read or write on an open port: these mean the device is gone.
    static func fromTransfer(errno value: Int32, path: String, operation: String) -> SerialError {
        let code: Code =
            switch value {
            case EIO, ENXIO, ENODEV, EPIPE: .portVanished
            default: .ioFailed
            }
        return SerialError(code, path: path, operation: operation, errno: value)
    }
}
