/// A Swift function registered under a name, so that a worker process can run it: the analog of
/// Python pickling a module-level function by its qualified name.
///
/// A job runs directly on ``ThreadPoolExecutor`` and by name on `ProcessPoolExecutor`, whose
/// workers find it among the jobs the program registers at startup (see `ProcessWorker`).
/// Arguments and results are `Codable`; they cross to a worker process as ``ShareableValue``s
/// (``ShareableValueEncoder``).
///
/// ```swift
/// let double = Job("double") { (x: Int) in x * 2 }
/// let future = try pool.submit(double, 21)   // 42
/// ```
public struct Job<Input: Codable & Sendable, Output: Codable & Sendable>: Sendable {
    /// The name workers look the job up by; unique within a program.
    public let name: String
    /// The function.
    public let body: @Sendable (Input) throws -> Output

    /// Creates a job named `name` running `body`.
    public init(_ name: String, _ body: @escaping @Sendable (Input) throws -> Output) {
        self.name = name
        self.body = body
    }

    /// Binds the job to `argument`, for ``PoolExecutor/submit(_:)``.
    ///
    /// An argument that cannot be encoded does not fail here: the call's future fails with
    /// ``NotShareableError`` when it is submitted to a process pool.
    public func call(_ argument: Input) -> Call<Output> {
        let body = self.body
        let remote: RemoteCall
        do {
            remote = .job(name: name, argument: try ShareableValueEncoder().encode(argument))
        } catch {
            remote = .unencodable(NotShareableError("the argument of job '\(name)' cannot be encoded: \(error)"))
        }
        return Call(
            kind: "job", name: name,
            local: { try body(argument) },
            remote: remote,
            decode: { try ShareableValueDecoder().decode(Output.self, from: $0) })
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
    func invoke(encoded argument: ShareableValue) throws -> ShareableValue
}

extension Job: AnyJob {
    /// Decodes `argument` as `Input`, runs the job and encodes its result.
    ///
    /// - Throws: `DecodingError`, `EncodingError`, or what the job throws.
    public func invoke(encoded argument: ShareableValue) throws -> ShareableValue {
        try ShareableValueEncoder().encode(body(try ShareableValueDecoder().decode(Input.self, from: argument)))
    }
}

extension PoolExecutor where Self: JobExecutor {
    /// Schedules `job` with `argument` and returns the future of its result.
    ///
    /// - Throws: What ``PoolExecutor/submit(_:)`` throws.
    public func submit<Input, Output>(_ job: Job<Input, Output>, _ argument: Input) throws -> Future<Output> {
        try submit(job.call(argument))
    }

    /// Runs `job` over `inputs`, results in input order. See ``PoolExecutor/map(_:timeout:bufferSize:call:)``.
    ///
    /// - Throws: ``ExecutorError`` `.invalidArgument` for a bad `bufferSize`; what `submit` throws.
    public func map<Input, Output>(
        _ job: Job<Input, Output>,
        _ inputs: some Sequence<Input>,
        timeout: Duration? = nil,
        bufferSize: Int? = nil
    ) throws -> MapResults<Output> {
        try map(inputs, timeout: timeout, bufferSize: bufferSize) { job.call($0) }
    }
}

/// An executor that can run ``Job``s: ``ThreadPoolExecutor`` (directly) and `ProcessPoolExecutor`
/// (by name, in a worker process). `InterpreterPoolExecutor` cannot: a job is host code.
public protocol JobExecutor: PoolExecutor {}
