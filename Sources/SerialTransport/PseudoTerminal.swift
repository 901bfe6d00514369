#if canImport(Glibc)
import Glibc
#endif

/// A pseudo-terminal pair in raw mode: the software pump and the tests sit on the controller
/// side; the daemon opens `subordinatePath` as if it were a serial port.
///
/// Both descriptors belong to the caller: `close()` them, or hand them to
/// `SerialPort.controller(of:holdingSubordinateOpen:)`, which takes both.
public struct PseudoTerminal: Sendable {
    public let controllerDescriptor: Int32
    /// One open descriptor of the subordinate side. It matters: once a subordinate has been
    /// opened, the controller reports a hang-up (POLLHUP, read gives EIO) whenever no
    /// subordinate descriptor is open, e.g. between two clients.
    public let subordinateDescriptor: Int32
    /// /dev/pts/N.
    public let subordinatePath: String

    /// Creates the pair with the line discipline set to raw (no echo, no CR/LF translation,
    /// no XON/XOFF) before any client opens it, so even a client that configures nothing gets
    /// the bytes unchanged.
    public static func open() throws(SerialError) -> PseudoTerminal {
        var controller: Int32 = -1
        var subordinate: Int32 = -1
        // Swift's Glibc module exports openpty (pty.h) but not posix_openpt or ptsname_r, which
        // glibc declares only under _XOPEN_SOURCE. The name comes from /proc instead of
        // openpty's unbounded name buffer.
        guard openpty(&controller, &subordinate, nil, nil, nil) == 0 else {
            throw SerialError.fromOpen(errno: Glibc.errno, path: "/dev/ptmx", operation: "openpty")
        }
        do throws(SerialError) {
            // openpty opens without O_CLOEXEC; set it before anything else can spawn a child.
            for descriptor in [controller, subordinate] {
                let flags = fcntl(descriptor, F_GETFD)
                guard flags >= 0, fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) == 0 else {
                    throw SerialError(.ioFailed, path: "/dev/ptmx", operation: "fcntl(F_SETFD)", errno: Glibc.errno)
                }
            }
            let path = try descriptorPath(subordinate)
            var settings = try Posix.readTermios(subordinate, path: path)
            Posix.makeTransparent(&settings)
            try Posix.writeTermios(settings, to: subordinate, path: path)
            return PseudoTerminal(
                controllerDescriptor: controller,
                subordinateDescriptor: subordinate,
                subordinatePath: path
            )
        } catch {
            Posix.closeDescriptor(controller)
            Posix.closeDescriptor(subordinate)
            throw error
        }
    }

    private static func descriptorPath(_ descriptor: Int32) throws(SerialError) -> String {
        let link = "/proc/self/fd/\(descriptor)"
        var target = [CChar](repeating: 0, count: 4096)
        let length = readlink(link, &target, target.count - 1)
        guard length > 0 else {
            throw SerialError(.ioFailed, path: link, operation: "readlink", errno: Glibc.errno)
        }
        return String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Closes both descriptors. Clients on the subordinate side then see a hang-up.
    public func close() {
        Posix.closeDescriptor(controllerDescriptor)
        Posix.closeDescriptor(subordinateDescriptor)
    }

    /// Points `linkPath` at the subordinate (replacing an existing link atomically), so clients
    /// can use a stable name such as /tmp/pump0 instead of /dev/pts/N.
    public func link(at linkPath: String) throws(SerialError) {
        let temporary = "\(linkPath).\(getpid()).tmp"
        _ = unlink(temporary)
        guard symlink(subordinatePath, temporary) == 0 else {
            throw SerialError(.ioFailed, path: linkPath, operation: "symlink", errno: Glibc.errno)
        }
        guard rename(temporary, linkPath) == 0 else {
            let error = Glibc.errno
            _ = unlink(temporary)
            throw SerialError(.ioFailed, path: linkPath, operation: "rename", errno: error)
        }
    }

    /// Removes a link made by `link(at:)`, if it still points at this terminal (another process
    /// may have replaced it since).
    public func removeLink(at linkPath: String) {
        var target = [CChar](repeating: 0, count: 4096)
        let length = readlink(linkPath, &target, target.count - 1)
        guard length > 0 else { return }
        let destination = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if destination == subordinatePath {
            _ = unlink(linkPath)
        }
    }
}
