public import WasmInterpreters

/// The guest modules this repository builds from `Guests/` (with `futures build-guest`), ready to
/// load: the benchmark guest and the examples' guests.
public enum BundledGuests {
    /// The benchmark guest (`Guests/Tasks.swift`): `cpu_bound(n)`, `double(x)`, `square(x)`,
    /// `add(a, b, c)` and `noop()`, all on 64-bit integers. It imports nothing.
    public static let tasks = load(PackageResources.Tasks_wasm, name: "Tasks.wasm")

    /// The example guest (`Guests/Examples.swift`): queue `producer`/`consumer`, string and byte
    /// functions, and functions that fault on purpose.
    public static let examples = load(PackageResources.Examples_wasm, name: "Examples.wasm")

    /// A C guest (`Guests/c/faults.c`): `divide`, `load_oob`, `rev`, `checksum`.
    public static let faults = load(PackageResources.faults_wasm, name: "faults.wasm")

    /// The benchmark guest built as a WASI reactor (`Guests/Tasks.swift` with `--wasi reactor`):
    /// the same functions, run through the WASI call path (`futures bench`'s WASI rows).
    public static let tasksWASI = load(PackageResources.TasksWASI_wasm, name: "TasksWASI.wasm")

    /// A WASI reactor in C (`Guests/wasi/probe.c`) that probes the sandbox: `greet`, `arguments`,
    /// `shout` (stdin), `read_file`, `write_file`, `list_dir`, `socket`, `bad_pointer`, `spam`,
    /// `exit_with`, `counter`, `clock_ok`.
    public static let probe = load(PackageResources.probe_wasm, name: "probe.wasm")

    /// A WASI command in C (`Guests/wasi/wordstat.c`): a text and number report on its files or
    /// standard input.
    public static let wordstat = load(PackageResources.wordstat_wasm, name: "wordstat.wasm")

    /// The same program as a WASI reactor exporting `summarize(text)`.
    public static let wordstatReactor = load(PackageResources.wordstat_reactor_wasm, name: "wordstat-reactor.wasm")

    /// The names of the bundled modules, for ``bytes(named:)``.
    public static let names = [
        "Tasks.wasm", "Examples.wasm", "faults.wasm", "TasksWASI.wasm", "probe.wasm", "wordstat.wasm", "wordstat-reactor.wasm",
        "plugin-c.wasm", "plugin-swift.wasm",
    ]

    /// The bytes of the bundled module `name` (one of ``names``).
    public static func bytes(named name: String) -> [UInt8]? {
        switch name {
        case "Tasks.wasm": PackageResources.Tasks_wasm
        case "Examples.wasm": PackageResources.Examples_wasm
        case "faults.wasm": PackageResources.faults_wasm
        case "TasksWASI.wasm": PackageResources.TasksWASI_wasm
        case "probe.wasm": PackageResources.probe_wasm
        case "wordstat.wasm": PackageResources.wordstat_wasm
        case "wordstat-reactor.wasm": PackageResources.wordstat_reactor_wasm
        // The worked plugin (Guests/plugin/plugin.c and plugin.swift): `greet(name)`, which
        // imports `env.log` and `env.kv_get`; load it with a Linker that defines them.
        case "plugin-c.wasm": PackageResources.plugin_c_wasm
        case "plugin-swift.wasm": PackageResources.plugin_swift_wasm
        default: nil
        }
    }

    private static func load(_ bytes: [UInt8], name: String) -> GuestModule {
        do {
            return try GuestModule(bytes: bytes, name: name)
        } catch {
            preconditionFailure("the bundled guest \(name) does not load: \(error)")
        }
    }
}
