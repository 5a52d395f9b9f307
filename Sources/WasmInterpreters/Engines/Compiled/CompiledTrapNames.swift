import WasmKit
import WasmParser

/// A trap of a compiled guest that the runtime could place: the trap, and the guest function it
/// was raised in. ``CompiledInstances`` makes it a ``GuestError`` with that function as its
/// backtrace.
struct CompiledTrap: Error, CustomStringConvertible {
    /// The trap.
    let fault: GuestFault
    /// The guest functions, innermost first: the one that raised the trap, then those of the
    /// native stack (see
    /// ``CompiledTrapNames``).
    let backtrace: [String]

    var description: String { fault.description }
}

/// The guest function names of a compiled module's generated C functions, for traps.
///
/// The runtime records the C name (`__func__`) of the generated function that raised a trap
/// through `wasm_rt_trap` (in the instance's header; nothing is recorded while no trap
/// happens). As the build drops the `name` section and renames every export (see
/// ``FuelMetering``), wasm2c names a function `w2c_f<index>`, `w2c_e<export number>` or
/// `w2c_start`: each maps back to a function index, and the index to the module's own name for
/// it (its `name` section, else an export's name, else `func[<index>]`). The frames of the
/// native stack, which the runtime records on the trap path too, are named the same way through
/// the shared object's symbol table (``CompiledSymbols``); functions the optimizer inlined into
/// their callers have no frame of their own.
enum CompiledTrapNames {
    /// The guest function name for the generated C function `cName` of `module`, or `nil` when
    /// `cName` is not a generated function (a runtime helper).
    static func guestName(ofC cName: String, in module: GuestModule) -> String? {
        guard cName.hasPrefix("w2c_") else { return nil }
        let name = cName.dropFirst(4)
        let index: UInt32?
        if name == "start" {
            index = (try? FuelMetering.ModuleLayout(module.wasmBytes))?.start
        } else if name.first == "f", let number = UInt32(name.dropFirst()) {
            index = number
        } else if name.first == "e", let number = Int(name.dropFirst()), number < module.parsed.exports.count,
            case .function(let function) = module.parsed.exports[number].descriptor
        {
            index = function
        } else {
            index = nil
        }
        guard let index else { return nil }
        return functionName(index, in: module)
    }

    /// The module's name for function `index`: from its `name` section, else the first export
    /// of the function, else `func[<index>]`.
    static func functionName(_ index: UInt32, in module: GuestModule) -> String {
        for section in module.parsed.customSections where section.name == "name" {
            var parser = NameSectionParser(stream: StaticByteStreamSource(bytes: section.bytes))
            guard let parsed = try? parser.parseAll() else { continue }
            for case .functions(let names) in parsed {
                if let name = names[index] { return name }
            }
        }
        for export in module.parsed.exports {
            if case .function(index) = export.descriptor { return export.name }
        }
        return "func[\(index)]"
    }
}
