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

    /// The bytes of the bundled module `name` (`Tasks.wasm`, `Examples.wasm`, `faults.wasm`).
    public static func bytes(named name: String) -> [UInt8]? {
        switch name {
        case "Tasks.wasm": PackageResources.Tasks_wasm
        case "Examples.wasm": PackageResources.Examples_wasm
        case "faults.wasm": PackageResources.faults_wasm
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
