/// The engine an interpreter runs its guests on.
///
/// Both engines give the same isolation (each interpreter has its own memories, globals and
/// tables; every access is bounds-checked; a trap fails only its call), the same host imports,
/// WASI, values, errors, limits and fuel. They differ in speed and in what they need:
///
/// - ``wasmKit`` interprets WebAssembly with WasmKit: nothing to install, instant start, about
///   2.5x slower than native code in compute on small guests (more on large programs).
/// - ``compiled`` translates each module to C with `wasm2c` and compiles it with `clang` into a
///   shared object, cached on disk (see ``CompiledEngine``): native speed after a one-time build
///   (0.1 s to minutes per module, bounded by ``CompiledEngine/BuildBudget``). Without `wasm2c`
///   (Debian package `wabt`) or `clang`, and without a cached entry, or when the build fails or
///   runs out of its budget, loading a module fails with ``ModuleError``.
/// - ``auto`` uses the compiled form of a module when it is loaded or cached already, and
///   WasmKit otherwise, while the compiled form is built in the background (at low priority, one
///   build at a time) for the instances made after it is ready.
public enum GuestEngine: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// WasmKit's interpreter (the default).
    case wasmKit = "wasmkit"
    /// Native code compiled from the module through `wasm2c` and `clang`.
    case compiled
    /// The compiled form when it is ready, else WasmKit while it is built in the background.
    case auto

    /// `wasmkit`, `compiled` or `auto`, as the `futures` tool spells it.
    public var description: String { rawValue }
}
