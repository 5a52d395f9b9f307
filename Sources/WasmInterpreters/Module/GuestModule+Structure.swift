import WasmParser
import WasmTypes

/// What the host reads of a module's structure before loading it, in one pass of WasmParser
/// over its sections and function bodies: the type of each defined function and the defined
/// memories (for reports), the first use of a feature the host refuses, and the `name`
/// sections that would crash the engine.
struct ModuleStructure {
    /// The type index of each defined function, in order.
    var functionTypeIndices: [UInt32] = []
    /// The module's own memories.
    var memories: [GuestMemoryInfo] = []
    /// The first use of a WebAssembly feature the host refuses to run, described for an error
    /// message, or `nil`.
    ///
    /// Exception handling is refused: WasmKit 0.4.2 keeps caught exceptions in its store and
    /// indexes them without a bounds check, so a guest that keeps an `exnref` across a reset of
    /// its store and rethrows it with `throw_ref` kills the host; caught exceptions are also
    /// host memory that no limit bounds. What counts: tags, `throw`, `throw_ref`, `try_table`.
    var unsupportedFeature: String?
    /// The byte ranges of the `name` sections to remove before loading.
    ///
    /// WasmKit 0.4.2 reads function names lazily, the first time it symbolicates a trap, and
    /// indexes its function table with each name's index without a bounds check: a module
    /// whose name section names function 1,000 of 3 kills the process when it traps. A `name`
    /// section is only debugging information, so one that does not parse or names a function
    /// the module does not have is dropped.
    var badNameSections: [Range<Int>] = []
    /// Whether the module has a start function.
    var hasStart = false
    /// The start function's type, when the module has one and its type is known.
    var startType: FunctionType?
    /// Whether the start section names a function the module does not have.
    var startIsOutOfRange = false
    /// Whether the module exports a memory named `memory` (the one host functions use).
    var exportsMemory = false
    /// How many functions (imported and defined), type-section entries and globals it has, and
    /// the bytes of its data segments: what the compiled engine's caps bound.
    var sizes = ModuleSizes()

    /// Reads `bytes`; a module that does not parse gives what was read up to the error (parsing
    /// reports malformed modules, not this).
    init(_ bytes: [UInt8]) {
        var parser = WasmParser.Parser(bytes: bytes, features: .default)
        var importedFunctions = 0
        var types: [FunctionType?] = []
        var functionTypes: [UInt32] = []
        var startFunction: UInt32?
        var nameSections: [(range: Range<Int>, bytes: ArraySlice<UInt8>)] = []
        do {
            while true {
                let start = parser.offset
                guard let payload = try parser.parseNext() else { break }
                switch payload {
                case .typeSection(let groups):
                    types = Self.functionTypes(groups)
                case .importSection(let imports):
                    for entry in imports {
                        switch entry.descriptor {
                        case .function(let index):
                            importedFunctions += 1
                            functionTypes.append(index)
                        case .global: sizes.globals += 1
                        case .tag: unsupportedFeature = unsupportedFeature ?? "exception handling (an imported tag)"
                        default: break
                        }
                    }
                case .functionSection(let indices):
                    functionTypeIndices = indices
                    functionTypes += indices
                case .memorySection(let defined):
                    memories = defined.map {
                        GuestMemoryInfo(minimumPages: $0.type.min, maximumPages: $0.type.max, isImported: false)
                    }
                case .startSection(let index):
                    hasStart = true
                    startFunction = index
                case .globalSection(let globals):
                    sizes.globals += globals.count
                case .dataSection(let segments):
                    for segment in segments {
                        switch segment {
                        case .active(let active): sizes.dataBytes += active.initializer.count
                        case .passive(let bytes): sizes.dataBytes += bytes.count
                        }
                    }
                case .exportSection(let exports):
                    exportsMemory = exports.contains { if case .memory = $0.descriptor { $0.name == "memory" } else { false } }
                case .tagSection(let tags) where !tags.isEmpty:
                    unsupportedFeature = unsupportedFeature ?? "exception handling (a tag section declaring \(tags.count) tags)"
                case .codeSection(let codes) where unsupportedFeature == nil:
                    unsupportedFeature = Self.exceptionHandling(in: codes)
                case .customSection(let section) where section.name == "name":
                    nameSections.append((start..<parser.offset, section.bytes))
                default:
                    break
                }
            }
        } catch {}
        if let start = startFunction {
            if Int(start) >= functionTypes.count {
                startIsOutOfRange = true
            } else if Int(functionTypes[Int(start)]) < types.count {
                startType = types[Int(functionTypes[Int(start)])]
            }
        }
        let functionCount = importedFunctions + functionTypeIndices.count
        sizes.functions = functionCount
        sizes.types = types.count
        badNameSections = nameSections.filter { !Self.isValidNameSection($0.bytes, functionCount: functionCount) }.map(\.range)
    }

    /// The entries of a type section, flattened from its recursion groups: a function's type, or
    /// `nil` for another kind.
    static func functionTypes(_ groups: [RecursiveGroup]) -> [FunctionType?] {
        groups.flatMap { group in
            group.types.map { type -> FunctionType? in if case .function(let function) = type.body { function } else { nil } }
        }
    }

    /// `bytes` without the bad `name` sections; `nil` when there is none.
    func removingBadNameSections(from bytes: [UInt8]) -> [UInt8]? {
        guard !badNameSections.isEmpty else { return nil }
        var cleaned = bytes
        for range in badNameSections.reversed() { cleaned.removeSubrange(range) }
        return cleaned
    }

    /// Where the first exception-handling instruction is, if any.
    private static func exceptionHandling(in codes: [Code]) -> String? {
        for (index, code) in codes.enumerated() {
            var expression = ExpressionParser(code: code)
            var finder = ExceptionHandlingFinder()
            do {
                while let visit = try expression.parse() {
                    do {
                        try visit(visitor: &finder)
                    } catch {
                        return "exception handling (\(error.instruction) in defined function \(index))"
                    }
                }
            } catch {
                return nil
            }
        }
        return nil
    }

    /// Whether the section parses as WasmKit's `NameSectionParser` would parse it (subsections,
    /// LEB128 indices, names of valid UTF-8) and every function name has an index below
    /// `functionCount`. Read in place: the parser builds a dictionary of strings, which for a module
    /// with megabytes of names (a Rust program's) cost more than everything else in loading it.
    static func isValidNameSection(_ bytes: ArraySlice<UInt8>, functionCount: Int) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            var reader = NameSectionReader(bytes: buffer)
            return (try? reader.check(functionCount: functionCount)) != nil
        }
    }
}

/// Reads a `name` custom section's payload without keeping what it reads.
private struct NameSectionReader {
    struct Malformed: Error {}

    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    mutating func check(functionCount: Int) throws(Malformed) {
        while offset < bytes.count {
            let id = bytes[offset]
            offset += 1
            let size = Int(try unsigned())
            switch id {
            case 0: try name()
            case 1: try nameMap(functionCount: functionCount)
            case 2, 3:
                for _ in 0..<(try unsigned()) {
                    _ = try unsigned()
                    try nameMap(functionCount: nil)
                }
            case 4...9: try nameMap(functionCount: nil)
            default:
                guard size <= bytes.count - offset else { throw Malformed() }
                offset += size
            }
        }
    }

    /// A vector of (index, name); with `functionCount`, every index must be below it.
    private mutating func nameMap(functionCount: Int?) throws(Malformed) {
        for _ in 0..<(try unsigned()) {
            let index = try unsigned()
            if let functionCount, Int(index) >= functionCount { throw Malformed() }
            try name()
        }
    }

    private mutating func name() throws(Malformed) {
        let length = Int(try unsigned())
        guard length <= bytes.count - offset else { throw Malformed() }
        let name = UnsafeBufferPointer(rebasing: bytes[offset..<(offset + length)])
        offset += length
        if name.allSatisfy({ $0 < 0x80 }) { return }
        var iterator = name.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return
            case .error: throw Malformed()
            }
        }
    }

    /// An unsigned LEB128 of at most 32 bits.
    private mutating func unsigned() throws(Malformed) -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard offset < bytes.count else { throw Malformed() }
            let byte = bytes[offset]
            offset += 1
            guard shift < 32, shift < 28 || byte & 0x70 == 0 else { throw Malformed() }
            result |= UInt32(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }
}

/// How big a module is, in what bounds the work of compiling it.
struct ModuleSizes: Sendable {
    var functions = 0
    var types = 0
    var globals = 0
    var dataBytes = 0
}

/// Stops at the first exception-handling instruction.
private struct ExceptionHandlingFinder: InstructionVisitor {
    struct Found: Error {
        let instruction: String
    }

    var binaryOffset = 0

    mutating func visitThrow(tagIndex: UInt32) throws(Found) { throw Found(instruction: "throw") }
    mutating func visitThrowRef() throws(Found) { throw Found(instruction: "throw_ref") }
    mutating func visitTryTable(blockType: BlockType, tryCatch: TryCatch) throws(Found) {
        throw Found(instruction: "try_table")
    }
}
