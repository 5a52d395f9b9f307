public import Futures
public import WasmInterpreters

/// An executor whose workers are other processes, so that calls travel in messages: the process
/// pool and the MPI pool. Such an executor can send several calls per message, and its `map`
/// takes a `chunkSize`, as Python's process pool's does.
public protocol ChunkingExecutor: JobExecutor {
    /// Schedules `calls`, sending `chunkSize` of them at a time: each chunk is one request and
    /// one reply. Futures and outcomes stay per call.
    ///
    /// - Throws: What ``Futures/PoolExecutor/submit(_:)`` throws; ``Futures/ExecutorError``
    ///   `.invalidArgument` for a `chunkSize` below 1.
    func submit<Success: Sendable>(contentsOf calls: [Call<Success>], chunkSize: Int) throws -> [Future<Success>]
}

extension ChunkingExecutor {
    /// Schedules a job or guest function call.
    ///
    /// A call whose arguments cannot be encoded returns a future already failed with
    /// ``Futures/NotShareableError``.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.shutdown` after shutdown, the pool's broken-pool
    ///   error once broken (`.brokenProcessPool`, `.brokenMPIPool`); ``Futures/NotShareableError``
    ///   for a host closure, or a call that takes a queue.
    public func submit<Success: Sendable>(_ call: Call<Success>) throws -> Future<Success> {
        try submit(contentsOf: [call], chunkSize: 1)[0]
    }

    /// Schedules every call in `calls` with one acquisition of the queue's lock, or none.
    ///
    /// - Throws: What ``submit(_:)`` throws.
    public func submit<Success: Sendable>(contentsOf calls: [Call<Success>]) throws -> [Future<Success>] {
        try submit(contentsOf: calls, chunkSize: 1)
    }

    /// Runs `job` over `inputs`, sending `chunkSize` inputs per request, results in input order.
    /// See ``Futures/PoolExecutor/map(_:timeout:bufferSize:call:)`` for `timeout` and `bufferSize`
    /// (which counts chunks, as in Python).
    ///
    /// - Throws: ``Futures/ExecutorError`` `.invalidArgument` for a `chunkSize` or `bufferSize`
    ///   below 1; what `submit` throws.
    public func map<Argument, Success>(
        _ job: Job<Argument, Success>, _ inputs: some Sequence<Argument>, chunkSize: Int,
        timeout: Duration? = nil, bufferSize: Int? = nil
    ) throws -> MapResults<Success> {
        try mapChunks(inputs, chunkSize: chunkSize, timeout: timeout, bufferSize: bufferSize) { job.call($0) }
    }

    /// Runs `function` over `inputs`, sending `chunkSize` inputs per request. See
    /// ``map(_:_:chunkSize:timeout:bufferSize:)-(Job<Argument,Success>,_,_,_,_)``.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.invalidArgument` for a `chunkSize` or `bufferSize`
    ///   below 1; what `submit` throws.
    public func map<Input: Shareable, Success>(
        _ function: GuestFunction<Success>, _ inputs: some Sequence<Input>, chunkSize: Int,
        timeout: Duration? = nil, bufferSize: Int? = nil
    ) throws -> MapResults<Success> {
        try mapChunks(inputs, chunkSize: chunkSize, timeout: timeout, bufferSize: bufferSize) { function.call($0) }
    }

    /// Submits `makeCall(input)` for each input, `chunkSize` calls per request, results in input
    /// order: the general form, for calls with several arguments from a sequence of tuples
    /// (mpi4py's `starmap`: `pool.map(pairs, chunkSize: 100) { add.call($0.0, $0.1) }`). See
    /// ``map(_:_:chunkSize:timeout:bufferSize:)-(Job<Argument,Success>,_,_,_,_)``.
    ///
    /// - Throws: ``Futures/ExecutorError`` `.invalidArgument` for a `chunkSize` or `bufferSize`
    ///   below 1; what `submit` throws.
    public func map<Input, Success>(
        _ inputs: some Sequence<Input>, chunkSize: Int, timeout: Duration? = nil, bufferSize: Int? = nil,
        call makeCall: @escaping (Input) -> Call<Success>
    ) throws -> MapResults<Success> {
        try mapChunks(inputs, chunkSize: chunkSize, timeout: timeout, bufferSize: bufferSize, makeCall)
    }

    private func mapChunks<Input, Success>(
        _ inputs: some Sequence<Input>, chunkSize: Int, timeout: Duration?, bufferSize: Int?,
        _ makeCall: @escaping (Input) -> Call<Success>
    ) throws -> MapResults<Success> {
        guard chunkSize >= 1 else {
            throw ExecutorError(.invalidArgument, "chunkSize must be >= 1, got \(chunkSize)")
        }
        return try MapResults(
            inputs: inputs, timeout: timeout, bufferSize: bufferSize.map { $0 * chunkSize },
            submit: { [weak self] inputs in
                try self?.submit(contentsOf: inputs.map(makeCall), chunkSize: chunkSize)
            })
    }
}
