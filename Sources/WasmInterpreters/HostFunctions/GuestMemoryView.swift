public import Futures

/// A guest's linear memory, bounds-checked: every access is checked against the memory's size
/// now, and one outside it throws instead of touching the host's memory. Valid only while the
/// host function (or the closure) that got it runs.
///
/// Inside a host function, reads and writes are charged to the call's fuel as the `cf` imports'
/// are: one unit per 64 bytes.
public struct GuestMemoryView {
    let memory: any LinearMemory
    /// The calling guest's context (fuel, value size limit); `nil` outside a call.
    let context: HostContext?

    /// The memory's size in bytes now.
    public var byteCount: Int { memory.byteCount }

    /// A copy of the `count` bytes at `address`.
    ///
    /// - Throws: ``HostFunctionFailure`` `.invalidPointer` when the range is outside the memory,
    ///   `.valueTooLarge` over the interpreter's ``InterpreterLimits/maxValueBytes``.
    public func bytes(at address: UInt32, count: Int) throws -> [UInt8] {
        try check(address, count)
        if let context, count > context.maxValueBytes {
            throw HostFunctionFailure("\(count) bytes exceed the limit of \(context.maxValueBytes) bytes", kind: .valueTooLarge)
        }
        try charge(count)
        return count == 0 ? [] : memory.copyBytes(at: Int(address), count: count)
    }

    /// The UTF-8 text of the `count` bytes at `address`.
    ///
    /// - Throws: What ``bytes(at:count:)`` throws; ``HostFunctionFailure`` `.malformedValue`
    ///   when they are not UTF-8.
    public func string(at address: UInt32, count: Int) throws -> String {
        guard let text = String(validating: try bytes(at: address, count: count), as: UTF8.self) else {
            throw HostFunctionFailure("the \(count) bytes at 0x\(String(address, radix: 16)) are not UTF-8", kind: .malformedValue)
        }
        return text
    }

    /// The value encoded (guest ABI encoding) in the `count` bytes at `address`.
    ///
    /// - Throws: What ``bytes(at:count:)`` throws; ``HostFunctionFailure`` `.malformedValue`
    ///   when they are not one encoded value.
    public func value(at address: UInt32, count: Int) throws -> ShareableValue {
        let bytes = try bytes(at: address, count: count)
        do {
            return try ShareableValue(decoding: bytes, maximumSize: context?.maxValueBytes ?? bytes.count)
        } catch {
            throw HostFunctionFailure(
                "the \(count) bytes at 0x\(String(address, radix: 16)) are not an encoded value: \(error)", kind: .malformedValue)
        }
    }

    /// Copies `bytes` to `address`.
    ///
    /// - Throws: ``HostFunctionFailure`` `.invalidPointer` when the range is outside the memory.
    public func write(_ bytes: [UInt8], at address: UInt32) throws {
        try check(address, bytes.count)
        try charge(bytes.count)
        if !bytes.isEmpty { memory.store(bytes, at: Int(address)) }
    }

    /// The little-endian integer at `address`.
    ///
    /// - Throws: ``HostFunctionFailure`` `.invalidPointer` when it is outside the memory.
    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt32) throws -> T {
        let bytes = try bytes(at: address, count: MemoryLayout<T>.size)
        return bytes.reversed().reduce(T.zero) { $0 << 8 | T(truncatingIfNeeded: $1) }
    }

    /// Stores `value` little-endian at `address`.
    ///
    /// - Throws: ``HostFunctionFailure`` `.invalidPointer` when it is outside the memory.
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt32) throws {
        try write((0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }, at: address)
    }

    private func check(_ address: UInt32, _ count: Int) throws {
        guard count >= 0, UInt64(address) + UInt64(count) <= UInt64(memory.byteCount) else {
            throw HostFunctionFailure(
                "the range 0x\(String(address, radix: 16))+\(count) lies outside the guest's \(memory.byteCount)-byte memory",
                kind: .invalidPointer)
        }
    }

    private func charge(_ count: Int) throws {
        guard let context, count >= 64 else { return }
        try context.account.chargeFuel(UInt64(count) / 64, for: "passing \(count) bytes between guest and host")
    }
}
