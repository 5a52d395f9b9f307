import TestSupport
import Testing

@testable import ConcurrentFutures

/// Small WAT modules for the tests.
enum Fixtures {
    /// Arithmetic, traps, state, memory and strings.
    static let basic = """
        (module
          (import "cf" "return_string" (func $return_string (param i32 i32)))
          (import "cf" "interpreter_id" (func $interpreter_id (result i64)))
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 1024))
          (global $counter (mut i64) (i64.const 0))
          (func (export "cf_alloc") (param $n i32) (result i32) (local $p i32)
            global.get $heap
            local.set $p
            global.get $heap
            local.get $n
            i32.add
            global.set $heap
            local.get $p)
          (func (export "add") (param i64 i64) (result i64) local.get 0 local.get 1 i64.add)
          (func (export "add3") (param i64 i64 i64) (result i64)
            local.get 0 local.get 1 i64.add local.get 2 i64.add)
          (func (export "square") (param i64) (result i64) local.get 0 local.get 0 i64.mul)
          (func (export "half") (param f64) (result f64) local.get 0 f64.const 0.5 f64.mul)
          (func (export "noop"))
          (func (export "boom") unreachable)
          (func (export "div") (param i64 i64) (result i64) local.get 0 local.get 1 i64.div_s)
          (func (export "oob") (result i32) i32.const 0x7ffffff0 i32.load)
          (func $recurse (export "recurse") (param i64) (result i64)
            local.get 0 i64.const 1 i64.add call $recurse i64.const 1 i64.add)
          (func (export "spin") (loop $forever br $forever))
          (func (export "bump") (result i64)
            global.get $counter i64.const 1 i64.add global.set $counter global.get $counter)
          (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
          (func (export "length") (param i32 i32) (result i32) local.get 1)
          (func (export "echo") (param i32 i32) local.get 0 local.get 1 call $return_string)
          (func (export "bad_return") i32.const 0x7ffffff0 i32.const 100 call $return_string)
          (func (export "whoami") (result i64) call $interpreter_id)
        )
        """

    /// Producer and consumer over a queue, as in the article's queue_workers program.
    static let queues = """
        (module
          (import "cf" "queue_put_int" (func $put (param i32 i64 i64) (result i32)))
          (import "cf" "queue_get_int" (func $get (param i32 i64 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "producer") (param $q i32) (result i64) (local $i i64)
            (loop $next
              (drop (call $put (local.get $q) (i64.mul (local.get $i) (local.get $i)) (i64.const -1)))
              (local.set $i (i64.add (local.get $i) (i64.const 1)))
              (br_if $next (i64.lt_s (local.get $i) (i64.const 5))))
            (i64.const 5))
          (func (export "get_one") (param $q i32) (param $timeout i64) (result i64)
            (if (i32.ne (call $get (local.get $q) (local.get $timeout) (i32.const 16)) (i32.const 0))
              (then (return (i64.const -1))))
            (i64.load (i32.const 16)))
          (func (export "put_one") (param $q i32) (param $value i64) (result i32)
            (call $put (local.get $q) (local.get $value) (i64.const -1)))
        )
        """

    static func module(_ wat: String, name: String = "fixture") -> GuestModule {
        try! GuestModule(wat: wat, name: name)
    }
}

/// Expects `body` to throw an `E` that `matches`; `expected` names it in the failure message.
func expectError<E: Error>(
    _ expected: String, sourceLocation: SourceLocation, _ body: () throws -> Void, matches: (E) -> Bool
) {
    do {
        try body()
        Issue.record("expected \(expected), nothing thrown", sourceLocation: sourceLocation)
    } catch let error as E {
        #expect(matches(error), "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

func expectFailure(
    _ kind: GuestError.Kind, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    expectError("GuestError(\(kind))", sourceLocation: sourceLocation, body) { (error: GuestError) in error.kind == kind }
}
