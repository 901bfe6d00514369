// SerialTransport: bytes in and out of serial ports, and nothing about what they mean.
//
// - `SerialPorts.list()` enumerates ports with their USB metadata (libserialport).
// - `SerialPort.open(path:settings:)` opens real ports through libserialport and
//   pseudo-terminals (which libserialport refuses, see LibSerialPort.swift) through POSIX termios,
//   both ending in the same raw, non-blocking descriptor.
// - `ByteLink` is the byte pipe the layers above are written against; `SerialPort` and
//   `MemoryPipe` implement it.
// - `PseudoTerminal` creates ptys for the emulator and for tests.

/// The system's serial ports.
public enum SerialPorts {
    /// Every serial port the system knows, sorted by path. Pseudo-terminals are not listed:
    /// they are not hardware, and libserialport skips ttys without a parent device.
    public static func list() throws(SerialError) -> [SerialPortInfo] {
        try LibSerialPort.listPorts()
    }
}
