// Examples.swift: an example guest built with the runtime (Runtime/GuestRuntime.swift + Runtime/rt.c).
// Every export below is one callable "function" of the interpreter; see README.md for the ABI.

import _Volatile

// MARK: - Queues

/// producer(queue) -> int: puts 0, 1, 4, 9, 16 (blocking); returns how many were put.
@_expose(wasm, "producer") @_cdecl("producer")
public func producer(_ queue: Int32) -> Int64 {
    let q = GuestQueue(queue)
    var put: Int64 = 0
    for i: Int64 in 0..<5 {
        guard q.put(i * i, timeoutMs: -1) == QueueStatus.ok else { break }
        put += 1
    }
    return put
}

/// consumer(queue) -> [int]: gets 5 ints (blocking) and returns them as an array.
/// Stops early (returning what it got) if the queue fails or closes.
@_expose(wasm, "consumer") @_cdecl("consumer")
public func consumer(_ queue: Int32) {
    let q = GuestQueue(queue)
    var items: [Int64] = []
    for _ in 0..<5 {
        guard let v = q.getInt(timeoutMs: -1) else { break }
        items.append(v)
    }
    Guest.returnInts(items)
}

/// put_values(queue) -> int status: puts the string "hello", then the array [1, "two", 3.5, none, true].
@_expose(wasm, "put_values") @_cdecl("put_values")
public func put_values(_ queue: Int32) -> Int32 {
    let q = GuestQueue(queue)
    var s = ValueWriter()
    s.writeString("hello")
    let status = q.put(encoded: s)
    guard status == QueueStatus.ok else { return status }
    var a = ValueWriter()
    a.beginArray(count: 5)
    a.writeInt(1)
    a.writeString("two")
    a.writeDouble(3.5)
    a.writeNone()
    a.writeBool(true)
    return q.put(encoded: a)
}

/// get_value(queue, timeout_ms) -> any: gets one item of any type and returns it as is.
/// If the get fails, the result is the int status instead (1 timed out, 2 no queue/closed, ...).
@_expose(wasm, "get_value") @_cdecl("get_value")
public func get_value(_ queue: Int32, _ timeoutMs: Int64) -> Int32 {
    let (status, bytes) = GuestQueue(queue).get(timeoutMs: timeoutMs)
    if status == QueueStatus.ok {
        bytes.withUnsafeBufferPointer { cf_return_value($0.baseAddress, Int32($0.count)) }
    }
    return status
}

/// queue_len(queue) -> int: items in the queue (negative for an unknown queue).
@_expose(wasm, "queue_len") @_cdecl("queue_len")
public func queue_len(_ queue: Int32) -> Int64 {
    GuestQueue(queue).count
}

// MARK: - Strings, bytes, arrays

/// upper(string) -> string: ASCII uppercase (other bytes unchanged).
@_expose(wasm, "upper") @_cdecl("upper")
public func upper(_ ptr: UnsafePointer<UInt8>?, _ len: Int32) {
    var bytes = [UInt8](guestBytes: ptr, count: len)
    for i in bytes.indices where bytes[i] >= 0x61 && bytes[i] <= 0x7A {
        bytes[i] -= 0x20
    }
    bytes.withUnsafeBufferPointer { cf_return_string($0.baseAddress, Int32($0.count)) }
}

/// greet(string) -> string: "Hello, <name>!".
@_expose(wasm, "greet") @_cdecl("greet")
public func greet(_ ptr: UnsafePointer<UInt8>?, _ len: Int32) {
    let name = String(guestBytes: ptr, count: len)
    Guest.returnString("Hello, \(name)!")
}

/// reverse_bytes(bytes) -> bytes.
@_expose(wasm, "reverse_bytes") @_cdecl("reverse_bytes")
public func reverse_bytes(_ ptr: UnsafePointer<UInt8>?, _ len: Int32) {
    Guest.returnBytes([UInt8](guestBytes: ptr, count: len).reversed())
}

/// sum_array(array of ints) -> int (wrapping sum). Traps, after logging, if the argument is not one.
@_expose(wasm, "sum_array") @_cdecl("sum_array")
public func sum_array(_ ptr: UnsafePointer<UInt8>?, _ len: Int32) -> Int64 {
    var reader = ValueReader(ptr, count: len)
    guard let values = reader.readInts() else { Guest.fail("sum_array: expected an array of ints") }
    var total: Int64 = 0
    for v in values { total &+= v }
    return total
}

/// describe(array) -> array: decodes the argument completely and re-encodes it, so the
/// host gets back an equal value (a round trip through ValueReader and ValueWriter).
@_expose(wasm, "describe") @_cdecl("describe")
public func describe(_ ptr: UnsafePointer<UInt8>?, _ len: Int32) {
    var reader = ValueReader(ptr, count: len)
    guard let value = reader.readValue(), reader.isAtEnd else { Guest.fail("describe: malformed value") }
    var writer = ValueWriter()
    writer.write(value)
    Guest.returnValue(writer)
}

// MARK: - Logging and stdout

/// log_hello() -> none: one line through cf.log.
@_expose(wasm, "log_hello") @_cdecl("log_hello")
public func log_hello() {
    Guest.log("hello from Examples.wasm")
}

/// print_hello() -> none: Swift's print, which goes putchar -> cf.write(1, ...).
@_expose(wasm, "print_hello") @_cdecl("print_hello")
public func print_hello() {
    print("hello from print in Examples.wasm")
}

// MARK: - Faults

/// trap_unreachable(): executes wasm `unreachable`.
@_expose(wasm, "trap_unreachable") @_cdecl("trap_unreachable")
public func trap_unreachable() {
    rt_trap()
}

/// divide(a, b) -> int: a genuine i64.div_s (in rt.c), so divide(1, 0) traps with
/// "integer divide by zero" rather than Swift's checked `/` (which would hit `unreachable`).
@_expose(wasm, "divide") @_cdecl("divide")
public func divide(_ a: Int64, _ b: Int64) -> Int64 {
    rt_div_s64(a, b)
}

/// recurse(n) -> int: never returns normally; recurses until the interpreter's call stack
/// is exhausted. The call is not in tail position (its result is used), and the recursion
/// has no reachable base case the optimizer could see, so it stays a real call chain.
@_expose(wasm, "recurse") @_cdecl("recurse")
public func recurse(_ n: Int64) -> Int64 {
    recurseForever(n)
}

@inline(never)
func recurseForever(_ n: Int64) -> Int64 {
    // `spinFlag` is only known at run time and is never 0, so this is not a base case
    // the compiler can use, while the `&* 3 &+ n` keeps the call out of tail position.
    if volatileLoad(&spinFlag) == 0 { return n }
    return recurseForever(n &+ 1) &* 3 &+ n
}

/// recurse_depth(n) -> int: recurses n levels and returns n (a bounded recursion that succeeds).
@_expose(wasm, "recurse_depth") @_cdecl("recurse_depth")
public func recurse_depth(_ n: Int64) -> Int64 {
    depth(n)
}

@inline(never)
func depth(_ n: Int64) -> Int64 {
    if n <= 0 { return 0 }
    return depth(n &- 1) &+ 1 &* Int64(volatileLoad(&spinFlag))
}

/// spin(): loops forever, reloading a global through a volatile pointer every iteration,
/// so the loop cannot be hoisted or deleted. Only the host can stop it.
nonisolated(unsafe) var spinFlag: UInt32 = 1

@_expose(wasm, "spin") @_cdecl("spin")
public func spin() {
    while volatileLoad(&spinFlag) != 0 {}
}

@inline(__always)
func volatileLoad(_ p: UnsafeMutablePointer<UInt32>) -> UInt32 {
    VolatileMappedRegister<UInt32>(unsafeBitPattern: UInt(bitPattern: p)).load()
}

/// grow_memory(pages) -> int: memory.grow; the old size in pages, or -1.
@_expose(wasm, "grow_memory") @_cdecl("grow_memory")
public func grow_memory(_ pages: Int32) -> Int32 {
    rt_memory_grow(pages)
}

/// memory_pages() -> int: the current memory size in 64 KiB pages.
@_expose(wasm, "memory_pages") @_cdecl("memory_pages")
public func memory_pages() -> Int32 {
    rt_memory_pages()
}

/// allocate_mib(n) -> int: mallocs n MiB, writes every byte, frees it; 1 on success, 0 on failure.
@_expose(wasm, "allocate_mib") @_cdecl("allocate_mib")
public func allocate_mib(_ n: Int32) -> Int32 {
    guard n >= 0, n < 2047 else { return 0 }
    let size = Int(n) << 20
    guard let p = rt_malloc(size) else { return 0 }
    p.initializeMemory(as: UInt8.self, repeating: 0xA5, count: size)   // memset -> memory.fill
    rt_free(p)
    return 1
}

/// return_bad_pointer(): hands cf.return_string a pointer far outside memory; the host must reject it.
@_expose(wasm, "return_bad_pointer") @_cdecl("return_bad_pointer")
public func return_bad_pointer() {
    cf_return_string(UnsafeRawPointer(bitPattern: 0x7fff_0000), 100)
}

// MARK: - The article's pickle_check

/// add(a, b) -> int: a + b, the article's module-level function.
@_expose(wasm, "add") @_cdecl("add")
public func add(_ a: Int64, _ b: Int64) -> Int64 {
    a &+ b
}
