// The article's interpreter_map.py: map a function over five values on three workers; the
// results come back in input order.
//
//     $ swift run InterpreterMap
//     Result: [1, 4, 9, 16, 25]

import BundledGuests
import ConcurrentFutures

let square = try BundledGuests.tasks.function("square", returning: Int.self)
let values = [1, 2, 3, 4, 5]

// `run` shuts the executor down when the block ends, like Python's `with`.
let results = try InterpreterPoolExecutor(maxWorkers: 3).run { executor in
    try executor.map(square, values).collect()
}
print("Result: \(results)")
