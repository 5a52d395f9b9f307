/// Encodes `Encodable` values into ``ShareableValue`` trees: the fallback by which any `Codable` type
/// crosses between interpreters and processes.
///
/// The mapping is fixed and documented, so a guest written in any language can read it:
/// - natively shareable values (``Shareable/isNativelyShareable``) map to themselves;
/// - a keyed container (a struct or class) becomes an array of alternating keys and values,
///   `[.string("x"), .int(1), .string("y"), .int(2)]`;
/// - an unkeyed container becomes an array; `nil` becomes ``ShareableValue/none``.
public struct ShareableValueEncoder: Sendable {
    /// Creates an encoder.
    public init() {}

    /// Encodes `value`.
    ///
    /// - Throws: `EncodingError` when the value's `encode(to:)` throws, or for an unsigned
    ///   integer above `Int64.max`.
    public func encode(_ value: some Encodable) throws -> ShareableValue {
        try encodeAny(value, path: [])
    }
}

private func encodeAny(_ value: some Encodable, path: [any CodingKey]) throws -> ShareableValue {
    if let shareable = value as? any Shareable, type(of: shareable).isNativelyShareable {
        return try shareable.shareableValue
    }
    let node = EncodingNode(path: path)
    try value.encode(to: node)
    return try node.finish()
}

private final class EncodingNode: Encoder {
    enum Content {
        case empty
        case single(ShareableValue)
        case keyed([(String, EncodingNode)], [String: Int])
        case unkeyed([EncodingNode])
    }

    var content: Content = .empty
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(path: [any CodingKey]) { codingPath = path }

    func finish() throws -> ShareableValue {
        switch content {
        case .empty: return .none
        case .single(let value): return value
        case .keyed(let pairs, _):
            var values: [ShareableValue] = []
            values.reserveCapacity(pairs.count * 2)
            for (key, node) in pairs {
                values.append(.string(key))
                values.append(try node.finish())
            }
            return .array(values)
        case .unkeyed(let nodes): return .array(try nodes.map { try $0.finish() })
        }
    }

    func child(forKey key: any CodingKey) -> EncodingNode {
        if case .keyed(var pairs, var index) = content {
            if let existing = index[key.stringValue] { return pairs[existing].1 }
            let node = EncodingNode(path: codingPath + [key])
            index[key.stringValue] = pairs.count
            pairs.append((key.stringValue, node))
            content = .keyed(pairs, index)
            return node
        }
        let node = EncodingNode(path: codingPath + [key])
        content = .keyed([(key.stringValue, node)], [key.stringValue: 0])
        return node
    }

    func appendChild() -> EncodingNode {
        var nodes: [EncodingNode] = []
        if case .unkeyed(let existing) = content { nodes = existing }
        let node = EncodingNode(path: codingPath + [IndexKey(nodes.count)])
        nodes.append(node)
        content = .unkeyed(nodes)
        return node
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .keyed = content {} else { content = .keyed([], [:]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(node: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .unkeyed = content {} else { content = .unkeyed([]) }
        return UnkeyedContainer(node: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleContainer(node: self) }

    func set(_ value: ShareableValue) { content = .single(value) }

    func set(_ value: some Encodable) throws {
        if let shareable = value as? any Shareable, type(of: shareable).isNativelyShareable {
            content = .single(try shareable.shareableValue)
        } else {
            try value.encode(to: self)
        }
    }
}

private func integer<T: FixedWidthInteger>(_ value: T, _ path: [any CodingKey]) throws -> ShareableValue {
    guard let exact = Int64(exactly: value) else {
        throw EncodingError.invalidValue(
            value, .init(codingPath: path, debugDescription: "\(value) does not fit in a 64-bit signed integer"))
    }
    return .int(exact)
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    var codingPath: [any CodingKey] { node.codingPath }

    mutating func encodeNil(forKey key: Key) throws { node.child(forKey: key).set(.none) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { node.child(forKey: key).set(.bool(value)) }
    mutating func encode(_ value: String, forKey key: Key) throws { node.child(forKey: key).set(.string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { node.child(forKey: key).set(.double(value)) }
    mutating func encode(_ value: Float, forKey key: Key) throws { node.child(forKey: key).set(.double(Double(value))) }
    mutating func encode(_ value: Int, forKey key: Key) throws { node.child(forKey: key).set(.int(Int64(value))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { node.child(forKey: key).set(.int(value)) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        node.child(forKey: key).set(try integer(value, codingPath + [key]))
    }
    mutating func encode(_ value: UInt, forKey key: Key) throws {
        node.child(forKey: key).set(try integer(value, codingPath + [key]))
    }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try node.child(forKey: key).set(value) }
    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        node.child(forKey: key).container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        node.child(forKey: key).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { node.child(forKey: IndexKey(stringValue: "super")) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { node.child(forKey: key) }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: EncodingNode
    var codingPath: [any CodingKey] { node.codingPath }
    var count: Int {
        if case .unkeyed(let nodes) = node.content { return nodes.count }
        return 0
    }

    mutating func encodeNil() throws { node.appendChild().set(.none) }
    mutating func encode(_ value: Bool) throws { node.appendChild().set(.bool(value)) }
    mutating func encode(_ value: String) throws { node.appendChild().set(.string(value)) }
    mutating func encode(_ value: Double) throws { node.appendChild().set(.double(value)) }
    mutating func encode(_ value: Int) throws { node.appendChild().set(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { node.appendChild().set(.int(value)) }
    mutating func encode(_ value: UInt64) throws { node.appendChild().set(try integer(value, codingPath)) }
    mutating func encode<T: Encodable>(_ value: T) throws { try node.appendChild().set(value) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        node.appendChild().container(keyedBy: keyType)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { node.appendChild().unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { node.appendChild() }
}

private struct SingleContainer: SingleValueEncodingContainer {
    let node: EncodingNode
    var codingPath: [any CodingKey] { node.codingPath }

    mutating func encodeNil() throws { node.set(.none) }
    mutating func encode(_ value: Bool) throws { node.set(.bool(value)) }
    mutating func encode(_ value: String) throws { node.set(.string(value)) }
    mutating func encode(_ value: Double) throws { node.set(.double(value)) }
    mutating func encode(_ value: Float) throws { node.set(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { node.set(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { node.set(.int(value)) }
    mutating func encode(_ value: UInt64) throws { node.set(try integer(value, codingPath)) }
    mutating func encode(_ value: UInt) throws { node.set(try integer(value, codingPath)) }
    mutating func encode<T: Encodable>(_ value: T) throws { try node.set(value) }
}

/// A coding key for array positions and synthetic keys.
struct IndexKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(_ index: Int) {
        stringValue = String(index)
        intValue = index
    }
    init(stringValue: String) {
        self.stringValue = stringValue
        intValue = nil
    }
    init?(intValue: Int) { self.init(intValue) }
}
