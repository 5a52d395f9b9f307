// The README's four programs, one per executor, as one runnable target:
//
//     $ swift run FourExecutors
//     thread: [1, 4, 9, 16, 25]
//     interpreter: [1, 4, 9, 16, 25]
//     process: [1, 4, 9, 16, 25]
//     mpi: not under mpiexec (mpiexec -n 3 .build/debug/FourExecutors)

import BundledGuests
import ConcurrentFutures

let square = Job("square") { (x: Int) in x * x }
// First in main: in a worker process (or an MPI worker rank) this serves, and never returns.
ProcessWorker.runIfRequested(jobs: [square])
MPIWorker.runIfRequested(jobs: [square])

// Threads: Swift closures, in parallel (Swift has no GIL).
let threads = try ThreadPoolExecutor(maxWorkers: 4).run { pool in
    try pool.map(1...5) { $0 * $0 }.collect()
}
print("thread: \(threads)")

// Interpreters: a WebAssembly function, one sandboxed interpreter per worker.
let guestSquare = try BundledGuests.tasks.function("square", returning: Int.self)
let guests = try InterpreterPoolExecutor(maxWorkers: 4).run { pool in
    try pool.map(guestSquare, 1...5).collect()
}
print("interpreter: \(guests)")

// Processes: a named job, in child processes of this program.
let processes = try ProcessPoolExecutor(maxWorkers: 2).run { pool in
    try pool.map(square, 1...5).collect()
}
print("process: \(processes)")

// MPI ranks: the same job, on the other ranks of an `mpiexec` launch.
if MPIWorker.isLaunched {
    let ranks = try MPIPoolExecutor().run { pool in
        try pool.map(square, 1...5).collect()
    }
    print("mpi: \(ranks)")
} else {
    print("mpi: not under mpiexec (mpiexec -n 3 .build/debug/FourExecutors)")
}
