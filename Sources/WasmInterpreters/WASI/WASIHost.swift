@_spi(WASIPlatform) import WASI
@_spi(Fuzzing) import WasmKit
import WasmKitWASI
import WasmTypes

/// A guest memory WASI functions can run on: a WasmKit instance's, or a compiled instance's.
protocol WASIGuestMemory: WasmTypes.GuestMemory, SendableMetatype {
    /// The memory's size in bytes now.
    var byteCount: Int { get }
}

extension WasmKit.Memory: WASIGuestMemory {}

/// One interpreter's WASI preview 1 host for one module: WasmKit's `WASIBridgeToHost` with this
/// project's sandbox around it, for either engine. Used only by the thread holding the
/// interpreter's run lock.
///
/// Around the bridge:
/// - only the granted ``WASIOptions/Capabilities`` are linked; every other preview 1 function a
///   guest imports is a stub returning `ENOSYS`;
/// - every pointer a guest passes is checked against its memory before the bridge sees it (the
///   bridge itself would stop the process on a pointer out of bounds);
/// - every call pays fuel for the bytes it moves: one unit per 64 bytes written, read, filled
///   with random bytes or named by a path, as WasmKit prices `memory.copy`;
/// - `args_*` and `environ_*` are this host's, so each call can give its own values;
/// - the standard streams are per-call buffers (``WASICallState``), or, when output is
///   inherited, wrappers that only read and write the host's own;
/// - preopened directories not marked writable refuse every change (`EROFS`), as do the
///   descriptors opened under them; a guest holds at most ``WASIOptions/maxOpenFiles`` files,
///   and never a FIFO or a device (``WASIDescriptorGuard``).
///
/// ``close()`` must run before the last reference goes (the bridge traps otherwise): the runtime
/// closes its hosts when it replaces its instances and when it is destroyed.
final class WASIHost: @unchecked Sendable {
    /// The import module name of WASI preview 1.
    static let moduleName = "wasi_snapshot_preview1"

    let options: WASIOptions
    let state: WASICallState
    private let bridge: WASIBridgeToHost
    /// What the guest may do with descriptors (read-only preopens, how many it may open).
    private let descriptors: WASIDescriptorGuard
    private var isClosed = false

    /// Makes the host of a module called `moduleName`.
    ///
    /// - Throws: ``ModuleError`` `.invalidOptions` when a preopened directory cannot be opened.
    init(options: WASIOptions, moduleName: String, maxOutputBytes: Int) throws(ModuleError) {
        self.options = options
        state = WASICallState(programName: moduleName, options: options, maxOutputBytes: maxOutputBytes)
        let preopens = options.preopens.map { WASIBridgeToHost.Preopen(guestPath: $0.guestPath, hostPath: $0.hostPath) }
        // Inherited or not, the guest's streams are this package's: with the host's descriptors
        // themselves, a guest could change their flags or truncate the file behind them.
        var inherited = false
        if case .inherit = options.output { inherited = true }
        let fileSystem = WASIBridgeToHost.FileSystemOptions.host().withStdio(
            stdin: StandardStream(state: state, number: 0, inherited: inherited),
            stdout: StandardStream(state: state, number: 1, inherited: inherited),
            stderr: StandardStream(state: state, number: 2, inherited: inherited))
        do {
            bridge = try WASIBridgeToHost(fileSystem: fileSystem.withPreopens(preopens))
        } catch {
            throw ModuleError(.invalidOptions, "\(moduleName): a preopened directory cannot be opened: \(error)")
        }
        // Without the file system nothing can be opened, so the guard needs no bridge functions.
        var scratchFunctions: [String: WASIHostFunction<WASIScratchMemory>] = [:]
        if options.effectiveCapabilities.contains(.fileSystem) {
            scratchFunctions = bridge.hostFunctions(
                capabilities: [WASI.WASICapability<WASIScratchMemory>.fileSystem, .stdio], stubUnlinked: false)
        }
        descriptors = WASIDescriptorGuard(
            readOnly: Set(options.preopens.indices.filter { !options.preopens[$0].isWritable }.map { UInt32(3 + $0) }),
            directories: Dictionary(uniqueKeysWithValues: options.preopens.enumerated().map { (UInt32(3 + $0), $1.hostPath) }),
            maxOpenFiles: options.maxOpenFiles, bridge: scratchFunctions)
    }

    deinit {
        if !isClosed { try? bridge.close() }
    }

    /// Closes the descriptors the guest opened and the preopened directories.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        try? bridge.close()
    }

    private static func capabilities<M: WASIGuestMemory>(_ granted: WASIOptions.Capabilities) -> [WASI.WASICapability<M>] {
        var list: [WASI.WASICapability<M>] = []
        if granted.contains(.clocks) { list.append(.clocks) }
        if granted.contains(.random) { list.append(.random) }
        if granted.contains(.stdio) { list.append(.stdio) }
        if granted.contains(.process) { list.append(.process) }
        if granted.contains(.poll) { list.append(.poll) }
        if granted.contains(.fileSystem) { list.append(.fileSystem) }
        return list
    }

    /// A preview 1 function for memories of type `M`, with every check of this host around the
    /// bridge's implementation: arguments and results as WebAssembly values.
    typealias HostFunction<M: WASIGuestMemory> = (M, [WasmKit.Value]) throws -> [WasmKit.Value]

    /// The functions named in `needed` (what a module imports), for memories of type `M`, with
    /// their types; `context` pays their fuel.
    func functions<M: WASIGuestMemory>(_ needed: Set<String>, memory: M.Type, context: HostContext) -> [String: (FunctionType, HostFunction<M>)] {
        var result: [String: (FunctionType, HostFunction<M>)] = [:]
        let own: [String: EnvironmentFunction<M>] = environmentFunctions()
        for (name, body) in own where needed.contains(name) {
            result[name] = (
                FunctionType(parameters: [.i32, .i32], results: [.i32]),
                { memory, arguments in
                    [.i32(UInt32(try body(memory, arguments[0].i32, arguments[1].i32, context).rawValue))]
                }
            )
        }
        let bridged: [String: WASIHostFunction<M>] = bridge.hostFunctions(
            capabilities: Self.capabilities(options.effectiveCapabilities), stubUnlinked: true)
        for (name, function) in bridged where own[name] == nil && needed.contains(name) {
            let checks = Self.pointerChecks[name] ?? []
            let read = Self.readResults[name]
            let guarded = descriptors.guarding(name, function.implementation, deadline: { context.callDeadline })
            result[name] = (
                function.type,
                { memory, arguments in
                    switch Self.check(checks, arguments, memory) {
                    case .failure(let errno): return [.i32(UInt32(errno.rawValue))]
                    case .success(let bytes): try context.account.chargeFuel(bytes / 64, for: "\(name) moving \(bytes) bytes")
                    }
                    let results = try guarded(memory, arguments)
                    if let read, results.first?.i32 == 0 {
                        // A read pays for what it read, after it (its count, at a checked pointer).
                        let count = memory.withUnsafeMutableBufferPointer(offset: UInt(arguments[read].i32), count: 4) {
                            UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))
                        }
                        try context.account.chargeFuel(UInt64(count) / 64, for: "\(name) moving \(count) bytes")
                    }
                    return results
                }
            )
        }
        if let (type, general) = result["poll_oneoff"], options.effectiveCapabilities.contains(.poll) {
            // Clocks are waited for here, within the call's time limit; descriptors as any call.
            result["poll_oneoff"] = (
                type,
                { memory, arguments in
                    let values = arguments.map(\.i32)
                    if let errno = try Self.sleep(
                        memory, subscriptions: values[0], events: values[1], count: values[2], eventCount: values[3], context: context)
                    {
                        return [.i32(UInt32(errno.rawValue))]
                    }
                    return try general(memory, arguments)
                }
            )
        }
        return result
    }

    /// For the calls that fill buffers the guest passes, the argument where they write how many
    /// bytes they filled.
    private static let readResults: [String: Int] = [
        "fd_read": 3, "fd_pread": 4, "sock_recv": 4, "fd_readdir": 4, "path_readlink": 5,
    ]

    // MARK: Linking

    /// Defines the preview 1 functions named in `needed` (what a module imports) in `imports`,
    /// for `store`; `context` pays their fuel.
    func link(into imports: inout Imports, store: Store, needed: Set<String>, context: HostContext) {
        for (name, (type, body)) in functions(needed, memory: Memory.self, context: context) {
            imports.define(
                module: Self.moduleName, name: name,
                Function(store: store, type: type) { caller, arguments in try body(Self.memory(of: caller), arguments) })
        }
    }

    /// Stubs with the right types, for checking that a module instantiates (``GuestModule``).
    static func defineStubs(into imports: inout Imports, store: Store) {
        for (name, type) in signatures {
            imports.define(
                module: moduleName, name: name,
                Function(store: store, type: type) { _, _ in throw WASIError(description: "not linked") })
        }
    }

    /// Every preview 1 function the host knows, with its type.
    static let signatures: [String: FunctionType] = {
        guard let bridge = try? WASIBridgeToHost(fileSystem: .host()) else { return [:] }
        defer { try? bridge.close() }
        let functions: [String: WASIHostFunction<Memory>] = bridge.hostFunctions(capabilities: WasmKitWASI.WASICapability.all)
        return functions.mapValues(\.type)
    }()

    private static func memory(of caller: borrowing Caller) throws -> Memory {
        guard case .memory(let memory)? = caller.instance?.export("memory") else {
            throw GuestFault(kind: .invalidPointer, message: "a WASI guest must export its memory as \"memory\"")
        }
        return memory
    }

    // MARK: Arguments and environment, per call

    private typealias EnvironmentFunction<M: WASIGuestMemory> = (M, UInt32, UInt32, HostContext) throws -> WASIAbi.Errno

    private func environmentFunctions<M: WASIGuestMemory>() -> [String: EnvironmentFunction<M>] {
        let state = state
        var functions: [String: EnvironmentFunction<M>] = [
            // Without the file system there are no preopened directories: C libraries look for
            // them at start-up and stop the program on any answer but `EBADF`.
            "fd_prestat_get": { _, _, _, _ in .EBADF }
        ]
        if options.effectiveCapabilities.contains(.fileSystem) { functions = [:] }
        return functions.merging([
            "args_sizes_get": { memory, count, size, _ in
                Self.writeSizes(state.arguments, memory, count, size)
            },
            "args_get": { memory, pointers, buffer, context in
                try Self.writeStrings(state.arguments, memory, pointers, buffer, context)
            },
            "environ_sizes_get": { memory, count, size, _ in
                Self.writeSizes(state.environment, memory, count, size)
            },
            "environ_get": { memory, pointers, buffer, context in
                try Self.writeStrings(state.environment, memory, pointers, buffer, context)
            },
        ]) { first, _ in first }
    }

    private static func writeSizes<M: WASIGuestMemory>(_ strings: [[UInt8]], _ memory: M, _ count: UInt32, _ size: UInt32) -> WASIAbi.Errno {
        guard inBounds(memory, count, 4), inBounds(memory, size, 4) else { return .EFAULT }
        store32(UInt32(strings.count), at: count, in: memory)
        store32(UInt32(strings.reduce(0) { $0 + $1.count + 1 }), at: size, in: memory)
        return .SUCCESS
    }

    private static func writeStrings<M: WASIGuestMemory>(
        _ strings: [[UInt8]], _ memory: M, _ pointers: UInt32, _ buffer: UInt32, _ context: HostContext
    ) throws -> WASIAbi.Errno {
        let total = strings.reduce(0) { $0 + $1.count + 1 }
        guard inBounds(memory, pointers, UInt64(strings.count) * 4), inBounds(memory, buffer, UInt64(total)) else {
            return .EFAULT
        }
        try context.account.chargeFuel(UInt64(total) / 64, for: "writing \(total) bytes of arguments or environment")
        var offset = buffer
        for (index, string) in strings.enumerated() {
            store32(offset, at: pointers + UInt32(index) * 4, in: memory)
            memory.withUnsafeMutableBufferPointer(offset: UInt(offset), count: string.count + 1) { target in
                target.copyBytes(from: string)
                target[string.count] = 0
            }
            offset += UInt32(string.count + 1)
        }
        return .SUCCESS
    }

    private static func store32<M: WASIGuestMemory>(_ value: UInt32, at pointer: UInt32, in memory: M) {
        memory.withUnsafeMutableBufferPointer(offset: UInt(pointer), count: 4) { target in
            target.storeBytes(of: value.littleEndian, as: UInt32.self)
        }
    }
}
