// ConcurrentFutures: Python's concurrent.futures and concurrent.interpreters (PEP 734), in Swift.
//
// One import gives the whole library: futures and the executor protocol (`Futures`), the
// interpreters and the interpreter pool (`Interpreters`), what pools of other processes share
// (`RemoteCalls`: remote errors, chunked submission), the process pool (`ProcessPool`), the
// MPI pool (`MPIPool`), and executors as services of swift-service-lifecycle (`FuturesLifecycle`).
@_exported import Futures
@_exported import FuturesLifecycle
@_exported import MPIPool
@_exported import ProcessPool
@_exported import RemoteCalls
@_exported import WasmInterpreters
