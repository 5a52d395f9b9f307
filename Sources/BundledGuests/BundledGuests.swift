import Foundation
public import WasmInterpreters

/// The guest modules this repository builds from `Guests/` (with `futures build-guest`), ready to
/// load: the benchmark guest and the examples' guests.
public enum BundledGuests {
    /// The benchmark guest (`Guests/Tasks.swift`): `cpu_bound(n)`, `double(x)`, `square(x)`,
    /// `add(a, b, c)` and `noop()`, all on 64-bit integers. It imports nothing.
    public static let tasks = load(BundledModuleBytes.tasks, name: "Tasks.wasm")

    /// The example guest (`Guests/Examples.swift`): queue `producer`/`consumer`, string and byte
    /// functions, and functions that fault on purpose.
    public static let examples = load(BundledModuleBytes.examples, name: "Examples.wasm")

    /// A C guest (`Guests/c/faults.c`): `divide`, `load_oob`, `rev`, `checksum`.
    public static let faults = load(BundledModuleBytes.faults, name: "faults.wasm")

    /// The bytes of the bundled module `name` (`Tasks.wasm`, `Examples.wasm`, `faults.wasm`).
    public static func bytes(named name: String) -> [UInt8]? {
        switch name {
        case "Tasks.wasm": decode(BundledModuleBytes.tasks)
        case "Examples.wasm": decode(BundledModuleBytes.examples)
        case "faults.wasm": decode(BundledModuleBytes.faults)
        default: nil
        }
    }

    private static func decode(_ base64: String) -> [UInt8] {
        [UInt8](Data(base64Encoded: base64)!)
    }

    private static func load(_ base64: String, name: String) -> GuestModule {
        do {
            return try GuestModule(bytes: decode(base64), name: name)
        } catch {
            preconditionFailure("the bundled guest \(name) does not load: \(error)")
        }
    }
}
