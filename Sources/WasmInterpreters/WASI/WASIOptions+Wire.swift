package import Futures

/// WASI options and per-call options as values, for the executors that send modules and calls
/// to other processes. The output destination does not travel: a worker elsewhere returns each
/// call's output with its result, and the caller's process delivers it
/// (``GuestInvocation/forwardingOutput()``).
extension WASIOptions {
    /// `[capabilities, [[host, guest, writable], ...], [arguments], [[key, value], ...], max open files]`.
    package var wireValue: ShareableValue {
        .array([
            .int(Int64(capabilities.rawValue)),
            .array(preopens.map { .array([.string($0.hostPath), .string($0.guestPath), .bool($0.isWritable)]) }),
            .array(arguments.map { .string($0) }),
            Self.wireValue(of: environment), .int(Int64(maxOpenFiles)),
        ])
    }

    /// `[[key, value], ...]`, sorted by key.
    static func wireValue(of environment: [String: String]) -> ShareableValue {
        .array(environment.sorted { $0.key < $1.key }.map { .array([.string($0.key), .string($0.value)]) })
    }

    /// The environment ``wireValue(of:)`` wrote, or `nil`.
    static func environment(wireValue: ShareableValue) -> [String: String]? {
        guard case .array(let pairs) = wireValue else { return nil }
        var environment: [String: String] = [:]
        for pair in pairs {
            guard case .array(let entry) = pair, entry.count == 2, case .string(let key) = entry[0],
                case .string(let value) = entry[1]
            else { return nil }
            environment[key] = value
        }
        return environment
    }

    /// The options ``wireValue`` wrote (output discarded: the worker returns it), or `nil`.
    package init?(wireValue: ShareableValue) {
        guard case .array(let fields) = wireValue, fields.count == 5, case .int(let capabilities) = fields[0],
            case .array(let preopens) = fields[1], let arguments = Self.strings(fields[2]),
            let environment = Self.environment(wireValue: fields[3]), case .int(let maxOpenFiles) = fields[4]
        else { return nil }
        var directories: [Preopen] = []
        for preopen in preopens {
            guard case .array(let entry) = preopen, entry.count == 3, case .string(let host) = entry[0],
                case .string(let guest) = entry[1], case .bool(let writable) = entry[2]
            else { return nil }
            directories.append(Preopen(hostPath: host, guestPath: guest, isWritable: writable))
        }
        self.init(
            capabilities: Capabilities(rawValue: Int(capabilities)), preopens: directories, arguments: arguments,
            environment: environment, output: .discard)
        self.maxOpenFiles = Int(maxOpenFiles)
    }

    static func strings(_ value: ShareableValue) -> [String]? {
        guard case .array(let elements) = value else { return nil }
        var strings: [String] = []
        for element in elements {
            guard case .string(let string) = element else { return nil }
            strings.append(string)
        }
        return strings
    }
}

extension WASICallOptions {
    /// `[arguments | none, [[key, value], ...] | none, stdin, capture, resident]`.
    package var wireValue: ShareableValue {
        .array([
            arguments.map { .array($0.map { .string($0) }) } ?? .none,
            environment.map(WASIOptions.wireValue(of:)) ?? .none,
            .bytes(stdin), .bool(capture), .bool(resident),
        ])
    }

    /// The options ``wireValue`` wrote, or `nil`.
    package init?(wireValue: ShareableValue) {
        guard case .array(let fields) = wireValue, fields.count == 5, case .bytes(let stdin) = fields[2],
            case .bool(let capture) = fields[3], case .bool(let resident) = fields[4]
        else { return nil }
        var arguments: [String]?
        if fields[0] != .none {
            guard let strings = WASIOptions.strings(fields[0]) else { return nil }
            arguments = strings
        }
        var environment: [String: String]?
        if fields[1] != .none {
            guard let table = WASIOptions.environment(wireValue: fields[1]) else { return nil }
            environment = table
        }
        self.init(arguments: arguments, environment: environment, stdin: stdin, capture: capture, resident: resident)
    }
}

extension GuestInvocation {
    /// For a worker in another process: when this call's output must reach the module's
    /// destination here, the invocation to send instead (which returns the output with the
    /// value) and the function that delivers the output and gives back the value; `nil` when
    /// the call can be sent as it is.
    package func forwardingOutput() -> (invocation: GuestInvocation, unwrap: @Sendable (ShareableValue) -> ShareableValue)? {
        guard module.wasiKind != nil, !capturesOutput else { return nil }
        var options = wasi ?? WASICallOptions()
        options.capture = true
        let forwarded = GuestInvocation(
            module: module, function: function, arguments: arguments, fuel: fuel, timeLimit: timeLimit, wasi: options)
        let module = module
        let function = function
        return (
            forwarded,
            { value in
                guard case .array(let fields) = value, fields.count == 3, case .bytes(let stdout) = fields[1],
                    case .bytes(let stderr) = fields[2]
                else { return value }
                GuestOutputRouting.deliver((stdout, stderr), module: module, function: function, failed: false)
                return fields[0]
            }
        )
    }
}
