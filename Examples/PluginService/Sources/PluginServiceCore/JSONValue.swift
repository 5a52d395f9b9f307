import ConcurrentFutures
import Foundation
import InMemoryTracing
import Tracing

/// A JSON value, rendered by hand (the service answers with a few small objects).
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// A guest's result: integers, floats, strings and arrays as themselves, bytes in base64.
    init(_ value: ShareableValue) {
        switch value {
        case .none: self = .null
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .bytes(let bytes): self = .string(Data(bytes).base64EncodedString())
        case .array(let values): self = .array(values.map(JSONValue.init))
        case .queue(let id): self = .string("queue \(id)")
        }
    }

    /// A span attribute: numbers, booleans and strings as themselves, anything else described.
    init(_ attribute: SpanAttribute) {
        switch attribute {
        case .int32(let value): self = .int(Int64(value))
        case .int64(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .bool(let value): self = .bool(value)
        case .string(let value): self = .string(value)
        case .stringConvertible(let value): self = .string(value.description)
        default: self = .string("\(attribute)")
        }
    }

    var text: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .int(let value): String(value)
        case .double(let value): value.isFinite ? String(value) : "null"
        case .string(let value): Self.quoted(value)
        case .array(let values): "[" + values.map(\.text).joined(separator: ",") + "]"
        case .object(let fields):
            "{" + fields.sorted { $0.key < $1.key }.map { Self.quoted($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    private static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A finished span as `GET /traces` shows it.
struct SpanJSON {
    let value: JSONValue

    init(_ span: FinishedInMemorySpan) {
        var attributes: [String: JSONValue] = [:]
        // `SpanAttributes` is not a sequence: `forEach` is its only way through.
        // swift-format-ignore: ReplaceForEachWithForLoop
        span.attributes.forEach { key, attribute in attributes[key] = JSONValue(attribute) }
        value = .object([
            "name": .string(span.operationName),
            "trace_id": .string(span.traceID),
            "span_id": .string(span.spanID),
            "parent_span_id": span.parentSpanID.map(JSONValue.string) ?? .null,
            "attributes": .object(attributes),
        ])
    }
}
