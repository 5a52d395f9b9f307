import Futures
@_spi(Fuzzing) import WasmKit

extension HostFunction {
    /// The signature as WasmKit writes it.
    var wasmKitType: FunctionType {
        FunctionType(parameters: parameters.map(\.wasmKit), results: results.map(\.wasmKit))
    }

    /// The function as a WasmKit host function of `store`, bound to `context`.
    func wasmKit(store: Store, context: HostContext) -> Function {
        let function = self
        let result = results.first
        return Function(store: store, type: wasmKitType) { caller, arguments in
            let bits = try HostCall.run(
                function, bits: arguments.map(\.rawBits), context: context, caller: WasmKitCaller(instance: caller.instance))
            return result.map { [WasmKit.Value(WasmValue(bits: bits, type: $0))] } ?? []
        }
    }
}

extension GuestModule {
    /// Defines, for the scratch instance that validates `module`, the linker's host functions it
    /// imports and placeholders (of the imported types) for what it imports from linked instances.
    static func defineLinkedStubs(for module: WasmKit.Module, linker: Linker, into imports: inout Imports, store: Store) {
        guard !linker.isEmpty else { return }
        for entry in module.imports {
            if let function = linker.function(module: entry.module, name: entry.name) {
                imports.define(module: entry.module, name: entry.name, Function(store: store, type: function.wasmKitType) { _, _ in [] })
                continue
            }
            guard linker.instanceNames.contains(entry.module) else { continue }
            switch entry.descriptor {
            case .function(let index):
                guard let type = module.functionType(at: index) else { continue }
                imports.define(module: entry.module, name: entry.name, Function(store: store, type: type) { _, _ in [] })
            case .memory(let type):
                if let memory = try? Memory(store: store, type: type) { imports.define(module: entry.module, name: entry.name, memory) }
            case .table(let type):
                if let table = try? Table(store: store, type: type) { imports.define(module: entry.module, name: entry.name, table) }
            case .global(let type):
                let zero: WasmKit.Value
                switch type.valueType {
                case .i32: zero = .i32(0)
                case .i64: zero = .i64(0)
                case .f32: zero = .f32(0)
                case .f64: zero = .f64(0)
                case .v128: continue
                case .ref(let reference): zero = .ref(reference.heapType == .funcRef ? .function(nil) : .extern(nil))
                }
                if let global = try? Global(store: store, type: type, value: zero) {
                    imports.define(module: entry.module, name: entry.name, global)
                }
            case .tag:
                continue
            }
        }
    }
}
