/// The engine an interpreter runs its guests on.
///
/// Both engines give the same isolation (each interpreter has its own memories, globals and
/// tables; every access is bounds-checked; a trap fails only its call), the same host imports,
/// values, errors and limits. They differ in speed and in what they need:
///
/// - ``wasmKit`` interprets WebAssembly with WasmKit: nothing to install, instant start, about
///   2.5x slower than native code in compute.
/// - ``compiled`` translates each module to C with `wasm2c` and compiles it with `clang` into a
///   shared object, cached on disk (see ``CompiledEngine``): native speed after a one-time build
///   of 0.1-3 s per module. Without `wasm2c` (Debian package `wabt`) or `clang`, and without a
///   prebuilt cache entry, loading a module fails with ``ModuleError`` `.engineUnavailable`.
public enum GuestEngine: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// WasmKit's interpreter (the default).
    case wasmKit = "wasmkit"
    /// Native code compiled from the module through `wasm2c` and `clang`.
    case compiled

    /// `wasmkit` or `compiled`, as the `futures` tool spells it.
    public var description: String { rawValue }
}
