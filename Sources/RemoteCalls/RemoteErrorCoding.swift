package import Futures
import WasmInterpreters

/// Errors as they cross to another process: the library's own error types keep their type, code
/// and fields; any other error arrives as a ``RemoteError`` with its type's name and description.
///
/// On the wire: `["GuestError", kind, function, message, interpreter id, exit status | none,
/// [backtrace frame, ...]]` (the frames may be absent: an older sender),
/// `["NotShareableError", message]`, `["ModuleError", code, message, [missing imports]]`,
/// `["ValueCodingError", code, message]`, `["RemoteError", code, type name, message]`.
package enum RemoteErrorCoding {
    /// `error` as sent.
    package static func wire(_ error: any Error) -> ShareableValue {
        switch error {
        case let error as GuestError:
            return [
                "GuestError", .string(error.kind.name), .string(error.function), .string(error.message),
                .int(Int64(error.interpreterID)), error.exitStatus.map { .int(Int64($0)) } ?? .none,
                .array(error.backtrace.map { .string($0) }),
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

    /// The error `value` describes; a ``RemoteError`` `.jobFailed` for what it cannot read.
    package static func error(wire value: ShareableValue) -> any Error {
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
            var backtrace: [String] = []
            if fields.count > 6, case .array(let frames) = fields[6] {
                backtrace = frames.compactMap { if case .string(let frame) = $0 { frame } else { nil } }
            }
            return GuestError(
                kind: .named(text(1), default: .trap), function: text(2), message: text(3), interpreterID: interpreterID,
                exitStatus: exitStatus, backtrace: backtrace)
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
