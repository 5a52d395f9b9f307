package import Futures
package import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// The messages between a process pool and its workers, on a socket pair. Each frame is a
/// 16-byte header (the marker `CFW2`, the payload length as a little-endian `UInt32`, and the
/// request id as a little-endian `UInt64`) and a ``Futures/ShareableValue`` in its binary form, always an
/// array whose first element is the message tag. Values, errors and whole batches reuse the one
/// encoding. A reply carries the id of the request it answers; the parent kills a worker whose
/// reply names another request, or whose frame is malformed, as corrupt.
package enum WireMessage {
    // Parent to worker.
    static let loadModule: Int64 = 1  // [1, module id, name, bytes, WASI options | none]
    static let configure: Int64 = 2  // [2, fuel | none, memory | none, max value, stack, time limit ns | none, refuse growth, max module]
    package static let callJob: Int64 = 3  // [3, job name, argument]
    package static let callGuest: Int64 = 4  // [4, module id, function, [arguments], fuel | none, time limit ns | none, WASI call | none]
    static let batch: Int64 = 5  // [5, [call, ...]]
    static let initialize: Int64 = 6  // [6, call]: run now, and again after the interpreter is reset
    // Worker to parent.
    static let ready: Int64 = 16  // [16, pid, protocol version]
    static let success: Int64 = 17  // [17, value]
    static let failure: Int64 = 18  // [18, error]
    static let batchResult: Int64 = 19  // [19, [[17, value] | [18, error], ...]]

    package static let protocolVersion: Int64 = 4
    /// The largest frame either side accepts.
    package static let maximumFrame = 1 << 30

    /// The request for one remote call.
    static func request(for call: RemoteCall) -> ShareableValue {
        switch call {
        case .job(let name, let argument):
            return [.int(callJob), .string(name), argument]
        case .invocation(let form):
            guard let invocation = form as? GuestInvocation else { return [.int(callJob), .string(""), .none] }
            let id = invocation.module.id
            return [
                .int(callGuest), .int(Int64(id)), .string(invocation.function), .array(invocation.arguments),
                invocation.fuel.map { .int(Int64(clamping: $0)) } ?? .none,
                invocation.timeLimit.map { .int(nanoseconds($0)) } ?? .none,
                invocation.wasi?.wireValue ?? .none,
            ]
        case .unencodable:
            // Never sent: the call's future failed when it was submitted. Should one get here, the
            // worker answers it with an error.
            return [.int(callJob), .string(""), .none]
        }
    }

    /// `limits` and `engine` as the fields of a configure message (eight fields).
    package static func fields(of limits: InterpreterLimits, engine: GuestEngine) -> [ShareableValue] {
        [
            limits.fuel.map { .int(Int64(clamping: $0)) } ?? .none, limits.memoryBytes.map { .int(Int64($0)) } ?? .none,
            .int(Int64(limits.maxValueBytes)), .int(Int64(limits.stackBytes)),
            limits.timeLimit.map { .int(nanoseconds($0)) } ?? .none, .bool(limits.onMemoryLimit == .refuseGrowth),
            .int(Int64(limits.maxModuleBytes)), .string(engine.rawValue),
        ]
    }

    /// The limits and engine that ``fields(of:engine:)`` wrote, or `nil` when `fields` are not
    /// eight such fields.
    package static func configuration(
        from fields: ArraySlice<ShareableValue>
    ) -> (limits: InterpreterLimits, engine: GuestEngine)? {
        let fields = Array(fields)
        guard fields.count == 8, case .string(let name) = fields[7], let engine = GuestEngine(rawValue: name) else { return nil }
        var limits = InterpreterLimits.default
        if case .int(let fuel) = fields[0] { limits.fuel = UInt64(clamping: fuel) } else { limits.fuel = nil }
        if case .int(let memory) = fields[1] { limits.memoryBytes = Int(memory) } else { limits.memoryBytes = nil }
        if case .int(let maxValue) = fields[2] { limits.maxValueBytes = Int(maxValue) }
        if case .int(let stack) = fields[3] { limits.stackBytes = Int(stack) }
        if case .int(let nanoseconds) = fields[4] { limits.timeLimit = .nanoseconds(nanoseconds) } else { limits.timeLimit = nil }
        limits.onMemoryLimit = fields[5] == .bool(true) ? .refuseGrowth : .failCall
        if case .int(let maxModule) = fields[6] { limits.maxModuleBytes = Int(maxModule) }
        return (limits, engine)
    }

    /// A duration in whole nanoseconds, clamped to `Int64`.
    package static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : whole &+ attoseconds / 1_000_000_000
    }

    package static func outcome(_ result: Result<ShareableValue, any Error>) -> ShareableValue {
        switch result {
        case .success(let value): return [.int(success), value]
        case .failure(let error): return [.int(failure), encode(error)]
        }
    }

    package static func decodeOutcome(_ value: ShareableValue) throws(ValueCodingError) -> Result<ShareableValue, any Error> {
        guard case .array(let fields) = value, fields.count == 2, case .int(let tag) = fields[0] else {
            throw ValueCodingError(.malformed, "not an outcome: \(value)")
        }
        switch tag {
        case success: return .success(fields[1])
        case failure: return .failure(decodeError(fields[1]))
        default: throw ValueCodingError(.malformed, "unknown outcome tag \(tag)")
        }
    }

    /// Encodes an error so that the parent can rebuild it with its type.
    package static func encode(_ error: any Error) -> ShareableValue {
        switch error {
        case let error as GuestError:
            return [
                "GuestError", .string(error.kind.name), .string(error.function), .string(error.message),
                .int(Int64(error.interpreterID)), error.exitStatus.map { .int(Int64($0)) } ?? .none,
            ]
        case let error as NotShareableError:
            return ["NotShareableError", .string(error.message)]
        case let error as ModuleError:
            return ["ModuleError", .string(error.code.name), .string(error.message), .array(error.missingImports.map { .string($0) })]
        case let error as ValueCodingError:
            return ["ValueCodingError", .string(error.code.name), .string(error.message)]
        case let error as RemoteError:
            return ["RemoteError", .string(error.code.name), .string(error.typeName), .string(error.message)]
        case let error as InterpreterError:
            return ["RemoteError", "jobFailed", "InterpreterError", .string(error.message)]
        default:
            let isCoding = error is DecodingError || error is EncodingError
            return [
                "RemoteError", .string(isCoding ? RemoteError.Code.encoding.name : RemoteError.Code.jobFailed.name),
                .string(String(reflecting: type(of: error))), .string(String(describing: error)),
            ]
        }
    }

    package static func decodeError(_ value: ShareableValue) -> any Error {
        guard case .array(let fields) = value, case .string(let type)? = fields.first else {
            return RemoteError(.jobFailed, "the worker sent an unreadable error: \(value)")
        }
        func text(_ index: Int) -> String {
            if index < fields.count, case .string(let text) = fields[index] { return text }
            return ""
        }
        switch type {
        case "GuestError":
            var interpreterID = -1
            if fields.count > 4, case .int(let id) = fields[4] { interpreterID = Int(id) }
            var exitStatus: Int32?
            if fields.count > 5, case .int(let status) = fields[5] { exitStatus = Int32(truncatingIfNeeded: status) }
            return GuestError(
                kind: .named(text(1), default: .trap), function: text(2), message: text(3), interpreterID: interpreterID,
                exitStatus: exitStatus)
        case "NotShareableError":
            return NotShareableError(text(1))
        case "ModuleError":
            var missing: [String] = []
            if fields.count > 3, case .array(let names) = fields[3] {
                missing = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
            }
            return ModuleError(.named(text(1), default: .invalid), text(2), missingImports: missing)
        case "ValueCodingError":
            return ValueCodingError(.named(text(1), default: .malformed), text(2))
        default:
            return RemoteError(.named(text(1), default: .jobFailed), typeName: text(2), text(3))
        }
    }
}

/// One frame: the id of the request it belongs to, and its message.
struct Frame {
    let id: UInt64
    let message: ShareableValue
}

/// One end of the socket between a pool and a worker, exchanging framed messages.
struct FrameChannel {
    let fd: Int32

    /// `CFW2`, the first four bytes of every frame.
    static let marker: UInt32 = 0x3257_4643
    static let headerBytes = 16
    /// How long the rest of a frame may take once its first byte arrived: the sender writes a
    /// frame in one go, so a longer stall means the stream is corrupt (a stray write that looked
    /// like the start of a frame), not that the peer is slow.
    static let stallMilliseconds: Int32 = 10_000

    func send(_ message: ShareableValue, id: UInt64) throws(ChannelError) {
        var writer = ByteWriter(capacity: 64)
        writer.writeFixed(UInt32(0))
        writer.writeFixed(UInt32(0))
        writer.writeFixed(UInt64(0))
        writer.write(message)
        let length = UInt32(writer.bytes.count - Self.headerBytes)
        writer.bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: Self.marker.littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: length.littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: id.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        let status = writer.bytes.withUnsafeBytes { cf_send_all(fd, $0.baseAddress, $0.count) }
        if status != 0 { throw ChannelError.closed(errno: status) }
    }

    /// Receives one frame, waiting up to `firstMilliseconds` for it to start (negative: forever);
    /// `nil` when nothing came in that time.
    ///
    /// Bytes that do not start with the marker are refused as soon as four have arrived; once a
    /// frame started, its other bytes must keep coming (``stallMilliseconds``).
    func receive(firstMilliseconds: Int32 = -1) throws(ChannelError) -> Frame? {
        var header = [UInt8](repeating: 0, count: Self.headerBytes)
        var received = 0
        while received < Self.headerBytes {
            let count = try receiveSome(
                into: &header, at: received, timeout: received == 0 ? firstMilliseconds : Self.stallMilliseconds,
                during: "a frame header")
            if count == nil { return nil }
            received += count!
            if received >= 4 {
                let marker = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
                guard marker == Self.marker else {
                    throw ChannelError.malformed("bytes that are not a frame (marker 0x\(String(marker, radix: 16)))")
                }
            }
        }
        let (length, id) = header.withUnsafeBytes { raw in
            (
                Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))),
                UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            )
        }
        guard length > 0, length <= WireMessage.maximumFrame else {
            throw ChannelError.malformed("a frame of \(length) bytes")
        }
        var payload = [UInt8](repeating: 0, count: length)
        var bodyReceived = 0
        while bodyReceived < length {
            guard let count = try receiveSome(
                into: &payload, at: bodyReceived, timeout: Self.stallMilliseconds, during: "a frame of \(length) bytes")
            else { throw ChannelError.malformed("a frame of \(length) bytes stopped arriving for \(Self.stallMilliseconds / 1000) s") }
            bodyReceived += count
        }
        do {
            return Frame(id: id, message: try ShareableValue(decoding: payload))
        } catch {
            throw ChannelError.malformed("\(error)")
        }
    }

    /// Receives what is there (at least one byte) into `buffer` from `offset`; `nil` when
    /// nothing came within `timeout` milliseconds.
    private func receiveSome(
        into buffer: inout [UInt8], at offset: Int, timeout: Int32, during what: String
    ) throws(ChannelError) -> Int? {
        let result = buffer.withUnsafeMutableBytes { raw in
            cf_receive_some(fd, raw.baseAddress! + offset, raw.count - offset, timeout)
        }
        switch result {
        case 0: throw ChannelError.endOfStream
        case Int(-ETIMEDOUT):
            if offset == 0 { return nil }
            throw ChannelError.malformed("\(what) stopped arriving for \(Self.stallMilliseconds / 1000) s")
        case ..<0: throw ChannelError.closed(errno: Int32(-result))
        default: return result
        }
    }
}

/// Why a frame could not be exchanged.
enum ChannelError: Error, CustomStringConvertible {
    case endOfStream
    case closed(errno: Int32)
    case malformed(String)
    /// The worker did not answer in time (stopped, or past the calls' time limits): it is killed.
    case unresponsive(String)

    var description: String {
        switch self {
        case .endOfStream: "the connection was closed"
        case .closed(let errno): "the connection failed (errno \(errno))"
        case .malformed(let what): "malformed frame: \(what)"
        case .unresponsive(let what): what
        }
    }
}

import CFuturesShims
