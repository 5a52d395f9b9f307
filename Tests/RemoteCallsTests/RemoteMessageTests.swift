import Futures
import RemoteCalls
import Testing
import WasmInterpreters

/// Every typed message of the remote layer reads back what it wrote, over random values (a fixed
/// seed, so a failure replays), and refuses what is not such a message with its typed error.
@Suite("Remote messages")
struct RemoteMessageTests {
    /// A small deterministic generator.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func chance() -> Bool { next() & 1 == 0 }
        mutating func string() -> String {
            String((0..<below(6)).map { _ in ["a", "é", "€", "😀", " ", "z", "\u{0}"][below(7)] }.joined())
        }
        /// A value of any kind but a queue (which never crosses), nested up to `depth`.
        mutating func value(depth: Int = 2) -> ShareableValue {
            switch below(depth > 0 ? 7 : 6) {
            case 0: return .none
            case 1: return .bool(chance())
            case 2: return .int(Int64(bitPattern: next()))
            case 3: return .double(Double(bitPattern: next() & 0x7FEF_FFFF_FFFF_FFFF))
            case 4: return .string(string())
            case 5: return .bytes((0..<below(5)).map { _ in UInt8(truncatingIfNeeded: next()) })
            default: return .array((0..<below(4)).map { _ in value(depth: depth - 1) })
            }
        }
        mutating func duration() -> Duration { .nanoseconds(Int64(below(1_000_000_000_000))) }
        mutating func wasi() -> WASICallOptions? {
            guard chance() else { return nil }
            return WASICallOptions(
                arguments: chance() ? (0..<below(3)).map { _ in string() } : nil,
                environment: chance() ? Dictionary((0..<below(3)).map { index in ("K\(index)", string()) }) { first, _ in first } : nil,
                stdin: (0..<below(4)).map { _ in UInt8(truncatingIfNeeded: next()) }, capture: chance(), resident: chance())
        }
        mutating func request() -> CallRequest {
            if chance() { return CallRequest(.job(name: string(), argument: value())) }
            return CallRequest(
                .guest(
                    CallRequest.GuestCall(
                        module: chance() ? .id(below(1 << 20)) : .key(string()), function: string(),
                        arguments: (0..<below(4)).map { _ in value() }, fuel: chance() ? next() >> 1 : nil,
                        timeLimit: chance() ? duration() : nil, wasi: wasi())))
        }
    }

    @Test func callRequestsReadBackWhatTheyWrote() throws {
        var generator = Generator(state: 20)
        for _ in 0..<2000 {
            let request = generator.request()
            let wire = request.wire
            #expect(try CallRequest(wire: wire) == request)
            // Through the bytes both transports carry.
            #expect(try CallRequest(wire: ShareableValue(decoding: wire.encoded())) == request)
        }
    }

    @Test func unreadableCallRequestsAreRemoteErrors() {
        let unreadable: [ShareableValue] = [
            .none, .int(3), [], [.int(99), "x"], [.int(CallRequest.jobTag)], [.int(CallRequest.jobTag), .int(1), .none],
            [.int(CallRequest.guestTag), .int(1), "f", .array([])], [.int(CallRequest.guestTag), .double(1), "f", [], .none, .none, .none],
            [.int(CallRequest.guestTag), .int(1), "f", .int(2), .none, .none, .none],
        ]
        for wire in unreadable {
            let error = #expect(throws: RemoteError.self) { try CallRequest(wire: wire) }
            #expect(error?.code == .jobFailed, "\(wire)")
        }
    }

    @Test func outcomesKeepValuesAndTheLibrarysErrorTypes() throws {
        var generator = Generator(state: 21)
        for _ in 0..<500 {
            let value = generator.value()
            guard case .success(let back) = try CallOutcome(wire: CallOutcome(.success(value)).wire).result else {
                Issue.record("a success read back as a failure")
                continue
            }
            #expect(back == value)
        }
        struct JobFailure: Error, CustomStringConvertible {
            var description: String { "the job's own error" }
        }
        let errors: [any Error] = [
            GuestError(kind: .outOfFuel, function: "spin", message: "ran out", interpreterID: 7, exitStatus: nil),
            GuestError(kind: .exited, function: "_start", message: "exited", interpreterID: 2, exitStatus: 3),
            GuestError(kind: .unreachable, function: "run", message: "trap", interpreterID: 4, backtrace: ["inner", "outer", "run"]),
            NotShareableError("a closure"),
            ModuleError(.missingImports, "needs env.f", missingImports: ["env.f", "env.g"]),
            ValueCodingError(.typeMismatch, "expected int"),
            RemoteError(.unknownJob, typeName: "T", "no such job"),
        ]
        for error in errors {
            guard case .failure(let back) = try CallOutcome(wire: CallOutcome(.failure(error)).wire).result else {
                Issue.record("a failure read back as a success")
                continue
            }
            #expect(String(reflecting: type(of: back)) == String(reflecting: type(of: error)))
            #expect(String(describing: back) == String(describing: error))
            if let error = error as? GuestError { #expect((back as? GuestError)?.backtrace == error.backtrace) }
        }
        guard case .failure(let other) = try CallOutcome(wire: CallOutcome(.failure(JobFailure())).wire).result else {
            Issue.record("a failure read back as a success")
            return
        }
        let remote = try #require(other as? RemoteError)
        #expect(remote.code == .jobFailed && remote.message == "the job's own error" && remote.typeName.hasSuffix("JobFailure"))
        for wire: ShareableValue in [.none, [.int(17)], [.int(19), .none], [.int(17), .none, .none]] {
            #expect(throws: ValueCodingError.self) { try CallOutcome(wire: wire) }
        }
    }

    @Test func workerConfigurationsReadBackWhatTheyWrote() throws {
        var generator = Generator(state: 22)
        for _ in 0..<1000 {
            var limits = InterpreterLimits.default
            limits.fuel = generator.chance() ? generator.next() >> 1 : nil
            limits.memoryBytes = generator.chance() ? generator.below(1 << 40) : nil
            limits.maxValueBytes = generator.below(1 << 30) + 1
            limits.stackBytes = generator.below(1 << 26) + 1
            limits.timeLimit = generator.chance() ? generator.duration() : nil
            limits.onMemoryLimit = generator.chance() ? .refuseGrowth : .failCall
            limits.maxModuleBytes = generator.below(1 << 31) + 1
            let configuration = WorkerConfiguration(limits: limits, engine: [.wasmKit, .compiled, .auto][generator.below(3)])
            #expect(try WorkerConfiguration(wire: configuration.wire[...]) == configuration)
        }
        #expect(throws: RemoteError.self) { try WorkerConfiguration(wire: [.none, .none][...]) }
        var wrongEngine = WorkerConfiguration(limits: .default, engine: .auto).wire
        wrongEngine[7] = "jit"
        #expect(throws: RemoteError.self) { try WorkerConfiguration(wire: wrongEngine[...]) }
    }
}
