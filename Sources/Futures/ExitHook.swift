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

    /// The pools with live workers, held strongly: a pool's workers keep it alive anyway, and
    /// it leaves this table when its last worker ends.
    private static let pools = Locked<[ObjectIdentifier: any ExitJoinable]>([:])
    private static let installed = Atomic<Bool>(false)

    /// Adds a pool that has started its first worker; installs the hook on first use.
    static func register(_ pool: some ExitJoinable) {
        if !installed.exchange(true, ordering: .acquiringAndReleasing) {
            atexit { ExitHook.run() }
        }
        pools.withLock { $0[ObjectIdentifier(pool)] = pool }
    }

    /// Removes a pool whose last worker ended.
    static func unregister(_ pool: some ExitJoinable) {
        _ = pools.withLock { $0.removeValue(forKey: ObjectIdentifier(pool)) }
    }

    /// Joins every live pool. Runs from `exit`; also from code that must run after the pools are
    /// joined at exit whatever the order of `atexit` handlers (the MPI pool's end of the worker
    /// ranks). Running it again joins what is left.
    package static func run() {
        exiting.store(true, ordering: .releasing)
        guard waitsForAcceptedWork else { return }
        let live = pools.withLock { Array($0.values) }
        for pool in live { pool.joinAtExit() }
    }
}

/// A pool the exit hook can join.
package protocol ExitJoinable: AnyObject, Sendable {
    /// Stops accepting work and waits for the work accepted.
    func joinAtExit()
}
