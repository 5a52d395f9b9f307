// EmbeddedGuestRuntime.swift: the Embedded Swift side of the ConcurrentFutures guest ABI (v1).
//
// Compile it together with a guest's own Swift files (one module, -wmo) and link
// the result with rt.c. It provides:
//   - the `cf_alloc` / `cf_free` exports the host uses to pass pointer arguments;
//   - `ValueWriter` / `ValueReader` / `GuestValue` for the binary value encoding;
//   - `Guest` helpers to return strings, bytes and encoded values, to log, and to
//     ask for the id of the interpreter running the call;
//   - `GuestQueue`, a thin wrapper over the host's queue imports;
//   - `String(guestBytes:count:)` / `[UInt8](guestBytes:count:)` to read arguments.
//
// Encoding: a tag byte, then the payload. none 0x00, false 0x01, true 0x02,
// int 0x03 + SLEB128, double 0x04 + 8 bytes little-endian, string 0x05 + ULEB128
// length + UTF-8, bytes 0x06 + ULEB128 length + bytes, array 0x07 + ULEB128 count
// + values, queue 0x08 + ULEB128 id.

// MARK: - Host imports (module "cf"). Unused ones are dropped by wasm-ld.

@_extern(wasm, module: "cf", name: "return_value") @_extern(c)
func cf_return_value(_ ptr: UnsafeRawPointer?, _ len: Int32)
@_extern(wasm, module: "cf", name: "return_string") @_extern(c)
func cf_return_string(_ ptr: UnsafeRawPointer?, _ len: Int32)
@_extern(wasm, module: "cf", name: "return_bytes") @_extern(c)
func cf_return_bytes(_ ptr: UnsafeRawPointer?, _ len: Int32)
@_extern(wasm, module: "cf", name: "queue_put_int") @_extern(c)
func cf_queue_put_int(_ queue: Int32, _ value: Int64, _ timeoutMs: Int64) -> Int32
@_extern(wasm, module: "cf", name: "queue_get_int") @_extern(c)
func cf_queue_get_int(_ queue: Int32, _ timeoutMs: Int64, _ out: UnsafeMutablePointer<Int64>?) -> Int32
@_extern(wasm, module: "cf", name: "queue_put") @_extern(c)
func cf_queue_put(_ queue: Int32, _ ptr: UnsafeRawPointer?, _ len: Int32, _ timeoutMs: Int64) -> Int32
@_extern(wasm, module: "cf", name: "queue_get") @_extern(c)
func cf_queue_get(_ queue: Int32, _ timeoutMs: Int64, _ out: UnsafeMutablePointer<Int32>?) -> Int32
@_extern(wasm, module: "cf", name: "queue_count") @_extern(c)
func cf_queue_count(_ queue: Int32) -> Int64
@_extern(wasm, module: "cf", name: "write") @_extern(c)
func cf_write(_ fd: Int32, _ ptr: UnsafeRawPointer?, _ len: Int32) -> Int32
@_extern(wasm, module: "cf", name: "log") @_extern(c)
func cf_log(_ ptr: UnsafeRawPointer?, _ len: Int32)
@_extern(wasm, module: "cf", name: "interpreter_id") @_extern(c)
func cf_interpreter_id() -> Int64

// MARK: - rt.c

// (Swift reserves the names malloc/free for its runtime, so rt.c offers them as cf_heap_*.)
@_extern(c, "cf_heap_alloc") func rt_malloc(_ size: Int) -> UnsafeMutableRawPointer?
@_extern(c, "cf_heap_free") func rt_free(_ ptr: UnsafeMutableRawPointer?)
@_extern(c, "cf_flush_stdout") func rt_flush_stdout()
@_extern(c, "cf_trap") func rt_trap_noreturn()   // C's noreturn cannot be imported as Never
@_extern(c, "cf_memory_pages") func rt_memory_pages() -> Int32
@_extern(c, "cf_memory_grow") func rt_memory_grow(_ pages: Int32) -> Int32
@_extern(c, "cf_div_s64") func rt_div_s64(_ a: Int64, _ b: Int64) -> Int64

/// Executes wasm `unreachable` (a trap the host reports as a guest fault).
func rt_trap() -> Never {
    rt_trap_noreturn()
    while true {}   // not reached: cf_trap never returns
}

// MARK: - Allocator exports for the host

/// Allocates `size` bytes (at least 1) for the host to copy an argument or a queued value
/// into; returns nil (0) when `size` is negative or memory runs out. Exported as `cf_alloc`.
@_expose(wasm, "cf_alloc") @_cdecl("cf_alloc")
public func cf_alloc(_ size: Int32) -> UnsafeMutableRawPointer? {
    guard size >= 0 else { return nil }
    return rt_malloc(Int(size == 0 ? 1 : size))
}

/// Frees a buffer from `cf_alloc` (nil is ignored). Exported as `cf_free`; the host calls it
/// on argument buffers after a call returns.
@_expose(wasm, "cf_free") @_cdecl("cf_free")
public func cf_free(_ ptr: UnsafeMutableRawPointer?) {
    rt_free(ptr)
}

// MARK: - Values

/// Tag bytes of the binary value encoding.
public enum ValueTag: UInt8 {
    /// `0x00`: none (no payload).
    case none = 0x00
    /// `0x01`: false (no payload).
    case `false` = 0x01
    /// `0x02`: true (no payload).
    case `true` = 0x02
    /// `0x03`: an int, as SLEB128.
    case int = 0x03
    /// `0x04`: a double, as 8 bytes little-endian.
    case double = 0x04
    /// `0x05`: a string, as a ULEB128 byte count and UTF-8.
    case string = 0x05
    /// `0x06`: bytes, as a ULEB128 count and the bytes.
    case bytes = 0x06
    /// `0x07`: an array, as a ULEB128 element count and the encoded elements.
    case array = 0x07
    /// `0x08`: a queue, as its ULEB128 id.
    case queue = 0x08
}

/// Builds one binary-encoded value (usually an array) in a growable buffer.
public struct ValueWriter {
    /// The encoding written so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty writer.
    public init() {}

    /// Appends none.
    public mutating func writeNone() { bytes.append(ValueTag.none.rawValue) }
    /// Appends a bool.
    public mutating func writeBool(_ v: Bool) { bytes.append(v ? ValueTag.true.rawValue : ValueTag.false.rawValue) }
    /// Appends an int.
    public mutating func writeInt(_ v: Int64) { bytes.append(ValueTag.int.rawValue); writeSLEB(v) }
    /// Appends a queue reference (the queue's i32 id, as a guest receives it).
    public mutating func writeQueue(_ id: Int32) { bytes.append(ValueTag.queue.rawValue); writeULEB(UInt64(UInt32(bitPattern: id))) }

    /// Appends a double.
    public mutating func writeDouble(_ v: Double) {
        bytes.append(ValueTag.double.rawValue)
        var bits = v.bitPattern
        for _ in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: bits)); bits >>= 8 }
    }

    /// Appends a string (its UTF-8 bytes).
    public mutating func writeString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            bytes.append(ValueTag.string.rawValue)
            writeULEB(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// Appends a bytes value.
    public mutating func writeBytes(_ b: [UInt8]) {
        bytes.append(ValueTag.bytes.rawValue)
        writeULEB(UInt64(b.count))
        bytes.append(contentsOf: b)
    }

    /// Starts an array: follow with exactly `count` values.
    public mutating func beginArray(count: Int) {
        bytes.append(ValueTag.array.rawValue)
        writeULEB(UInt64(count))
    }

    /// Appends an array of ints.
    public mutating func writeInts(_ values: [Int64]) {
        beginArray(count: values.count)
        for v in values { writeInt(v) }
    }

    /// Appends `value`, recursively for arrays.
    public mutating func write(_ value: GuestValue) {
        switch value {
        case .none: writeNone()
        case .bool(let b): writeBool(b)
        case .int(let i): writeInt(i)
        case .double(let d): writeDouble(d)
        case .string(let s): writeString(s)
        case .bytes(let b): writeBytes(b)
        case .queue(let q): writeQueue(q)
        case .array(let items):
            beginArray(count: items.count)
            for item in items { write(item) }
        }
    }

    /// Appends `value` as unsigned LEB128 (no tag).
    mutating func writeULEB(_ value: UInt64) {
        var v = value
        repeat {
            var byte = UInt8(v & 0x7F)
            v >>= 7
            if v != 0 { byte |= 0x80 }
            bytes.append(byte)
        } while v != 0
    }

    /// Appends `value` as signed LEB128 (no tag).
    mutating func writeSLEB(_ value: Int64) {
        var v = value
        while true {
            let byte = UInt8(v & 0x7F)
            v >>= 7   // arithmetic shift
            let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0)
            bytes.append(done ? byte : byte | 0x80)
            if done { return }
        }
    }
}

/// A decoded value (what `ValueReader.readValue()` returns).
public indirect enum GuestValue {
    /// None.
    case none
    /// A bool.
    case bool(Bool)
    /// An int.
    case int(Int64)
    /// A double.
    case double(Double)
    /// A string.
    case string(String)
    /// Bytes.
    case bytes([UInt8])
    /// An array of values.
    case array([GuestValue])
    /// A queue, by its i32 id (usable with `GuestQueue`).
    case queue(Int32)
}

/// Decodes binary-encoded values from guest memory (e.g. an array argument's (ptr, len)).
/// Every read returns nil, without consuming anything, on a type mismatch or truncated input.
public struct ValueReader {
    /// The deepest nesting `readValue()` accepts: the outermost value is at depth 0, and a
    /// value inside an array is one deeper than the array. The same limit as the host's.
    public static let maximumDepth = 128

    /// The start of the encoded bytes.
    public let base: UnsafePointer<UInt8>?
    /// The number of encoded bytes (0 when `base` is nil).
    public let count: Int
    /// How many bytes have been consumed.
    public private(set) var offset = 0

    /// Reads the `count` bytes at `ptr` (a negative count reads as 0). The bytes are not
    /// copied: they must stay valid while the reader is used.
    public init(_ ptr: UnsafePointer<UInt8>?, count: Int32) {
        self.base = ptr
        self.count = ptr == nil ? 0 : Int(max(count, 0))
    }

    /// Whether every byte has been consumed.
    public var isAtEnd: Bool { offset >= count }

    /// The tag of the next value, without consuming it.
    public func peekTag() -> ValueTag? {
        guard let base, offset < count else { return nil }
        return ValueTag(rawValue: base[offset])
    }

    /// Reads none; returns whether the next value was none (and was consumed).
    public mutating func readNone() -> Bool { expect(.none) != nil }

    /// Reads a bool.
    public mutating func readBool() -> Bool? {
        switch peekTag() {
        case .false?: offset += 1; return false
        case .true?: offset += 1; return true
        default: return nil
        }
    }

    /// Reads an int.
    public mutating func readInt() -> Int64? {
        let start = offset
        guard expect(.int) != nil, let v = readSLEB() else { offset = start; return nil }
        return v
    }

    /// Reads a double.
    public mutating func readDouble() -> Double? {
        let start = offset
        guard expect(.double) != nil, let base, count - offset >= 8 else { offset = start; return nil }
        var bits: UInt64 = 0
        for i in 0..<8 { bits |= UInt64(base[offset + i]) << UInt64(8 * i) }
        offset += 8
        return Double(bitPattern: bits)
    }

    /// Reads a string (invalid UTF-8 is repaired).
    public mutating func readString() -> String? {
        let start = offset
        guard expect(.string) != nil, let n = readLength() else { offset = start; return nil }
        let s = String(decoding: UnsafeBufferPointer(start: base! + offset, count: n), as: UTF8.self)
        offset += n
        return s
    }

    /// Reads a bytes value (a copy).
    public mutating func readBytes() -> [UInt8]? {
        let start = offset
        guard expect(.bytes) != nil, let n = readLength() else { offset = start; return nil }
        let b = Array(UnsafeBufferPointer(start: base! + offset, count: n))
        offset += n
        return b
    }

    /// Reads a queue reference: the i32 id to wrap in `GuestQueue`.
    public mutating func readQueue() -> Int32? {
        let start = offset
        guard expect(.queue) != nil, let v = readULEB(), v <= UInt64(UInt32.max) else { offset = start; return nil }
        return Int32(bitPattern: UInt32(v))
    }

    /// Reads an array header and returns its element count; the elements follow.
    public mutating func readArrayHeader() -> Int? {
        let start = offset
        guard expect(.array) != nil, let v = readULEB(), v <= UInt64(count) else { offset = start; return nil }
        return Int(v)
    }

    /// Reads an array whose elements are all ints.
    public mutating func readInts() -> [Int64]? {
        let start = offset
        guard let n = readArrayHeader() else { return nil }
        var result: [Int64] = []
        result.reserveCapacity(n)
        for _ in 0..<n {
            guard let v = readInt() else { offset = start; return nil }
            result.append(v)
        }
        return result
    }

    /// Reads any value, recursively. `depth` is the nesting of this value (leave it at 0);
    /// nil when the value nests deeper than `maximumDepth`.
    public mutating func readValue(depth: Int = 0) -> GuestValue? {
        let start = offset
        guard depth <= ValueReader.maximumDepth, let tag = peekTag() else { return nil }
        let value: GuestValue?
        switch tag {
        case .none: offset += 1; value = GuestValue.none
        case .false, .true: value = readBool().map { GuestValue.bool($0) }
        case .int: value = readInt().map { GuestValue.int($0) }
        case .double: value = readDouble().map { GuestValue.double($0) }
        case .string: value = readString().map { GuestValue.string($0) }
        case .bytes: value = readBytes().map { GuestValue.bytes($0) }
        case .queue: value = readQueue().map { GuestValue.queue($0) }
        case .array:
            guard let n = readArrayHeader() else { return nil }
            var items: [GuestValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n {
                guard let item = readValue(depth: depth + 1) else { offset = start; return nil }
                items.append(item)
            }
            value = .array(items)
        }
        if value == nil { offset = start }
        return value
    }

    /// Consumes the next tag byte if it is `tag`.
    private mutating func expect(_ tag: ValueTag) -> ValueTag? {
        guard peekTag() == tag else { return nil }
        offset += 1
        return tag
    }

    /// Consumes one byte.
    private mutating func readByte() -> UInt8? {
        guard let base, offset < count else { return nil }
        defer { offset += 1 }
        return base[offset]
    }

    /// Consumes an unsigned LEB128 (nil if truncated or over 64 bits).
    private mutating func readULEB() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = readByte() {
            guard shift < 64 else { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return nil
    }

    /// Consumes a signed LEB128 (nil if truncated or over 64 bits).
    private mutating func readSLEB() -> Int64? {
        var result: Int64 = 0
        var shift: Int64 = 0
        while let byte = readByte() {
            guard shift < 64 else { return nil }
            result |= Int64(byte & 0x7F) << shift
            shift += 7
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 { result |= -1 << shift }   // sign-extend
                return result
            }
        }
        return nil
    }

    /// A ULEB128 length that must fit in the remaining input.
    private mutating func readLength() -> Int? {
        guard let n = readULEB(), n <= UInt64(count - offset) else { return nil }
        return Int(n)
    }
}

// MARK: - Returning results and logging

/// The current call's result, logging, and the interpreter running the call.
/// A call's result is the last `return...` made during the call, else the function's own result.
public enum Guest {
    /// Makes `s` the call's result (a string). The host copies it immediately.
    public static func returnString(_ s: String) {
        var s = s
        s.withUTF8 { cf_return_string($0.baseAddress, Int32($0.count)) }
    }

    /// Makes `b` the call's result (bytes). The host copies it immediately.
    public static func returnBytes(_ b: [UInt8]) {
        b.withUnsafeBufferPointer { cf_return_bytes($0.baseAddress, Int32($0.count)) }
    }

    /// Makes the value encoded in `writer` the call's result. The call fails with
    /// `.malformedValue` if `writer` does not hold exactly one value.
    public static func returnValue(_ writer: ValueWriter) {
        writer.bytes.withUnsafeBufferPointer { cf_return_value($0.baseAddress, Int32($0.count)) }
    }

    /// Makes the array of ints `values` the call's result.
    public static func returnInts(_ values: [Int64]) {
        var w = ValueWriter()
        w.writeInts(values)
        returnValue(w)
    }

    /// Writes `message` as one line to the host's standard error, prefixed with
    /// `[interpreter N]`.
    public static func log(_ message: String) {
        var m = message
        m.withUTF8 { cf_log($0.baseAddress, Int32($0.count)) }
    }

    /// Logs `message` and traps (wasm `unreachable`).
    public static func fail(_ message: String) -> Never {
        log(message)
        rt_trap()
    }

    /// Flushes what `print` buffered without a trailing newline.
    public static func flushStdout() { rt_flush_stdout() }

    /// The id of the interpreter running the current call (0 for the main interpreter).
    public static var interpreterID: Int64 { cf_interpreter_id() }
}

// MARK: - Queues

/// Queue status codes returned by the host. A bad pointer is not a status: it aborts the
/// call with an error.
public enum QueueStatus {
    /// Done.
    public static let ok: Int32 = 0
    /// Timed out: the queue stayed empty (get) or full (put).
    public static let emptyOrFull: Int32 = 1
    /// No queue with that id exists (queues are never closed: a queue disappears when every
    /// handle to it is gone).
    public static let noQueue: Int32 = 2
    /// Bad value: `put(encoded:)` got bytes that are not one encoded value, or a get took an
    /// item the host could not hand to the guest (the item is consumed).
    public static let badValue: Int32 = 3
    /// `getInt`/`getIntWithStatus`: the oldest item is not an int (it stays in the queue).
    public static let notInt: Int32 = 4
}

/// A host queue passed to the guest as an argument (an i32 id).
/// Timeouts are in milliseconds: -1 blocks forever, 0 does not wait.
public struct GuestQueue {
    /// The queue's id, as the host passed it.
    public let id: Int32

    /// Wraps the queue id `id` (a queue argument, or one read with `ValueReader.readQueue()`).
    public init(_ id: Int32) { self.id = id }

    /// Puts an int, waiting up to `timeoutMs` while the queue is full; returns a `QueueStatus`.
    @discardableResult
    public func put(_ value: Int64, timeoutMs: Int64 = -1) -> Int32 {
        cf_queue_put_int(id, value, timeoutMs)
    }

    /// Takes the oldest item if it is an int, waiting up to `timeoutMs` while the queue is
    /// empty: the status, and the value when the status is `QueueStatus.ok` (else 0).
    public func getIntWithStatus(timeoutMs: Int64 = -1) -> (status: Int32, value: Int64) {
        var v: Int64 = 0
        let status = cf_queue_get_int(id, timeoutMs, &v)
        return (status, v)
    }

    /// Takes the oldest item if it is an int, or returns nil on any non-ok status.
    public func getInt(timeoutMs: Int64 = -1) -> Int64? {
        let r = getIntWithStatus(timeoutMs: timeoutMs)
        return r.status == QueueStatus.ok ? r.value : nil
    }

    /// Puts one binary-encoded value, waiting up to `timeoutMs` while the queue is full;
    /// returns a `QueueStatus` (`badValue` if `bytes` is not exactly one encoded value).
    @discardableResult
    public func put(encoded bytes: [UInt8], timeoutMs: Int64 = -1) -> Int32 {
        bytes.withUnsafeBufferPointer { cf_queue_put(id, $0.baseAddress, Int32($0.count), timeoutMs) }
    }

    /// Puts the value encoded in `writer`; returns a `QueueStatus`.
    @discardableResult
    public func put(encoded writer: ValueWriter, timeoutMs: Int64 = -1) -> Int32 {
        put(encoded: writer.bytes, timeoutMs: timeoutMs)
    }

    /// Takes the oldest item of any kind, waiting up to `timeoutMs` while the queue is empty:
    /// the status, and the item's encoding when ok (read it with `ValueReader`).
    public func get(timeoutMs: Int64 = -1) -> (status: Int32, bytes: [UInt8]) {
        var out: (Int32, Int32) = (0, 0)
        let status = withUnsafeMutablePointer(to: &out) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { cf_queue_get(id, timeoutMs, $0) }
        }
        guard status == QueueStatus.ok else { return (status, []) }
        let ptr = UnsafeMutablePointer<UInt8>(bitPattern: UInt(UInt32(bitPattern: out.0)))
        let bytes = [UInt8](guestBytes: ptr, count: out.1)
        rt_free(UnsafeMutableRawPointer(ptr))
        return (status, bytes)
    }

    /// The number of items in the queue, or -1 if there is no such queue.
    public var count: Int64 { cf_queue_count(id) }
}

// MARK: - Reading pointer arguments

extension String {
    /// A string argument: decodes the `count` UTF-8 bytes at `ptr` (invalid UTF-8 is
    /// repaired; nil or a non-positive count gives "").
    public init(guestBytes ptr: UnsafePointer<UInt8>?, count: Int32) {
        guard let ptr, count > 0 else { self = ""; return }
        self = String(decoding: UnsafeBufferPointer(start: ptr, count: Int(count)), as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// A bytes argument: a copy of the `count` bytes at `ptr` (nil or a non-positive count
    /// gives []).
    public init(guestBytes ptr: UnsafePointer<UInt8>?, count: Int32) {
        guard let ptr, count > 0 else { self = []; return }
        self = Array(UnsafeBufferPointer(start: ptr, count: Int(count)))
    }
}
