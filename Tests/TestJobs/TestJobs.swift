import CFuturesShims
package import ConcurrentFutures
import Synchronization

#if canImport(Glibc)
@preconcurrency import Glibc
#endif

/// A `Codable` argument, crossing by encoding.
package struct Pair: Codable, Sendable, Equatable {
    package var left: Int
    package var right: Int
    package init(left: Int, right: Int) {
        self.left = left
        self.right = right
    }
}

/// An error a job throws on purpose.
package struct JobFailure: Error, CustomStringConvertible {
    package let reason: String
    package var description: String { "job failed: \(reason)" }
}

/// An argument whose encoding always fails.
package struct Unencodable: Codable, Sendable {
    package init() {}
    package func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(0, .init(codingPath: [], debugDescription: "never encodes"))
    }
    package init(from decoder: any Decoder) throws {}
}

private let initializedValue = Atomic<Int>(0)
private let runningNow = Atomic<Int>(0)
private let mostAtOnce = Atomic<Int>(0)

/// The jobs the test worker registers, shared with the tests that submit them.
package enum TestJobs {
    package static let double = Job("double") { (value: Int) in value * 2 }
    package static let pid = Job("pid") { (_: Int) in Int(getpid()) }
    package static let sum = Job("sum") { (pair: Pair) in pair.left + pair.right }
    package static let sleep = Job("sleep") { (milliseconds: Int) -> Int in
        usleep(UInt32(milliseconds) * 1000)
        return Int(getpid())
    }
    package static let fail = Job("fail") { (reason: String) -> Int in throw JobFailure(reason: reason) }
    package static let crash = Job("crash") { (_: Int) -> Int in fatalError("the job crashed on purpose") }
    package static let exit = Job("exit") { (status: Int32) -> Int in Glibc.exit(status) }
    /// A fault of the host's own, with the compiled guests' fault handler installed: it is not a
    /// guest's, so the process dies of it as it would without the handler.
    package static let segfault = Job("segfault") { (address: Int) -> Int in
        cf_guest_faults_install()
        UnsafeMutablePointer<Int>(bitPattern: address)!.pointee = 1
        return 0
    }
    package static let killSelf = Job("killSelf") { (_: Int) -> Int in
        kill(getpid(), SIGKILL)
        return 0
    }
    package static let chatty = Job("chatty") { (value: Int) -> Int in
        for line in 0..<200 { print("stdout line \(line) from a job: \u{0}\u{1}garbage") }
        fputs("stderr line from a job\n", stderr)
        fflush(stdout)
        return value + 1
    }
    /// Writes to descriptor 3, where the channel used to be, what looks like a frame header
    /// and then a well-formed reply: ordinary code that reaches for fd 3 by accident.
    package static let writeDescriptor3 = Job("writeDescriptor3") { (value: Int) -> Int in
        let header: [UInt8] = [0x43, 0x46, 0x57, 0x32, 0x00, 0x10, 0, 0] + [UInt8](repeating: 0, count: 8)
        _ = header.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
        let reply = forgedFrame(id: 1, ShareableValue.array([.int(17), .int(1)]))
        _ = reply.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
        return value * 2
    }
    /// Finds the worker's real channel and writes into it on purpose: 0 junk bytes, 1 a
    /// plausible header announcing more bytes than ever come, 2 a well-formed reply to another
    /// request, 3 and more random bytes (seeded by the number), half of them behind a frame
    /// header of the right length.
    package static let forge = Job("forge") { (kind: Int) -> Int in
        guard let channel = channelDescriptor() else { return -1 }
        var bytes: [UInt8]
        switch kind {
        case 0: bytes = [0xff, 0xfe, 0xfd, 0x00, 0x01, 0x02, 0x03, 0x04]
        case 1: bytes = [0x43, 0x46, 0x57, 0x32, 0x00, 0x10, 0, 0] + [UInt8](repeating: 0, count: 8) + [7, 7, 7]
        case 2: bytes = forgedFrame(id: 12_345, ShareableValue.array([.int(17), .int(1)]))
        default:
            var state = UInt64(kind) &* 0x9E37_79B9_7F4A_7C15
            func random() -> UInt8 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 33)
            }
            let payload = (0..<(1 + Int(random()) % 48)).map { _ in random() }
            if kind % 2 == 0 {
                bytes =
                    [0x43, 0x46, 0x57, 0x32] + withUnsafeBytes(of: UInt32(payload.count).littleEndian, Array.init)
                    + (0..<8).map { _ in random() } + payload
            } else {
                bytes = payload
            }
        }
        _ = bytes.withUnsafeBytes { write(channel, $0.baseAddress, $0.count) }
        return kind
    }
    package static let initialize = Job("initialize") { (value: Int) -> Int in
        initializedValue.store(value, ordering: .relaxed)
        return value
    }
    package static let initialized = Job("initialized") { (_: Int) in initializedValue.load(ordering: .relaxed) }
    package static let failingInitializer = Job("failingInitializer") { (_: Int) -> Int in
        throw JobFailure(reason: "initializer")
    }
    package static let unencodable = Job("unencodable") { (_: Unencodable) in 0 }
    /// Registered nowhere: the worker does not know it.
    package static let unknown = Job("not-registered") { (value: Int) in value }

    /// Sleeps for the milliseconds given and returns the most calls of this job that ran at once
    /// in this process so far.
    package static let concurrency = Job("concurrency") { (milliseconds: Int) -> Int in
        let now = runningNow.wrappingAdd(1, ordering: .relaxed).newValue
        var most = mostAtOnce.load(ordering: .relaxed)
        while now > most {
            let (exchanged, original) = mostAtOnce.compareExchange(expected: most, desired: now, ordering: .relaxed)
            if exchanged { break }
            most = original
        }
        usleep(UInt32(milliseconds) * 1000)
        runningNow.wrappingSubtract(1, ordering: .relaxed)
        return mostAtOnce.load(ordering: .relaxed)
    }

    /// Sleeps for the milliseconds given; returns when it started, in nanoseconds of
    /// `CLOCK_MONOTONIC` (one clock for every process of a host).
    package static let startedAt = Job("startedAt") { (milliseconds: Int) -> UInt64 in
        let started = monotonicNanoseconds()
        usleep(UInt32(milliseconds) * 1000)
        return started
    }

    /// The MPI rank the job runs on (-1 outside an MPI launch).
    package static let mpiRank = Job("mpiRank") { (_: Int) in MPIWorker.rank ?? -1 }
    package static let all: [any AnyJob] = [
        double, pid, sum, sleep, fail, crash, exit, segfault, killSelf, chatty, writeDescriptor3, forge, initialize, initialized,
        failingInitializer, unencodable, mpiRank, concurrency, startedAt,
    ]
}

/// Nanoseconds of `CLOCK_MONOTONIC`.
package func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// A frame of the worker protocol (version 2): marker, length, request id, payload.
func forgedFrame(id: UInt64, _ message: ShareableValue) -> [UInt8] {
    let payload = message.encoded()
    return [0x43, 0x46, 0x57, 0x32] + withUnsafeBytes(of: UInt32(payload.count).littleEndian, Array.init)
        + withUnsafeBytes(of: id.littleEndian, Array.init) + payload
}

/// The worker's channel: the socket among its high descriptors.
func channelDescriptor() -> Int32? {
    for fd in Int32(100)..<Int32(200) {
        var status = stat()
        if fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK { return fd }
    }
    return nil
}
