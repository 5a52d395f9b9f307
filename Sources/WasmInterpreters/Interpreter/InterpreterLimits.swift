/// The bounds an interpreter puts on the guests it runs. Python has none of these.
///
/// - ``fuel`` bounds each call's work: about one unit per WebAssembly instruction executed
///   (roughly 2-3 × 10⁹ units per CPU-second on this project's reference machine). A call that
///   exceeds it fails with ``GuestError/Kind-swift.struct/outOfFuel``; the interpreter keeps
///   serving. The budget is deterministic: the same call always uses the same fuel.
/// - ``memoryBytes`` caps what the interpreter's guests make the host hold: linear memories,
///   tables (a table element counts 8 bytes; each `table.grow` counts the table's new size,
///   since growing copies it) and the values they have put in queues that are still there.
///   Growth past it is refused and, by
///   default (``MemoryLimitAction/failCall``), fails the call with
///   ``GuestError/Kind-swift.struct/memoryLimit``; with ``MemoryLimitAction/refuseGrowth``
///   `memory.grow` returns -1 to the guest, as WebAssembly specifies, and a guest that checks it
///   carries on. A module whose initial memory is already larger cannot be instantiated, and
///   a ``GuestModule`` made with these limits refuses it at load.
/// - ``maxModuleBytes`` caps the size of a module's bytes, checked before anything is parsed.
/// - ``maxValueBytes`` caps each string, byte string or encoded value that crosses in or out.
/// - ``stackBytes`` sizes the interpreter's own stack, which bounds guest recursion depth.
/// - ``timeLimit`` bounds each call's wall-clock time (best effort, see
///   ``GuestError/Kind-swift.struct/timedOut``): unlike fuel it depends on the machine, but
///   it also counts time spent blocked in host functions such as queue operations.
public struct InterpreterLimits: Sendable, Hashable {
    /// Fuel per call; `nil` for no limit.
    public var fuel: UInt64?
    /// The most bytes of linear memory; `nil` for WebAssembly's own 4 GiB limit.
    public var memoryBytes: Int?
    /// The most bytes one value may take when it crosses into or out of the guest.
    public var maxValueBytes: Int
    /// The interpreter stack size in bytes.
    public var stackBytes: Int
    /// Wall-clock time per call; `nil` for no limit.
    public var timeLimit: Duration?
    /// What growing memory past ``memoryBytes`` does.
    public var onMemoryLimit: MemoryLimitAction
    /// The largest module, in bytes, that ``GuestModule`` accepts.
    public var maxModuleBytes: Int

    /// Creates limits.
    public init(
        fuel: UInt64? = nil, memoryBytes: Int? = 256 << 20, maxValueBytes: Int = 64 << 20, stackBytes: Int = 512 << 10,
        timeLimit: Duration? = nil, onMemoryLimit: MemoryLimitAction = .failCall, maxModuleBytes: Int = 64 << 20
    ) {
        self.fuel = fuel
        self.memoryBytes = memoryBytes
        self.maxValueBytes = maxValueBytes
        self.stackBytes = stackBytes
        self.timeLimit = timeLimit
        self.onMemoryLimit = onMemoryLimit
        self.maxModuleBytes = maxModuleBytes
    }

    /// No fuel limit, 256 MiB of memory, 64 MiB per value, a 512 KiB interpreter stack, modules
    /// up to 64 MiB.
    public static let `default` = InterpreterLimits()
}

/// What happens when a guest grows its memory past ``InterpreterLimits/memoryBytes``.
public enum MemoryLimitAction: Sendable, Hashable {
    /// The call fails with ``GuestError/Kind-swift.struct/memoryLimit`` at once.
    case failCall
    /// `memory.grow` returns -1 to the guest, which may handle it (a `malloc` returning null).
    case refuseGrowth
}
