package import Futures
package import WasmInterpreters

/// One call as it travels to a worker process or MPI rank, and is read there: a job registered by
/// name with its encoded argument, or a function of a module the receiver has loaded.
///
/// On the wire (docs/wire.md): `[3, job name, argument]` or `[4, module, function, [arguments],
/// fuel | none, time limit in ns | none, WASI call | none]`, where the module is the sender's id for
/// it (the process pool: the worker loaded it under that id) or its content key (the MPI pool).
/// When the sender traces, a last field carries the submitter's trace context: `[[key, value], ...]`.
package struct CallRequest: Sendable, Equatable {
    /// How a guest call names its module.
    package enum Module: Sendable, Hashable {
        /// The id a process pool's worker loaded the module under.
        case id(Int)
        /// The content key an MPI rank loaded the module under.
        case key(String)
    }

    /// What is called.
    package enum Body: Sendable, Equatable {
        case job(name: String, argument: ShareableValue)
        case guest(GuestCall)
    }

    /// A guest function call, with the limits and WASI options of this call.
    package struct GuestCall: Sendable, Equatable {
        package var module: Module
        package var function: String
        package var arguments: [ShareableValue]
        package var fuel: UInt64?
        package var timeLimit: Duration?
        package var wasi: WASICallOptions?

        package init(
            module: Module, function: String, arguments: [ShareableValue], fuel: UInt64? = nil, timeLimit: Duration? = nil,
            wasi: WASICallOptions? = nil
        ) {
            self.module = module
            self.function = function
            self.arguments = arguments
            self.fuel = fuel
            self.timeLimit = timeLimit
            self.wasi = wasi
        }
    }

    package static let jobTag: Int64 = 3
    package static let guestTag: Int64 = 4

    package var body: Body
    /// The submitter's service context as the sender's tracer injected it (docs/observability.md),
    /// for the receiver's tracer to extract; `nil` when the sender does not trace.
    package var trace: [String: String]?

    package init(_ body: Body, trace: [String: String]? = nil) {
        self.body = body
        self.trace = trace
    }

    /// The request for `call`, naming a guest call's module by `module`. A call with no remote
    /// form (never sent: its future failed at submission) becomes a job with no name, which the
    /// receiver answers with an error.
    package init(_ call: RemoteCall, module: (GuestModule) -> Module) {
        switch call {
        case .job(let name, let argument):
            body = .job(name: name, argument: argument)
        case .invocation:
            guard let invocation = call.guestInvocation else {
                body = .job(name: "", argument: .none)
                return
            }
            body = .guest(
                GuestCall(
                    module: module(invocation.module), function: invocation.function, arguments: invocation.arguments,
                    fuel: invocation.fuel, timeLimit: invocation.timeLimit, wasi: invocation.wasi))
        case .unencodable:
            body = .job(name: "", argument: .none)
        }
    }

    /// Reads a request.
    ///
    /// - Throws: ``RemoteError`` `.jobFailed` for what is not a request of this protocol.
    package init(wire: ShareableValue) throws(RemoteError) {
        guard case .array(let fields) = wire, case .int(let tag)? = fields.first else {
            throw RemoteError(.jobFailed, "unreadable call")
        }
        switch tag {
        case Self.jobTag:
            guard fields.count == 3 || fields.count == 4, case .string(let name) = fields[1] else {
                throw RemoteError(.jobFailed, "unreadable job call")
            }
            body = .job(name: name, argument: fields[2])
            trace = fields.count == 4 ? try Self.trace(wire: fields[3]) : nil
        case Self.guestTag:
            guard fields.count == 7 || fields.count == 8, case .string(let function) = fields[2], case .array(let arguments) = fields[3]
            else {
                throw RemoteError(.jobFailed, "unreadable guest call")
            }
            let module: Module
            switch fields[1] {
            case .int(let id): module = .id(Int(truncatingIfNeeded: id))
            case .string(let key): module = .key(key)
            default: throw RemoteError(.jobFailed, "unreadable guest call: its module is \(fields[1])")
            }
            var call = GuestCall(module: module, function: function, arguments: arguments)
            if case .int(let fuel) = fields[4] { call.fuel = UInt64(clamping: fuel) }
            if case .int(let nanoseconds) = fields[5] { call.timeLimit = .nanoseconds(nanoseconds) }
            call.wasi = WASICallOptions(wireValue: fields[6])
            body = .guest(call)
            trace = fields.count == 8 ? try Self.trace(wire: fields[7]) : nil
        default:
            throw RemoteError(.jobFailed, "unknown call \(tag)")
        }
    }

    /// The request as sent.
    package var wire: ShareableValue {
        guard let trace, case .array(let fields) = untracedWire else { return untracedWire }
        let pairs = trace.sorted { $0.key < $1.key }.map { ShareableValue.array([.string($0.key), .string($0.value)]) }
        return .array(fields + [.array(pairs)])
    }

    /// Reads a trace field.
    private static func trace(wire: ShareableValue) throws(RemoteError) -> [String: String] {
        guard case .array(let pairs) = wire else { throw RemoteError(.jobFailed, "unreadable trace context") }
        var trace: [String: String] = [:]
        for pair in pairs {
            guard case .array(let kv) = pair, kv.count == 2, case .string(let key) = kv[0], case .string(let value) = kv[1] else {
                throw RemoteError(.jobFailed, "unreadable trace context")
            }
            trace[key] = value
        }
        return trace
    }

    private var untracedWire: ShareableValue {
        switch body {
        case .job(let name, let argument):
            return [.int(Self.jobTag), .string(name), argument]
        case .guest(let call):
            let module: ShareableValue
            switch call.module {
            case .id(let id): module = .int(Int64(id))
            case .key(let key): module = .string(key)
            }
            return [
                .int(Self.guestTag), module, .string(call.function), .array(call.arguments),
                call.fuel.map { .int(Int64(clamping: $0)) } ?? .none,
                call.timeLimit.map { .int(RemoteWire.nanoseconds($0)) } ?? .none,
                call.wasi?.wireValue ?? .none,
            ]
        }
    }
}
