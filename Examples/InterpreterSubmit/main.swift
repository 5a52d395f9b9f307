// The article's interpreter_submit.py: submit a function with three arguments to an
// InterpreterPoolExecutor with one worker and print the result.
//
//     $ swift run InterpreterSubmit
//     Total: result=9

import BundledGuests
import ConcurrentFutures

// `add(a, b, c)` from Guests/Tasks.swift, compiled to WebAssembly with `futures build-guest`.
let add = try BundledGuests.tasks.function("add", returning: Int.self)

let executor = try InterpreterPoolExecutor(maxWorkers: 1)
let future = try executor.submit(add, 1, 3, 5)
let result = try future.result()
print("Total: result=\(result)")
executor.shutdown()
