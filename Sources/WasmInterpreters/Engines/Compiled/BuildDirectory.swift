import CFuturesShims
import Futures

#if canImport(Glibc)
import Glibc
#endif

/// A temporary directory in the cache where one build writes its files; removed when closed, or
/// by a signal or exit while it runs (``CompiledCache/makeBuildDirectory()``).
final class BuildDirectory {
    let cache: CompiledCache
    let name: String
    let descriptor: Int32
    private let slot: Int32

    /// Held while the build runs: the sign, for other processes, that the directory is in use.
    private let lock: Int32

    init(cache: CompiledCache, name: String, descriptor: Int32) {
        self.cache = cache
        self.name = name
        self.descriptor = descriptor
        lock = openat(descriptor, ".lock", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if lock >= 0 { flock(lock, LOCK_EX) }
        slot = cf_build_register(cache.descriptor, name)
    }

    /// Removes the directory and what is left in it.
    func close() {
        cf_build_unregister(slot)
        _ = cf_remove_tree_at(cache.descriptor, name)
        if lock >= 0 { Glibc.close(lock) }
        Glibc.close(descriptor)
    }

    /// Records the process group of the tool that runs now (`0` when none), for a signal to end.
    func setRunningGroup(_ group: pid_t) { cf_build_set_group(slot, group) }

    /// Writes a new file `name` holding `bytes`.
    ///
    /// - Throws: ``ModuleError`` `.engineUnavailable` when it cannot.
    func write(_ bytes: [UInt8], to name: String, mode: mode_t = 0o600) throws(ModuleError) {
        let file = openat(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard file >= 0 else { throw failure("cannot create \(name)") }
        defer { Glibc.close(file) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(file, $0.baseAddress! + written, $0.count - written) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw failure("cannot write \(name)") }
            written += count
        }
    }

    /// The first `count` bytes of the file `name` (fewer when it is shorter; none when it cannot
    /// be read).
    func head(_ name: String, count: Int) -> [UInt8] {
        let file = openat(descriptor, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0 else { return [] }
        defer { Glibc.close(file) }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = pread(file, &bytes, count, 0)
        return read > 0 ? Array(bytes[0..<read]) : []
    }

    /// The size of the file `name`, if it is a regular file.
    func size(of name: String) -> Int? {
        var status = stat()
        guard fstatat(descriptor, name, &status, AT_SYMLINK_NOFOLLOW) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(status.st_size)
    }

    /// Reads the file `name` (at most `maxBytes`).
    func read(_ name: String, maxBytes: Int = 256 << 20) throws(ModuleError) -> [UInt8] {
        let file = openat(descriptor, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0 else { throw failure("cannot open \(name)") }
        defer { Glibc.close(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = Glibc.read(file, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw failure("cannot read \(name)") }
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
            guard bytes.count <= maxBytes else { throw failure("\(name) is over \(maxBytes) bytes") }
        }
    }

    /// In wasm2c's generated `name`, makes the table helpers trap with TOB rather than OOB (see
    /// `wasm-rt.h`): the same length, written in place, in the helpers near the start of the file.
    /// Generated code of another shape is left as it is (table traps then read as memory ones).
    func renameTableTraps(in name: String) throws(ModuleError) {
        let file = openat(descriptor, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0 else { throw failure("cannot open \(name)") }
        defer { Glibc.close(file) }
        var head = [UInt8](repeating: 0, count: 1 << 20)
        let count = pread(file, &head, head.count, 0)
        guard count > 0 else { return }
        func find(_ needle: String, from start: Int) -> Int? {
            head.withUnsafeBytes { haystack in
                var needle = needle
                return needle.withUTF8 { bytes -> Int? in
                    guard start < count else { return nil }
                    let offset = cf_find_bytes(haystack.baseAddress! + start, count - start, bytes.baseAddress, bytes.count)
                    return offset < 0 ? nil : start + offset
                }
            }
        }
        guard let start = find("static inline void funcref_table_init(", from: 0),
            let end = find("DEFINE_TABLE_FILL(externref)", from: start)
        else { return }
        var cursor = start
        while let trap = find("TRAP(OOB)", from: cursor), trap < end {
            let replacement = Array("TRAP(TOB)".utf8)
            guard pwrite(file, replacement, replacement.count, off_t(trap)) == replacement.count else { throw failure("cannot edit \(name)") }
            cursor = trap + replacement.count
        }
    }

    /// Opens a new file `name` for a tool's output; the caller closes it.
    func createLog(_ name: String) throws(ModuleError) -> Int32 {
        let file = openat(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw failure("cannot create \(name)") }
        return file
    }

    private func failure(_ message: String) -> ModuleError {
        ModuleError(
            .engineUnavailable, "the compiled engine's build directory \(cache.path)/\(name): \(message) (\(String(cString: strerror(errno))))")
    }
}
