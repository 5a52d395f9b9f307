import BundledGuests
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ConcurrentFutures
@testable import WasmInterpreters

#if canImport(Glibc)
import Glibc
#endif

/// Whether this process can run code as another user (root, with util-linux's `setpriv`).
let canActAsAnotherUser = getuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0

/// The compiled engine's cache: what it refuses to trust, and that a racing attacker never gets
/// its code loaded.
@Suite("Compiled engine cache", .enabled(if: compiledEngineTestsRun))
struct CompiledCacheTests {
    /// Builds `module` into the cache at `path`; returns the entry's name.
    static func buildEntry(_ module: GuestModule, into cache: CompiledCache) throws -> String {
        let tools = try #require(Toolchain.current)
        let name = "\(CompiledLibrary.cacheKey(module))-\(tools.identity)"
        try CompiledBuild.build(module, tools: tools, cache: cache, as: name, budget: .default, deadline: Deadline.after(.seconds(300))!, niceness: 0)
        return name
    }

    static func status(_ path: String) -> stat {
        var status = stat()
        lstat(path, &status)
        return status
    }

    /// The directory and every ancestor are checked through descriptors: owned by the user (or
    /// root above), writable by nobody else unless sticky (never the cache itself); missing parts
    /// are made with mode 0700.
    @Test func theCacheAndItsAncestorsAreChecked() throws {
        let root = temporaryDirectory("ancestors")
        defer { try? FileManager.default.removeItem(atPath: root) }
        func refusal(_ path: String) -> String? {
            do {
                _ = try CompiledCache.at(path)
                return nil
            } catch {
                #expect(error.code == .engineUnavailable)
                return error.message
            }
        }
        // Made, with its missing parents, mode 0700.
        #expect(refusal("\(root)/a/b/cache") == nil)
        #expect(Self.status("\(root)/a/b/cache").st_mode & 0o777 == 0o700)
        #expect(Self.status("\(root)/a").st_mode & 0o777 == 0o700)
        // The cache itself writable by others: refused, even sticky.
        mkdir("\(root)/open", 0o700)
        chmod("\(root)/open", 0o1777)
        #expect(refusal("\(root)/open")?.contains("writable by other users") == true)
        chmod("\(root)/open", 0o770)
        #expect(refusal("\(root)/open")?.contains("writable by other users") == true)
        // An ancestor writable by others: refused, unless sticky (as /tmp is).
        mkdir("\(root)/shared", 0o700)
        chmod("\(root)/shared", 0o777)
        #expect(refusal("\(root)/shared/cache")?.contains("\(root)/shared") == true)
        chmod("\(root)/shared", 0o1777)
        #expect(refusal("\(root)/shared/cache") == nil)
        // A link on the way is resolved, and what it leads to is checked.
        symlink("\(root)/a", "\(root)/link")
        #expect(refusal("\(root)/link/b/cache") == nil)
        if canActAsAnotherUser {
            // Another user's link in a sticky directory (as in /tmp): not followed, even to a
            // directory of the user's own.
            chmod("\(root)/shared", 0o1777)
            chmod(root, 0o755)
            #expect(
                run(
                    "/usr/bin/setpriv",
                    ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/ln", "-s", "\(root)/a/b/cache", "\(root)/shared/theirs"]
                ).status == 0)
            #expect(refusal("\(root)/shared/theirs")?.contains("symbolic link owned by user 65534") == true)
            // Another user's directory above the cache: refused.
            mkdir("\(root)/theirs", 0o755)
            chown("\(root)/theirs", 65534, 65534)
            mkdir("\(root)/theirs/cache", 0o700)
            #expect(refusal("\(root)/theirs/cache")?.contains("owned by user 65534") == true)
        }
    }

    /// An entry that is not exactly what was built (truncated, another module's, writable by
    /// others, a link, a FIFO, with a second name, another user's, without its record or with a
    /// wrong one) is removed, never loaded.
    @Test func aBadEntryIsRemovedNeverLoaded() throws {
        let root = temporaryDirectory("entries")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = try CompiledCache.at("\(root)/cache")
        let name = try Self.buildEntry(BundledGuests.tasks, into: cache)
        let other = try Self.buildEntry(Fixtures.module(Fixtures.basic), into: cache)
        let object = "\(root)/cache/\(name).so"
        let record = "\(root)/cache/\(name).sha256"
        guard case .valid(let good) = cache.openEntry(name) else {
            Issue.record("a fresh entry is not valid")
            return
        }
        close(good)
        #expect(Self.status(object).st_mode & 0o777 == 0o500)
        #expect(Self.status(record).st_mode & 0o777 == 0o400)
        let pristine = try Data(contentsOf: URL(fileURLWithPath: object))
        let pristineRecord = try Data(contentsOf: URL(fileURLWithPath: record))
        let tampering: [(String, () throws -> Void)] =
            [
                (
                    "truncated",
                    {
                        chmod(object, 0o700)
                        truncate(object, 4096)
                    }
                ),
                (
                    "another module's",
                    {
                        unlink(object)
                        try Data(contentsOf: URL(fileURLWithPath: "\(root)/cache/\(other).so")).write(to: URL(fileURLWithPath: object))
                        chmod(object, 0o500)
                    }
                ),
                ("writable by others", { chmod(object, 0o777) }),
                (
                    "a link to a good copy",
                    {
                        try pristine.write(to: URL(fileURLWithPath: "\(root)/copy.so"))
                        chmod("\(root)/copy.so", 0o500)
                        unlink(object)
                        symlink("\(root)/copy.so", object)
                    }
                ),
                (
                    "a FIFO",
                    {
                        unlink(object)
                        mkfifo(object, 0o600)
                    }
                ),
                ("with a second name", { link(object, "\(root)/second-name.so") }),
                ("without its record", { unlink(record) }),
                (
                    "with a wrong record",
                    {
                        unlink(record)
                        try Data("v1 \(String(repeating: "0", count: 64)) \(pristine.count)\n".utf8).write(to: URL(fileURLWithPath: record))
                        chmod(record, 0o400)
                    }
                ),
            ] + (canActAsAnotherUser ? [("another user's", { chown(object, 65534, 65534) })] : [])
        for (label, tamper) in tampering {
            // Restore the entry, tamper with it, look it up.
            unlink(object)
            unlink(record)
            unlink("\(root)/second-name.so")
            try pristine.write(to: URL(fileURLWithPath: object))
            try pristineRecord.write(to: URL(fileURLWithPath: record))
            chmod(object, 0o500)
            chmod(record, 0o400)
            guard case .valid(let restored) = cache.openEntry(name) else {
                Issue.record("\(label): the restored entry is not valid")
                continue
            }
            close(restored)
            try tamper()
            switch cache.openEntry(name) {
            case .valid(let file):
                close(file)
                Issue.record("\(label): a tampered entry passed")
            case .missing:
                Issue.record("\(label): reported missing")
            case .bad:
                #expect(access(object, F_OK) != 0 && Self.status(object).st_mode == 0, "\(label): left in place")
            }
        }
    }

    /// A link named as the cache flips, as fast as it can, between the victim's real cache and a
    /// directory of another user's that holds a shared object of its making under the entry's
    /// name, with a matching record. While it does, the victim opens and checks the entry a
    /// thousand times, and loads what passes: the planted code never runs, and every entry that
    /// passed is the real one. When the other user flips the link (in a directory writable by all,
    /// sticky or not), nothing passes: its links are never followed. When the link is the
    /// victim's own (a deployment that swaps it), the real cache passes whenever the link leads to
    /// it.
    @Test(.enabled(if: canActAsAnotherUser, "needs root and setpriv to act as a second user"))
    func aRacingAttackerNeverGetsItsCodeLoaded() throws {
        let root = temporaryDirectory("race")
        defer { try? FileManager.default.removeItem(atPath: root) }
        chmod(root, 0o755)  // the attacker reaches its directories through it
        let module = Fixtures.module("(module (func (export \"answer\") (result i32) i32.const 42))", name: "victim")
        // The victim's real cache, with the entry.
        let real = try CompiledCache.at("\(root)/real")
        let name = try Self.buildEntry(module, into: real)
        let realInode = Self.status("\(root)/real/\(name).so").st_ino
        // The attacker's shared object: its constructor leaves a mark.
        let marker = "\(root)/planted-code-ran"
        let evil = "\(root)/evil.c"
        let source = """
            #include <stdio.h>
            __attribute__((constructor)) static void planted(void) { FILE *f = fopen("\(marker)", "w"); if (f) fclose(f); }
            """
        try source.write(toFile: evil, atomically: false, encoding: .utf8)
        let compiler = try #require(Toolchain.find(environmentValue("CONCURRENT_FUTURES_CC") ?? "clang"))
        #expect(run(compiler, ["-shared", "-fPIC", "-o", "\(root)/evil.so", evil]).status == 0)
        for (attacker, sticky) in [(true, false), (true, true), (false, false)] {
            let arena = "\(root)/arena-\(attacker)-\(sticky)"
            mkdir(arena, 0o700)
            if attacker { chmod(arena, sticky ? 0o1777 : 0o777) }
            let planted = "\(arena)/planted"
            mkdir(planted, 0o755)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(root)/evil.so"))
            try bytes.write(to: URL(fileURLWithPath: "\(planted)/\(name).so"))
            let file = open("\(planted)/\(name).so", O_RDONLY)
            let digest = try #require(CompiledCache.digest(of: file))
            close(file)
            try Data("v1 \(digest) \(bytes.count)\n".utf8).write(to: URL(fileURLWithPath: "\(planted)/\(name).sha256"))
            for path in [planted, "\(planted)/\(name).so", "\(planted)/\(name).sha256"] { chown(path, 65534, 65534) }
            chmod("\(planted)/\(name).so", 0o500)
            chmod("\(planted)/\(name).sha256", 0o400)
            // The flipper (user 65534, or the victim): flips `cache` between the real cache and
            // the planted one.
            let script = """
                cd '\(arena)' || exit 1
                ln -sfn '\(root)/real' cache
                while :; do
                  ln -sfn planted next && mv -T next cache
                  ln -sfn '\(root)/real' next && mv -T next cache
                done
                """
            let flipper = Process()
            if attacker {
                flipper.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
                flipper.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", script]
            } else {
                flipper.executableURL = URL(fileURLWithPath: "/bin/sh")
                flipper.arguments = ["-c", script]
            }
            try flipper.run()
            defer {
                kill(flipper.processIdentifier, SIGKILL)
                flipper.waitUntilExit()
            }
            waitUntil { access("\(arena)/cache", F_OK) == 0 }
            var passed = 0
            var refused = 0
            for _ in 0..<1000 {
                guard let cache = try? CompiledCache.at("\(arena)/cache") else {
                    refused += 1
                    continue
                }
                switch cache.openEntry(name) {
                case .valid(let file):
                    var status = stat()
                    fstat(file, &status)
                    #expect(status.st_ino == realInode)
                    if let handle = dlopen("/proc/self/fd/\(file)", RTLD_NOW | RTLD_LOCAL) { dlclose(handle) }
                    close(file)
                    passed += 1
                case .missing, .bad:
                    refused += 1
                }
            }
            // Whatever the name led to at each moment: the real cache (its own entry, checked),
            // the attacker's directory (refused: another user's), or a link in the walk (refused).
            #expect(access(marker, F_OK) != 0, "the planted code ran")
            #expect(passed + refused == 1000)
            if attacker {
                #expect(passed == 0, "another user's link was followed (sticky: \(sticky))")
            } else {
                #expect(passed > 0, "the victim's own link never led to its cache")
            }
        }
        #expect(access(marker, F_OK) != 0, "the planted code ran")
    }
}

extension CompiledCacheTests {
    /// Threads loading the same and different modules at once, each in its own order: every call
    /// gets its own module's result (one build per module, any number at once).
    @Test func concurrentLoadsGetTheirOwnModules() throws {
        let modules = (0..<6).map { index in
            Fixtures.module("(module (func (export \"which\") (result i64) i64.const \(index * 1_000_033 + 17)))", name: "concurrent-\(index)")
        }
        let wrong = Atomic<Int>(0)
        runOnThreads(4) { thread in
            let interpreter = Interpreters.create(engine: .compiled)
            for step in 0..<modules.count {
                let index = (step * (thread + 1) + thread) % modules.count
                let result = try? interpreter.call(modules[index].function("which", returning: Int.self))
                if result != index * 1_000_033 + 17 { wrong.add(1, ordering: .relaxed) }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
    }
}

extension CompiledCacheTests {
    /// A build directory is in use while its lock is held, whatever process ids say (another PID
    /// namespace has other ones): a sweep removes only those whose lock is free, or, without a
    /// lock, those over an hour old; never one changed in the last minute (its owner may not have
    /// taken its lock yet).
    @Test func onlyAbandonedBuildDirectoriesAreRemoved() throws {
        let root = temporaryDirectory("sweep")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = try CompiledCache.at("\(root)/cache")
        let live = try cache.makeBuildDirectory()
        defer { live.close() }
        for name in ["build-1-abandoned", "build-2-fresh", "build-3-old", "build-4-just-made"] {
            mkdir("\(root)/cache/\(name)", 0o700)
        }
        for name in ["build-1-abandoned", "build-4-just-made"] {
            _ = FileManager.default.createFile(atPath: "\(root)/cache/\(name)/.lock", contents: nil)
        }
        func age(_ name: String, _ seconds: Int) {
            var times = [timespec(tv_sec: time(nil) - seconds, tv_nsec: 0), timespec(tv_sec: time(nil) - seconds, tv_nsec: 0)]
            utimensat(AT_FDCWD, "\(root)/cache/\(name)", &times, 0)
        }
        age("build-1-abandoned", 120)
        age("build-3-old", 7200)
        // Another handle on the same directory sweeps: as another process would.
        let other = try CompiledCache.at("\(root)/cache")
        other.removeStaleBuilds()
        let left = try FileManager.default.contentsOfDirectory(atPath: "\(root)/cache").filter { $0.hasPrefix("build-") }.sorted()
        #expect(left == [live.name, "build-2-fresh", "build-4-just-made"].sorted())
    }
}

extension CompiledCacheTests {
    /// Listing a cache of thousands of entries with names of every length gives every name (the
    /// listing reads each name where `readdir` put it: copying a whole `dirent` read past the end
    /// of its buffer and crashed a process now and then).
    @Test func listingsOfLargeDirectoriesGiveEveryName() throws {
        let root = temporaryDirectory("listing")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = try CompiledCache.at("\(root)/cache")
        var expected: Set<String> = []
        for index in 0..<3000 {
            let name = String(repeating: "n", count: 1 + index % 250) + "-\(index)"
            _ = FileManager.default.createFile(atPath: "\(root)/cache/\(name)", contents: nil)
            expected.insert(name)
        }
        for _ in 0..<20 { #expect(Set(try cache.names()) == expected) }
    }
}
