// ConcurrentFutures: Python's concurrent.futures and concurrent.interpreters (PEP 734), in Swift.
//
// One import gives the whole library: futures and the executor protocol (`Futures`), the
// interpreters and the interpreter pool (`Interpreters`), what pools of other processes share
// (`RemoteCalls`: remote errors, chunked submission), the process pool (`ProcessPool`), and the
// MPI pool (`MPIPool`).
@_exported import Futures
@_exported import MPIPool
@_exported import ProcessPool
@_exported import RemoteCalls
@_exported import WasmInterpreters
