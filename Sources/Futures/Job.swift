/// A Swift function registered under a name, so that a worker process can run it: the analog of
/// Python pickling a module-level function by its qualified name.
///
/// A job runs directly on ``ThreadPoolExecutor`` and by name on `ProcessPoolExecutor`, whose
/// workers find it among the jobs the program registers at startup (see `ProcessWorker`).
/// Arguments and results are `Codable`; they cross to a worker process as ``Value``s
/// (``ValueEncoder``).
///
/// ```swift
/// let double = Job("double") { (x: Int) in x * 2 }
/// let future = try pool.submit(double, 21)   // 42
/// ```
public struct Job<Argument: Codable & Sendable, Result: Codable & Sendable>: Sendable {
    /// The name workers look the job up by; unique within a program.
    public let name: String
    /// The function.
    public let body: @Sendable (Argument) throws -> Result

    /// Creates a job named `name` running `body`.
    public init(_ name: String, _ body: @escaping @Sendable (Argument) throws -> Result) {
        self.name = name
        self.body = body
    }

    /// Binds the job to `argument`, for ``Executor/submit(_:)``.
    ///
    /// An argument that cannot be encoded does not fail here: the call's future fails with
    /// ``NotShareableError`` when it is submitted to a process pool.
    public func call(_ argument: Argument) -> Call<Result> {
        let body = self.body
        let remote: RemoteCall
        do {
            remote = .job(name: name, argument: try ValueEncoder().encode(argument))
        } catch {
            remote = .unencodable(NotShareableError("the argument of job '\(name)' cannot be encoded: \(error)"))
        }
        return Call(
            summary: "job '\(name)'",
            local: { try body(argument) },
            remote: remote,
            decode: { try ValueDecoder().decode(Result.self, from: $0) })
    }
}

/// A job of any type, as a worker process's registry holds it.
public protocol AnyJob: Sendable {
    /// The name workers look the job up by.
    var name: String { get }

    /// Decodes `argument`, runs the job, and encodes its result.
    ///
    /// - Throws: `DecodingError` for an argument of the wrong shape, `EncodingError` for a result
    ///   without an encoding, or what the job throws.
    func invoke(encoded argument: Value) throws -> Value
}

extension Job: AnyJob {
    /// Decodes `argument` as `Input`, runs the job and encodes its result.
    ///
    /// - Throws: `DecodingError`, `EncodingError`, or what the job throws.
    public func invoke(encoded argument: Value) throws -> Value {
        try ValueEncoder().encode(body(try ValueDecoder().decode(Argument.self, from: argument)))
    }
}

extension Executor where Self: JobExecutor {
    /// Schedules `job` with `argument` and returns the future of its result.
    ///
    /// - Throws: What ``Executor/submit(_:)`` throws.
    public func submit<Argument, Result>(_ job: Job<Argument, Result>, _ argument: Argument) throws -> Future<Result> {
        try submit(job.call(argument))
    }

    /// Runs `job` over `inputs`, results in input order. See ``Executor/map(_:timeout:bufferSize:call:)``.
    ///
    /// - Throws: ``ExecutorError`` `.invalidArgument` for a bad `bufferSize`; what `submit` throws.
    public func map<Argument, Result>(
        _ job: Job<Argument, Result>,
        _ inputs: some Sequence<Argument>,
        timeout: Duration? = nil,
        bufferSize: Int? = nil
    ) throws -> MapResults<Result> {
        try map(inputs, timeout: timeout, bufferSize: bufferSize) { job.call($0) }
    }
}

/// An executor that can run ``Job``s: ``ThreadPoolExecutor`` (directly) and `ProcessPoolExecutor`
/// (by name, in a worker process). `InterpreterPoolExecutor` cannot: a job is host code.
public protocol JobExecutor: Executor {}
