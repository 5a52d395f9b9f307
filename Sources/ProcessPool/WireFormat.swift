import Futures
import Interpreters

/// The messages between a process pool and its workers, on a socket pair: each frame is a
/// 4-byte little-endian length and a ``Futures/Value`` in its binary form, always an array whose
/// first element is the message tag. Values, errors and whole batches reuse the one encoding.
enum WireMessage {
    // Parent to worker.
    static let loadModule: Int64 = 1  // [1, module id, name, bytes]
    static let configure: Int64 = 2  // [2, fuel | none, memory | none, max value, stack, time limit ns | none, refuse growth]
    static let callJob: Int64 = 3  // [3, job name, argument]
    static let callGuest: Int64 = 4  // [4, module id, function, [arguments], fuel | none]
    static let batch: Int64 = 5  // [5, [call, ...]]
    static let initialize: Int64 = 6  // [6, call]: run now, and again after the interpreter is reset
    // Worker to parent.
    static let ready: Int64 = 16  // [16, pid, protocol version]
    static let success: Int64 = 17  // [17, value]
    static let failure: Int64 = 18  // [18, error]
    static let batchResult: Int64 = 19  // [19, [[17, value] | [18, error], ...]]

    static let protocolVersion: Int64 = 1
    /// The largest frame either side accepts.
    static let maximumFrame = 1 << 30

    /// The request for one remote call.
    static func request(for call: RemoteCall) -> Value {
        switch call {
        case .job(let name, let argument):
            return [.int(callJob), .string(name), argument]
        case .guest(let invocation):
            let id = (invocation.module as? GuestModule)?.id ?? -1
            return [
                .int(callGuest), .int(Int64(id)), .string(invocation.function), .array(invocation.arguments),
                invocation.fuel.map { .int(Int64(clamping: $0)) } ?? .none,
            ]
        case .unencodable(let error):
            preconditionFailure("an unencodable call reached the wire: \(error)")
        }
    }

    static func outcome(_ result: Result<Value, any Error>) -> Value {
        switch result {
        case .success(let value): return [.int(success), value]
        case .failure(let error): return [.int(failure), encode(error)]
        }
    }

    static func decodeOutcome(_ value: Value) throws(ValueCodingError) -> Result<Value, any Error> {
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
    static func encode(_ error: any Error) -> Value {
        switch error {
        case let error as ExecutionFailed:
            return [
                "ExecutionFailed", .string(error.kind.name), .string(error.function), .string(error.message),
                .int(Int64(error.interpreterID)),
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

    static func decodeError(_ value: Value) -> any Error {
        guard case .array(let fields) = value, case .string(let type)? = fields.first else {
            return RemoteError(.jobFailed, "the worker sent an unreadable error: \(value)")
        }
        func text(_ index: Int) -> String {
            if index < fields.count, case .string(let text) = fields[index] { return text }
            return ""
        }
        switch type {
        case "ExecutionFailed":
            var interpreterID = -1
            if fields.count > 4, case .int(let id) = fields[4] { interpreterID = Int(id) }
            return ExecutionFailed(kind: .named(text(1)), function: text(2), message: text(3), interpreterID: interpreterID)
        case "NotShareableError":
            return NotShareableError(text(1))
        case "ModuleError":
            var missing: [String] = []
            if fields.count > 3, case .array(let names) = fields[3] {
                missing = names.compactMap { if case .string(let name) = $0 { name } else { nil } }
            }
            return ModuleError(.named(text(1)), text(2), missingImports: missing)
        case "ValueCodingError":
            return ValueCodingError(.named(text(1)), text(2))
        default:
            return RemoteError(.named(text(1)), typeName: text(2), text(3))
        }
    }
}

/// One end of the socket between a pool and a worker, exchanging length-prefixed frames.
struct FrameChannel {
    let fd: Int32

    func send(_ message: Value) throws(ChannelError) {
        var writer = ByteWriter(capacity: 64)
        writer.writeFixed(UInt32(0))
        writer.write(message)
        let length = UInt32(writer.bytes.count - 4)
        writer.bytes.withUnsafeMutableBytes { raw in raw.storeBytes(of: length.littleEndian, as: UInt32.self) }
        let status = writer.bytes.withUnsafeBytes { cf_send_all(fd, $0.baseAddress, $0.count) }
        if status != 0 { throw ChannelError.closed(errno: status) }
    }

    func receive() throws(ChannelError) -> Value {
        var header: UInt32 = 0
        let status = withUnsafeMutableBytes(of: &header) { cf_receive_all(fd, $0.baseAddress, 4) }
        if status == -1 { throw ChannelError.endOfStream }
        if status != 0 { throw ChannelError.closed(errno: status) }
        let length = Int(UInt32(littleEndian: header))
        guard length > 0, length <= WireMessage.maximumFrame else {
            throw ChannelError.malformed("a frame of \(length) bytes")
        }
        var payload = [UInt8](repeating: 0, count: length)
        let bodyStatus = payload.withUnsafeMutableBytes { cf_receive_all(fd, $0.baseAddress, length) }
        if bodyStatus == -1 { throw ChannelError.endOfStream }
        if bodyStatus != 0 { throw ChannelError.closed(errno: bodyStatus) }
        do {
            return try Value(decoding: payload)
        } catch {
            throw ChannelError.malformed("\(error)")
        }
    }
}

/// Why a frame could not be exchanged.
enum ChannelError: Error, CustomStringConvertible {
    case endOfStream
    case closed(errno: Int32)
    case malformed(String)

    var description: String {
        switch self {
        case .endOfStream: "the connection was closed"
        case .closed(let errno): "the connection failed (errno \(errno))"
        case .malformed(let what): "malformed frame: \(what)"
        }
    }
}

import CFuturesShims
