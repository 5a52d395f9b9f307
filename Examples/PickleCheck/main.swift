// The article's pickle_check.py: what can be sent to an interpreter and what cannot.
//
//     $ swift run PickleCheck
//     add(3, 5) = 8
//     local_add(3, 5) = 8
//     closure error: NotShareableError
//     isShareable(42) = true, isShareable(Point) = false, isShareable(closure) = false
//     scale(Point(x: 1, y: 2)) = Point(x: 10, y: 20)
//
// In Python the question is "does the function capture outer state". Here guest functions are
// WebAssembly: they carry no host state at all, so any of them can go to any interpreter, and a
// Swift closure never can. The types catch it first: `InterpreterPoolExecutor` has no
// `submit { ... }`, so the closure below only gets this far through the generic `Call` form.

import BundledGuests
import ConcurrentFutures

try InterpreterPoolExecutor(maxWorkers: 1).run { executor in
    // 1. A module-level function (from Guests/Examples.swift): OK.
    let add = try BundledGuests.examples.function("add", returning: Int.self)
    print("add(3, 5) = \(try executor.submit(add, 3, 5).result())")

    // 2. A stateless function defined right here, as WebAssembly text: its code goes with it. OK.
    let local = try GuestModule(
        wat: """
            (module (func (export "local_add") (param i64 i64) (result i64)
              local.get 0 local.get 1 i64.add))
            """, name: "local")
    let localAdd = try local.function("local_add", returning: Int.self)
    print("local_add(3, 5) = \(try executor.submit(localAdd, 3, 5).result())")

    // 3. A host closure that captures an outer variable: it cannot cross.
    let offset = 10
    do {
        let future = try executor.submit(Call { 3 + 5 + offset })
        print("add_with_offset(3, 5) = \(try future.result())")
    } catch {
        print("closure error: \(type(of: error))")
    }
}

// Natively shareable values cross as they are; other Codable types cross by their encoding (the
// analog of the pickle fallback); anything else does not compile as an argument.
struct Point: Codable, Shareable, CustomStringConvertible {
    var x: Int
    var y: Int
    var description: String { "Point(x: \(x), y: \(y))" }
}
print("isShareable(42) = \(isShareable(42)), isShareable(Point) = \(isShareable(Point(x: 0, y: 0))), isShareable(closure) = \(isShareable({ 1 }))")

let scale = Job("scale") { (point: Point) in Point(x: point.x * 10, y: point.y * 10) }
try ThreadPoolExecutor(maxWorkers: 1).run { executor in
    print("scale(Point(x: 1, y: 2)) = \(try executor.submit(scale, Point(x: 1, y: 2)).result())")
}
