import CFuturesShims
import Futures
import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// One instance of a compiled module: its box (the runtime's header, then the generated
/// instance), and the host functions' view of it.
final class CompiledInstance: HostCaller {
    let library: CompiledLibrary
    let module: GuestModule
    /// The engine that owns the instance (it outlives its instances).
    unowned let engine: CompiledInstances
    let context: HostContext
    let box: UnsafeMutableRawPointer
    /// The instance's fuel counter (the injected global).
    let fuel: UnsafeMutablePointer<Int64>
    /// The error of a host function that failed, for the trap it caused.
    var pendingError: (any Error)?
    /// The WASI functions the module imports, in the glue's order (`CF_WASI_BASE` on).
    private let wasi: [(FunctionType, WASIHost.HostFunction<CompiledMemory>)]
    /// The runtime's `CF_WASI_BASE`: the host index of the first WASI function.
    private static let wasiBase: UInt32 = 128
    /// The functions the module imports from its linker, in the glue's order (`CF_IMPORT_BASE` on).
    private let linked: [LinkedFunction]
    /// The runtime's `CF_IMPORT_BASE`: the host index of the first linked function.
    private static let importBase: UInt32 = 4096

    /// What a linked import calls: a host function, or a function another instance exports.
    private enum LinkedFunction {
        case host(HostFunction)
        case export(CompiledInstance, CompiledLibrary.Export)
    }

    /// Offsets in the runtime's `cf_instance_header`.
    private static let dispatchOffset = 24
    private static let contextOffset = 32
    private static let trapFunctionOffset = 48
    private static let trapFrameCountOffset = 20
    private static let trapFramesOffset = 56
    /// The runtime's `CF_TRAP_FRAMES`.
    private static let trapFrameCapacity = 64
    /// Where the runtime records a trap's return addresses.
    private let trapFrames = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: trapFrameCapacity)

    init(library: CompiledLibrary, module: GuestModule, engine: CompiledInstances) throws {
        self.library = library
        self.module = module
        self.engine = engine
        context = engine.context
        if library.wasiImports.isEmpty {
            wasi = []
        } else {
            let functions = try engine.runtime.wasiHost(for: module).functions(
                Set(library.wasiImports), memory: CompiledMemory.self, context: engine.context)
            wasi = library.wasiImports.map { functions[$0] ?? (FunctionType(parameters: []), { _, _ in [.i32(52)] }) }  // ENOSYS
        }
        linked = try library.linkedImports.map { entry throws -> LinkedFunction in
            if let function = module.linker.function(module: entry.module, name: entry.name) { return .host(function) }
            let provider = try engine.runtime.registeredProvider(entry.module, for: module)
            guard let instance = engine.instance(of: provider) else {
                throw GuestFault(kind: .trap, message: "\(provider.name), registered as \(entry.module), has no compiled instance")
            }
            guard let export = instance.library.exports[entry.name], export.parameters == entry.type.parameters,
                export.results == entry.type.results
            else {
                throw ModuleError(
                    .missingImports,
                    "\(module.name) imports \(entry.module).\(entry.name) \(signatureText(entry.type)), which \(provider.name) "
                        + "(registered as \(entry.module)) does not export with that signature",
                    missingImports: ["\(entry.module).\(entry.name)"])
            }
            return .export(instance, export)
        }
        var memory: UnsafeMutableRawPointer?
        guard posix_memalign(&memory, 64, library.boxSize) == 0, let memory else {
            throw GuestFault(kind: .memoryLimit, message: "cannot allocate an instance of \(module.name)")
        }
        memset(memory, 0, library.boxSize)
        guard let counter = library.fuel(memory) else {
            free(memory)
            throw GuestFault(kind: .invalidModule, message: "the compiled form of \(module.name) has no fuel counter")
        }
        box = memory
        fuel = counter.assumingMemoryBound(to: Int64.self)
        box.storeBytes(of: box, as: UnsafeMutableRawPointer.self)
        box.storeBytes(of: compiledHostDispatch, toByteOffset: Self.dispatchOffset, as: HostDispatch.self)
        box.storeBytes(of: Unmanaged.passUnretained(self).toOpaque(), toByteOffset: Self.contextOffset, as: UnsafeMutableRawPointer.self)
        box.storeBytes(of: UnsafeMutableRawPointer(trapFrames), toByteOffset: Self.trapFramesOffset, as: UnsafeMutableRawPointer.self)
    }

    deinit {
        // Also after a trap during instantiation: what was allocated is freed (the box started
        // zeroed, so what was not is a null pointer).
        _ = library.release(box)
        free(box)
        trapFrames.deallocate()
    }

    /// The instance's exported `memory`, if any.
    var linearMemory: CompiledMemory? {
        library.memory(box).map(CompiledMemory.init)
    }

    func memory() throws -> any LinearMemory {
        guard let memory = linearMemory else { throw GuestMemory.noMemory() }
        return memory
    }

    func allocate(_ count: Int, context: HostContext) throws -> UInt32 {
        guard let allocator = library.exports["cf_alloc"], allocator.parameters == [.i32], allocator.results == [.i32] else {
            throw GuestMemory.noAllocator(count)
        }
        try GuestMemory.checkAllocation(count)
        var slot: [UInt64] = [UInt64(count)]
        try GuestMemory.callback(context: context) {
            try engine.run(self) { box in
                slot.withUnsafeMutableBufferPointer { library.invoke(box, allocator.index, $0.baseAddress, engine.stackBudget) }
            }
        }
        return try GuestMemory.checkAllocated(UInt32(truncatingIfNeeded: slot[0]), count: count, memory: memory())
    }

    func call(_ name: String, _ arguments: [WasmValue], context: HostContext) throws -> [WasmValue] {
        guard let export = library.exports[name] else {
            throw GuestFault(kind: .missingFunction, message: "the guest exports no function named '\(name)'")
        }
        guard export.isCallable else { throw GuestFault(kind: .badArguments, message: "\(name) takes or returns a reference or vector") }
        try Self.checkArguments(arguments, try export.parameters.map(WasmValueType.init(crossing:)), name)
        return try engine.invoke(self, export, values: arguments)
    }

    /// Calls host function `index` for the guest; a failure is kept for the trap it causes.
    func dispatch(_ index: UInt32, _ arguments: UnsafePointer<UInt64>, _ result: UnsafeMutablePointer<UInt64>) -> Int32 {
        do {
            switch index {
            case 64:
                // As WasmKit: the limiter's charge for the new size, then one for the bytes added.
                let grown = try context.account.growMemory(to: Int(arguments[0]))
                if grown { try context.account.chargeFuel(arguments[1] / 64, for: "growing memory by \(arguments[1]) bytes") }
                result.pointee = grown ? 1 : 0
            case 65:
                let grown = try context.account.growTable(to: Int(arguments[0]), elementBytes: Int(arguments[2]))
                if grown {
                    let bytes = arguments[1] &* FuelMetering.tableElementStride
                    try context.account.chargeFuel(bytes / 64, for: "growing a table by \(arguments[1]) elements")
                }
                result.pointee = grown ? 1 : 0
            case Self.importBase...:
                let position = Int(index - Self.importBase)
                guard position < linked.count else { throw GuestFault(kind: .trap, message: "unknown imported function \(position)") }
                switch linked[position] {
                case .host(let function):
                    result.pointee = try HostCall.run(
                        function, bits: UnsafeBufferPointer(start: arguments, count: function.parameters.count), context: context, caller: self)
                case .export(let instance, let export):
                    let types = try export.parameters.map(WasmValueType.init(crossing:))
                    let values = zip(UnsafeBufferPointer(start: arguments, count: types.count), types).map { WasmValue(bits: $0, type: $1) }
                    result.pointee = try engine.invoke(instance, export, values: values).first?.bits ?? 0
                }
            case Self.wasiBase...:
                let position = Int(index - Self.wasiBase)
                guard position < wasi.count else { throw GuestFault(kind: .trap, message: "unknown WASI function \(position)") }
                let memory =
                    try linearMemory ?? { throw GuestFault(kind: .invalidPointer, message: "a WASI guest must export its memory as \"memory\"") }()
                let (type, body) = wasi[position]
                var values: [WasmKit.Value] = []
                values.reserveCapacity(type.parameters.count)
                for (slot, parameter) in type.parameters.enumerated() {
                    switch parameter {
                    case .i64: values.append(.i64(arguments[slot]))
                    case .f32: values.append(.f32(UInt32(truncatingIfNeeded: arguments[slot])))
                    case .f64: values.append(.f64(arguments[slot]))
                    default: values.append(.i32(UInt32(truncatingIfNeeded: arguments[slot])))
                    }
                }
                result.pointee = try body(memory, values).first?.rawBits ?? 0
            default:
                guard Int(index) < HostImports.table.count else { throw GuestFault(kind: .trap, message: "unknown host function \(index)") }
                let entry = HostImports.table[Int(index)]
                let count = entry.type.parameters.count
                result.pointee = try entry.body(context, self, Array(UnsafeBufferPointer(start: arguments, count: count)))
            }
            return 0
        } catch {
            pendingError = error
            return 1
        }
    }

    /// The error for trap code `trap` (the runtime's `wasm_rt_trap_t`).
    func trapError(_ trap: Int32, fuel remaining: Int64) -> any Error {
        if let pending = pendingError {
            pendingError = nil
            return pending
        }
        let fault = trapFault(trap, fuel: remaining)
        // The generated function that raised it, when the runtime recorded one (not for a fault
        // the host's handler caught: an access past a guard page).
        guard fault.kind != .memoryLimit,
            let cName = box.load(fromByteOffset: Self.trapFunctionOffset, as: UnsafePointer<CChar>?.self),
            let function = CompiledTrapNames.guestName(ofC: String(cString: cName), in: module)
        else { return fault }
        return CompiledTrap(fault: fault, backtrace: backtrace(trapping: function))
    }

    /// The guest functions on the native stack at the last trap, innermost first, starting with
    /// `function` (the one that raised it, even when the optimizer inlined it into its caller):
    /// each recorded return address inside this instance's shared object, named through its
    /// symbol table. Frames the optimizer inlined into their callers are not on the stack.
    private func backtrace(trapping function: String) -> [String] {
        let count = min(Int(box.load(fromByteOffset: Self.trapFrameCountOffset, as: UInt32.self)), Self.trapFrameCapacity)
        var base: UnsafeRawPointer?
        var file: UnsafePointer<CChar>?
        guard count > 0, cf_object_of(unsafeBitCast(library.invoke, to: UnsafeRawPointer.self), &base, &file) != 0, let base, let file,
            let symbols = CompiledSymbols.of(String(cString: file))
        else { return [function] }
        var names: [String] = []
        for frame in UnsafeBufferPointer(start: trapFrames, count: count) {
            // A return address: the call is the byte before it.
            guard let address = frame, UInt(bitPattern: address) > UInt(bitPattern: base) else { continue }
            var frameBase: UnsafeRawPointer?
            var frameFile: UnsafePointer<CChar>?
            guard cf_object_of(address, &frameBase, &frameFile) != 0, frameBase == base,
                let cName = symbols.name(at: UInt(bitPattern: address) - UInt(bitPattern: base) - 1),
                let name = CompiledTrapNames.guestName(ofC: cName, in: module)
            else { continue }
            names.append(name)
        }
        // The innermost native frame is the trapping function itself unless it was inlined.
        if names.first == function { names.removeFirst() }
        return [function] + names
    }

    /// The fault for trap code `trap`.
    private func trapFault(_ trap: Int32, fuel remaining: Int64) -> GuestFault {
        switch trap {
        case 1: return GuestFault(kind: .memoryOutOfBounds, message: "out of bounds memory access")
        case 2: return GuestFault(kind: .integerOverflow, message: "integer overflow")
        case 3: return GuestFault(kind: .divideByZero, message: "integer divide by zero")
        case 4: return GuestFault(kind: .invalidConversion, message: "invalid conversion to integer")
        case 5 where remaining < 0: return GuestFault(kind: .outOfFuel, message: "out of fuel")
        case 5: return GuestFault(kind: .unreachable, message: "unreachable")
        case 6: return GuestFault(kind: .indirectCall, message: "indirect call to a null or mistyped table element")
        case 8: return GuestFault(kind: .stackExhausted, message: "call stack exhausted")
        case 101:
            return GuestFault(kind: .memoryLimit, message: "initial memory size exceeds the interpreter's memory limit")
        case 102: return GuestFault(kind: .indirectCall, message: "out of bounds table access")
        default: return GuestFault(kind: .trap, message: "trap \(trap)")
        }
    }
}

/// The runtime's host dispatch: `(context, index, arguments, result) -> status`.
typealias HostDispatch = @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafePointer<UInt64>?, UnsafeMutablePointer<UInt64>?) -> Int32

/// The one host entry point of every compiled instance: its context is the ``CompiledInstance``.
let compiledHostDispatch: HostDispatch = { context, index, arguments, result in
    guard let context, let arguments, let result else { return 1 }
    return Unmanaged<CompiledInstance>.fromOpaque(context).takeUnretainedValue().dispatch(index, arguments, result)
}
