import Benchmark
import PumpProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Codec throughput and allocations over a realistic telemetry mix (see TelemetryMix).
//
// One iteration is one pass over the whole mix, so `mallocCountTotal` is the number of
// allocations for the frame count in the benchmark's name; decoding valid frames must not
// allocate (Thresholds/ holds the expected counts, checked by `tools/bench`).
// MB/s are 10^6 bytes of line form (COBS and delimiters included) per second.
//
// PUMPLINK_BENCH_SMOKE=1 runs a few iterations only, to prove the benchmarks build and run.

let benchmarks: @Sendable () -> Void = {
    let smoke = getenv("PUMPLINK_BENCH_SMOKE").map { String(cString: $0) == "1" } ?? false
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: smoke ? 1 : 5,
        maxDuration: smoke ? .milliseconds(150) : .seconds(4),
        maxIterations: smoke ? 10 : 100_000
    )

    let mix = TelemetryMix(minimumBytes: 1 << 20)
    let frames = mix.frameCount
    let statusFrames = mix.statusFrameCount
    let throughput = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, Figures.megabytesPerSecond, Figures.framesPerSecond]
    )

    Benchmark("CRC32C.ceiling.mix.\(mix.bytes.count)-bytes", configuration: .init(
        metrics: [.wallClock, .mallocCountTotal, Figures.megabytesPerSecond]
    )) { benchmark in
        let (check, nanoseconds) = mix.bytes.withUnsafeBytes { raw in
            timed { CRC32C.checksum(raw) }
        }
        blackHole(check)
        benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(mix.bytes.count, nanoseconds))
    }

    for readSize in [64, 4096] {
        Benchmark("Decode.mix.\(readName(readSize))-reads.\(frames)-frames", configuration: throughput) { benchmark in
            var decoder = FrameDecoder()
            benchmark.startMeasurement()
            let (decoded, nanoseconds) = timed { decodeFrames(mix.bytes, readSize: readSize, into: &decoder) }
            benchmark.stopMeasurement()
            expect(decoded == frames, "decoded \(decoded) of \(frames) frames", benchmark)
            benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(mix.bytes.count, nanoseconds))
            benchmark.measurement(Figures.framesPerSecond, perSecond(decoded, nanoseconds))
        }
    }

    Benchmark("Decode.status.4KiB-reads.\(statusFrames)-frames", configuration: throughput) { benchmark in
        var decoder = FrameDecoder()
        benchmark.startMeasurement()
        let (decoded, nanoseconds) = timed { decodeFrames(mix.statusBytes, readSize: 4096, into: &decoder) }
        benchmark.stopMeasurement()
        expect(decoded == statusFrames, "decoded \(decoded) of \(statusFrames) frames", benchmark)
        benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(mix.statusBytes.count, nanoseconds))
        benchmark.measurement(Figures.framesPerSecond, perSecond(decoded, nanoseconds))
    }

    Benchmark("DecodeMessages.status.4KiB-reads.\(statusFrames)-frames", configuration: throughput) { benchmark in
        var decoder = FrameDecoder()
        benchmark.startMeasurement()
        let (decoded, nanoseconds) = timed { decodeMessages(mix.statusBytes, readSize: 4096, into: &decoder) }
        benchmark.stopMeasurement()
        expect(decoded == statusFrames, "decoded \(decoded) of \(statusFrames) messages", benchmark)
        benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(mix.statusBytes.count, nanoseconds))
        benchmark.measurement(Figures.framesPerSecond, perSecond(decoded, nanoseconds))
    }

    Benchmark("DecodeMessages.mix.4KiB-reads.\(frames)-frames", configuration: throughput) { benchmark in
        var decoder = FrameDecoder()
        benchmark.startMeasurement()
        let (decoded, nanoseconds) = timed { decodeMessages(mix.bytes, readSize: 4096, into: &decoder) }
        benchmark.stopMeasurement()
        expect(decoded == frames, "decoded \(decoded) of \(frames) messages", benchmark)
        benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(mix.bytes.count, nanoseconds))
        benchmark.measurement(Figures.framesPerSecond, perSecond(decoded, nanoseconds))
    }

    let statusItems = mix.items.filter(\.isStatus)
    for (name, items) in [("mix", mix.items), ("status", statusItems)] {
        Benchmark("Encode.\(name).reused-buffer.\(items.count)-frames", configuration: throughput) { benchmark in
            var encoder = FrameEncoder()
            var output: [UInt8] = []
            output.reserveCapacity(FrameLayout.maxEncodedLength + 2)
            benchmark.startMeasurement()
            let (written, nanoseconds) = timed {
                encodeFrames(items, authenticator: mix.authenticator, encoder: &encoder, output: &output)
            }
            benchmark.stopMeasurement()
            benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(written, nanoseconds))
            benchmark.measurement(Figures.framesPerSecond, perSecond(items.count, nanoseconds))
        }
    }

    // Version 2: the status stream sealed (SPEC §8.4), beside the clear one above. Opening runs
    // ChaCha20-Poly1305 per frame; the channel's counters start afresh each pass.
    let sealed = SealedStream(statusItems)
    Benchmark("OpenSealed.status.4KiB-reads.\(statusFrames)-frames", configuration: throughput) { benchmark in
        var decoder = FrameDecoder()
        var host = sealed.host
        benchmark.startMeasurement()
        let (opened, nanoseconds) = timed { openFrames(sealed.bytes, readSize: 4096, into: &decoder, with: &host) }
        benchmark.stopMeasurement()
        expect(opened == statusFrames, "opened \(opened) of \(statusFrames) frames", benchmark)
        benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(sealed.bytes.count, nanoseconds))
        benchmark.measurement(Figures.framesPerSecond, perSecond(opened, nanoseconds))
    }

    Benchmark("Seal.status.reused-buffer.\(statusItems.count)-frames", configuration: throughput) { benchmark in
        var encoder = FrameEncoder()
        var pump = sealed.pump
        var output: [UInt8] = []
        output.reserveCapacity(FrameLayout.maxEncodedLength + 2)
        benchmark.startMeasurement()
        let (written, nanoseconds) = timed { sealFrames(statusItems, encoder: &encoder, channel: &pump, output: &output) }
        benchmark.stopMeasurement()
        benchmark.measurement(Figures.megabytesPerSecond, megabytesPerSecond(written, nanoseconds))
        benchmark.measurement(Figures.framesPerSecond, perSecond(statusItems.count, nanoseconds))
    }

    // The ratio in one iteration, so a busy machine slows both sides alike.
    Benchmark("DecodeShareOfCRC32C.mix.\(frames)-frames", configuration: .init(
        metrics: [
            Figures.ceilingMegabytesPerSecond,
            Figures.shareOfCeiling4KiB,
            Figures.shareOfCeiling64B,
        ]
    )) { benchmark in
        var decoder = FrameDecoder()
        benchmark.startMeasurement()
        let (check, ceiling) = mix.bytes.withUnsafeBytes { raw in
            timed { CRC32C.checksum(raw) }
        }
        blackHole(check)
        let (large, largeNanoseconds) = timed { decodeFrames(mix.bytes, readSize: 4096, into: &decoder) }
        let (small, smallNanoseconds) = timed { decodeFrames(mix.bytes, readSize: 64, into: &decoder) }
        expect(large == frames && small == frames, "decoded \(large) and \(small) of \(frames) frames", benchmark)
        benchmark.measurement(Figures.ceilingMegabytesPerSecond, megabytesPerSecond(mix.bytes.count, ceiling))
        benchmark.measurement(Figures.shareOfCeiling4KiB, percent(ceiling, of: largeNanoseconds))
        benchmark.measurement(Figures.shareOfCeiling64B, percent(ceiling, of: smallNanoseconds))
    }
}

enum Figures {
    static let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
    static let framesPerSecond = BenchmarkMetric.custom("frames/s", polarity: .prefersLarger, useScalingFactor: false)
    static let ceilingMegabytesPerSecond = BenchmarkMetric.custom(
        "CRC32C MB/s",
        polarity: .prefersLarger,
        useScalingFactor: false
    )
    /// Decode throughput as a percentage of CRC32C's over the same bytes.
    static let shareOfCeiling4KiB = BenchmarkMetric.custom(
        "4 KiB reads, % of CRC32C",
        polarity: .prefersLarger,
        useScalingFactor: false
    )
    static let shareOfCeiling64B = BenchmarkMetric.custom(
        "64 B reads, % of CRC32C",
        polarity: .prefersLarger,
        useScalingFactor: false
    )
}

/// Feeds `bytes` to the decoder `readSize` bytes at a time, as reads from a port would; the
/// number of frames.
@inline(never)
func decodeFrames(_ bytes: [UInt8], readSize: Int, into decoder: inout FrameDecoder) -> Int {
    var frames = 0
    var digest = 0
    bytes.withUnsafeBytes { raw in
        var start = 0
        while start < raw.count {
            let end = min(start + readSize, raw.count)
            decoder.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end])) { event in
                if case .frame(let frame) = event {
                    frames += 1
                    digest &+= Int(frame.header.requestID) &+ frame.packet.count
                }
            }
            start = end
        }
    }
    blackHole(digest)
    return frames
}

/// As `decodeFrames`, and decodes each frame's payload into its message; the number of messages.
@inline(never)
func decodeMessages(_ bytes: [UInt8], readSize: Int, into decoder: inout FrameDecoder) -> Int {
    var messages = 0
    bytes.withUnsafeBytes { raw in
        var start = 0
        while start < raw.count {
            let end = min(start + readSize, raw.count)
            decoder.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end])) { event in
                guard case .frame(let frame) = event, let message = try? frame.message() else { return }
                messages += 1
                blackHole(message)
            }
            start = end
        }
    }
    return messages
}

/// Encodes every item, each into the same output buffer (as a writer that sends each frame
/// before building the next); the number of line bytes.
@inline(never)
func encodeFrames(
    _ items: [TelemetryMix.Item],
    authenticator: FrameAuthenticator,
    encoder: inout FrameEncoder,
    output: inout [UInt8]
) -> Int {
    var written = 0
    for item in items {
        output.removeAll(keepingCapacity: true)
        TelemetryMix.encode(item, with: &encoder, authenticator: authenticator, into: &output)
        written += output.count
        blackHole(output.last)
    }
    return written
}

@inline(__always)
func timed<Result>(_ body: () throws -> Result) rethrows -> (Result, Int64) {
    let start = ContinuousClock.now
    let result = try body()
    let elapsed = start.duration(to: .now)
    let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    return (result, max(nanoseconds, 1))
}

func megabytesPerSecond(_ bytes: Int, _ nanoseconds: Int64) -> Int {
    Int((Double(bytes) * 1_000 / Double(nanoseconds)).rounded())
}

func perSecond(_ count: Int, _ nanoseconds: Int64) -> Int {
    Int((Double(count) * 1_000_000_000 / Double(nanoseconds)).rounded())
}

/// A throughput as a percentage of the ceiling's, from their times over the same bytes.
func percent(_ ceilingNanoseconds: Int64, of nanoseconds: Int64) -> Int {
    Int((Double(ceilingNanoseconds) * 100 / Double(nanoseconds)).rounded())
}

func readName(_ size: Int) -> String {
    size >= 1024 ? "\(size / 1024)KiB" : "\(size)B"
}

/// Marks the benchmark failed (the run exits non-zero) if the codec got the mix wrong.
func expect(_ condition: Bool, _ message: @autoclosure () -> String, _ benchmark: Benchmark) {
    if !condition { benchmark.error(message()) }
}

/// The status items sealed by a pump's channel into one line stream, and both sides' channels
/// as the Hello exchange left them.
struct SealedStream: Sendable {
    let bytes: [UInt8]
    let host: SecureChannel
    let pump: SecureChannel

    init(_ items: [TelemetryMix.Item]) {
        let key = PairingKey.generate()
        let request = Array(repeating: UInt8(0x11), count: 30)
        let answer = Array(repeating: UInt8(0x22), count: 60)
        let tag = AuthenticationTag(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
        host = SecureChannel(key: key, helloRequestPayload: request, helloAnswerPacket: answer, helloAnswerTag: tag, side: .host)
        pump = SecureChannel(key: key, helloRequestPayload: request, helloAnswerPacket: answer, helloAnswerTag: tag, side: .pump)
        var sealing = pump
        var encoder = FrameEncoder()
        var bytes: [UInt8] = []
        _ = sealFrames(items, encoder: &encoder, channel: &sealing, output: &bytes, appending: true)
        self.bytes = bytes
    }
}

/// As `decodeFrames`, and opens each sealed frame; the number opened.
@inline(never)
func openFrames(_ bytes: [UInt8], readSize: Int, into decoder: inout FrameDecoder, with channel: inout SecureChannel) -> Int {
    var opened = 0
    bytes.withUnsafeBytes { raw in
        var start = 0
        while start < raw.count {
            let end = min(start + readSize, raw.count)
            decoder.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end])) { event in
                guard case .frame(let frame) = event, let plain = try? channel.open(frame) else { return }
                opened += 1
                blackHole(plain.payload.count)
            }
            start = end
        }
    }
    return opened
}

/// Seals every status item; into one reused buffer, or all appended when `appending`.
@inline(never)
func sealFrames(
    _ items: [TelemetryMix.Item],
    encoder: inout FrameEncoder,
    channel: inout SecureChannel,
    output: inout [UInt8],
    appending: Bool = false
) -> Int {
    var written = 0
    for case .status(let message) in items {
        if !appending { output.removeAll(keepingCapacity: true) }
        let before = output.count
        do {
            try encoder.encode(message, requestID: 0, sealingWith: &channel, into: &output)
        } catch {
            preconditionFailure("a status failed to seal: \(error)")
        }
        written += output.count - before
    }
    return written
}
