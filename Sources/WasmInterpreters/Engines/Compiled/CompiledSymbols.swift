import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The generated functions of a loaded compiled guest, by address, for naming the frames of a
/// trap's stack. They are `static` in the generated C, so the dynamic symbol table (all that
/// `dladdr` reads) lacks them; the shared object's own symbol table (`.symtab`, which the build
/// keeps) has them. Read once per shared object, at its first trap: nothing on the hot path.
final class CompiledSymbols: Sendable {
    /// A function: its offset range in the shared object, and its C name.
    struct Symbol: Sendable {
        let start: UInt
        let end: UInt
        let name: String
    }

    /// The functions, sorted by start.
    let symbols: [Symbol]

    private init(symbols: [Symbol]) { self.symbols = symbols.sorted { $0.start < $1.start } }

    /// The C name of the function holding `offset` (from the object's load address); a clone's
    /// suffix (`.cold`, `.constprop.0`) dropped.
    func name(at offset: UInt) -> String? {
        var low = 0
        var high = symbols.count
        while low < high {
            let middle = (low + high) / 2
            if symbols[middle].start <= offset { low = middle + 1 } else { high = middle }
        }
        guard low > 0, offset < symbols[low - 1].end else { return nil }
        let name = symbols[low - 1].name
        return String(name.prefix { $0 != "." })
    }

    /// The symbols of the shared objects read so far, by the name the loader knows them by.
    private static let cache = Mutex<[String: CompiledSymbols]>([:])

    /// The symbols of the shared object the loader knows as `path`; `nil` when it cannot be read
    /// as a 64-bit ELF file with a symbol table.
    static func of(_ path: String) -> CompiledSymbols? {
        if let known = cache.withLock({ $0[path] }) { return known }
        guard let read = read(path) else { return nil }
        cache.withLock { $0[path] = read }
        return read
    }

    /// Reads the function symbols of the ELF file at `path`.
    private static func read(_ path: String) -> CompiledSymbols? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        func bytes(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard count >= 0, count < 1 << 30 else { return nil }
            var buffer = [UInt8](repeating: 0, count: count)
            let got = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
            return got == count ? buffer : nil
        }
        func integer(_ data: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
            (0..<size).reduce(UInt64(0)) { $0 | UInt64(data[at + $1]) << (8 * UInt64($1)) }
        }
        // ELF64, little-endian.
        guard let header = bytes(0, 64), header.starts(with: [0x7F, 0x45, 0x4C, 0x46, 2, 1]) else { return nil }
        let sectionOffset = integer(header, 0x28, 8)
        let sectionSize = Int(integer(header, 0x3A, 2))
        let sectionCount = Int(integer(header, 0x3C, 2))
        guard sectionSize >= 64, let table = bytes(sectionOffset, sectionSize * sectionCount) else { return nil }
        func section(_ index: Int) -> (type: UInt64, offset: UInt64, size: UInt64, link: Int)? {
            guard index < sectionCount else { return nil }
            let base = index * sectionSize
            return (integer(table, base + 4, 4), integer(table, base + 24, 8), integer(table, base + 32, 8), Int(integer(table, base + 40, 4)))
        }
        guard let symbolTable = (0..<sectionCount).lazy.compactMap({ section($0) }).first(where: { $0.type == 2 }),
            let stringTable = section(symbolTable.link), let names = bytes(stringTable.offset, Int(stringTable.size)),
            let entries = bytes(symbolTable.offset, Int(symbolTable.size))
        else { return nil }
        var symbols: [Symbol] = []
        for base in stride(from: 0, to: entries.count - 23, by: 24) where entries[base + 4] & 0xF == 2 {
            let value = UInt(integer(entries, base + 8, 8))
            let size = UInt(integer(entries, base + 16, 8))
            let nameOffset = Int(integer(entries, base, 4))
            guard size > 0, nameOffset < names.count else { continue }
            let end = names[nameOffset...].firstIndex(of: 0) ?? names.count
            symbols.append(Symbol(start: value, end: value + size, name: String(decoding: names[nameOffset..<end], as: UTF8.self)))
        }
        return CompiledSymbols(symbols: symbols)
    }
}
