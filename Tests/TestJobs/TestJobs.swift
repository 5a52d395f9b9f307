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
    package static let garbage = Job("garbage") { (_: Int) -> Int in
        // Writes straight onto the protocol socket: a frame header announcing 3 bytes of junk.
        let junk: [UInt8] = [3, 0, 0, 0, 0xff, 0xfe, 0xfd]
        _ = junk.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
        usleep(2_000_000)
        return 0
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

    package static let all: [any AnyJob] = [
        double, pid, sum, sleep, fail, crash, exit, killSelf, chatty, garbage, initialize, initialized,
        failingInitializer, unencodable,
    ]
}
