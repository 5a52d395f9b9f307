/// Decodes `Decodable` values from the ``ShareableValue`` trees ``ShareableValueEncoder`` produces.
public struct ShareableValueDecoder: Sendable {
    /// Creates a decoder.
    public init() {}

    /// Decodes a `T` from `value`.
    ///
    /// - Throws: `DecodingError` when `value` does not have the shape `T` expects, or
    ///   ``ValueCodingError`` for a natively shareable `T` given a value of the wrong kind.
    public func decode<T: Decodable>(_ type: T.Type, from value: ShareableValue) throws -> T {
        try decodeAny(type, from: value, path: [])
    }
}

private func decodeAny<T: Decodable>(_ type: T.Type, from value: ShareableValue, path: [any CodingKey]) throws -> T {
    if let shareable = type as? any Shareable.Type, shareable.isNativelyShareable {
        return try shareable.init(shareableValue: value) as! T
    }
    return try T(from: DecodingNode(value: value, path: path))
}

private func mismatch(_ expected: String, _ value: ShareableValue, _ path: [any CodingKey]) -> DecodingError {
    .typeMismatch(
        ShareableValue.self, .init(codingPath: path, debugDescription: "expected \(expected), got \(value.kindName) \(value)"))
}

private struct DecodingNode: Decoder {
    let value: ShareableValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: ShareableValue, path: [any CodingKey]) {
        self.value = value
        codingPath = path
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .array(let values) = value, values.count % 2 == 0 else {
            throw mismatch("an array of alternating keys and values", value, codingPath)
        }
        var fields: [String: ShareableValue] = [:]
        var index = 0
        while index < values.count {
            guard case .string(let key) = values[index] else {
                throw mismatch("a string key", values[index], codingPath)
            }
            fields[key] = values[index + 1]
            index += 2
        }
        return KeyedDecodingContainer(KeyedContainer<Key>(fields: fields, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let values): return UnkeyedContainer(values: values, codingPath: codingPath)
        case .bytes(let bytes): return UnkeyedContainer(values: bytes.map { .int(Int64($0)) }, codingPath: codingPath)
        default: throw mismatch("array", value, codingPath)
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleContainer(node: self) }
}

private func decodeInteger<T: FixedWidthInteger>(_ type: T.Type, _ value: ShareableValue, _ path: [any CodingKey]) throws -> T {
    guard case .int(let number) = value else { throw mismatch("int", value, path) }
    guard let exact = T(exactly: number) else {
        throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(number) is out of range for \(T.self)"))
    }
    return exact
}

private struct SingleContainer: SingleValueDecodingContainer {
    let node: DecodingNode
    var codingPath: [any CodingKey] { node.codingPath }

    func decodeNil() -> Bool { node.value == .none }
    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let flag) = node.value else { throw mismatch("bool", node.value, codingPath) }
        return flag
    }
    func decode(_ type: String.Type) throws -> String {
        guard case .string(let text) = node.value else { throw mismatch("string", node.value, codingPath) }
        return text
    }
    func decode(_ type: Double.Type) throws -> Double {
        switch node.value {
        case .double(let number): return number
        case .int(let number): return Double(number)
        default: throw mismatch("double", node.value, codingPath)
        }
    }
    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int.Type) throws -> Int { try decodeInteger(type, node.value, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decodeInteger(type, node.value, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeInteger(type, node.value, codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeAny(type, from: node.value, path: codingPath) }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let fields: [String: ShareableValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { fields.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { fields[key.stringValue] != nil }

    private func field(_ key: Key) throws -> ShareableValue {
        guard let value = fields[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "no value for \(key.stringValue)"))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try field(key) == .none }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decodeAny(type, from: try field(key), path: codingPath + [key])
    }
    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try DecodingNode(value: try field(key), path: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try DecodingNode(value: try field(key), path: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> any Decoder {
        DecodingNode(value: fields["super"] ?? .none, path: codingPath)
    }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        DecodingNode(value: try field(key), path: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let values: [ShareableValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(values: [ShareableValue], codingPath: [any CodingKey]) {
        self.values = values
        self.codingPath = codingPath
    }

    var count: Int? { values.count }
    var isAtEnd: Bool { currentIndex >= values.count }

    private mutating func next() throws -> ShareableValue {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                ShareableValue.self, .init(codingPath: codingPath, debugDescription: "unkeyed container is at its end"))
        }
        defer { currentIndex += 1 }
        return values[currentIndex]
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, values[currentIndex] == .none else { return false }
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let path = codingPath + [IndexKey(currentIndex)]
        return try decodeAny(type, from: try next(), path: path)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try DecodingNode(value: try next(), path: codingPath).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try DecodingNode(value: try next(), path: codingPath).unkeyedContainer()
    }
    mutating func superDecoder() throws -> any Decoder { DecodingNode(value: try next(), path: codingPath) }
}
