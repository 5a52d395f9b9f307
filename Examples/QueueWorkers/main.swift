// The article's queue_workers.py: a queue made in the main interpreter, passed to a producer and
// a consumer running on two workers (two interpreters) of one InterpreterPoolExecutor.
//
//     $ swift run QueueWorkers
//     Result: [0, 1, 4, 9, 16]

import BundledGuests
import ConcurrentFutures

// Guests/Examples.swift: producer puts i * i for i in 0..<5; consumer gets 5 items and returns them.
let producer = try BundledGuests.examples.function("producer", returning: Int.self)
let consumer = try BundledGuests.examples.function("consumer", returning: [Int].self)

let queue = Interpreters.createQueue()
try InterpreterPoolExecutor(maxWorkers: 2, modules: [BundledGuests.examples]).run { executor in
    _ = try executor.submit(producer, queue)
    let future = try executor.submit(consumer, queue)
    print("Result: \(try future.result())")
}
