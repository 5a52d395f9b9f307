/// The binary form of ``ShareableValue``: one tag byte, then the payload.
///
/// | tag | case | payload |
/// |---|---|---|
/// | `0x00` | none | — |
/// | `0x01` / `0x02` | bool false / true | — |
/// | `0x03` | int | signed LEB128 |
/// | `0x04` | double | 8 bytes, IEEE 754 bits, little-endian |
/// | `0x05` | string | unsigned LEB128 byte count, UTF-8 bytes |
/// | `0x06` | bytes | unsigned LEB128 byte count, bytes |
/// | `0x07` | array | unsigned LEB128 element count, elements |
/// | `0x08` | queue | unsigned LEB128 queue id |
///
/// LEB128 is WebAssembly's own integer encoding, so guests decode it with a few lines of code.
extension ShareableValue {
    /// The most deeply nested arrays a decoder accepts, so a hostile input cannot exhaust the stack.
    public static let maximumDepth = 128

    /// Encodes the value in its binary form.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.write(self)
        return writer.bytes
    }

    /// Decodes a value from its binary form.
    ///
    /// - Parameter maximumSize: The most bytes the decoded value may take in memory (see
    ///   ``memorySize``): an array of empty elements takes about 24 times its encoding, so an
    ///   untrusted encoding needs a bound on what it decodes to, not only on its length.
    /// - Throws: ``ValueCodingError`` when the bytes are truncated, carry an unknown tag, invalid
    ///   UTF-8, nesting deeper than ``maximumDepth``, or trailing bytes, or when the value would
    ///   take more than `maximumSize` bytes.
    public init(decoding bytes: some Collection<UInt8>, maximumSize: Int = .max) throws(ValueCodingError) {
        let array = Array(bytes)
        var reader = ByteReader(array)
        reader.budget = maximumSize
        self = try reader.readValue(depth: 0)
        guard reader.isAtEnd else {
            throw ValueCodingError(.malformed, "\(reader.remaining) trailing bytes after the value")
        }
    }

    /// About how many bytes the value takes in memory: one ``ShareableValue`` slot per value, plus the
    /// bytes of its strings and byte strings.
    public var memorySize: Int {
        switch self {
        case .string(let text): MemoryLayout<ShareableValue>.stride + text.utf8.count
        case .bytes(let raw): MemoryLayout<ShareableValue>.stride + raw.count
        case .array(let values): values.reduce(MemoryLayout<ShareableValue>.stride) { $0 + $1.memorySize }
        default: MemoryLayout<ShareableValue>.stride
        }
    }
}

/// Appends binary-encoded values and integers to a byte buffer.
package struct ByteWriter {
    package var bytes: [UInt8]

    package init(capacity: Int = 16) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    package mutating func write(_ value: ShareableValue) {
        switch value {
        case .none: bytes.append(0x00)
        case .bool(let flag): bytes.append(flag ? 0x02 : 0x01)
        case .int(let number):
            bytes.append(0x03)
            writeSigned(number)
        case .double(let number):
            bytes.append(0x04)
            writeFixed(number.bitPattern)
        case .string(let text):
            bytes.append(0x05)
            var text = text
            text.withUTF8 { utf8 in
                writeUnsigned(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        case .bytes(let raw):
            bytes.append(0x06)
            writeUnsigned(UInt64(raw.count))
            bytes.append(contentsOf: raw)
        case .array(let values):
            bytes.append(0x07)
            writeUnsigned(UInt64(values.count))
            for element in values { write(element) }
        case .queue(let id):
            bytes.append(0x08)
            writeUnsigned(UInt64(id))
        }
    }

    package mutating func writeUnsigned(_ value: UInt64) {
        var value = value
        repeat {
            var byte = UInt8(value & 0x7f)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while value != 0
    }

    package mutating func writeSigned(_ value: Int64) {
        var value = value
        while true {
            let byte = UInt8(truncatingIfNeeded: value) & 0x7f
            value >>= 7
            let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0)
            bytes.append(done ? byte : byte | 0x80)
            if done { return }
        }
    }

    package mutating func writeFixed(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func writeFixed(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func write(bytes more: some Collection<UInt8>) {
        bytes.append(contentsOf: more)
    }
}

/// Reads binary-encoded values and integers, checking every length against what is left.
package struct ByteReader {
    private let bytes: [UInt8]
    private var offset: Int

    package init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    /// What the values decoded so far may still take in memory; see ``ShareableValue/memorySize``.
    package var budget = Int.max

    package var isAtEnd: Bool { offset == bytes.count }

    private mutating func spend(_ size: Int) throws(ValueCodingError) {
        guard size <= budget else {
            throw ValueCodingError(.malformed, "the value would take more than its limit of memory once decoded")
        }
        budget -= size
    }
    package var remaining: Int { bytes.count - offset }
    package var position: Int { offset }

    package mutating func readByte() throws(ValueCodingError) -> UInt8 {
        guard offset < bytes.count else { throw ValueCodingError(.malformed, "unexpected end of data") }
        defer { offset += 1 }
        return bytes[offset]
    }

    package mutating func readUnsigned() throws(ValueCodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            if shift == 63, byte > 1 { throw ValueCodingError(.malformed, "unsigned integer overflows 64 bits") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw ValueCodingError(.malformed, "unsigned integer longer than 10 bytes") }
        }
    }

    package mutating func readSigned() throws(ValueCodingError) -> Int64 {
        var result: Int64 = 0
        var shift: Int64 = 0
        var byte: UInt8
        repeat {
            byte = try readByte()
            if shift > 63 { throw ValueCodingError(.malformed, "signed integer longer than 10 bytes") }
            result |= Int64(byte & 0x7f) << shift
            shift += 7
        } while byte & 0x80 != 0
        if shift < 64, byte & 0x40 != 0 { result |= -1 << shift }
        return result
    }

    package mutating func readFixed64() throws(ValueCodingError) -> UInt64 {
        let raw = try read(count: 8)
        var value: UInt64 = 0
        for (index, byte) in raw.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
        return value
    }

    package mutating func readFixed32() throws(ValueCodingError) -> UInt32 {
        let raw = try read(count: 4)
        var value: UInt32 = 0
        for (index, byte) in raw.enumerated() { value |= UInt32(byte) << (8 * UInt32(index)) }
        return value
    }

    package mutating func read(count: Int) throws(ValueCodingError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw ValueCodingError(.malformed, "length \(count) exceeds the \(remaining) bytes left")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    package mutating func readLength() throws(ValueCodingError) -> Int {
        let length = try readUnsigned()
        guard length <= UInt64(remaining) else {
            throw ValueCodingError(.malformed, "length \(length) exceeds the \(remaining) bytes left")
        }
        return Int(length)
    }

    package mutating func readValue(depth: Int) throws(ValueCodingError) -> ShareableValue {
        guard depth <= ShareableValue.maximumDepth else {
            throw ValueCodingError(.malformed, "values nested deeper than \(ShareableValue.maximumDepth) levels")
        }
        let tag = try readByte()
        try spend(MemoryLayout<ShareableValue>.stride)
        switch tag {
        case 0x00: return .none
        case 0x01: return .bool(false)
        case 0x02: return .bool(true)
        case 0x03: return .int(try readSigned())
        case 0x04: return .double(Double(bitPattern: try readFixed64()))
        case 0x05:
            let length = try readLength()
            try spend(length)
            let raw = try read(count: length)
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw ValueCodingError(.malformed, "string is not valid UTF-8")
            }
            return .string(text)
        case 0x06:
            let length = try readLength()
            try spend(length)
            return .bytes(Array(try read(count: length)))
        case 0x07:
            let count = try readLength()  // every element takes at least one byte
            var values: [ShareableValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try readValue(depth: depth + 1)) }
            return .array(values)
        case 0x08:
            let id = try readUnsigned()
            guard id <= UInt64(Int.max) else { throw ValueCodingError(.malformed, "queue id out of range") }
            return .queue(Int(id))
        default:
            throw ValueCodingError(.malformed, "unknown value tag 0x\(String(tag, radix: 16))")
        }
    }
}
