/// Guests that attack the host: each is one kind of bug a hostile or broken guest can try. The
/// hardening tests run them one by one, and the module fuzzer mutates them.
enum HostileGuests {
    /// Catches an exception with `catch_all_ref`, keeps the `exnref` in a global and rethrows it
    /// later with `throw_ref`: in WasmKit 0.4.2 the kept reference outlives its store's
    /// exception table, and rethrowing it killed the host.
    static let staleException = """
        (module
          (tag $t)
          (global $saved (mut exnref) (ref.null exn))
          (func (export "keep")
            (block $caught (result exnref)
              (try_table (catch_all_ref $caught) (throw $t))
              unreachable)
            global.set $saved)
          (func (export "rethrow") (throw_ref (global.get $saved))))
        """

    /// `try_table` alone, without a tag: still exception handling.
    static let tryTableOnly = """
        (module
          (func (export "f") (result i32)
            (block $done (result i32)
              (try_table (result i32) (catch_all $done) (i32.const 1)))))
        """

    /// Throws a fresh exception each call and catches it, keeping every one: caught exceptions
    /// are host memory.
    static let exceptionGrowth = """
        (module
          (tag $t (param i64))
          (func (export "spin") (local $i i64)
            (loop $again
              (block $caught (result exnref)
                (try_table (catch_all_ref $caught) (throw $t (local.get $i)))
                unreachable)
              drop
              (local.set $i (i64.add (local.get $i) (i64.const 1)))
              (br $again))))
        """

    /// `cf_alloc` calls `cf.queue_get`, which calls `cf_alloc` again: unbounded recursion through
    /// the host unless the host refuses to re-enter.
    static let reentrantAllocator = """
        (module
          (import "cf" "queue_get" (func $get (param i32 i64 i32) (result i32)))
          (memory (export "memory") 1)
          (global $queue (mut i32) (i32.const 0))
          (func (export "set_queue") (param i32) (global.set $queue (local.get 0)))
          (func (export "cf_alloc") (param i32) (result i32)
            (drop (call $get (global.get $queue) (i64.const 0) (i32.const 64)))
            (i32.const 1024))
          (func (export "take") (param i32) (result i32)
            (call $get (local.get 0) (i64.const 0) (i32.const 32)))
          (func (export "length") (param i32 i32) (result i32) (local.get 1)))
        """

    /// A start function that never returns.
    static let loopingStart = """
        (module
          (memory (export "memory") 1)
          (func $spin (loop $forever (br $forever)))
          (start $spin)
          (func (export "answer") (result i64) (i64.const 42)))
        """

    /// An allocator that never returns.
    static let loopingAllocator = """
        (module
          (memory (export "memory") 1)
          (func (export "cf_alloc") (param i32) (result i32) (loop $forever (br $forever)) (i32.const 0))
          (func (export "length") (param i32 i32) (result i32) (local.get 1)))
        """

    /// An allocator that works and a `cf_free` that never returns.
    static let loopingFree = """
        (module
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 1024))
          (func (export "cf_alloc") (param $n i32) (result i32) (local $p i32)
            (local.set $p (global.get $heap))
            (global.set $heap (i32.add (global.get $heap) (local.get $n)))
            (local.get $p))
          (func (export "cf_free") (param i32) (loop $forever (br $forever)))
          (func (export "length") (param i32 i32) (result i32) (local.get 1)))
        """

    /// Grows memory one page at a time until refused: each growth copies the whole memory.
    static let memoryGrowth = """
        (module
          (memory (export "memory") 1)
          (func (export "grow_all") (result i32) (local $pages i32)
            (loop $again
              (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))
                (then (local.set $pages (i32.add (local.get $pages) (i32.const 1))) (br $again))))
            (local.get $pages)))
        """

    /// Grows a table by 1,000 elements at a time until refused.
    static let tableGrowth = """
        (module
          (table $t 0 funcref)
          (func (export "grow_table") (result i32)
            (loop $again
              (br_if $again (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1))))
            (table.size $t)))
        """

    /// 64 tables of a million elements each: 512 MB of host memory at instantiation.
    static var manyTables: String {
        "(module " + String(repeating: "(table 1000000 funcref) ", count: 64) + "(func (export \"f\")))"
    }

    /// Puts a 1 KiB value into a queue until refused.
    static let queueFlood = """
        (module
          (import "cf" "queue_put" (func $put (param i32 i32 i32 i64) (result i32)))
          (memory (export "memory") 1)
          ;; The binary form of 1,020 zero bytes: tag 6, the count 1020 in LEB128, then the bytes.
          (data (i32.const 0) "\\06\\fc\\07")
          (func (export "flood") (param $q i32) (result i64) (local $n i64)
            (loop $again
              (if (i32.eqz (call $put (local.get $q) (i32.const 0) (i32.const 1023) (i64.const 0)))
                (then (local.set $n (i64.add (local.get $n) (i64.const 1))) (br $again))))
            (local.get $n)))
        """

    /// A host import called through a table (`call_indirect`), with a bad pointer: the compiled
    /// engine once read its host table from the wrong address this way.
    static let importThroughTable = """
        (module
          (import "cf" "return_string" (func $return_string (param i32 i32)))
          (import "cf" "log" (func $log (param i32 i32)))
          (type $two (func (param i32 i32)))
          (memory (export "memory") 1)
          (table 2 funcref)
          (elem (i32.const 0) $return_string $log)
          (func (export "indirect") (param $which i32) (param $pointer i32)
            (call_indirect (type $two) (local.get $pointer) (i32.const 4) (local.get $which))))
        """

    /// A type section of 3,000 entries, most of them distinct (the compiled engine's type registry
    /// once searched them linearly at every load and aborted past 65,536).
    static var manyTypes: String {
        let types = (0..<3000).map { index in
            let parameters = (0..<12).map { bit in index >> bit & 1 == 1 ? "i64" : "i32" }.joined(separator: " ")
            return "(type (func (param \(parameters)) (result \(index % 2 == 0 ? "i32" : "f64"))))"
        }
        return "(module \(types.joined(separator: " ")) (table 2 funcref) (func (export \"probe\") (result i32) i32.const 1))"
    }

    /// A WASI guest without memory pages calling WASI with empty ranges: a memory of no bytes has
    /// no address at all, and WasmKit stops the process on any access to one.
    static let wasiWithoutMemory = """
        (module
          (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 0)
          (func (export "random") (result i32) (call $random_get (i32.const 0) (i32.const 0)))
          (func (export "write") (result i32) (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))))
        """

    /// Every hostile guest, as module bytes, for the fuzzer's seeds (the exception-handling ones
    /// included: they must be refused at load, mutated or not).
    static var all: [String] {
        [
            staleException, tryTableOnly, exceptionGrowth, reentrantAllocator, loopingStart, loopingAllocator,
            loopingFree, memoryGrowth, tableGrowth, queueFlood, importThroughTable, wasiWithoutMemory,
        ]
    }
}
