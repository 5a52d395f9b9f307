import CFuturesShims
import Futures

#if canImport(Glibc)
import Glibc
#endif

/// The tools that compile guests, and their identity for cache keys.
struct Toolchain: Sendable {
    let wasm2c: String
    let compiler: String
    /// A digest of both tools' paths, sizes and modification times: a new version of either
    /// makes new cache entries.
    let identity: String

    /// The tools found for the environment now, looked up once per value of the variables that
    /// name them (every instantiation under ``GuestEngine/auto`` asks).
    static var current: Toolchain? {
        let environment = ["PATH", "CONCURRENT_FUTURES_WASM2C", "CONCURRENT_FUTURES_CC"].map { environmentValue($0) ?? "\0" }
        if let known = found.withLock({ $0?.environment == environment ? $0 : nil }) { return known.toolchain }
        let toolchain = lookUp()
        found.withLock { $0 = (environment, toolchain) }
        return toolchain
    }

    private static let found = Locked<(environment: [String], toolchain: Toolchain?)?>(nil)

    private static func lookUp() -> Toolchain? {
        guard let wasm2c = find(environmentValue("CONCURRENT_FUTURES_WASM2C") ?? "wasm2c"),
            let compiler = find(environmentValue("CONCURRENT_FUTURES_CC") ?? "clang")
        else { return nil }
        var identity = SHA256()
        for tool in [wasm2c, compiler] {
            var status = stat()
            let resolved =
                realpath(tool, nil).map { path in
                    defer { free(path) }
                    return String(cString: path)
                } ?? tool
            _ = stat(resolved, &status)
            identity.update(Array("\(resolved):\(status.st_size):\(status.st_mtim.tv_sec)\n".utf8))
        }
        let digest = identity.finish()
        return Toolchain(wasm2c: wasm2c, compiler: compiler, identity: String(digest.prefix(16)))
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
        let place = (try? CompiledCache.current().path) ?? "its cache"
        return "the compiled engine needs " + missing.joined(separator: " and ") + ", and no compiled form of the module is cached in \(place)"
    }

    /// `name` if it is a path to an executable (made absolute: tools start in their build
    /// directory), else its first match on `PATH`.
    static func find(_ name: String) -> String? {
        if name.contains("/") {
            guard access(name, X_OK) == 0 else { return nil }
            guard !name.hasPrefix("/"), let cwd = getcwd(nil, 0) else { return name }
            defer { free(cwd) }
            return String(cString: cwd) + "/" + name
        }
        let path = environmentValue("PATH") ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where directory.hasPrefix("/") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// The value of the environment variable `name`, if set.
func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
