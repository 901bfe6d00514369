#if canImport(Glibc)
import Glibc
#endif

/// The few POSIX calls captures need: create, write a block, read a whole file, remove.
enum FileIO {
    /// Creates `path` for writing. Captures hold therapy data: readable by owner and group only.
    static func create(_ path: String, replacingExisting: Bool) throws(CaptureError) -> Int32 {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (replacingExisting ? O_TRUNC : O_EXCL)
        while true {
            let descriptor = open(path, flags, 0o640)
            if descriptor >= 0 { return descriptor }
            let error = currentErrno()
            if error == EINTR { continue }
            let code: CaptureError.Code = error == EEXIST ? .fileExists : .fileSystem
            throw CaptureError(code, path: path, operation: "open", errno: error)
        }
    }

    /// Writes `bytes` with one `write(2)`. A short write (disk full, file size limit) is undone
    /// with `ftruncate` so the file keeps ending on a whole block.
    static func writeBlock(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, fileSize: Int, path: String) throws(CaptureError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        while true {
            let written = write(descriptor, base, bytes.count)
            if written == bytes.count { return }
            let error = written < 0 ? currentErrno() : ENOSPC
            if written < 0 && error == EINTR { continue }
            if written > 0 {
                _ = ftruncate(descriptor, off_t(fileSize))
                _ = lseek(descriptor, off_t(fileSize), SEEK_SET)
            }
            throw CaptureError(.fileSystem, path: path, operation: "write", errno: error)
        }
    }

    static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    static func remove(_ path: String) throws(CaptureError) {
        guard unlink(path) == 0 else {
            let error = currentErrno()
            if error == ENOENT { return }
            throw CaptureError(.fileSystem, path: path, operation: "unlink", errno: error)
        }
    }

    /// The whole file, read in chunks (its size may change while it is being written).
    static func readWholeFile(_ path: String) throws(CaptureError) -> [UInt8] {
        var descriptor: Int32
        repeat {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
        } while descriptor < 0 && currentErrno() == EINTR
        guard descriptor >= 0 else {
            throw CaptureError(.fileSystem, path: path, operation: "open", errno: currentErrno())
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var info = stat()
        if fstat(descriptor, &info) == 0, info.st_size > 0 {
            bytes.reserveCapacity(Int(info.st_size))
        }
        let chunkSize = 1 << 16
        while true {
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunkSize))
            let count = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return read(descriptor, base + start, chunkSize)
            }
            if count < 0 {
                let error = currentErrno()
                bytes.removeSubrange(start...)
                if error == EINTR { continue }
                throw CaptureError(.fileSystem, path: path, operation: "read", errno: error)
            }
            bytes.removeSubrange((start + count)...)
            if count == 0 { return bytes }
        }
    }

    /// Nanoseconds since 1970-01-01 UTC.
    static func wallClockNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(max(0, time.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, time.tv_nsec))
    }

    private static func currentErrno() -> Int32 {
        Glibc.errno
    }
}

func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return "\(String(cString: text)) (errno \(code))"
}
