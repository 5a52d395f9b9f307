public import Futures

/// One call of a ``HostFunction`` by a guest: its arguments, the calling instance's memory, and
/// what the host may do for the guest meanwhile. Valid only while the body runs.
public struct HostCall {
    /// The arguments, of the function's parameter types.
    public let arguments: [WasmValue]
    /// The function called.
    public let function: HostFunction
    let context: HostContext
    let caller: any HostCaller

    /// The id of the interpreter the guest runs in.
    public var interpreterID: Int { context.interpreterID }

    /// How long the guest's call may still run, `nil` when it has no time limit. The limit goes
    /// on counting while the body runs: a body that returns after it fails the call with
    /// `timedOut`.
    public var remainingTime: Duration? {
        context.callDeadline.map { max(.zero, $0.remaining) }
    }

    /// The calling instance's memory (exported as `memory`).
    ///
    /// - Throws: ``HostFunctionFailure`` `.invalidPointer` when the instance exports none.
    public var memory: GuestMemoryView {
        get throws {
            do {
                return GuestMemoryView(memory: try caller.memory(), context: context)
            } catch let fault as GuestFault {
                throw HostFunctionFailure(fault.message, kind: fault.kind)
            }
        }
    }

    /// The UTF-8 text the guest passed as arguments `index` (address) and `index + 1` (length).
    ///
    /// - Throws: ``HostFunctionFailure``: `.badArguments` when those arguments are not two
    ///   `i32`s, `.invalidPointer` when the range is outside the guest's memory, `.valueTooLarge`
    ///   over the interpreter's ``InterpreterLimits/maxValueBytes``, `.malformedValue` when the
    ///   bytes are not UTF-8.
    public func string(_ index: Int) throws -> String {
        let (address, count) = try range(index)
        return try memory.string(at: address, count: count)
    }

    /// The bytes the guest passed as arguments `index` (address) and `index + 1` (length).
    ///
    /// - Throws: ``HostFunctionFailure``, as ``string(_:)`` does but for UTF-8.
    public func bytes(_ index: Int) throws -> [UInt8] {
        let (address, count) = try range(index)
        return try memory.bytes(at: address, count: count)
    }

    /// The encoded value (guest ABI encoding) the guest passed as arguments `index` (address) and
    /// `index + 1` (length).
    ///
    /// - Throws: ``HostFunctionFailure``, as ``string(_:)`` does, `.malformedValue` when the
    ///   bytes are not one encoded value.
    public func value(_ index: Int) throws -> ShareableValue {
        let (address, count) = try range(index)
        return try memory.value(at: address, count: count)
    }

    /// Copies `bytes` into memory the guest's `cf_alloc` gives, and returns its address. The
    /// guest owns it (and frees it with `cf_free`).
    ///
    /// - Throws: ``HostFunctionFailure`` `.badArguments` when the module exports no `cf_alloc`,
    ///   `.reentrantCall` when the host is already inside a callback into this guest,
    ///   `.memoryLimit` when the allocator returns 0; a trap of the allocator as a ``GuestError``.
    public func allocate(_ bytes: [UInt8]) throws -> UInt32 {
        try failures {
            guard bytes.count <= context.maxValueBytes else {
                throw GuestFault(
                    kind: .valueTooLarge, message: "a value of \(bytes.count) bytes exceeds the limit of \(context.maxValueBytes) bytes")
            }
            let address = try caller.allocate(bytes.count, context: context)
            try memory.write(bytes, at: address)
            return address
        }
    }

    /// Returns `text` to the guest as one `i64`: the address of its UTF-8 bytes (in memory from
    /// the guest's `cf_alloc`) in the low 32 bits, their count in the high 32.
    ///
    /// - Throws: What ``allocate(_:)`` throws.
    public func returning(string text: String) throws -> WasmValue {
        try returning(bytes: Array(text.utf8))
    }

    /// Returns `bytes` to the guest as one `i64` (see ``returning(string:)``).
    ///
    /// - Throws: What ``allocate(_:)`` throws.
    public func returning(bytes: [UInt8]) throws -> WasmValue {
        let address = try allocate(bytes)
        return .i64(UInt64(address) | UInt64(bytes.count) << 32)
    }

    /// Returns `value`, in the guest ABI's encoding, to the guest as one `i64` (see
    /// ``returning(string:)``).
    ///
    /// - Throws: What ``allocate(_:)`` throws.
    public func returning(value: ShareableValue) throws -> WasmValue {
        try returning(bytes: value.encoded())
    }

    /// Calls the function `name` the calling instance exports, with `arguments`: one level deep
    /// (guest code it runs may call host functions, but not one that calls back again).
    ///
    /// - Throws: ``HostFunctionFailure`` `.missingFunction` when there is no such export,
    ///   `.badArguments` when the arguments do not fit it, `.reentrantCall` when called from
    ///   inside another callback; a trap of the function as a ``GuestError``.
    public func callGuest(_ name: String, _ arguments: [WasmValue] = []) throws -> [WasmValue] {
        try failures {
            try GuestMemory.callback(context: context) { try caller.call(name, arguments, context: context) }
        }
    }

    /// Arguments `index` and `index + 1` as an address and a length.
    private func range(_ index: Int) throws -> (UInt32, Int) {
        guard index >= 0, index + 1 < arguments.count, case .i32(let address) = arguments[index],
            case .i32(let count) = arguments[index + 1]
        else {
            throw HostFunctionFailure(
                "\(function.qualifiedName): arguments \(index) and \(index + 1) are not an address and a length (two i32s)", kind: .badArguments)
        }
        return (address, Int(count))
    }

    /// Runs `body`, turning the host's own faults into ``HostFunctionFailure``s.
    private func failures<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let fault as GuestFault {
            throw HostFunctionFailure(fault.message, kind: fault.kind)
        }
    }
}

extension HostCall {
    /// Runs `function` for a guest: arguments from raw bits, the body, its result checked and
    /// turned into bits (0 when it has none). Errors become ``GuestFault``s (or pass through as
    /// ``GuestError``s), and a call past its deadline fails with `timedOut`.
    static func run(_ function: HostFunction, bits: some Collection<UInt64>, context: HostContext, caller: any HostCaller) throws -> UInt64 {
        let arguments = zip(bits, function.parameters).map { WasmValue(bits: $0, type: $1) }
        let call = HostCall(arguments: arguments, function: function, context: context, caller: caller)
        let results: [WasmValue]
        do {
            results = try function.body(call)
        } catch let failure as HostFunctionFailure {
            throw GuestFault(kind: failure.kind, message: "\(function.qualifiedName): \(failure.message)")
        } catch let error as GuestError {
            throw error
        } catch let fault as GuestFault {
            throw fault
        } catch {
            throw GuestFault(kind: .hostFunction, message: "host function \(function.qualifiedName) failed: \(error)")
        }
        if let deadline = context.callDeadline, deadline.hasPassed {
            throw context.waitTimedOut("in host function \(function.qualifiedName)")
        }
        guard results.map(\.type) == function.results else {
            throw GuestFault(
                kind: .badArguments,
                message: "host function \(function.qualifiedName) returned (\(results.map(\.type.rawValue).joined(separator: ", "))), "
                    + "not its declared (\(function.results.map(\.rawValue).joined(separator: ", ")))")
        }
        return results.first?.bits ?? 0
    }
}
