import ConcurrentFutures
import Foundation

/// Values as `futures map` reads and writes them: one JSON value per line.
///
/// Input is parsed by Foundation's `JSONSerialization`: `null`, booleans, numbers (integers
/// without `.`/`e` are ints, and must fit in 64 bits), strings (with every JSON escape, surrogate
/// pairs included) and arrays; a line that does not start like JSON (a letter, say) is taken as a
/// bare string. Objects are not values. Output: the same JSON, with bytes written as
/// `{"bytes": "<base64>"}` and queues as `{"queue": <id>}`.
enum ValueJSON {
    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// The deepest nesting of arrays accepted.
    static let maximumDepth = 64

    /// Parses one input line; `nil` for a blank line.
    static func parse(line: String) throws(ParseError) -> ShareableValue? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard let first = trimmed.unicodeScalars.first else { return nil }
        if !"[{\"-0123456789".unicodeScalars.contains(first), !["null", "true", "false"].contains(trimmed) {
            return .string(trimmed)
        }
        if first == "{" { throw ParseError(description: "JSON objects are not values; use an array") }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ParseError(description: "not valid JSON: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error)")
        }
        return try value(object, depth: 0)
    }

    private static func value(_ object: Any, depth: Int) throws(ParseError) -> ShareableValue {
        guard depth <= maximumDepth else {
            throw ParseError(description: "arrays nested deeper than \(maximumDepth) levels")
        }
        switch object {
        case is NSNull:
            return .none
        case let text as String:
            return .string(text)
        case let array as [Any]:
            var values: [ShareableValue] = []
            values.reserveCapacity(array.count)
            for element in array { values.append(try value(element, depth: depth + 1)) }
            return .array(values)
        case let number as NSDecimalNumber:
            throw ParseError(description: "the number \(number) does not fit in a 64-bit integer or a double")
        case let number as NSNumber:
            switch String(cString: number.objCType) {
            case "c": return .bool(number.boolValue)
            case "d", "f": return .double(number.doubleValue)
            case "Q":
                throw ParseError(description: "the integer \(number) does not fit in 64 bits (a signed 64-bit integer)")
            default: return .int(number.int64Value)
            }
        case is [String: Any]:
            throw ParseError(description: "JSON objects are not values; use an array")
        default:
            throw ParseError(description: "unsupported JSON value \(object)")
        }
    }

    /// Renders a value as one line of JSON.
    static func render(_ value: ShareableValue) -> String {
        switch value {
        case .none: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .int(let number): return String(number)
        case .double(let number): return number.isFinite ? String(number) : "\"\(number)\""
        case .string(let text): return quote(text)
        case .bytes(let bytes): return "{\"bytes\":\"\(Data(bytes).base64EncodedString())\"}"
        case .array(let values): return "[" + values.map(render).joined(separator: ",") + "]"
        case .queue(let id): return "{\"queue\":\(id)}"
        }
    }

    /// `text` as a JSON string, in one pass over its UTF-8 bytes (linear, whatever it holds).
    static func quote(_ text: String) -> String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var result: [UInt8] = [UInt8(ascii: "\"")]
        result.reserveCapacity(text.utf8.count + 2)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): result += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): result += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): result += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): result += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): result += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case ..<0x20: result += [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: result.append(byte)
            }
        }
        result.append(UInt8(ascii: "\""))
        return String(decoding: result, as: UTF8.self)
    }

    /// Captured output as JSON: a string when it is UTF-8 text, otherwise `{"bytes": base64}`, as
    /// bytes values are rendered, so that no byte is replaced or lost.
    static func output(_ bytes: [UInt8]) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { return render(.bytes(bytes)) }
        return quote(text)
    }
}
