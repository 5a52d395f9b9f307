import CFuturesShims
public import Futures
import RemoteCalls
public import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Worker mode: what a process started by a ``ProcessPoolExecutor`` runs.
///
/// Put one line at the very top of your program's entry point, before anything else:
///
/// ```swift
/// ProcessWorker.runIfRequested(jobs: [double, cpuBound])   // first line of main.swift
/// ```
///
/// In the parent it returns at once. In a worker (the same binary, started by the pool with a
/// marker in its environment) it serves requests until the pool closes the connection, then
/// exits; it never returns. The jobs listed here are the ones the pool can run by name; guest
/// functions need no registration. This is Python's "spawn" start method: the worker starts
/// from a clean `main`, never from a `fork` of the threaded parent.
public enum ProcessWorker {
    /// The environment variable that marks a worker process.
    public static let environmentKey = "CONCURRENT_FUTURES_WORKER"
    static let parentKey = "CONCURRENT_FUTURES_PARENT_PID"
    /// The lowest descriptor the worker moves its channel to.
    static let channelDescriptorMinimum: Int32 = 100

    /// Whether this process was started as a worker.
    public static var isWorkerProcess: Bool { getenv(environmentKey) != nil }

    /// Serves pool requests and exits when this process is a worker; returns at once otherwise.
    ///
    /// - Parameter jobs: The jobs workers can run, found by name. Two jobs with the same name
    ///   are a programming error (the first is used).
    /// - Parameter hostFunctions: The host functions the guest modules workers load may import
    ///   (``WasmInterpreters/HostFunction``), found by import name: register the same ones the
    ///   program gives its modules' ``WasmInterpreters/Linker``. A module that imports one not
    ///   registered here fails to load in the worker with `ModuleError` `.missingImports`, which
    ///   names it and the functions registered.
    public static func runIfRequested(jobs: [any AnyJob] = [], hostFunctions: [HostFunction] = []) {
        guard isWorkerProcess else { return }
        serve(jobs: jobs, linker: Linker(hostFunctions))
    }

    /// The worker's loop: never returns.
    private static func serve(jobs: [any AnyJob], linker: Linker) -> Never {
        // Die with the parent: end of file on the channel is the main signal, and the kernel's
        // parent-death signal the backstop (the spawning thread lives as long as this process).
        if let text = getenv(parentKey), let parent = Int32(String(cString: text)) {
            _ = cf_set_parent_death_signal(SIGKILL)
            if getppid() != parent { _exit(0) }
        }
        // Ctrl-C at a terminal signals the whole foreground process group: the parent decides
        // what it means (futures map lets running calls end); a worker keeps serving, and leaves
        // when its parent does. SIGINT was blocked since the spawn, so none is lost in between.
        cf_ignore_interrupts()
        // The channel leaves fd 3 for a high, close-on-exec descriptor: ordinary code that writes
        // to fd 3, or to the first descriptor it opens, cannot reach it by accident, and the
        // processes jobs start do not inherit it.
        var fd = cf_move_descriptor(3, channelDescriptorMinimum)
        if fd < 0 {
            // No descriptor that high (a low RLIMIT_NOFILE): stay on 3, close-on-exec.
            fd = 3
            cf_set_cloexec(3)
        }
        let channel = FrameChannel(fd: fd)
        var registry: [String: any AnyJob] = [:]
        for job in jobs where registry[job.name] == nil { registry[job.name] = job }
        var state = WorkerState(registry: registry, linker: linker)
        do {
            try channel.send([.int(WireMessage.ready), .int(Int64(getpid())), .int(WireMessage.protocolVersion)], id: 0)
            while let request = try channel.receive() {
                if let reply = state.handle(request.message) { try channel.send(reply, id: request.id) }
            }
            exit(0)
        } catch {
            exit(0)
        }
    }
}

/// What a worker remembers between requests: its jobs, its modules, its interpreter.
private struct WorkerState {
    let registry: [String: any AnyJob]
    /// The host functions the program registered, for every module loaded here.
    let linker: Linker
    var modules: [Int64: GuestModule] = [:]
    var moduleErrors: [Int64: ModuleError] = [:]
    var limits = InterpreterLimits.default
    var engine = GuestEngine.wasmKit
    var interpreter: Interpreter?

    init(registry: [String: any AnyJob], linker: Linker) {
        self.registry = registry
        self.linker = linker
    }

    /// Handles one request; returns the reply, if the request has one.
    mutating func handle(_ request: ShareableValue) -> ShareableValue? {
        guard case .array(let fields) = request, case .int(let tag)? = fields.first else {
            return CallOutcome(.failure(RemoteError(.jobFailed, "unreadable request"))).wire
        }
        switch tag {
        case WireMessage.loadModule:
            guard fields.count == 5, case .int(let id) = fields[1], case .string(let name) = fields[2],
                case .bytes(let bytes) = fields[3]
            else { return nil }
            do {
                let wasi = WASIOptions(wireValue: fields[4]) ?? .default
                modules[id] = try GuestModule(bytes: bytes, name: name, limits: limits, wasi: wasi, linker: linker)
            } catch {
                moduleErrors[id] = error
            }
            return nil
        case WireMessage.configure:
            if let configuration = try? WorkerConfiguration(wire: fields.dropFirst()) {
                (limits, engine) = (configuration.limits, configuration.engine)
            }
            return nil
        case WireMessage.initialize:
            guard fields.count == 2 else { return CallOutcome(.failure(RemoteError(.jobFailed, "unreadable initializer"))).wire }
            return CallOutcome(call(fields[1], install: true)).wire
        case WireMessage.batch:
            guard fields.count == 2, case .array(let calls) = fields[1] else {
                return CallOutcome(.failure(RemoteError(.jobFailed, "unreadable batch"))).wire
            }
            return [.int(WireMessage.batchResult), .array(calls.map { CallOutcome(call($0)).wire })]
        default:
            return CallOutcome(call(request)).wire
        }
    }

    /// Runs one job or guest call, in a span of this process's tracer when the call carries the
    /// submitter's trace context (docs/observability.md).
    mutating func call(_ request: ShareableValue, install: Bool = false) -> Result<ShareableValue, any Error> {
        let parsed: CallRequest
        do {
            parsed = try CallRequest(wire: request)
        } catch {
            return .failure(error)
        }
        return RemoteTracing.withSpan(for: parsed, executor: "process") { run(parsed.body, install: install) }
    }

    /// Runs one job or guest call.
    private mutating func run(_ body: CallRequest.Body, install: Bool) -> Result<ShareableValue, any Error> {
        switch body {
        case .job(let name, let argument):
            guard let job = registry[name] else {
                let known = registry.keys.sorted().joined(separator: ", ")
                return .failure(
                    RemoteError(
                        .unknownJob,
                        "the worker program registers no job named '\(name)' (it registers: \(known.isEmpty ? "none" : known)); "
                            + "pass it to ProcessWorker.runIfRequested(jobs:)"))
            }
            return Result { try job.invoke(encoded: argument) }
        case .guest(let call):
            guard case .id(let id) = call.module else {
                return .failure(RemoteError(.jobFailed, "a guest call names its module by an MPI key in a worker process"))
            }
            if let error = moduleErrors[Int64(id)] { return .failure(error) }
            guard let module = modules[Int64(id)] else {
                return .failure(RemoteError(.jobFailed, "the worker has no module \(id)"))
            }
            let interpreter = self.interpreter ?? Interpreters.create(limits: limits, engine: engine)
            if self.interpreter == nil, engine == .auto {
                // As an interpreter pool's worker: a module started on WasmKit moves to its
                // compiled form once this process has loaded it.
                interpreter.movesToCompiledWhenReady()
            }
            self.interpreter = interpreter
            let invocation = GuestInvocation(
                module: module, function: call.function, arguments: call.arguments, fuel: call.fuel, timeLimit: call.timeLimit,
                wasi: call.wasi)
            if install { return Result { try interpreter.install(initializer: invocation) } }
            return Result { try interpreter.run(invocation, wait: false) }
        }
    }
}
