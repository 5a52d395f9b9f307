import Futures
import WasmKit
import WasmParser

/// Gives a module its own fuel counter, for the compiled engine: a mutable `i64` global,
/// exported, charged exactly as WasmKit's translator charges its own counter, so that a budget
/// means the same on both engines, unit for unit.
///
/// WasmKit's model, reproduced here:
/// - Code is charged by *regions*, each paid once, up front, when entered: a function body, a
///   loop body (paid at every iteration), each arm of an `if`. A `block` shares its enclosing
///   region.
/// - A region costs one unit per operator in it, but `nop`, `drop`, `block`, `loop`,
///   `unreachable`, `return`, `else` and `end`, which cost nothing. An `if` belongs to the region
///   that evaluates its condition. Operators in unreachable code (after `br`, `br_table`,
///   `return`, `unreachable`, up to the end of their block) cost nothing;
///   a block opened there is reachable again, as WasmKit's validator has it.
/// - Bulk operations pay, after they succeed, for the bytes they move: `memory.fill`,
///   `memory.copy` and `memory.init` one unit per 64 bytes; `table.fill`, `table.copy` and
///   `table.init` one unit per 64 bytes of WasmKit's table elements
///   (``tableElementStride``). (`memory.grow` and `table.grow` are charged by the runtime, which
///   sees whether they succeeded.)
///
/// A charge that the counter cannot pay makes it negative and traps (`unreachable`): the host
/// reports `outOfFuel`. The start function is taken out of the start section and exported, so
/// that the host runs it under the call's limits. The `name` section is dropped.
///
/// Every export is renamed (`e0`, `e1`, ... in the order of the export section), and the added
/// ones are `fuel` and `start`: `wasm2c` writes export names into the C it generates (into
/// comments, and into identifiers after its own mangling), so a name chosen by the guest must
/// never reach it (a name holding `*/` would end the comment and put code of its choosing into a
/// shared object the host loads; one that mangles like the fuel counter's would take its place).
/// The host calls exports by their new names, through ``Output/functionExports``.
enum FuelMetering {
    /// The names of the exports the metering adds; every other export is named `e` and a number.
    static let fuelExport = "fuel"
    static let startExport = "start"

    /// Changes whenever what the metering produces changes (it is part of cache keys).
    static let version = "metering-2"

    /// Bytes WasmKit stores per table element: table operations are priced by them.
    static let tableElementStride = UInt64(MemoryLayout<WasmKit.Reference>.stride)

    /// The instrumented module.
    struct Output {
        let bytes: [UInt8]
        /// The export of the fuel counter (a global).
        let fuelExport: String
        /// The export of the module's start function, if it had one.
        let startExport: String?
        /// The new name of each exported function, by its name in the module.
        let functionExports: [String: String]
        /// The new name of the memory the module exports as `memory`, if it does.
        let memoryExport: String?
        /// The new name of each exported global, by its name in the module.
        let globalExports: [String: String]
    }

    /// What goes wrong: a message for ``ModuleError``.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        /// Whether the module uses a feature the compiled engine does not run (it may run on
        /// WasmKit), rather than being damaged.
        var isUnsupportedFeature = false
    }

    /// Instruments `bytes`, a module that has passed validation.
    ///
    /// - Throws: ``Failure`` when the module uses what the compiled engine cannot translate
    ///   (SIMD, 64-bit or multiple memories, tail calls, threads, typed function references), or
    ///   does not match its own parse.
    static func instrument(_ bytes: [UInt8]) throws(Failure) -> Output {
        let layout = try ModuleLayout(bytes)
        let fuelGlobal = UInt32(layout.importedGlobals + layout.definedGlobals)
        let sections = try rawSections(bytes)

        let newGlobal: [UInt8] = [0x7E, 0x01, 0x42, 0x00, 0x0B]  // (mut i64) (i64.const 0)
        var exports: [UInt8] = []
        var exportCount: UInt64 = 0
        var functionExports: [String: String] = [:]
        var memoryExport: String?
        var globalExports: [String: String] = [:]
        for section in sections where section.id == 7 {
            var reader = SectionReader(bytes: bytes[section.range])
            let count = try reader.leb()
            for number in 0..<count {
                let name = String(decoding: try reader.take(Int(try reader.leb())), as: UTF8.self)
                let kind = try reader.byte()
                let index = try reader.leb()
                let renamed = "e\(number)"
                if kind == 0x00 { functionExports[name] = renamed }
                if kind == 0x02, name == "memory" { memoryExport = renamed }
                if kind == 0x03 { globalExports[name] = renamed }
                exports += exportEntry(renamed, kind: kind, index: UInt32(truncatingIfNeeded: index))
                exportCount += 1
            }
        }
        exports += exportEntry(fuelExport, kind: 0x03, index: fuelGlobal)
        exportCount += 1
        if let start = layout.start {
            exports += exportEntry(startExport, kind: 0x00, index: start)
            exportCount += 1
        }

        var output: [UInt8] = Array(bytes[0..<8])
        var globalsWritten = false
        var exportsWritten = false
        func emit(_ id: UInt8, _ payload: [UInt8]) {
            output.append(id)
            output += leb(UInt64(payload.count))
            output += payload
        }
        // Sections in the order the binary format requires: globals (6) and exports (7) go
        // before whichever of start (8), elements (9), data count (12), code (10) or data (11)
        // comes first when the module has none.
        func emitMissing(before id: UInt8) {
            if !globalsWritten, [7, 8, 9, 12, 10, 11].contains(id) {
                emit(6, leb(1) + newGlobal)
                globalsWritten = true
            }
            if !exportsWritten, [8, 9, 12, 10, 11].contains(id) {
                emit(7, leb(exportCount) + exports)
                exportsWritten = true
            }
        }
        for section in sections {
            let payload = Array(bytes[section.range])
            emitMissing(before: section.id)
            switch section.id {
            case 0:
                if customSectionName(payload) != "name" { emit(0, payload) }
            case 6:
                let (count, rest) = try vectorHead(payload)
                emit(6, leb(count + 1) + rest + newGlobal)
                globalsWritten = true
            case 7:
                emit(7, leb(exportCount) + exports)
                exportsWritten = true
            case 8:
                break
            case 10:
                emit(10, try meterCode(payload, layout: layout, fuelGlobal: fuelGlobal))
            default:
                emit(section.id, payload)
            }
        }
        emitMissing(before: 11)
        return Output(
            bytes: output, fuelExport: fuelExport, startExport: layout.start == nil ? nil : startExport,
            functionExports: functionExports, memoryExport: memoryExport, globalExports: globalExports)
    }

    /// What metering needs of a module besides its code: counts, types, exports, start.
    struct ModuleLayout {
        var importedGlobals = 0
        var definedGlobals = 0
        var start: UInt32?
        var codes: [Code] = []
        /// Every type of the type section, `nil` for one that is not a function type.
        var types: [FunctionType?] = []
        /// The type index of each defined function.
        var functionTypes: [UInt32] = []

        init(_ bytes: [UInt8]) throws(Failure) {
            var parser = Parser(bytes: bytes)
            var memories = 0
            var unsupported: String?
            func refuse(_ feature: String) {
                if unsupported == nil { unsupported = feature }
            }
            do {
                while let payload = try parser.parseNext() {
                    switch payload {
                    case .typeSection(let groups): types = ModuleStructure.functionTypes(groups)
                    case .importSection(let imports):
                        for entry in imports {
                            switch entry.descriptor {
                            case .global: importedGlobals += 1
                            case .memory(let type):
                                memories += 1
                                if type.isMemory64 { refuse("a 64-bit memory") }
                                if type.shared { refuse("a shared memory (threads)") }
                            case .table(let type) where type.limits.isMemory64:
                                refuse("a 64-bit table")
                            default: break
                            }
                        }
                    case .functionSection(let indices): functionTypes = indices
                    case .memorySection(let defined):
                        memories += defined.count
                        for memory in defined {
                            if memory.type.isMemory64 { refuse("a 64-bit memory") }
                            if memory.type.shared { refuse("a shared memory (threads)") }
                        }
                    case .tableSection(let tables):
                        if tables.contains(where: { $0.type.limits.isMemory64 }) { refuse("a 64-bit table") }
                    case .globalSection(let globals): definedGlobals = globals.count
                    case .startSection(let index): start = index
                    case .codeSection(let bodies): codes = bodies
                    default: break
                    }
                }
            } catch {
                throw Failure(description: "the module does not parse: \(error)")
            }
            if let unsupported { throw Failure.unsupported(unsupported) }
            if memories > 1 { throw Failure.unsupported("\(memories) memories (multi-memory)") }
        }

        /// The number of parameters of defined function `index`.
        func parameterCount(ofDefined index: Int) throws(Failure) -> Int {
            guard index < functionTypes.count, Int(functionTypes[index]) < types.count,
                let type = types[Int(functionTypes[index])]
            else { throw Failure(description: "a function's type does not match its parse") }
            return type.parameters.count
        }
    }

    /// The code section with every body metered.
    private static func meterCode(_ payload: [UInt8], layout: ModuleLayout, fuelGlobal: UInt32) throws(Failure) -> [UInt8] {
        var reader = SectionReader(bytes: payload[...])
        let count = try reader.leb()
        guard count == layout.codes.count else { throw Failure(description: "the code section does not match its parse") }
        var output = leb(count)
        for (index, code) in layout.codes.enumerated() {
            let size = Int(try reader.leb())
            let content = try reader.take(size)
            let expressionCount = code.expression.count
            guard expressionCount <= content.count else { throw Failure(description: "a function body does not match its parse") }
            var locals = Array(content.prefix(content.count - expressionCount))
            let plan = try plan(code)
            var scratch: UInt32 = 0
            if plan.needsScratch {
                // One more local, an i32, after the others: it holds a bulk operation's length.
                scratch = UInt32(try layout.parameterCount(ofDefined: index) + code.locals.count)
                var localsReader = SectionReader(bytes: locals[...])
                let groups = try localsReader.leb()
                locals = leb(groups + 1) + Array(localsReader.rest) + [0x01, 0x7F]
            }
            let metered = try rewrite(Array(code.expression), plan: plan, fuelGlobal: fuelGlobal, scratch: scratch)
            let body = locals + metered
            output += leb(UInt64(body.count))
            output += body
        }
        return output
    }

    /// What to insert into one function body, at offsets of its expression.
    struct Plan {
        enum Insertion: Equatable {
            /// A bulk operation's charge, right after it (ordered first at an offset).
            case bulkCharge(elementStride: UInt64?)
            /// A region's charge, at its head.
            case regionCharge(UInt64)
            /// Keeps a copy of the length operand of the bulk operation that follows.
            case keepLength

            var order: Int {
                switch self {
                case .bulkCharge: 0
                case .regionCharge: 1
                case .keepLength: 2
                }
            }
        }

        var insertions: [(offset: Int, insertion: Insertion)] = []
        var needsScratch: Bool { insertions.contains { $0.insertion == .keepLength } }
    }

    /// Classifies operators for ``plan(_:)``.
    private struct Scanner: AnyInstructionVisitor {
        typealias VisitorError = Never
        var binaryOffset = 0
        var last: Kind = .other
        enum Kind {
            case loop, block, `if`, `else`, end
            /// Costs nothing (`nop`, `drop`).
            case free
            /// Costs nothing, and what follows is unreachable (`unreachable`, `return`).
            case freeTerminator
            /// Costs one unit, and what follows is unreachable.
            case terminator
            /// A bulk operation priced by bytes, or by table elements.
            case bulkBytes, bulkElements
            /// An operator the compiled engine does not translate.
            case unsupported(String)
            case other

            /// The feature of an operator the compiled engine does not translate, by the first
            /// byte of its encoding (the prefixes of whole proposals), or `nil`.
            static func unsupportedFeature(opcode: UInt8) -> String? {
                switch opcode {
                case 0xFD: "SIMD (v128)"
                case 0xFE: "threads (atomic operations)"
                case 0xFB: "garbage collection (struct, array, i31)"
                default: nil
                }
            }
        }

        mutating func visit(_ instruction: Instruction) {
            switch instruction {
            case .loop: last = .loop
            case .block: last = .block
            case .if: last = .if
            case .else: last = .else
            case .end: last = .end
            case .nop, .drop: last = .free
            case .unreachable, .return: last = .freeTerminator
            case .br, .brTable: last = .terminator
            // Refused when the module is loaded (``GuestModule``); refused here too, should that change.
            case .tryTable, .throw, .throwRef: last = .unsupported("exception handling")
            case .returnCall, .returnCallIndirect, .returnCallRef: last = .unsupported("tail calls")
            case .callRef, .refAsNonNull, .brOnNull, .brOnNonNull: last = .unsupported("typed function references")
            case .memoryFill, .memoryCopy, .memoryInit: last = .bulkBytes
            case .tableFill, .tableCopy, .tableInit: last = .bulkElements
            default: last = .other
            }
        }
    }

    /// Where a body's charges go, following WasmKit's regions (see the type's documentation).
    static func plan(_ code: Code) throws(Failure) -> Plan {
        struct Frame {
            var reachable = true
            /// The region enclosing this frame's own (a loop or an `if`), restored at its `end`.
            var enclosing: Int?
        }
        var regions: [(offset: Int, cost: UInt64)] = [(0, 0)]
        var current = 0
        var frames = [Frame()]
        var plan = Plan()
        var parser = ExpressionParser(code: code)
        let base = parser.offset
        var scanner = Scanner()
        var unsupported: String?
        do {
            scan: while true {
                let start = parser.offset - base
                guard let visit = try parser.parse() else { break }
                visit(visitor: &scanner)
                let end = parser.offset - base
                if let feature = Scanner.Kind.unsupportedFeature(opcode: code.expression[code.expression.startIndex + start]) {
                    unsupported = feature
                    break scan
                }
                let reachable = frames.last?.reachable ?? false
                switch scanner.last {
                case .free, .freeTerminator, .loop, .block, .else, .end:
                    break
                default:
                    if reachable { regions[current].cost += 1 }
                }
                switch scanner.last {
                case .loop, .if:
                    frames.append(Frame(reachable: true, enclosing: current))
                    regions.append((end, 0))
                    current = regions.count - 1
                case .block:
                    frames.append(Frame(reachable: true, enclosing: nil))
                case .else:
                    frames[frames.count - 1].reachable = true
                    regions.append((end, 0))
                    current = regions.count - 1
                case .end:
                    if let frame = frames.popLast(), let enclosing = frame.enclosing { current = enclosing }
                case .freeTerminator, .terminator:
                    frames[frames.count - 1].reachable = false
                case .bulkBytes, .bulkElements:
                    let isTable: Bool
                    if case .bulkElements = scanner.last { isTable = true } else { isTable = false }
                    plan.insertions.append((start, .keepLength))
                    plan.insertions.append((end, .bulkCharge(elementStride: isTable ? tableElementStride : nil)))
                case .unsupported(let feature):
                    unsupported = feature
                    break scan
                case .free, .other:
                    break
                }
            }
        } catch {
            throw Failure(description: "a function body does not parse: \(error)")
        }
        if let unsupported { throw Failure.unsupported(unsupported) }
        for region in regions where region.cost > 0 { plan.insertions.append((region.offset, .regionCharge(region.cost))) }
        plan.insertions.sort { ($0.offset, $0.insertion.order) < ($1.offset, $1.insertion.order) }
        return plan
    }

    /// `expression` with `plan`'s insertions.
    private static func rewrite(_ expression: [UInt8], plan: Plan, fuelGlobal: UInt32, scratch: UInt32) throws(Failure) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(expression.count + plan.insertions.count * 24)
        var copied = 0
        for (offset, insertion) in plan.insertions {
            guard offset >= copied, offset <= expression.count else {
                throw Failure(description: "a function body does not match its parse")
            }
            output += expression[copied..<offset]
            copied = offset
            switch insertion {
            case .regionCharge(let cost): output += staticCharge(cost, fuelGlobal: fuelGlobal)
            case .keepLength: output += [0x22] + leb(UInt64(scratch))  // local.tee
            case .bulkCharge(let stride): output += bulkCharge(scratch: scratch, elementStride: stride, fuelGlobal: fuelGlobal)
            }
        }
        output += expression[copied...]
        return output
    }

    /// `fuel -= cost; if fuel < 0 { unreachable }`.
    private static func staticCharge(_ cost: UInt64, fuelGlobal: UInt32) -> [UInt8] {
        let global = leb(UInt64(fuelGlobal))
        return [0x23] + global + [0x42] + sleb(Int64(clamping: cost)) + [0x7D, 0x24] + global + exhaustedCheck(global)
    }

    /// `fuel -= (length * stride) / 64` (stride 1 for bytes), then the check, where the length was
    /// kept in local `scratch`.
    private static func bulkCharge(scratch: UInt32, elementStride: UInt64?, fuelGlobal: UInt32) -> [UInt8] {
        let global = leb(UInt64(fuelGlobal))
        var code: [UInt8] = [0x23] + global + [0x20] + leb(UInt64(scratch)) + [0xAD]  // global.get, local.get, i64.extend_i32_u
        if let elementStride { code += [0x42] + sleb(Int64(elementStride)) + [0x7E] }  // i64.const, i64.mul
        code += [0x42, 0x06, 0x88, 0x7D, 0x24] + global  // i64.const 6, i64.shr_u, i64.sub, global.set
        return code + exhaustedCheck(global)
    }

    /// `if fuel < 0 { unreachable }`.
    private static func exhaustedCheck(_ global: [UInt8]) -> [UInt8] {
        [0x23] + global + [0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0B]
    }

    private static func exportEntry(_ name: String, kind: UInt8, index: UInt32) -> [UInt8] {
        leb(UInt64(name.utf8.count)) + Array(name.utf8) + [kind] + leb(UInt64(index))
    }

    private static func customSectionName(_ payload: [UInt8]) -> String? {
        var reader = SectionReader(bytes: payload[...])
        guard let length = try? reader.leb(), let name = try? reader.take(Int(length)) else { return nil }
        return String(decoding: name, as: UTF8.self)
    }

    private static func vectorHead(_ payload: [UInt8]) throws(Failure) -> (UInt64, [UInt8]) {
        var reader = SectionReader(bytes: payload[...])
        let count = try reader.leb()
        return (count, Array(reader.rest))
    }

    /// The module's sections: id and payload range.
    private static func rawSections(_ bytes: [UInt8]) throws(Failure) -> [(id: UInt8, range: Range<Int>)] {
        var reader = SectionReader(bytes: bytes[8...])
        var sections: [(id: UInt8, range: Range<Int>)] = []
        while !reader.isAtEnd {
            let id = try reader.byte()
            let size = Int(try reader.leb())
            let start = reader.position
            _ = try reader.take(size)
            sections.append((id, start..<(start + size)))
        }
        return sections
    }

    /// `value` as unsigned LEB128 (the value encoding's writer: the same format).
    static func leb(_ value: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 10)
        writer.writeUnsigned(value)
        return writer.bytes
    }

    /// `value` as signed LEB128.
    static func sleb(_ value: Int64) -> [UInt8] {
        var writer = ByteWriter(capacity: 10)
        writer.writeSigned(value)
        return writer.bytes
    }

    /// Reads bytes, LEB128 numbers and slices.
    struct SectionReader {
        let bytes: ArraySlice<UInt8>
        var position: Int

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            position = bytes.startIndex
        }

        var isAtEnd: Bool { position >= bytes.endIndex }
        var rest: ArraySlice<UInt8> { bytes[position...] }

        mutating func byte() throws(Failure) -> UInt8 {
            guard position < bytes.endIndex else { throw Failure(description: "the module ends early") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func leb() throws(Failure) -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let next = try byte()
                guard shift < 64 else { throw Failure(description: "a number in the module is too long") }
                result |= UInt64(next & 0x7F) << shift
                if next & 0x80 == 0 { return result }
                shift += 7
            }
        }

        mutating func take(_ count: Int) throws(Failure) -> ArraySlice<UInt8> {
            guard count >= 0, position + count <= bytes.endIndex else { throw Failure(description: "the module ends early") }
            defer { position += count }
            return bytes[position..<(position + count)]
        }
    }
}

extension FuelMetering.Failure {
    /// A feature the compiled engine does not run.
    static func unsupported(_ feature: String) -> Self {
        Self(
            description: "it uses \(feature), which the compiled engine (wasm2c 1.0.32) does not translate; WasmKit runs it",
            isUnsupportedFeature: true)
    }
}
