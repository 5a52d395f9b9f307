import ConcurrentFutures
import Foundation

/// Values as `futures map` reads and writes them: one JSON value per line.
///
/// Input: JSON `null`, booleans, numbers (integers without `.`/`e` are ints), strings and arrays;
/// a line that does not start like JSON (a letter, say) is taken as a bare string. Objects are
/// not values. Output: the same JSON, with bytes written as `{"bytes": "<base64>"}` and queues as
/// `{"queue": <id>}`.
enum ValueJSON {
    struct ParseError: Error, CustomStringConvertible {
        let description: String
    }

    /// Parses one input line.
    static func parse(line: String) throws(ParseError) -> Value {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard let first = trimmed.unicodeScalars.first else { throw ParseError(description: "empty line") }
        if !"[{\"-0123456789".unicodeScalars.contains(first), !["null", "true", "false"].contains(trimmed) {
            return .string(trimmed)
        }
        var parser = Parser(text: Array(trimmed.utf8))
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == parser.text.count else {
            throw ParseError(description: "unexpected '\(parser.character)' at column \(parser.index + 1)")
        }
        return value
    }

    /// Renders a value as one line of JSON.
    static func render(_ value: Value) -> String {
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

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    private struct Parser {
        let text: [UInt8]
        var index = 0

        var character: String {
            index < text.count ? String(decoding: [text[index]], as: UTF8.self) : "end of line"
        }

        mutating func skipSpace() {
            while index < text.count, [0x20, 0x09].contains(text[index]) { index += 1 }
        }

        mutating func fail(_ expected: String) -> ParseError {
            ParseError(description: "expected \(expected) at column \(index + 1), found '\(character)'")
        }

        mutating func value(depth: Int) throws(ParseError) -> Value {
            guard depth < 64 else { throw ParseError(description: "arrays nested deeper than 64 levels") }
            skipSpace()
            guard index < text.count else { throw fail("a value") }
            switch text[index] {
            case UInt8(ascii: "n"): try literal("null"); return .none
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "{"): throw ParseError(description: "JSON objects are not values; use an array")
            default: return try number()
            }
        }

        mutating func literal(_ word: String) throws(ParseError) {
            let bytes = Array(word.utf8)
            guard text.count - index >= bytes.count, Array(text[index..<index + bytes.count]) == bytes else { throw fail(word) }
            index += bytes.count
        }

        mutating func array(depth: Int) throws(ParseError) -> Value {
            index += 1
            var values: [Value] = []
            skipSpace()
            if index < text.count, text[index] == UInt8(ascii: "]") {
                index += 1
                return .array(values)
            }
            while true {
                values.append(try value(depth: depth + 1))
                skipSpace()
                guard index < text.count else { throw fail("',' or ']'") }
                if text[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(values)
                }
                guard text[index] == UInt8(ascii: ",") else { throw fail("',' or ']'") }
                index += 1
            }
        }

        mutating func number() throws(ParseError) -> Value {
            let start = index
            while index < text.count, "+-.eE0123456789".utf8.contains(text[index]) { index += 1 }
            let token = String(decoding: text[start..<index], as: UTF8.self)
            if !token.contains(where: { ".eE".contains($0) }), let integer = Int64(token) { return .int(integer) }
            if let double = Double(token) { return .double(double) }
            index = start
            throw fail("a number")
        }

        mutating func string() throws(ParseError) -> String {
            index += 1
            var bytes: [UInt8] = []
            while index < text.count {
                let byte = text[index]
                index += 1
                if byte == UInt8(ascii: "\"") {
                    return String(decoding: bytes, as: UTF8.self)
                }
                guard byte == UInt8(ascii: "\\") else {
                    bytes.append(byte)
                    continue
                }
                guard index < text.count else { break }
                let escape = text[index]
                index += 1
                switch escape {
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "u"):
                    guard text.count - index >= 4, let code = UInt32(String(decoding: text[index..<index + 4], as: UTF8.self), radix: 16),
                        let scalar = Unicode.Scalar(code)
                    else { throw fail("four hex digits") }
                    index += 4
                    bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: bytes.append(escape)
                }
            }
            throw ParseError(description: "unterminated string")
        }
    }
}
