import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Work accepted before the program ends still runs: the exit hook, as Python joins its pools at
/// interpreter shutdown.
///
/// When the program exits normally (returning from `main`, or calling `exit`), the hook waits for
/// every pool (thread, interpreter, process) to finish the work it accepted, whether or not it
/// was shut down, and whether or not its executor is still referenced. From then on, submitting
/// fails with ``ExecutorError`` `.shutdown` ("after interpreter shutdown"). A worker blocked for
/// ever blocks the exit, as in Python; bound such work with limits, or opt out.
///
/// Opt out with ``waitsForAcceptedWork`` set to `false` (or the environment variable
/// `CONCURRENT_FUTURES_EXIT_WAIT=0`): the program then exits at once and accepted work that has
/// not finished is lost, as it would be with daemon threads. `_exit`, signals and crashes never
/// run the hook.
public enum ExitHook {
    /// Whether a normal exit waits for accepted work (default `true`).
    public static var waitsForAcceptedWork: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }

    /// Whether the hook has run: the program is exiting.
    public static var isExiting: Bool { exiting.load(ordering: .acquiring) }

    private static let enabled = Atomic<Bool>(getenv("CONCURRENT_FUTURES_EXIT_WAIT").map { String(cString: $0) != "0" } ?? true)
    private static let exiting = Atomic<Bool>(false)

    private struct Entry {
        weak var pool: (any AnyObject & Sendable)?
        let join: @Sendable (AnyObject) -> Void
    }

    private static let pools = Locked<[ObjectIdentifier: Entry]>([:])
    private static let installed = Atomic<Bool>(false)

    /// Adds a pool to those the hook joins; installs the hook on first use.
    static func register<Context>(_ pool: WorkerPool<Context>) {
        if !installed.exchange(true, ordering: .acquiringAndReleasing) {
            atexit { ExitHook.run() }
        }
        let entry = Entry(pool: pool) { object in (object as? WorkerPool<Context>)?.joinAtExit() }
        pools.withLock { entries in
            // Forget pools that are gone, now and then, so the table stays as small as the live set.
            if entries.count >= 64, entries.count.nonzeroBitCount == 1 {
                entries = entries.filter { $0.value.pool != nil }
            }
            entries[ObjectIdentifier(pool)] = entry
        }
    }

    /// Joins every live pool. Runs once, from `exit`.
    static func run() {
        exiting.store(true, ordering: .releasing)
        guard waitsForAcceptedWork else { return }
        let live: [(AnyObject, @Sendable (AnyObject) -> Void)] = pools.withLock { entries in
            entries.values.compactMap { entry in entry.pool.map { ($0, entry.join) } }
        }
        for (pool, join) in live { join(pool) }
    }
}
