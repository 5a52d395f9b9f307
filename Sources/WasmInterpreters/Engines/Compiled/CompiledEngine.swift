import Futures
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The compiled engine's build pipeline and cache (``GuestEngine/compiled``).
///
/// A module is validated (when its ``GuestModule`` is made), instrumented with a fuel counter,
/// translated to C by `wasm2c`, compiled with the runtime written for it (`cf-rt.c`: bounds
/// checks, thread-local trap unwinding, stack limits, no signal handlers) by
/// `clang -O2 -fPIC -shared`, and loaded with `dlopen(RTLD_LOCAL)`. The shared object is cached
/// on disk in ``cacheDirectory``, named by the SHA-256 of the module, the runtime and the flags,
/// plus the identity of the tools that built it; a build writes a temporary file and renames it
/// into place, so processes building the same module at once do not interfere.
///
/// A deployed program needs no compiler: build the cache ahead of time with ``prepare(_:)`` (or
/// `futures build-guest --compile MODULE.wasm`), ship the directory and point
/// `CONCURRENT_FUTURES_CACHE` at it. Without `wasm2c` and `clang`, an entry for the module built
/// by any tool versions is used.
public enum CompiledEngine {
    /// Where compiled guests are cached: `$CONCURRENT_FUTURES_CACHE`, else
    /// `$XDG_CACHE_HOME/concurrent-futures/compiled`, else `~/.cache/concurrent-futures/compiled`,
    /// else a directory under `/tmp`.
    public static var cacheDirectory: String {
        if let path = environmentValue("CONCURRENT_FUTURES_CACHE"), !path.isEmpty { return path }
        if let path = environmentValue("XDG_CACHE_HOME"), !path.isEmpty { return path + "/concurrent-futures/compiled" }
        if let home = environmentValue("HOME"), !home.isEmpty { return home + "/.cache/concurrent-futures/compiled" }
        return "/tmp/concurrent-futures-\(getuid())/compiled"
    }

    /// Compiles `module` for the compiled engine unless its cache entry exists, loads it, and
    /// returns the path of its shared object.
    ///
    /// - Throws: ``ModuleError`` `.engineUnavailable` when `wasm2c` or `clang` is missing and no
    ///   cache entry exists; `.invalid` when the translation or the compilation fails (the
    ///   message carries the tool's first lines of output).
    @discardableResult
    public static func prepare(_ module: GuestModule) throws(ModuleError) -> String {
        try CompiledLibrary.load(module).path
    }

    /// Whether an interpreter made with ``GuestEngine/auto`` runs `module` compiled now.
    static func autoPlacement(of module: GuestModule) -> Bool {
        false
    }

    /// Whether `wasm2c` and `clang` are found (on `PATH`, or as `CONCURRENT_FUTURES_WASM2C` and
    /// `CONCURRENT_FUTURES_CC`), so that modules can be compiled here.
    public static var canCompile: Bool { Toolchain.current != nil }
}

/// The tools that compile guests, and their identity for cache keys.
struct Toolchain: Sendable {
    let wasm2c: String
    let compiler: String
    /// A digest of both tools' paths, sizes and modification times: a new version of either
    /// makes new cache entries.
    let identity: String

    static var current: Toolchain? {
        guard let wasm2c = find(environmentValue("CONCURRENT_FUTURES_WASM2C") ?? "wasm2c"),
            let compiler = find(environmentValue("CONCURRENT_FUTURES_CC") ?? "clang")
        else { return nil }
        var identity = SHA256()
        for tool in [wasm2c, compiler] {
            var status = stat()
            let resolved = realpath(tool, nil).map { path in
                defer { free(path) }
                return String(cString: path)
            } ?? tool
            _ = stat(resolved, &status)
            identity.update(Array("\(resolved):\(status.st_size):\(status.st_mtim.tv_sec)\n".utf8))
        }
        return Toolchain(wasm2c: wasm2c, compiler: compiler, identity: String(identity.finish().prefix(16)))
    }

    /// What to install when a tool is missing.
    static var missingMessage: String {
        var missing: [String] = []
        if find(environmentValue("CONCURRENT_FUTURES_WASM2C") ?? "wasm2c") == nil {
            missing.append("wasm2c (Debian and Ubuntu package 'wabt': apt-get install wabt)")
        }
        if find(environmentValue("CONCURRENT_FUTURES_CC") ?? "clang") == nil {
            missing.append("clang (part of the Swift toolchain; or set CONCURRENT_FUTURES_CC)")
        }
        return "the compiled engine needs " + missing.joined(separator: " and ")
            + ", and no compiled form of the module is cached in \(CompiledEngine.cacheDirectory)"
    }

    /// `name` if it is a path to an executable, else its first match on `PATH`.
    static func find(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = environmentValue("PATH") ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs `tool` with `arguments`; returns its exit status and the start of its output.
    static func run(_ tool: String, _ arguments: [String], logPath: String) -> (status: Int32, output: String) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        guard spawned == 0 else { return (-1, "cannot start \(tool): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let output: String
        switch readFile(logPath, maxBytes: 1 << 20) {
        case .success(let bytes): output = String(decoding: bytes.prefix(2000), as: UTF8.self)
        case .failure: output = ""
        }
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output)
    }
}

/// The value of the environment variable `name`, if set.
func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
