import CFuturesShims
import Futures

#if canImport(Glibc)
import Glibc
#endif

/// `O_PATH` (Linux), which the Glibc module does not export: a descriptor for walking and
/// checking a directory, needing only search permission on it.
private let openPath: Int32 = 0o10_000_000

/// The compiled engine's cache: a directory of shared objects that this process loads and runs as
/// native code, so nothing in it may come from anyone but the user the process runs as.
///
/// Every check is made on a descriptor, and every later operation goes through that descriptor,
/// never through the path again (whoever controls a parent directory could swap the path between
/// a check and a use):
/// - The directory and each ancestor are opened one component at a time with `O_NOFOLLOW` and
///   checked as OpenSSH checks `~/.ssh`: owned by the user or root, and not writable by group or
///   others unless sticky (as `/tmp` is). The directory itself must be the user's and writable
///   by nobody else. Missing components are created with mode 0700.
/// - An entry is a shared object (mode 0500) and a record of its SHA-256 and size (mode 0400),
///   both written into a build directory inside the cache and renamed into place. Before it is
///   loaded, the entry's descriptor is checked (a regular file with one link, the user's, not
///   writable by others, the recorded size) and its content hashed against the record; then that
///   very file is loaded, as `/proc/self/fd/N`. A bad entry is removed and rebuilt, never loaded.
/// - Builds of one module are serialized across processes by a lock file per module.
///
/// Where the cache is: `CONCURRENT_FUTURES_CACHE`, else `$XDG_CACHE_HOME/concurrent-futures/compiled`,
/// else `~/.cache/concurrent-futures/compiled`; without any of them (services, `env -i`), a
/// private directory made for this process (removed at exit, shared with its process-pool
/// workers), never a shared, predictable one.
final class CompiledCache: @unchecked Sendable {
    /// The directory's path, for messages (operations use ``descriptor``).
    let path: String
    /// The directory, opened and checked.
    let descriptor: Int32
    /// Whether this process made the directory for itself.
    let isPrivate: Bool

    private init(path: String, descriptor: Int32, isPrivate: Bool) {
        self.path = path
        self.descriptor = descriptor
        self.isPrivate = isPrivate
    }

    deinit { close(descriptor) }

    /// The cache at `path`, opened and checked now (not one the environment names, and not
    /// remembered: for tools and tests).
    ///
    /// - Throws: ``ModuleError`` `.engineUnavailable` when it fails a check.
    static func at(_ path: String) throws(ModuleError) -> CompiledCache {
        do throws(OpenFailure) {
            return CompiledCache(path: path, descriptor: try openChecked(path), isPrivate: false)
        } catch {
            throw error.error(path)
        }
    }

    /// The caches opened so far, by configured path; the private one under the empty key.
    private static let opened = Locked<[String: CompiledCache]>([:])

    /// The cache the environment names now (see the type's documentation), opened and checked.
    ///
    /// - Throws: ``ModuleError`` `.engineUnavailable` when the directory or an ancestor fails a
    ///   check, or cannot be created.
    static func current() throws(ModuleError) -> CompiledCache {
        let configured = configuredPath
        let key = configured?.path ?? ""
        if let cache = opened.withLock({ $0[key] }) { return cache }
        // One thread opens (or makes) it; the others wait and take what it opened.
        opening.lock()
        defer { opening.unlock() }
        return try openOrMake(configured, key: key)
    }

    /// Opens (or makes) the cache for `configured`, remembered under `key`; the caller holds
    /// ``opening``.
    private static func openOrMake(_ configured: (path: String, explicit: Bool)?, key: String) throws(ModuleError) -> CompiledCache {
        if let cache = self.opened.withLock({ $0[key] }) { return cache }
        let cache: CompiledCache
        if let configured {
            do throws(OpenFailure) {
                cache = CompiledCache(path: configured.path, descriptor: try openChecked(configured.path), isPrivate: false)
            } catch  where !configured.explicit && error.isMissing {
                // The user's cache cannot be made (no such home, no permission): a private one.
                cache = try makePrivate()
            } catch {
                throw error.error(configured.path)
            }
        } else {
            cache = try makePrivate()
        }
        self.opened.withLock { $0[key] = cache }
        return cache
    }

    /// Held while a cache is opened or made. A bare mutex: with a `Locked` of an empty value
    /// (which has no storage of its own), ThreadSanitizer reported the access to that value, at
    /// the object's first word, as a race with another thread reading the object's header.
    private static let opening = PThreadMutex()

    /// The path the environment names, and whether it was named explicitly.
    static var configuredPath: (path: String, explicit: Bool)? {
        if let path = environmentValue("CONCURRENT_FUTURES_CACHE"), !path.isEmpty { return (path, true) }
        if let path = environmentValue("XDG_CACHE_HOME"), path.hasPrefix("/") { return (path + "/concurrent-futures/compiled", false) }
        if let home = environmentValue("HOME"), home.hasPrefix("/") { return (home + "/.cache/concurrent-futures/compiled", false) }
        return nil
    }

    /// The environment a child process needs to use this process's cache: its path when the
    /// cache is private (the child would otherwise make its own), else nothing.
    static var environmentForChildren: [String: String] {
        guard let cache = try? current(), cache.isPrivate else { return [:] }
        return ["CONCURRENT_FUTURES_CACHE": cache.path]
    }

    // MARK: Opening and checking directories

    /// Why a directory could not be opened.
    struct OpenFailure: Error {
        let component: String
        let reason: String
        /// Whether a component is missing or cannot be created (rather than failing a check).
        let isMissing: Bool

        func error(_ path: String) -> ModuleError {
            ModuleError(
                .engineUnavailable,
                "the compiled engine's cache \(path) cannot be used: \(component) \(reason); the engine will not load code "
                    + "from it (set CONCURRENT_FUTURES_CACHE to a directory of your own)")
        }
    }

    /// Opens the directory at `path` (made absolute), creating missing components with mode
    /// 0700, walking it from `/` one component at a time without following links implicitly, and
    /// checking each directory it enters; returns a descriptor of the directory, opened for
    /// reading.
    ///
    /// A symbolic link on the way is followed only when it belongs to the user or root (as the
    /// kernel's `protected_symlinks` has it): another user's link in a sticky directory such as
    /// `/tmp` could lead anywhere, a directory of the user's own included.
    static func openChecked(_ path: String) throws(OpenFailure) -> Int32 {
        var absolute = path
        if !absolute.hasPrefix("/") {
            guard let cwd = getcwd(nil, 0) else {
                throw OpenFailure(component: path, reason: "is relative, and the working directory is unknown", isMissing: true)
            }
            absolute = String(cString: cwd) + "/" + path
            free(cwd)
        }
        let root = open("/", openPath | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw OpenFailure(component: "/", reason: "cannot be opened", isMissing: true) }
        var stack: [(descriptor: Int32, path: String)] = [(root, "")]
        defer { for entry in stack { close(entry.descriptor) } }
        try check(root, component: "/", isLeaf: false)
        var pending = absolute.split(separator: "/").map(String.init)
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." { continue }
            if component == ".." {
                if stack.count > 1 { close(stack.removeLast().descriptor) }
                continue
            }
            let (current, currentPath) = stack[stack.count - 1]
            let walked = currentPath + "/" + component
            var next = openat(current, component, openPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT {
                if mkdirat(current, component, 0o700) != 0, errno != EEXIST {
                    throw OpenFailure(component: walked, reason: "cannot be created (\(String(cString: strerror(errno))))", isMissing: true)
                }
                next = openat(current, component, openPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0, errno == ELOOP || errno == ENOTDIR {
                // A symbolic link, perhaps: followed only when it is the user's or root's.
                var status = stat()
                guard fstatat(current, component, &status, AT_SYMLINK_NOFOLLOW) == 0, status.st_mode & S_IFMT == S_IFLNK else {
                    throw OpenFailure(component: walked, reason: "is not a directory", isMissing: false)
                }
                guard status.st_uid == getuid() || status.st_uid == 0 else {
                    throw OpenFailure(component: walked, reason: "is a symbolic link owned by user \(status.st_uid)", isMissing: false)
                }
                links += 1
                guard links <= 40 else { throw OpenFailure(component: walked, reason: "leads through too many symbolic links", isMissing: false) }
                var target = [CChar](repeating: 0, count: 4097)
                let length = readlinkat(current, component, &target, 4096)
                guard length > 0 else { throw OpenFailure(component: walked, reason: "is a link that cannot be read", isMissing: false) }
                let text = String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if text.hasPrefix("/") {
                    for entry in stack.dropFirst() { close(entry.descriptor) }
                    stack.removeSubrange(1...)
                }
                pending = text.split(separator: "/").map(String.init) + pending
                continue
            }
            guard next >= 0 else {
                throw OpenFailure(component: walked, reason: String(cString: strerror(errno)), isMissing: errno == EACCES || errno == ENOENT)
            }
            stack.append((next, walked))
            try check(next, component: walked, isLeaf: false)
        }
        let (leaf, leafPath) = stack[stack.count - 1]
        try check(leaf, component: leafPath.isEmpty ? "/" : leafPath, isLeaf: true)
        let readable = openat(leaf, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard readable >= 0 else { throw OpenFailure(component: leafPath, reason: "cannot be read", isMissing: true) }
        return readable
    }

    /// Checks a directory: owned by the user (or, above the cache, root), and writable by no one
    /// else unless sticky (and never, for the cache itself).
    private static func check(_ descriptor: Int32, component: String, isLeaf: Bool) throws(OpenFailure) {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw OpenFailure(component: component, reason: "cannot be checked", isMissing: false) }
        let user = getuid()
        guard status.st_uid == user || (!isLeaf && status.st_uid == 0) else {
            throw OpenFailure(component: component, reason: "is owned by user \(status.st_uid)", isMissing: false)
        }
        let writableByOthers = status.st_mode & 0o022 != 0
        let sticky = status.st_mode & S_ISVTX != 0
        guard !writableByOthers || (sticky && !isLeaf) else {
            throw OpenFailure(component: component, reason: "is writable by other users", isMissing: false)
        }
    }

    // MARK: The private directory

    /// Makes the private cache: a new directory (`mkdtemp`, mode 0700) under `$TMPDIR` or `/tmp`,
    /// with a lock its process holds while it lives (`.owner`), removed at exit (or, under
    /// ``CompiledEngine/installBuildCleanup()``, on a signal too). The private caches of processes
    /// that are gone (their lock free) are removed first.
    private static func makePrivate() throws(ModuleError) -> CompiledCache {
        if let cache = opened.withLock({ $0[""] }) { return cache }
        var base = environmentValue("TMPDIR") ?? "/tmp"
        if !base.hasPrefix("/") { base = "/tmp" }
        let prefix = "concurrent-futures-\(getuid())-"
        removeStalePrivateCaches(in: base, prefix: prefix)
        var template = Array("\(base)/\(prefix)XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ModuleError(
                .engineUnavailable,
                "the compiled engine has no cache (HOME, XDG_CACHE_HOME and CONCURRENT_FUTURES_CACHE are unset) and cannot "
                    + "make a private one in \(base): \(String(cString: strerror(errno)))")
        }
        let path = String(cString: made)
        let descriptor: Int32
        do throws(OpenFailure) {
            descriptor = try openChecked(path)
        } catch {
            rmdir(path)
            throw error.error(path)
        }
        // Held (never closed) while this process lives: the sign that the directory is in use.
        let owner = openat(descriptor, ".owner", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if owner >= 0 { flock(owner, LOCK_EX) }
        let parent = open(PathParts(path: path).deletingLastComponent, openPath | O_DIRECTORY | O_CLOEXEC)
        // Removed at exit (with the builds running then), by the shims' one exit handler.
        if parent >= 0 { cf_private_cache_register(parent, PathParts(path: path).lastComponent) }
        let cache = CompiledCache(path: path, descriptor: descriptor, isPrivate: true)
        opened.withLock { $0[""] = cache }
        return cache
    }

    /// Removes the private caches in `base` whose process is gone: its `.owner` lock is free (or,
    /// without one, the directory is over a day old). Only this user's own directories.
    private static func removeStalePrivateCaches(in base: String, prefix: String) {
        let directory = open(base, openPath | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return }
        defer { close(directory) }
        let listing = openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard listing >= 0, let stream = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            return
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = entryName(entry)
            guard name.hasPrefix(prefix) else { continue }
            var status = stat()
            guard fstatat(directory, name, &status, AT_SYMLINK_NOFOLLOW) == 0, status.st_mode & S_IFMT == S_IFDIR,
                status.st_uid == getuid()
            else { continue }
            if isAbandoned(name, in: directory, lock: ".owner", olderThan: 86_400) { _ = cf_remove_tree_at(directory, name) }
        }
    }

    /// Whether the directory `name` in `parent` was left by a process that is gone: its `lock`
    /// file can be locked (its owner holds it while alive), or, without one, it is older than
    /// `seconds`. (Process ids would not do: another PID namespace has other ones.) A directory
    /// changed in the last minute is never abandoned: its owner may have made it and not yet
    /// taken its lock.
    static func isAbandoned(_ name: String, in parent: Int32, lock: String, olderThan seconds: Int) -> Bool {
        let inside = openat(parent, name, openPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard inside >= 0 else { return false }
        defer { close(inside) }
        var status = stat()
        guard fstat(inside, &status) == 0 else { return false }
        let age = time(nil) - status.st_mtim.tv_sec
        guard age >= 60 else { return false }
        let file = openat(inside, lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard file >= 0 else { return age > seconds }
        defer { close(file) }
        return flock(file, LOCK_EX | LOCK_NB) == 0
    }

    // MARK: Entries

    /// What ``openEntry(_:)`` found.
    enum Lookup {
        case missing
        /// An entry that failed a check (it has been removed), and why.
        case bad(String)
        /// A checked entry: a descriptor of its shared object, to load and close.
        case valid(Int32)
    }

    /// Opens the entry `name` (a shared object) and checks it and its record (see the type's
    /// documentation). A bad entry is removed.
    func openEntry(_ name: String) -> Lookup {
        let object = openat(descriptor, name + ".so", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard object >= 0 else {
            return errno == ENOENT ? .missing : removeBad(name, "its shared object cannot be opened (\(String(cString: strerror(errno))))")
        }
        if let problem = Self.problem(with: object, maxSize: nil) {
            close(object)
            return removeBad(name, "its shared object \(problem)")
        }
        guard let record = readRecord(name) else {
            close(object)
            return removeBad(name, "its record is missing or damaged")
        }
        var status = stat()
        fstat(object, &status)
        guard Int(status.st_size) == record.size, let digest = Self.digest(of: object), digest == record.digest else {
            close(object)
            return removeBad(name, "its content does not match the digest recorded when it was built")
        }
        return .valid(object)
    }

    /// Removes a bad entry and reports it.
    private func removeBad(_ name: String, _ reason: String) -> Lookup {
        unlinkat(descriptor, name + ".so", 0)
        unlinkat(descriptor, name + ".sha256", 0)
        return .bad(reason)
    }

    /// What is wrong with a file that should be the user's own, written once: `nil` when nothing.
    private static func problem(with file: Int32, maxSize: Int?) -> String? {
        var status = stat()
        guard fstat(file, &status) == 0 else { return "cannot be checked" }
        guard status.st_mode & S_IFMT == S_IFREG else { return "is not a regular file" }
        guard status.st_uid == getuid() else { return "is owned by user \(status.st_uid)" }
        guard status.st_mode & 0o022 == 0 else { return "is writable by other users" }
        guard status.st_nlink == 1 else { return "has \(status.st_nlink) links" }
        if let maxSize, Int(status.st_size) > maxSize { return "is too large" }
        return nil
    }

    /// The digest and size an entry's record holds (`v1 <sha256> <size>`), checked as a file.
    private func readRecord(_ name: String) -> (digest: String, size: Int)? {
        let file = openat(descriptor, name + ".sha256", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard file >= 0 else { return nil }
        defer { close(file) }
        guard Self.problem(with: file, maxSize: 256) == nil else { return nil }
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = read(file, &bytes, bytes.count)
        guard count > 0 else { return nil }
        let fields = String(decoding: bytes[0..<count], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 3, fields[0] == "v1", fields[1].count == 64, let size = Int(fields[2]) else { return nil }
        return (String(fields[1]), size)
    }

    /// The SHA-256 of what `file` holds, as hex, read through the descriptor.
    static func digest(of file: Int32) -> String? {
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(file, $0.baseAddress, $0.count, offset) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            offset += off_t(count)
        }
        return hasher.finish()
    }

    /// Moves the shared object `object` that a build wrote into `build` (a directory in the
    /// cache) into place as entry `name`, with its record.
    ///
    /// - Throws: ``ModuleError`` `.engineUnavailable` when a file cannot be written or moved.
    func store(_ object: String, from build: BuildDirectory, as name: String) throws(ModuleError) {
        let file = openat(build.descriptor, object, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0 else { throw storeError("cannot open the built \(object)") }
        defer { close(file) }
        guard fchmod(file, 0o500) == 0 else { throw storeError("cannot set the mode of the built \(object)") }
        if let problem = Self.problem(with: file, maxSize: nil) { throw storeError("the built \(object) \(problem)") }
        var status = stat()
        fstat(file, &status)
        guard let digest = Self.digest(of: file) else { throw storeError("cannot read the built \(object)") }
        try build.write(Array("v1 \(digest) \(status.st_size)\n".utf8), to: "record", mode: 0o400)
        guard renameat(build.descriptor, "record", descriptor, name + ".sha256") == 0,
            renameat(build.descriptor, object, descriptor, name + ".so") == 0
        else { throw storeError("cannot move the entry \(name) into place (\(String(cString: strerror(errno))))") }
    }

    private func storeError(_ message: String) -> ModuleError {
        ModuleError(.engineUnavailable, "the compiled engine's cache \(path): \(message)")
    }

    /// The names of the entries (shared objects, without `.so`) whose names start with `prefix`.
    func entries(withPrefix prefix: String) -> [String] {
        ((try? names()) ?? []).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".so") }.map { String($0.dropLast(3)) }.sorted()
    }

    /// The names in the directory.
    func names() throws -> [String] {
        let listing = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard listing >= 0, let directory = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            throw ModuleError(.engineUnavailable, "cannot list \(path)")
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = entryName(entry)
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    // MARK: Locks and build directories

    /// Takes the lock of module `key` for building, waiting until `deadline` (`nil`: not at
    /// all). Returns the lock's descriptor (close it to release), or `nil` when another process
    /// holds it past the deadline.
    func lock(_ key: String, until deadline: Deadline?) throws(ModuleError) -> Int32? {
        let file = openat(descriptor, key + ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw storeError("cannot open the lock \(key).lock (\(String(cString: strerror(errno))))") }
        while flock(file, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, let deadline, Deadline.now < deadline else {
                close(file)
                return nil
            }
            usleep(20_000)
        }
        return file
    }

    /// Makes a new build directory in the cache, registered so that a signal or exit removes it.
    func makeBuildDirectory() throws(ModuleError) -> BuildDirectory {
        removeStaleBuilds()
        for _ in 0..<16 {
            let name = "build-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            guard mkdirat(descriptor, name, 0o700) == 0 else {
                if errno == EEXIST { continue }
                break
            }
            let directory = openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard directory >= 0 else { break }
            return BuildDirectory(cache: self, name: name, descriptor: directory)
        }
        throw storeError("cannot make a build directory (\(String(cString: strerror(errno))))")
    }

    /// Removes the build directories whose process is gone (killed mid-build): their lock is
    /// free, or, without one, they are over an hour old.
    func removeStaleBuilds() {
        for name in (try? names()) ?? [] where name.hasPrefix("build-") {
            if Self.isAbandoned(name, in: descriptor, lock: ".lock", olderThan: 3600) { _ = cf_remove_tree_at(descriptor, name) }
        }
    }
}

/// The name in a directory entry `readdir` returned, read where it is: the record may be shorter
/// than a whole `dirent` (the name is as long as it needs to be), so copying the struct could read
/// past the end of the buffer that holds it.
func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
    let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
    return String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
}

/// The parts of a path, without Foundation.
private struct PathParts {
    let path: String
    var deletingLastComponent: String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
    var lastComponent: String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
