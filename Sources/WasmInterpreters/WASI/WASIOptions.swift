/// What a WASI guest (a module built for `wasm32-wasi`, importing `wasi_snapshot_preview1`) may
/// reach, and where its output goes: the capabilities of one ``GuestModule``.
///
/// An interpreter is a capability sandbox: a guest sees only what these options grant. The
/// defaults grant clocks, random bytes, standard streams and the process calls (`proc_exit`,
/// `sched_yield`); no file system, no sockets, no `poll_oneoff`. Functions a guest imports but
/// is not granted return `ENOSYS` (or, for the file system, a WASI error), never the host's data.
///
/// Each call's standard output and standard error are captured in the worker running it, bounded
/// by ``InterpreterLimits/maxValueBytes`` per stream, and handed to ``output`` after the call (or
/// returned with the result, see ``GuestFunction/capturingOutput()``). Standard input is empty
/// unless a call gives some (``GuestFunction/withStdin(_:)``), so a guest can never block on it.
///
/// ```swift
/// var wasi = WASIOptions()
/// wasi.preopens = [.init(hostPath: "/srv/data", guestPath: "/data")]   // read-only
/// let tool = try GuestModule(contentsOf: "wordfreq.wasm", wasi: wasi)
/// ```
public struct WASIOptions: Sendable {
    /// Groups of WASI functions a guest may use.
    public struct Capabilities: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        /// Creates a set from its bits.
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// `clock_time_get`, `clock_res_get`.
        public static let clocks = Capabilities(rawValue: 1 << 0)
        /// `random_get`.
        public static let random = Capabilities(rawValue: 1 << 1)
        /// Reading and writing the standard streams (`fd_write`, `fd_read`, `fd_fdstat_get`, ...).
        public static let stdio = Capabilities(rawValue: 1 << 2)
        /// `proc_exit` and `sched_yield`.
        public static let process = Capabilities(rawValue: 1 << 3)
        /// `poll_oneoff`: sleeping and waiting on descriptors. Not granted by default: a wait on a
        /// descriptor could block the worker thread (a time limit does not interrupt it); a
        /// sleep (clocks only) ends at the call's time limit with `timedOut`.
        public static let poll = Capabilities(rawValue: 1 << 4)
        /// The `path_*` functions, on the directories in ``WASIOptions/preopens`` only (granted
        /// by naming a preopen; without one there is no directory to reach).
        public static let fileSystem = Capabilities(rawValue: 1 << 5)

        /// Clocks, random, stdio and process: what a program needs to compute and print.
        public static let `default`: Capabilities = [.clocks, .random, .stdio, .process]
    }

    /// A host directory the guest sees at ``guestPath``.
    public struct Preopen: Sendable, Hashable {
        /// The directory on the host.
        public var hostPath: String
        /// Where the guest sees it (an absolute path such as `/data`).
        public var guestPath: String
        /// Whether the guest may create, change or remove files in it (`false`: read-only).
        public var isWritable: Bool

        /// A preopened directory, read-only unless `isWritable`.
        public init(hostPath: String, guestPath: String, isWritable: Bool = false) {
            self.hostPath = hostPath
            self.guestPath = guestPath
            self.isWritable = isWritable
        }
    }

    /// Where a call's captured output goes when the caller did not ask for it with the result.
    public enum OutputDestination: Sendable {
        /// Logged, one entry per line, on the `concurrent.futures.guest` logger (swift-log):
        /// standard output at `info`, standard error at `warning`.
        case log
        /// Given to a handler, in the thread that completes the call.
        case handler(@Sendable (GuestOutputRecord) -> Void)
        /// Dropped.
        case discard
        /// Not captured: the guest writes to the host process's own standard streams and reads
        /// its standard input (what `futures run` does). Only the calling process's own
        /// interpreters can do this; a process pool's workers capture and forward instead.
        case inherit
    }

    /// The function groups granted; ``Capabilities/fileSystem`` is added when ``preopens`` is
    /// not empty.
    public var capabilities: Capabilities
    /// The host directories the guest may reach, in order (the first is descriptor 3).
    public var preopens: [Preopen]
    /// `argv[1...]` of every call unless the call gives its own (`argv[0]` is the module's name).
    public var arguments: [String]
    /// The environment of every call unless the call gives its own. Empty by default: the host's
    /// environment is never passed through.
    public var environment: [String: String]
    /// Where output goes (logged by default).
    public var output: OutputDestination
    /// The most files and directories the guest may hold open at once, besides its standard
    /// streams and preopens (32 by default): past it, opening fails with `EMFILE`, so that one
    /// guest cannot take the descriptors of the whole process.
    public var maxOpenFiles: Int = 32

    /// Options granting `capabilities` (the default set unless given) and nothing else.
    public init(
        capabilities: Capabilities = .default, preopens: [Preopen] = [], arguments: [String] = [],
        environment: [String: String] = [:], output: OutputDestination = .log
    ) {
        self.capabilities = capabilities
        self.preopens = preopens
        self.arguments = arguments
        self.environment = environment
        self.output = output
    }

    /// The defaults: clocks, random, stdio and process; no preopens; output logged.
    public static let `default` = WASIOptions()

    /// The capabilities in effect, the file system included when a directory is preopened.
    var effectiveCapabilities: Capabilities {
        preopens.isEmpty ? capabilities.subtracting(.fileSystem) : capabilities.union(.fileSystem)
    }
}

/// One call's captured output, as an ``WASIOptions/OutputDestination/handler(_:)`` receives it.
public struct GuestOutputRecord: Sendable {
    /// The module the call ran in.
    public let module: String
    /// The function called (`_start` for a command).
    public let function: String
    /// What the guest wrote to standard output.
    public let stdout: [UInt8]
    /// What the guest wrote to standard error.
    public let stderr: [UInt8]
    /// Whether the call failed (the output is what it wrote before failing).
    public let failed: Bool

    /// Creates a record.
    public init(module: String, function: String, stdout: [UInt8], stderr: [UInt8], failed: Bool) {
        self.module = module
        self.function = function
        self.stdout = stdout
        self.stderr = stderr
        self.failed = failed
    }
}
