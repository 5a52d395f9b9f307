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
/// - the standard streams are per-call buffers (``WASICallState``), unless output is inherited;
/// - preopened directories not marked writable refuse every change (`EROFS`), as do the
///   descriptors opened under them.
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
    /// Descriptors under a read-only preopen (the preopens themselves and what was opened under them).
    private var readOnly: Set<UInt32> = []
    private var isClosed = false

    /// Makes the host of a module called `moduleName`.
    ///
    /// - Throws: ``ModuleError`` `.invalidOptions` when a preopened directory cannot be opened.
    init(options: WASIOptions, moduleName: String, maxOutputBytes: Int) throws(ModuleError) {
        self.options = options
        state = WASICallState(programName: moduleName, options: options, maxOutputBytes: maxOutputBytes)
        let preopens = options.preopens.map { WASIBridgeToHost.Preopen(guestPath: $0.guestPath, hostPath: $0.hostPath) }
        var fileSystem = WASIBridgeToHost.FileSystemOptions.host()
        if case .inherit = options.output {
            fileSystem = fileSystem.withStdio()
        } else {
            fileSystem = fileSystem.withStdio(
                stdin: StandardStream(state: state, number: 0), stdout: StandardStream(state: state, number: 1),
                stderr: StandardStream(state: state, number: 2))
        }
        do {
            bridge = try WASIBridgeToHost(fileSystem: fileSystem.withPreopens(preopens))
        } catch {
            throw ModuleError(.invalidOptions, "\(moduleName): a preopened directory cannot be opened: \(error)")
        }
        for (index, preopen) in options.preopens.enumerated() where !preopen.isWritable {
            readOnly.insert(UInt32(3 + index))
        }
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

    /// Defines every preview 1 function in `imports`, for `store`.
    func link(into imports: inout Imports, store: Store) {
        let own = environmentFunctions()
        for (name, function) in functions where own[name] == nil {
            let checks = Self.pointerChecks[name] ?? []
            let guarded = guardWrites(name, function.implementation)
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

    // MARK: Read-only preopens

    /// `implementation`, refusing changes under read-only preopens and tracking what is opened
    /// under them.
    private func guardWrites(
        _ name: String, _ implementation: @escaping @Sendable (Memory, [WasmKit.Value]) throws -> [WasmKit.Value]
    ) -> (Memory, [WasmKit.Value]) throws -> [WasmKit.Value] {
        guard !readOnly.isEmpty, let descriptors = Self.changingCalls[name] else { return implementation }
        let refused: [WasmKit.Value] = [.i32(UInt32(WASIAbi.Errno.EROFS.rawValue))]
        if name == "path_open" {
            return { memory, arguments in
                let directory = arguments[0].i32
                guard self.readOnly.contains(directory) else { return try implementation(memory, arguments) }
                let oflags = WASIAbi.Oflags(rawValue: arguments[4].i32)
                let rights = WASIAbi.Rights(rawValue: arguments[5].i64)
                let fdflags = WASIAbi.Fdflags(rawValue: UInt16(truncatingIfNeeded: arguments[7].i32))
                // Creating, truncating or appending is refused; opening is allowed with the rights
                // to change files taken away (C libraries ask for every right a mode allows).
                if !oflags.isDisjoint(with: [.CREAT, .TRUNC]) || fdflags.contains(.APPEND) { return refused }
                let writing: WASIAbi.Rights = [.FD_WRITE, .FD_ALLOCATE, .FD_FILESTAT_SET_SIZE, .FD_FILESTAT_SET_TIMES, .FD_DATASYNC]
                if rights.contains(.FD_WRITE) && !rights.contains(.FD_READ) { return refused }
                var restricted = arguments
                restricted[5] = .i64(rights.subtracting(writing).rawValue)
                restricted[6] = .i64(WASIAbi.Rights(rawValue: arguments[6].i64).subtracting(writing).rawValue)
                let result = try implementation(memory, restricted)
                if result.first?.i32 == 0 {
                    let opened = memory.withUnsafeBufferPointer(offset: UInt(arguments[8].i32), count: 4) {
                        UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))
                    }
                    self.readOnly.insert(opened)
                }
                return result
            }
        }
        if name == "fd_close" {
            return { memory, arguments in
                let result = try implementation(memory, arguments)
                if result.first?.i32 == 0 { self.readOnly.remove(arguments[0].i32) }
                return result
            }
        }
        return { memory, arguments in
            if descriptors.contains(where: { self.readOnly.contains(arguments[$0].i32) }) { return refused }
            return try implementation(memory, arguments)
        }
    }

    /// The calls that change files, with the arguments that are descriptors.
    private static let changingCalls: [String: [Int]] = [
        "path_open": [0], "fd_close": [0],
        "path_create_directory": [0], "path_remove_directory": [0], "path_unlink_file": [0],
        "path_rename": [0, 3], "path_link": [0, 4], "path_symlink": [2], "path_filestat_set_times": [0],
        "fd_write": [0], "fd_pwrite": [0], "fd_allocate": [0], "fd_filestat_set_size": [0],
        "fd_filestat_set_times": [0], "fd_renumber": [0, 1], "fd_fdstat_set_flags": [0],
    ]

    // MARK: Pointer checks

    /// A memory range a function's arguments name.
    enum PointerCheck {
        /// `bytes` bytes at argument `pointer`.
        case fixed(pointer: Int, bytes: UInt64)
        /// `length` elements of `size` bytes at `pointer`.
        case span(pointer: Int, length: Int, size: UInt64)
        /// An array of `count` iovecs at `pointer`, and every buffer they name.
        case iovecs(pointer: Int, count: Int)
    }

    /// The ranges each preview 1 function reads or writes.
    static let pointerChecks: [String: [PointerCheck]] = [
        "clock_res_get": [.fixed(pointer: 1, bytes: 8)],
        "clock_time_get": [.fixed(pointer: 2, bytes: 8)],
        "fd_fdstat_get": [.fixed(pointer: 1, bytes: 24)],
        "fd_filestat_get": [.fixed(pointer: 1, bytes: 64)],
        "fd_pread": [.iovecs(pointer: 1, count: 2), .fixed(pointer: 4, bytes: 4)],
        "fd_pwrite": [.iovecs(pointer: 1, count: 2), .fixed(pointer: 4, bytes: 4)],
        "fd_read": [.iovecs(pointer: 1, count: 2), .fixed(pointer: 3, bytes: 4)],
        "fd_write": [.iovecs(pointer: 1, count: 2), .fixed(pointer: 3, bytes: 4)],
        "fd_prestat_get": [.fixed(pointer: 1, bytes: 8)],
        "fd_prestat_dir_name": [.span(pointer: 1, length: 2, size: 1)],
        "fd_readdir": [.span(pointer: 1, length: 2, size: 1), .fixed(pointer: 4, bytes: 4)],
        "fd_seek": [.fixed(pointer: 3, bytes: 8)],
        "fd_tell": [.fixed(pointer: 1, bytes: 8)],
        "path_create_directory": [.span(pointer: 1, length: 2, size: 1)],
        "path_filestat_get": [.span(pointer: 2, length: 3, size: 1), .fixed(pointer: 4, bytes: 64)],
        "path_filestat_set_times": [.span(pointer: 2, length: 3, size: 1)],
        "path_link": [.span(pointer: 2, length: 3, size: 1), .span(pointer: 5, length: 6, size: 1)],
        "path_open": [.span(pointer: 2, length: 3, size: 1), .fixed(pointer: 8, bytes: 4)],
        "path_readlink": [.span(pointer: 1, length: 2, size: 1), .span(pointer: 3, length: 4, size: 1), .fixed(pointer: 5, bytes: 4)],
        "path_remove_directory": [.span(pointer: 1, length: 2, size: 1)],
        "path_rename": [.span(pointer: 1, length: 2, size: 1), .span(pointer: 4, length: 5, size: 1)],
        "path_symlink": [.span(pointer: 0, length: 1, size: 1), .span(pointer: 3, length: 4, size: 1)],
        "path_unlink_file": [.span(pointer: 1, length: 2, size: 1)],
        "poll_oneoff": [.span(pointer: 0, length: 2, size: 48), .span(pointer: 1, length: 2, size: 32), .fixed(pointer: 3, bytes: 4)],
        "random_get": [.span(pointer: 0, length: 1, size: 1)],
        "sock_accept": [.fixed(pointer: 2, bytes: 4)],
        "sock_recv": [.iovecs(pointer: 1, count: 2), .fixed(pointer: 4, bytes: 4), .fixed(pointer: 5, bytes: 2)],
        "sock_send": [.iovecs(pointer: 1, count: 2), .fixed(pointer: 4, bytes: 4)],
    ]

    /// `EFAULT` when a range lies outside `memory`, else `nil`.
    static func check(_ checks: [PointerCheck], _ arguments: [WasmKit.Value], _ memory: Memory) -> WASIAbi.Errno? {
        for check in checks {
            switch check {
            case .fixed(let pointer, let bytes):
                guard inBounds(memory, arguments[pointer].i32, bytes) else { return .EFAULT }
            case .span(let pointer, let length, let size):
                guard inBounds(memory, arguments[pointer].i32, UInt64(arguments[length].i32) * size) else { return .EFAULT }
            case .iovecs(let pointer, let count):
                let base = arguments[pointer].i32
                let count = arguments[count].i32
                guard inBounds(memory, base, UInt64(count) * 8) else { return .EFAULT }
                let bad = memory.withUnsafeBufferPointer(offset: UInt(base), count: Int(count) * 8) { vector in
                    (0..<Int(count)).contains { index in
                        let buffer = UInt32(littleEndian: vector.loadUnaligned(fromByteOffset: index * 8, as: UInt32.self))
                        let length = UInt32(littleEndian: vector.loadUnaligned(fromByteOffset: index * 8 + 4, as: UInt32.self))
                        return !inBounds(memory, buffer, UInt64(length))
                    }
                }
                if bad { return .EFAULT }
            }
        }
        return nil
    }

    private static func inBounds(_ memory: Memory, _ pointer: UInt32, _ bytes: UInt64) -> Bool {
        UInt64(pointer) + bytes <= UInt64(memory.byteCount)
    }
}

/// The standard streams and `argv`/`environ` of the call running now, for one ``WASIHost``.
final class WASICallState: @unchecked Sendable {
    let programName: String
    let defaults: WASIOptions
    let maxOutputBytes: Int
    /// `argv`, each without its terminating zero.
    private(set) var arguments: [[UInt8]] = []
    /// `KEY=value` strings.
    private(set) var environment: [[UInt8]] = []
    var stdin: [UInt8] = []
    var stdinOffset = 0
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []

    init(programName: String, options: WASIOptions, maxOutputBytes: Int) {
        self.programName = programName
        defaults = options
        self.maxOutputBytes = maxOutputBytes
        begin(nil)
    }

    /// Starts a call: its arguments, environment and input; empty output.
    func begin(_ call: WASICallOptions?) {
        let argv = [programName] + (call?.arguments ?? defaults.arguments)
        arguments = argv.map { Array($0.utf8) }
        environment = (call?.environment ?? defaults.environment).sorted { $0.key < $1.key }.map { Array("\($0.key)=\($0.value)".utf8) }
        stdin = call?.stdin ?? []
        stdinOffset = 0
        stdout = []
        stderr = []
    }

    /// Ends a call: its output, and the buffers emptied.
    func end() -> (stdout: [UInt8], stderr: [UInt8]) {
        defer {
            stdout = []
            stderr = []
            stdin = []
        }
        return (stdout, stderr)
    }

    /// Appends `bytes` to stream 1 or 2.
    ///
    /// - Throws: ``GuestFault`` `.outputLimit` past ``maxOutputBytes``.
    func append(_ bytes: UnsafeRawBufferPointer, to number: Int) throws {
        let current = number == 1 ? stdout.count : stderr.count
        guard current + bytes.count <= maxOutputBytes else {
            throw GuestFault(
                kind: .outputLimit,
                message: "the guest wrote more than \(maxOutputBytes) bytes to standard \(number == 1 ? "output" : "error") in one call")
        }
        if number == 1 { stdout.append(contentsOf: bytes) } else { stderr.append(contentsOf: bytes) }
    }
}

/// Descriptor 0, 1 or 2 of a guest whose streams are captured.
private struct StandardStream: WASIFile {
    let state: WASICallState
    let number: Int

    var isBorrowed: Bool { true }
    func attributes() throws -> WASIAbi.Filestat {
        WASIAbi.Filestat(dev: 0, ino: 0, filetype: .CHARACTER_DEVICE, nlink: 1, size: 0, atim: 0, mtim: 0, ctim: 0)
    }
    func fileType() throws -> WASIAbi.FileType { .CHARACTER_DEVICE }
    func status() throws -> WASIAbi.Fdflags { [] }
    func setTimes(atim: WASIAbi.Timestamp, mtim: WASIAbi.Timestamp, fstFlags: WASIAbi.FstFlags) throws {}
    func advise(offset: WASIAbi.FileSize, length: WASIAbi.FileSize, advice: WASIAbi.Advice) throws {}
    func close() throws {}
    func fdStat() throws -> WASIAbi.FdStat {
        WASIAbi.FdStat(
            fsFileType: .CHARACTER_DEVICE, fsFlags: [], fsRightsBase: number == 0 ? .FD_READ : .FD_WRITE, fsRightsInheriting: [])
    }
    func setFdStatFlags(_ flags: WASIAbi.Fdflags) throws {}
    func setFilestatSize(_ size: WASIAbi.FileSize) throws { throw WASIAbi.Errno.EINVAL }
    func sync() throws {}
    func datasync() throws {}
    func tell() throws -> WASIAbi.FileSize { throw WASIAbi.Errno.ESPIPE }
    func seek(offset: WASIAbi.FileDelta, whence: WASIAbi.Whence) throws -> WASIAbi.FileSize { throw WASIAbi.Errno.ESPIPE }

    func write(vectored buffers: GuestBuffers) throws -> WASIAbi.Size {
        guard number != 0 else { throw WASIAbi.Errno.EBADF }
        var total = 0
        for index in 0..<buffers.count {
            total += try buffers.withHostBuffer(at: index) { buffer in
                try state.append(UnsafeRawBufferPointer(buffer), to: number)
                return buffer.count
            }
        }
        return WASIAbi.Size(total)
    }

    func pwrite(vectored buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size { throw WASIAbi.Errno.ESPIPE }

    func read(into buffers: GuestBuffers) throws -> WASIAbi.Size {
        guard number == 0 else { throw WASIAbi.Errno.EBADF }
        var total = 0
        for index in 0..<buffers.count {
            total += try buffers.withHostBuffer(at: index) { buffer in
                let count = min(buffer.count, state.stdin.count - state.stdinOffset)
                if count > 0 {
                    state.stdin.withUnsafeBytes { source in
                        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[state.stdinOffset..<state.stdinOffset + count]))
                    }
                    state.stdinOffset += count
                }
                return count
            }
        }
        return WASIAbi.Size(total)
    }

    func pread(into buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size { throw WASIAbi.Errno.ESPIPE }
}
