/// Splits the one C file wasm2c 1.0.32 writes for a large module into several translation units,
/// so that the compiler runs on all cores and each run needs a fraction of the memory (a 26 MB
/// module becomes 142 MB of C: one `clang -O2` of it took 441 s and 3.6 GB).
///
/// wasm2c's output has a fixed shape: a prelude (includes, macros, `static inline` helpers), the
/// module's state (`s_module_initialized`, the type table `func_types`), a forward declaration of
/// every function, the data and element segments, the initializers, the function bodies, and the
/// exports and instantiation at the end. Part 0 keeps everything but the bodies; the other parts
/// each take a contiguous run of bodies (neighbours in a module usually come from the same source
/// file and call each other, so the compiler can still inline among them). Every part starts with
/// the same shared text: the prelude, the forward declarations, and `extern` declarations of the
/// type table and the segments. What was `static` at file level and is reached across parts
/// becomes hidden instead (visible to the other parts, never outside the shared object).
///
/// Small modules are not split: a single unit lets the compiler inline across the whole module.
enum CompiledSplit {
    /// Generated C at or above this size is split: 24 MiB, or `CONCURRENT_FUTURES_SPLIT_ABOVE`
    /// bytes (for tests, and for machines where smaller units pay).
    static var threshold: Int {
        environmentValue("CONCURRENT_FUTURES_SPLIT_ABOVE").flatMap { Int($0) }.map { max(1024, $0) } ?? 24 << 20
    }

    /// The bodies' size each part aims at: half the threshold, at most 12 MiB.
    static var partBytes: Int { min(12 << 20, threshold / 2) }

    private static let hidden = Array("__attribute__((visibility(\"hidden\"))) ".utf8)
    private static let staticKeyword = Array("static ".utf8)
    private static let functionPrefix = Array("w2c_".utf8)

    /// The parts' texts (part 0 first), or `nil` when `source` does not have the shape this
    /// expects (the caller then compiles it whole).
    static func split(_ source: [UInt8], partBytes: Int = partBytes) -> [[UInt8]]? {
        let lines = lineRanges(source)
        func line(_ index: Int) -> ArraySlice<UInt8> { source[lines[index]] }
        guard let stateStart = lines.indices.first(where: { line($0).starts(with: Array("static bool s_module_initialized".utf8)) }) else {
            return nil
        }
        var shared = Array(source[lines[0].lowerBound..<lines[stateStart].lowerBound])
        var declarations: [UInt8] = []
        var rest: [UInt8] = []
        var bodies: [ArraySlice<UInt8>] = []
        var index = stateStart
        while index < lines.count {
            let text = line(index)
            let isStatic = text.starts(with: staticKeyword)
            if isStatic && isFunction(text) {
                // A declaration or a definition; a long parameter list continues on the next lines.
                guard let headerEnd = (index..<lines.count).first(where: { endsHeader(line($0)) }) else { return nil }
                if line(headerEnd).reversed().first(where: { $0 != UInt8(ascii: " ") }) == UInt8(ascii: ";") {
                    // A forward declaration: shared, and hidden rather than static.
                    declarations += hidden + source[lines[index].lowerBound + 7..<lines[headerEnd].upperBound] + [UInt8(ascii: "\n")]
                    index = headerEnd + 1
                    continue
                }
                // A body, to its closing brace at the start of a line.
                guard let end = (headerEnd + 1..<lines.count).first(where: { line($0).elementsEqual([UInt8(ascii: "}")]) }) else {
                    return nil
                }
                bodies.append(hidden[...] + source[lines[index].lowerBound + 7..<lines[end].upperBound] + [UInt8(ascii: "\n")])
                index = end + 1
            } else if isStatic && isSharedData(text), let bracket = text.firstIndex(of: UInt8(ascii: "[")) {
                // The type table or a segment: defined in part 0, declared for every part.
                rest += hidden + text.dropFirst(7) + [UInt8(ascii: "\n")]
                shared += Array("extern ".utf8) + hidden + text[(text.startIndex + 7)..<bracket] + Array("[];\n".utf8)
                index += 1
            } else {
                rest += text + [UInt8(ascii: "\n")]
                index += 1
            }
        }
        guard !bodies.isEmpty else { return nil }
        shared += declarations
        let total = bodies.reduce(0) { $0 + $1.count }
        let count = max(1, min(64, (total + partBytes - 1) / partBytes))
        var parts = [shared + rest]
        var current = shared
        var filled = 0
        for body in bodies {
            current += body
            filled += body.count
            if filled >= total * parts.count / count && parts.count < count {
                parts.append(current)
                current = shared
            }
        }
        if current.count > shared.count { parts.append(current) }
        return parts
    }

    /// Whether a file-level line declares or defines a function of the module (`w2c_` names).
    private static func isFunction(_ text: ArraySlice<UInt8>) -> Bool {
        guard let paren = text.firstIndex(of: UInt8(ascii: "(")) else { return false }
        let head = text[..<paren]
        guard let space = head.lastIndex(of: UInt8(ascii: " ")) else { return false }
        return head[(space + 1)...].starts(with: functionPrefix) && !head.contains(UInt8(ascii: "="))
    }

    /// Whether a function's header ends on this line: with `;` (a declaration) or `{` (a body).
    private static func endsHeader(_ text: ArraySlice<UInt8>) -> Bool {
        let trimmed = text.reversed().drop { $0 == UInt8(ascii: " ") }
        return trimmed.first == UInt8(ascii: ";") || trimmed.first == UInt8(ascii: "{")
    }

    /// Whether a file-level line defines the type table or a data or element segment.
    private static func isSharedData(_ text: ArraySlice<UInt8>) -> Bool {
        ["static u32 func_types[", "static const u8 data_segment_data_", "static const wasm_elem_segment_expr_t elem_segment_exprs_"]
            .contains { text.starts(with: Array($0.utf8)) }
    }

    private static func lineRanges(_ source: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(source.count / 32)
        var start = 0
        source.withUnsafeBufferPointer { buffer in
            for position in 0..<buffer.count where buffer[position] == UInt8(ascii: "\n") {
                ranges.append(start..<position)
                start = position + 1
            }
        }
        if start < source.count { ranges.append(start..<source.count) }
        return ranges
    }
}

extension CompiledSplit {
    /// A shell script that compiles `parts` (file names without `.c`, costliest first) into objects
    /// with `compiler` and `flags`, on `lanes` processes at once: each lane claims the next part
    /// not yet claimed (`mkdir` is the atomic claim), so that a lane that drew small parts takes
    /// more. It exits as its first failing compiler did: with its status, or killed by its signal.
    static func script(compiling parts: [String], compiler: String, flags: [String], lanes: Int) -> String {
        func quoted(_ text: String) -> String { "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'" }
        let command = ([compiler] + flags).map(quoted).joined(separator: " ")
        var lines = [
            "lane() {",
            "  for part in \(parts.joined(separator: " ")); do",
            "    [ -e failed ] && exit 0",
            "    mkdir \"$part.claim\" 2> /dev/null || continue",
            "    \(command) -c \"$part.c\" -o \"$part.o\" || { code=$?; : > failed; exit $code; }",
            "  done",
            "}",
        ]
        let count = max(1, min(lanes, parts.count))
        for lane in 0..<count { lines.append("lane & lane\(lane)=$!") }
        lines.append("status=0")
        for lane in 0..<count { lines.append("wait $lane\(lane) || { code=$?; [ $status -eq 0 ] && status=$code; }") }
        lines.append("[ $status -gt 128 ] && kill -$((status - 128)) $$")
        lines.append("exit $status")
        return lines.joined(separator: "\n") + "\n"
    }
}
