import WasmKit

/// Writes the C that joins a module's wasm2c translation to the host: the instance box, the
/// stubs of the WASI functions it imports, and one entry point that calls any export with its
/// arguments and results as 64-bit slots.
enum CompiledGlue {
    /// Changes whenever the generated glue changes (it is part of cache keys).
    static let version = "glue-6"

    /// A function the module imports from WASI preview 1 (numbered by the glue from
    /// `CF_WASI_BASE`, in the order given) or from its ``Linker`` (from `CF_IMPORT_BASE`).
    struct ImportedFunction: Equatable {
        let module: String
        let name: String
        let type: FunctionType
    }

    /// The glue for `module` (translated with module name `m`), whose metering is `metering`
    /// and whose generated header is `header`.
    ///
    /// - Throws: ``FuelMetering/Failure`` when the header lacks what the glue calls.
    static func source(
        for module: GuestModule, metering: FuelMetering.Output, header: String, wasiImports: [ImportedFunction],
        linkedImports: [ImportedFunction]
    ) throws(FuelMetering.Failure) -> String {
        let instantiation = (["&box->module"] + (try instantiationArguments(header)).map { "(struct \($0) *)&box->header" })
            .joined(separator: ", ")
        var text = """
            #include "m.h"
            #include <stddef.h>

            typedef struct {
              cf_instance_header header;
              Z_m_instance_t module;
            } cf_box;
            _Static_assert(offsetof(cf_box, module) == sizeof(cf_instance_header), "the instance must follow its header");

            static inline f32 cf_f32(uint64_t bits) { uint32_t low = (uint32_t)bits; f32 value; memcpy(&value, &low, 4); return value; }
            static inline f64 cf_f64(uint64_t bits) { f64 value; memcpy(&value, &bits, 8); return value; }
            static inline uint64_t cf_bits_f32(f32 value) { uint32_t bits; memcpy(&bits, &value, 4); return bits; }
            static inline uint64_t cf_bits_f64(f64 value) { uint64_t bits; memcpy(&bits, &value, 8); return bits; }

            size_t cf_box_size(void) { return sizeof(cf_box); }
            static void cf_module_init_body(void *argument) { (void)argument; Z_m_init_module(); }
            int cf_module_init(void *(*thread_state)(void)) {
              cf_runtime_init(thread_state);
              return cf_guard(cf_module_init_body, NULL);
            }
            static void cf_instantiate_body(void *argument) {
              cf_box *box = argument;
              Z_m_instantiate(\(instantiation));
            }
            int cf_instantiate(cf_box *box, uintptr_t budget) { return cf_run(&box->header, budget, cf_instantiate_body, box); }
            static void cf_release_body(void *argument) { Z_m_free(&((cf_box *)argument)->module); }
            int cf_release(cf_box *box) { return cf_guard(cf_release_body, box); }
            void *cf_memory(cf_box *box) { return \(metering.memoryExport.map { "Z_mZ_\($0)(&box->module)" } ?? "NULL"); }
            void *cf_fuel(cf_box *box) { return Z_mZ_\(metering.fuelExport)(&box->module); }
            void *cf_global(cf_box *box, uint32_t index) {
              switch (index) {

            """
        // Exported globals, by their names sorted (CompiledLibrary numbers them the same way).
        for (index, name) in metering.globalExports.keys.sorted().enumerated() {
            text += "    case \(index): return Z_mZ_\(metering.globalExports[name]!)(&box->module);\n"
        }
        text += """
                default: return NULL;
              }
            }


            """
        for (index, function) in wasiImports.enumerated() {
            text += importStub(function, base: "CF_WASI_BASE", index: index)
        }
        for (index, function) in linkedImports.enumerated() {
            text += importStub(function, base: "CF_IMPORT_BASE", index: index)
        }
        text += """

            typedef struct {
              cf_box *box;
              uint32_t index;
              uint64_t *slots;
            } cf_call_frame;

            static void cf_call_body(void *argument) {
              cf_call_frame *frame = argument;
              Z_m_instance_t *instance = &frame->box->module;
              uint64_t *s = frame->slots;
              (void)s;
              switch (frame->index) {

            """
        // Exports are called by the names the metering gave them: none of the module's own names
        // reaches the C (see FuelMetering).
        var entries = module.functions.map { (name: metering.functionExports[$0.name], parameters: $0.parameters, results: $0.results) }
        if let start = metering.startExport { entries.append((start, [], [])) }
        for (index, entry) in entries.enumerated() {
            let types = entry.parameters + entry.results
            guard let name = entry.name, types.allSatisfy({ ["i32", "i64", "f32", "f64"].contains($0) }) else { continue }
            let arguments = (["instance"] + entry.parameters.enumerated().map { slot, type in fromSlot("s[\(slot)]", type) })
                .joined(separator: ", ")
            let call = "Z_mZ_\(name)(\(arguments))"
            switch entry.results.count {
            case 0:
                text += "    case \(index): \(call); break;\n"
            case 1:
                text += "    case \(index): s[0] = \(toSlot(call, entry.results[0])); break;\n"
            default:
                let letters = entry.results.map(letter).joined()
                var line = "    case \(index): { struct wasm_multi_\(letters) r = \(call);"
                for (slot, type) in entry.results.enumerated() {
                    line += " s[\(slot)] = \(toSlot("r.\(letter(type))\(slot)", type));"
                }
                text += line + " break; }\n"
            }
        }
        text += """
                default: wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
              }
            }

            int cf_call(cf_box *box, uint32_t index, uint64_t *slots, uintptr_t budget) {
              cf_call_frame frame = {box, index, slots};
              return cf_run(&box->header, budget, cf_call_body, &frame);
            }

            """
        return text
    }

    /// The instance types `Z_m_instantiate` takes after the module's own, in order (one per
    /// module the guest imports from), read from the generated header.
    static func instantiationArguments(_ header: String) throws(FuelMetering.Failure) -> [String] {
        let prefix = "void Z_m_instantiate(Z_m_instance_t*"
        guard let line = header.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }), line.hasSuffix(");") else {
            throw FuelMetering.Failure(description: "wasm2c's header declares no Z_m_instantiate")
        }
        let list = line.dropFirst(prefix.count).dropLast(2)
        return try list.split(separator: ",").map { parameter throws(FuelMetering.Failure) -> String in
            let words = parameter.split(separator: " ")
            guard words.count == 2, words[0] == "struct", words[1].hasSuffix("*"),
                words[1].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "*" })
            else { throw FuelMetering.Failure(description: "wasm2c's Z_m_instantiate takes \(parameter), not an import's instance") }
            return String(words[1].dropLast())
        }
    }

    /// The C function wasm2c's code calls for the imported `function`: it passes its arguments
    /// to the host's function `base + index`, through the instance's header.
    private static func importStub(_ function: ImportedFunction, base: String, index: Int) -> String {
        func cType(_ type: ValueType) -> String {
            switch type {
            case .i64: "u64"
            case .f32: "f32"
            case .f64: "f64"
            default: "u32"
            }
        }
        let parameters = function.type.parameters.enumerated().map { "\(cType($1)) a\($0)" }
        let slots = function.type.parameters.enumerated().map { position, type in
            switch type {
            case .f32: "cf_bits_f32(a\(position))"
            case .f64: "cf_bits_f64(a\(position))"
            default: "(uint64_t)a\(position)"
            }
        }
        let result = function.type.results.first.map(cType) ?? "void"
        let call = "cf_host(CF_HEADER_OF(instance), \(base) + \(index)u, arguments)"
        let body: String
        switch function.type.results.first {
        case nil: body = "\(call);"
        case .f32?: body = "return cf_f32(\(call));"
        case .f64?: body = "return cf_f64(\(call));"
        case let type?: body = "return (\(cType(type)))\(call);"
        }
        return """
            \(result) Z_\(mangle(function.module))Z_\(mangle(function.name))(\((["struct Z_\(mangle(function.module))_instance_t *instance"] + parameters).joined(separator: ", "))) {
              uint64_t arguments[\(max(1, slots.count))] = {\(slots.isEmpty ? "0" : slots.joined(separator: ", "))};
              \(body)
            }

            """
    }

    /// The generated header with the instance's fuel counter declared `volatile`, or `nil` when
    /// the counter is not where it should be.
    static func makeFuelVolatile(_ header: String, fuelExport: String) -> String? {
        let field = "  u64 w2c_\(mangle(fuelExport));"
        let lines = header.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count(where: { $0 == field }) == 1 else { return nil }
        return lines.map { $0 == field ? "  volatile" + $0.dropFirst(1) : String($0) }.joined(separator: "\n")
    }

    /// wasm2c's name mangling: letters, digits and `_` stay (but `Z`); every other byte is
    /// `Z` and two hex digits.
    static func mangle(_ name: String) -> String {
        var result = ""
        for byte in name.utf8 {
            let scalar = Unicode.Scalar(byte)
            let isAlphanumeric = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            if (isAlphanumeric && byte != 0x5A) || byte == 0x5F {
                result.unicodeScalars.append(scalar)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                result += "Z" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return result
    }

    private static func fromSlot(_ slot: String, _ type: String) -> String {
        switch type {
        case "i32": "(uint32_t)\(slot)"
        case "f32": "cf_f32(\(slot))"
        case "f64": "cf_f64(\(slot))"
        default: slot
        }
    }

    private static func toSlot(_ value: String, _ type: String) -> String {
        switch type {
        case "i32": "(uint64_t)(uint32_t)\(value)"
        case "f32": "cf_bits_f32(\(value))"
        case "f64": "cf_bits_f64(\(value))"
        default: "(uint64_t)\(value)"
        }
    }

    private static func letter(_ type: String) -> String {
        switch type {
        case "i32": "i"
        case "i64": "j"
        case "f32": "f"
        default: "d"
        }
    }
}
