import Futures
import WasmParser

/// Gives a module its own fuel counter, for engines without fuel (the compiled engine): a
/// mutable `i64` global, exported as `__cf_fuel`, charged at every function entry and every
/// loop iteration, trapping (`unreachable`) when it goes below zero.
///
/// What one unit means: a function entry charges the instructions of the function's body that
/// lie outside its loops, and each iteration of a loop charges the instructions of the loop's
/// body outside its inner loops (every instruction counts 1; `end` and `else` count nothing).
/// Straight-line code pays exactly one unit per instruction, as WasmKit charges; a branch that
/// skips code still pays for it, so a call is charged at least what it executes, never less.
///
/// The start function is taken out of the start section and exported as `__cf_start`, so that
/// the host runs it under the call's fuel and time limits (a start function runs before an
/// embedder could set the counter otherwise). The `name` section is dropped.
enum FuelMetering {
    static let fuelExport = "__cf_fuel"
    static let startExport = "__cf_start"

    /// The instrumented module.
    struct Output {
        let bytes: [UInt8]
        /// Whether the module had a start function, now exported as ``FuelMetering/startExport``.
        let hasStart: Bool
    }

    /// What goes wrong: a message for ``ModuleError``.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Instruments `bytes`, a module that has passed validation.
    static func instrument(_ bytes: [UInt8]) throws(Failure) -> Output {
        var importedGlobals = 0
        var definedGlobals = 0
        var start: UInt32?
        var codes: [Code] = []
        var exportNames: Set<String> = []
        var parser = Parser(bytes: bytes)
        do {
            while let payload = try parser.parseNext() {
                switch payload {
                case .importSection(let imports):
                    importedGlobals = imports.count { if case .global = $0.descriptor { true } else { false } }
                case .globalSection(let globals): definedGlobals = globals.count
                case .startSection(let index): start = index
                case .codeSection(let bodies): codes = bodies
                case .exportSection(let exports): exportNames = Set(exports.map(\.name))
                default: break
                }
            }
        } catch {
            throw Failure(description: "the module does not parse: \(error)")
        }
        for name in [fuelExport, startExport] where exportNames.contains(name) {
            throw Failure(description: "the module exports '\(name)', a name the compiled engine reserves")
        }
        let fuelGlobal = UInt32(importedGlobals + definedGlobals)
        let sections = try rawSections(bytes)

        let newGlobal: [UInt8] = [0x7E, 0x01, 0x42, 0x00, 0x0B]  // (mut i64) (i64.const 0)
        var newExports = exportEntry(fuelExport, kind: 0x03, index: fuelGlobal)
        if let start { newExports += exportEntry(startExport, kind: 0x00, index: start) }
        let addedExports = start == nil ? 1 : 2

        var output: [UInt8] = Array(bytes[0..<8])
        var globalsWritten = false
        var exportsWritten = false
        func emit(_ id: UInt8, _ payload: [UInt8]) {
            output.append(id)
            output += leb(UInt64(payload.count))
            output += payload
        }
        func emitMissing(before id: UInt8) {
            if !globalsWritten, [7, 8, 9, 12, 10, 11].contains(id) {
                emit(6, leb(1) + newGlobal)
                globalsWritten = true
            }
            if !exportsWritten, [8, 9, 12, 10, 11].contains(id) {
                emit(7, leb(UInt64(addedExports)) + newExports)
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
                let (count, rest) = try vectorHead(payload)
                emit(7, leb(count + UInt64(addedExports)) + rest + newExports)
                exportsWritten = true
            case 8:
                break
            case 10:
                emit(10, try meterCode(payload, codes: codes, fuelGlobal: fuelGlobal))
            default:
                emit(section.id, payload)
            }
        }
        emitMissing(before: 11)
        return Output(bytes: output, hasStart: start != nil)
    }

    /// The code section with every body metered.
    private static func meterCode(_ payload: [UInt8], codes: [Code], fuelGlobal: UInt32) throws(Failure) -> [UInt8] {
        var reader = SectionReader(bytes: payload[...])
        let count = try reader.leb()
        guard count == codes.count else { throw Failure(description: "the code section does not match its parse") }
        var output = leb(count)
        for code in codes {
            let size = Int(try reader.leb())
            let content = try reader.take(size)
            let expressionCount = code.expression.count
            guard expressionCount <= content.count else { throw Failure(description: "a function body does not match its parse") }
            let locals = content.prefix(content.count - expressionCount)
            let expression = Array(code.expression)
            let metered = try meterExpression(expression, code: code, fuelGlobal: fuelGlobal)
            let body = Array(locals) + metered
            output += leb(UInt64(body.count))
            output += body
        }
        return output
    }

    /// Counts instructions by kind for ``meterExpression``.
    private struct Scanner: AnyInstructionVisitor {
        typealias VisitorError = Never
        var binaryOffset = 0
        var last: Kind = .other
        enum Kind { case loop, block, end, free, other }

        mutating func visit(_ instruction: Instruction) {
            switch instruction {
            case .loop: last = .loop
            case .block, .if, .tryTable: last = .block
            case .end: last = .end
            case .else: last = .free
            default: last = .other
            }
        }
    }

    /// One function body's expression, with a charge at its start and at the top of each loop.
    private static func meterExpression(_ expression: [UInt8], code: Code, fuelGlobal: UInt32) throws(Failure) -> [UInt8] {
        // A charge: where it goes (an offset in `expression`) and how many instructions it pays for.
        var charges: [(offset: Int, cost: Int)] = [(0, 0)]
        var open: [Int] = [0]  // the charge paying for the innermost loop (or the function)
        var blocks: [Bool] = []  // open blocks: whether each is a loop
        var parser = ExpressionParser(code: code)
        let base = parser.offset
        var scanner = Scanner()
        do {
            while let visit = try parser.parse() {
                visit(visitor: &scanner)
                switch scanner.last {
                case .loop:
                    charges[open.last ?? 0].cost += 1
                    blocks.append(true)
                    charges.append((parser.offset - base, 0))
                    open.append(charges.count - 1)
                case .block:
                    charges[open.last ?? 0].cost += 1
                    blocks.append(false)
                case .end:
                    if blocks.popLast() == true { open.removeLast() }
                case .free:
                    break
                case .other:
                    charges[open.last ?? 0].cost += 1
                }
            }
        } catch {
            throw Failure(description: "a function body does not parse: \(error)")
        }
        var output: [UInt8] = []
        output.reserveCapacity(expression.count + charges.count * 24)
        var copied = 0
        for charge in charges.sorted(by: { $0.offset < $1.offset }) {
            guard charge.offset >= copied, charge.offset <= expression.count else {
                throw Failure(description: "a function body does not match its parse")
            }
            output += expression[copied..<charge.offset]
            copied = charge.offset
            output += chargeSequence(cost: max(1, charge.cost), fuelGlobal: fuelGlobal)
        }
        output += expression[copied...]
        return output
    }

    /// `fuel -= cost; if fuel < 0 { unreachable }`.
    private static func chargeSequence(cost: Int, fuelGlobal: UInt32) -> [UInt8] {
        let global = leb(UInt64(fuelGlobal))
        return [0x23] + global + [0x42] + sleb(Int64(cost)) + [0x7D, 0x24] + global
            + [0x23] + global + [0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0B]
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
