import WasmParser

extension GuestModule {
    /// The first use of a WebAssembly feature the host refuses to run, described for an error
    /// message, or `nil` when the module uses none.
    ///
    /// Exception handling is refused: WasmKit 0.4.2 keeps caught exceptions in its store and
    /// indexes them without a bounds check, so a guest that keeps an `exnref` across a reset of
    /// its store and rethrows it with `throw_ref` kills the host; caught exceptions are also
    /// host memory that no limit bounds. The scan walks the module's sections and every function
    /// body with `WasmParser`: tags, `throw`, `throw_ref` and `try_table`.
    static func unsupportedFeature(in bytes: [UInt8]) -> String? {
        var parser = WasmParser.Parser(bytes: bytes, features: .default)
        var functionIndex = 0
        do {
            while let payload = try parser.parseNext() {
                switch payload {
                case .tagSection(let tags) where !tags.isEmpty:
                    return "exception handling (a tag section declaring \(tags.count) tags)"
                case .importSection(let imports):
                    if imports.contains(where: { if case .tag = $0.descriptor { true } else { false } }) {
                        return "exception handling (an imported tag)"
                    }
                case .codeSection(let codes):
                    for code in codes {
                        var expression = ExpressionParser(code: code)
                        var finder = ExceptionHandlingFinder()
                        while let visit = try expression.parse() {
                            do {
                                try visit(visitor: &finder)
                            } catch {
                                return "exception handling (\(error.instruction) in defined function \(functionIndex))"
                            }
                        }
                        functionIndex += 1
                    }
                default:
                    break
                }
            }
        } catch {
            // Not this scan's business: parsing reports malformed modules.
            return nil
        }
        return nil
    }
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
