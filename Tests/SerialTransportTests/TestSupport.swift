import Glibc
import SerialTransport

/// Reads exact byte counts from a link, keeping whatever arrives beyond them for the next call.
struct ByteCollector {
    private var iterator: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
    private var pending: [UInt8] = []

    init(_ link: some ByteLink) {
        iterator = link.incoming.makeAsyncIterator()
    }

    /// Up to `count` bytes; fewer only if the stream ended first.
    mutating func take(_ count: Int) async throws -> [UInt8] {
        pending.reserveCapacity(count)
        while pending.count < count {
            guard let chunk = try await iterator.next() else { break }
            pending.append(contentsOf: chunk)
        }
        let result = Array(pending.prefix(count))
        pending.removeFirst(result.count)
        return result
    }
}

/// Closes the links if the test runs longer than `seconds`, which ends their streams, so a
/// stuck test fails with short data instead of hanging the suite.
func withWatchdog<Result>(
    seconds: Int = 5,
    closing links: [any ByteLink],
    _ body: () async throws -> Result
) async rethrows -> Result {
    let watchdog = Task {
        try await Task.sleep(for: .seconds(seconds))
        for link in links { link.close() }
    }
    defer { watchdog.cancel() }
    return try await body()
}

/// A deterministic byte pattern that is not periodic in 256 (so shifted or dropped bytes show).
func pattern(count: Int, seed: UInt32 = 1) -> [UInt8] {
    var state = seed
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        for index in 0..<count {
            state = state &* 1_664_525 &+ 1_013_904_223
            buffer[index] = UInt8(truncatingIfNeeded: state >> 24)
        }
        initialized = count
    }
}

/// Byte equality through memcmp: debug-mode `==` on megabyte arrays costs enough CPU to starve
/// the other tests running in parallel.
func sameBytes(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    return lhs.withUnsafeBytes { left in
        rhs.withUnsafeBytes { right in
            guard let leftStart = left.baseAddress, let rightStart = right.baseAddress else { return true }
            return memcmp(leftStart, rightStart, left.count) == 0
        }
    }
}

/// A fresh directory under /tmp, removed (with its entries) by `removeTemporaryDirectory`.
func makeTemporaryDirectory() -> String? {
    var template = Array("/tmp/serial-transport-XXXXXX".utf8CString)
    guard let result = mkdtemp(&template) else { return nil }
    return String(cString: result)
}

func removeTemporaryDirectory(_ path: String) {
    if let stream = opendir(path) {
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { _ = unlink("\(path)/\(name)") }
        }
        closedir(stream)
    }
    _ = rmdir(path)
}

/// The first executable named `name` on PATH (or in the usual places).
func findExecutable(_ name: String) -> String? {
    let searchPath = getenv("PATH").map { String(cString: $0) } ?? ""
    let directories = searchPath.split(separator: ":").map(String.init) + ["/usr/bin", "/bin", "/usr/local/bin"]
    return directories.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
}

/// A child process the test owns: `stop()` kills it and reaps it, so none outlives the test.
final class ChildProcess {
    let pid: pid_t
    private var reaped = false

    init?(executable: String, arguments: [String]) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Quiet: socat -d -d logs to stderr.
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)

        // The test runner blocks SIGTERM in its threads and a spawned child inherits the mask,
        // so without this the child would never see the SIGTERM that stop() sends.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var child: pid_t = 0
        guard posix_spawn(&child, executable, &actions, &attributes, argv, environ) == 0 else { return nil }
        pid = child
    }

    /// SIGTERM, then SIGKILL if the child is still there after a second; always reaped.
    func stop() {
        guard !reaped else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid {
                reaped = true
                return
            }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        reaped = true
    }

    deinit { stop() }
}

/// Waits (briefly sleeping, up to `seconds`) until every path exists.
func waitForPaths(_ paths: [String], seconds: Double) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if paths.allSatisfy({ access($0, F_OK) == 0 }) { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return false
}
