@_spi(WASIPlatform) import WASI
@_spi(Fuzzing) import WasmKit
import WasmKitWASI

/// One interpreter's WASI preview 1 host for one module: WasmKit's `WASIBridgeToHost` with this
/// project's sandbox around it. Used only by the thread holding the interpreter's run lock.
///
/// Around the bridge:
/// - only the granted ``WASIOptions/Capabilities`` are linked; every other preview 1 function a
///   guest imports is a stub returning `ENOSYS`;
/// - every pointer a guest passes is checked against its memory before the bridge sees it (the
///   bridge itself would stop the process on a pointer out of bounds);
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
    private let functions: [String: WASIHostFunction<Memory>]
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
        // Without the file system nothing can be opened, so the guard needs no file status.
        var fileStatus: WASIHostFunction<WASIScratchMemory>?
        if options.effectiveCapabilities.contains(.fileSystem) {
            let scratchFunctions: [String: WASIHostFunction<WASIScratchMemory>] = bridge.hostFunctions(
                capabilities: [WASI.WASICapability<WASIScratchMemory>.fileSystem], stubUnlinked: false)
            fileStatus = scratchFunctions["path_filestat_get"]
        }
        descriptors = WASIDescriptorGuard(
            readOnly: Set(options.preopens.indices.filter { !options.preopens[$0].isWritable }.map { UInt32(3 + $0) }),
            maxOpenFiles: options.maxOpenFiles, fileStatus: fileStatus)
        functions = bridge.hostFunctions(capabilities: Self.capabilities(options.effectiveCapabilities), stubUnlinked: true)
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

    private static func capabilities(_ granted: WASIOptions.Capabilities) -> [WasmKitWASI.WASICapability] {
        var list: [WasmKitWASI.WASICapability] = []
        if granted.contains(.clocks) { list.append(.clocks) }
        if granted.contains(.random) { list.append(.random) }
        if granted.contains(.stdio) { list.append(.stdio) }
        if granted.contains(.process) { list.append(.process) }
        if granted.contains(.poll) { list.append(.poll) }
        if granted.contains(.fileSystem) { list.append(.fileSystem) }
        return list
    }

    // MARK: Linking

    /// Defines the preview 1 functions named in `needed` (what a module imports) in `imports`,
    /// for `store`.
    func link(into imports: inout Imports, store: Store, needed: Set<String>, context: HostContext) {
        let own = environmentFunctions().filter { needed.contains($0.key) }
        for (name, function) in functions where own[name] == nil && needed.contains(name) {
            let checks = Self.pointerChecks[name] ?? []
            let guarded = descriptors.guarding(name, function.implementation)
            imports.define(
                module: Self.moduleName, name: name,
                Function(store: store, type: function.type) { caller, arguments in
                    let memory = try Self.memory(of: caller)
                    if let failure = Self.check(checks, arguments, memory) { return [.i32(UInt32(failure.rawValue))] }
                    return try guarded(memory, arguments)
                })
        }
        for (name, body) in own {
            imports.define(
                module: Self.moduleName, name: name,
                Function(store: store, type: FunctionType(parameters: [.i32, .i32], results: [.i32])) { caller, arguments in
                    [.i32(UInt32(try body(Self.memory(of: caller), arguments[0].i32, arguments[1].i32).rawValue))]
                })
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

    private typealias EnvironmentFunction = (Memory, UInt32, UInt32) throws -> WASIAbi.Errno

    private func environmentFunctions() -> [String: EnvironmentFunction] {
        let state = state
        var functions: [String: EnvironmentFunction] = [
            // Without the file system there are no preopened directories: C libraries look for
            // them at start-up and stop the program on any answer but `EBADF`.
            "fd_prestat_get": { _, _, _ in .EBADF }
        ]
        if options.effectiveCapabilities.contains(.fileSystem) { functions = [:] }
        return functions.merging([
            "args_sizes_get": { memory, count, size in
                Self.writeSizes(state.arguments, memory, count, size)
            },
            "args_get": { memory, pointers, buffer in
                Self.writeStrings(state.arguments, memory, pointers, buffer)
            },
            "environ_sizes_get": { memory, count, size in
                Self.writeSizes(state.environment, memory, count, size)
            },
            "environ_get": { memory, pointers, buffer in
                Self.writeStrings(state.environment, memory, pointers, buffer)
            },
        ]) { first, _ in first }
    }

    private static func writeSizes(_ strings: [[UInt8]], _ memory: Memory, _ count: UInt32, _ size: UInt32) -> WASIAbi.Errno {
        guard inBounds(memory, count, 4), inBounds(memory, size, 4) else { return .EFAULT }
        store32(UInt32(strings.count), at: count, in: memory)
        store32(UInt32(strings.reduce(0) { $0 + $1.count + 1 }), at: size, in: memory)
        return .SUCCESS
    }

    private static func writeStrings(_ strings: [[UInt8]], _ memory: Memory, _ pointers: UInt32, _ buffer: UInt32) -> WASIAbi.Errno {
        let total = strings.reduce(0) { $0 + $1.count + 1 }
        guard inBounds(memory, pointers, UInt64(strings.count) * 4), inBounds(memory, buffer, UInt64(total)) else {
            return .EFAULT
        }
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

    private static func store32(_ value: UInt32, at pointer: UInt32, in memory: Memory) {
        memory.withUnsafeMutableBufferPointer(offset: UInt(pointer), count: 4) { target in
            target.storeBytes(of: value.littleEndian, as: UInt32.self)
        }
    }
}

