import Futures

/// Removes a `name` custom section that would crash the engine.
///
/// WasmKit 0.4.2 reads function names lazily, the first time it symbolicates a trap, and
/// indexes its function table with each name's index without a bounds check: a module whose
/// name section names function 1,000 of 3 kills the process when it traps. The section is only
/// debugging information, so a module whose name section does not check out loads without it.
enum ModuleSanitizer {
    /// `bytes` without any `name` section that is malformed or names a function index of
    /// `functionCount` or more; `nil` when nothing needs removing.
    static func removingBadNameSections(_ bytes: [UInt8], importedFunctions: Int) -> [UInt8]? {
        guard bytes.count >= 8 else { return nil }
        var reader = ByteReader(bytes, offset: 8)
        var definedFunctions = 0
        var nameSections: [(range: Range<Int>, payload: Range<Int>)] = []
        do {
            while !reader.isAtEnd {
                let start = reader.position
                let id = try reader.readByte()
                let size = try reader.readLength()
                let payloadStart = reader.position
                if id == 3 {
                    var section = ByteReader(bytes, offset: payloadStart)
                    definedFunctions = Int(try section.readUnsigned())
                } else if id == 0 {
                    var section = ByteReader(bytes, offset: payloadStart)
                    let nameLength = try section.readLength()
                    let name = try section.read(count: nameLength)
                    if name.elementsEqual("name".utf8) {
                        nameSections.append((start..<payloadStart + size, section.position..<payloadStart + size))
                    }
                }
                _ = try reader.read(count: size)
            }
        } catch {
            return nil
        }
        let functionCount = importedFunctions + definedFunctions
        let bad = nameSections.filter { !isValidNameSection(Array(bytes[$0.payload]), functionCount: functionCount) }
        guard !bad.isEmpty else { return nil }
        var cleaned = bytes
        for section in bad.reversed() { cleaned.removeSubrange(section.range) }
        return cleaned
    }

    /// Whether every subsection is well formed and every function name has an index in range.
    private static func isValidNameSection(_ payload: [UInt8], functionCount: Int) -> Bool {
        var reader = ByteReader(payload)
        do {
            while !reader.isAtEnd {
                let kind = try reader.readByte()
                let size = try reader.readLength()
                let content = Array(try reader.read(count: size))
                guard kind == 1 else { continue }
                var names = ByteReader(content)
                let count = try names.readUnsigned()
                for _ in 0..<count {
                    let index = try names.readUnsigned()
                    guard index < UInt64(functionCount) else { return false }
                    let length = try names.readLength()
                    guard String(validating: try names.read(count: length), as: UTF8.self) != nil else { return false }
                }
                guard names.isAtEnd else { return false }
            }
            return true
        } catch {
            return false
        }
    }
}
