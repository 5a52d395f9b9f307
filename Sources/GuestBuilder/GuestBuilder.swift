public import Futures

import Foundation
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Compiles guest source files (Embedded Swift or C) into a WebAssembly module that interpreters
/// can load, with the toolchain's own `swiftc`, `clang` and `wasm-ld`: `futures build-guest`.
///
/// Swift sources are compiled together as one Embedded Swift module for `wasm32-unknown-none-wasm`;
/// C sources with `clang --target=wasm32 -ffreestanding`. Unless ``Options/includeRuntime`` is
/// off, the guest is linked with this project's small runtime (`Sources/GuestBuilder/Runtime`): an allocator,
/// `memcpy` and friends, the exported `cf_alloc`/`cf_free`, and the Swift and C helpers for the
/// guest ABI (returning strings and values, queues, logging).
public struct GuestBuilder: Sendable {
    /// How to build.
    public struct Options: Sendable {
        /// The guest's shadow stack, in bytes (a multiple of 16).
        public var stackSize: Int = 64 << 10
        /// Link the guest runtime (needed for strings, bytes, queues and `print`).
        public var includeRuntime = true
        /// Keep the `name` section, so traps name guest functions.
        public var keepNames = true

        /// The defaults: a 64 KiB stack, the runtime linked, names kept.
        public init() {}
    }

    /// The directory holding `swiftc`, `clang` and `wasm-ld`.
    public let toolchainBin: String

    /// Uses the toolchain in `toolchainBin`, or finds one: `$SWIFT_TOOLCHAIN_BIN`, then the
    /// directory of the `swiftc` on `PATH`, then `/opt/swift/usr/bin`.
    ///
    /// - Throws: ``GuestBuildError`` `.toolchainNotFound` when no toolchain has the three tools.
    public init(toolchainBin: String? = nil) throws(GuestBuildError) {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let toolchainBin { candidates.append(toolchainBin) }
        if let fromEnvironment = environment["SWIFT_TOOLCHAIN_BIN"] { candidates.append(fromEnvironment) }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let swiftc = "\(directory)/swiftc"
            if FileManager.default.isExecutableFile(atPath: swiftc) {
                let resolved = URL(fileURLWithPath: swiftc).resolvingSymlinksInPath().deletingLastPathComponent().path
                candidates.append(resolved)
            }
        }
        candidates.append("/opt/swift/usr/bin")
        guard let found = candidates.first(where: { directory in
            ["swiftc", "clang", "wasm-ld"].allSatisfy { FileManager.default.isExecutableFile(atPath: "\(directory)/\($0)") }
        }) else {
            throw GuestBuildError(.toolchainNotFound, "no Swift toolchain with swiftc, clang and wasm-ld was found (set SWIFT_TOOLCHAIN_BIN)")
        }
        self.toolchainBin = found
    }

    /// Compiles `sources` (all `.swift`, or all `.c`) into the module `output`.
    ///
    /// - Throws: ``GuestBuildError`` `.badInput` for missing or mixed sources, `.compileFailed`
    ///   or `.linkFailed` with the tool's output.
    public func build(sources: [String], output: String, options: Options = Options()) async throws(GuestBuildError) {
        guard !sources.isEmpty else { throw GuestBuildError(.badInput, "no source files given") }
        for source in sources where !FileManager.default.isReadableFile(atPath: source) {
            throw GuestBuildError(.badInput, "cannot read \(source)")
        }
        let isSwift = sources.allSatisfy { $0.hasSuffix(".swift") }
        let isC = sources.allSatisfy { $0.hasSuffix(".c") }
        guard isSwift || isC else {
            throw GuestBuildError(.badInput, "sources must be all .swift or all .c files: \(sources.joined(separator: " "))")
        }
        guard options.stackSize > 0, options.stackSize % 16 == 0 else {
            throw GuestBuildError(.badInput, "the stack size must be a positive multiple of 16, got \(options.stackSize)")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("futures-guest-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            try Data(PackageResources.rt_c).write(to: scratch.appendingPathComponent("rt.c"))
            try Data(PackageResources.cf_h).write(to: scratch.appendingPathComponent("cf.h"))
            try Data(PackageResources.GuestRuntime_swift).write(to: scratch.appendingPathComponent("GuestRuntime.swift"))
        } catch {
            throw GuestBuildError(.badInput, "cannot write to the temporary directory: \(error)")
        }
        defer { try? FileManager.default.removeItem(at: scratch) }
        let path = { (name: String) in scratch.appendingPathComponent(name).path }
        var objects: [String] = []
        let cFlags = ["--target=wasm32", "-O2", "-ffreestanding", "-nostdlib", "-I", scratch.path]
        if isSwift {
            var inputs = sources
            if options.includeRuntime { inputs.append(path("GuestRuntime.swift")) }
            try await tool(
                "swiftc", .compileFailed,
                [
                    "-target", "wasm32-unknown-none-wasm", "-enable-experimental-feature", "Embedded",
                    "-enable-experimental-feature", "Extern", "-wmo", "-parse-as-library", "-O",
                    "-Xfrontend", "-disable-stack-protector", "-module-name", moduleName(for: sources[0]),
                ] + inputs + ["-c", "-o", path("guest.o")])
            objects.append(path("guest.o"))
        } else {
            for (index, source) in sources.enumerated() {
                let object = path("source\(index).o")
                try await tool("clang", .compileFailed, cFlags + ["-c", source, "-o", object])
                objects.append(object)
            }
        }
        if options.includeRuntime {
            try await tool("clang", .compileFailed, cFlags + ["-c", path("rt.c"), "-o", path("rt.o")])
            objects.append(path("rt.o"))
        }
        // Linked under the first source's name, so that the module's own name (in its name section)
        // and therefore its bytes do not depend on where the output goes.
        let linked = path(moduleName(for: sources[0]) + ".wasm")
        let unicodeTables = "\(toolchainBin)/../lib/swift/embedded/wasm32-unknown-none-wasm/libswiftUnicodeDataTables.a"
        if isSwift, FileManager.default.fileExists(atPath: unicodeTables) { objects.append(unicodeTables) }
        try await tool(
            "wasm-ld", .linkFailed,
            ["--no-entry", "--gc-sections", "--stack-first", "-z", "stack-size=\(options.stackSize)"]
                + (options.keepNames ? [] : ["--strip-all"]) + objects + ["-o", linked])
        if FileManager.default.isExecutableFile(atPath: "\(toolchainBin)/llvm-objcopy") {
            try await tool(
                "llvm-objcopy", .linkFailed,
                ["--remove-section=producers", "--remove-section=target_features", linked])
        }
        do {
            if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
            try FileManager.default.copyItem(atPath: linked, toPath: output)
        } catch {
            throw GuestBuildError(.badInput, "cannot write \(output): \(error.localizedDescription)")
        }
    }

    /// Runs a toolchain program; a non-zero exit becomes `code` with its output.
    private func tool(_ name: String, _ code: GuestBuildError.Code, _ arguments: [String]) async throws(GuestBuildError) {
        let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
        do {
            result = try await run(
                .path(FilePath("\(toolchainBin)/\(name)")), arguments: Arguments(arguments),
                output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        } catch {
            throw GuestBuildError(code, "\(name) could not run: \(error)")
        }
        guard result.terminationStatus.isSuccess else {
            let output = [result.standardOutput, result.standardError].joined(separator: "\n")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw GuestBuildError(code, "\(name) failed (\(result.terminationStatus)):\n\(output)")
        }
    }

    /// A Swift module name derived from a file's name.
    private func moduleName(for file: String) -> String {
        let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let cleaned = String(stem.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
        guard let first = cleaned.first, first.isLetter || first == "_" else { return "Guest" + cleaned }
        return cleaned
    }
}

/// A guest could not be built.
public struct GuestBuildError: CodedError, Sendable, Hashable {
    /// What went wrong: one of the codes below.
    public typealias Code = ErrorCode<GuestBuildError>

    /// Every code, for looking one up by name.
    public static let codes: [Code] = [.toolchainNotFound, .badInput, .compileFailed, .linkFailed]

    /// What went wrong.
    public let code: Code
    /// Details, including the tool's output.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension ErrorCode where Domain == GuestBuildError {
    /// No toolchain with `swiftc`, `clang` and `wasm-ld` was found.
    public static let toolchainNotFound = Self("toolchainNotFound")
    /// The sources are missing, unreadable or mixed.
    public static let badInput = Self("badInput")
    /// The compiler rejected a source file.
    public static let compileFailed = Self("compileFailed")
    /// The linker failed (an undefined symbol, for example).
    public static let linkFailed = Self("linkFailed")
}

