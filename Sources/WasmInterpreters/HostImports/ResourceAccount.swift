import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// What one interpreter's guests make the host hold, counted against
/// ``InterpreterLimits/memoryBytes`` before anything is allocated: linear memories, tables, and
/// the values they put in queues that are still queued.
///
/// Memories and tables are counted by the store's ``MemoryLimiter`` on the thread that runs the
/// interpreter; queued bytes are released by whichever thread takes the value, hence an atomic.
final class ResourceAccount: @unchecked Sendable {
    /// The most bytes; `nil` for no limit.
    let limit: Int?
    let action: MemoryLimitAction
    /// Committed linear memory per module instance (a module has at most one memory, and only its
    /// own code can grow it, so a growth belongs to ``activeModule``).
    private var memories: [Int: Int] = [:]
    private(set) var memoryBytes = 0
    private(set) var tableBytes = 0
    /// What the engine allocates per instance besides memories and tables (a compiled
    /// instance's globals and bookkeeping).
    private(set) var instanceBytes = 0
    /// The module whose code runs now.
    var activeModule = 0
    /// Bytes of values this interpreter's guests put in queues, still queued.
    let queuedBytes = Atomic<Int>(0)
    /// The WasmKit store whose fuel pays while ``meter`` is `.store`. Not retained (the store
    /// owns the limiter, which owns this account) and not weak (a weak reference would slow every
    /// retain of the store on the call path): the engine points it at each store it makes, and
    /// only runs guest code of that store while it is alive.
    unowned(unsafe) var store: Store?
    /// The fuel counter that host functions and growth charge: the engine running guest code
    /// sets it before it runs any.
    var meter: FuelMeter = .none

    /// Where the fuel of the guest code running now is counted.
    enum FuelMeter {
        /// No guest code runs.
        case none
        /// WasmKit's counter, in ``ResourceAccount/store``.
        case store
        /// A compiled instance's counter (signed: negative means exhausted).
        case counter(UnsafeMutablePointer<Int64>)
    }

    /// Bytes a WasmKit table element takes (and what fuel prices every table element at, on both
    /// engines, so that a budget means the same on both).
    static let tableElementBytes = 8
    /// The most elements any one table may have, whatever the limit.
    static let maxTableElements = 1 << 24

    init(limit: Int?, action: MemoryLimitAction) {
        self.limit = limit
        self.action = action
    }

    /// Everything counted now.
    var committed: Int { memoryBytes + tableBytes + instanceBytes + queuedBytes.load(ordering: .relaxed) }

    /// Forgets the memories and tables of a store that was replaced.
    func reset() {
        memories = [:]
        memoryBytes = 0
        tableBytes = 0
        instanceBytes = 0
    }

    /// Counts an instance of `bytes` the engine allocates for a guest (under the limit like
    /// memory, never refused softly: an instance cannot half exist).
    func admitInstance(bytes: Int) throws(GuestFault) {
        guard let limit, committed &+ bytes > limit else {
            instanceBytes += bytes
            return
        }
        throw GuestFault(
            kind: .memoryLimit,
            message: "an instance of \(bytes) bytes would bring the interpreter's memory to \(committed + bytes) bytes, "
                + "past its limit of \(limit) bytes")
    }

    /// Whether `extra` more bytes fit; throws under ``MemoryLimitAction/failCall``.
    func admit(_ extra: Int, what: String) throws(GuestFault) -> Bool {
        guard let limit else { return true }
        let total = committed &+ extra
        guard extra < 0 || (total >= 0 && total <= limit) else {
            if action == .refuseGrowth { return false }
            throw GuestFault(
                kind: .memoryLimit,
                message: "\(what) would bring the interpreter's memory to \(total) bytes, past its limit of \(limit) bytes")
        }
        return true
    }

    /// Charges one unit of fuel per 64 bytes that a growth commits: software-checked memory and
    /// tables are copied whole when they grow, so the work is the new size, not the increment.
    func chargeFuel(forBytes bytes: Int) throws(GuestFault) {
        try chargeFuel(UInt64(max(0, bytes) / 64), for: "growing to \(bytes) bytes")
    }

    /// Charges `units` of fuel to the guest code running now, for `what`.
    ///
    /// - Throws: ``GuestFault`` `.outOfFuel` when the budget cannot pay (the call then fails).
    func chargeFuel(_ units: UInt64, for what: @autoclosure () -> String) throws(GuestFault) {
        guard units > 0 else { return }
        switch meter {
        case .none:
            return
        case .counter(let counter):
            guard counter.pointee >= Int64(clamping: units) else {
                counter.pointee = -1
                throw GuestFault(kind: .outOfFuel, message: "out of fuel: \(what()) costs \(units) units")
            }
            counter.pointee -= Int64(clamping: units)
        case .store:
            guard let store, let fuel = store.fuel else { return }
            guard fuel.remaining >= units else {
                store.fuel = Fuel(remaining: 0)
                throw GuestFault(kind: .outOfFuel, message: "out of fuel: \(what()) costs \(units) units")
            }
            store.fuel = Fuel(remaining: fuel.remaining - units)
        }
    }

    func growMemory(to desired: Int) throws(GuestFault) -> Bool {
        let old = memories[activeModule] ?? 0
        guard try admit(desired - old, what: "growing linear memory to \(desired) bytes") else { return false }
        try chargeFuel(forBytes: desired)
        memories[activeModule] = desired
        memoryBytes += desired - old
        return true
    }

    /// Admits a table of `elements` elements of `elementBytes` bytes each (what the engine
    /// really allocates), and charges its fuel (priced at ``tableElementBytes`` per element on
    /// every engine).
    func growTable(to elements: Int, elementBytes: Int = tableElementBytes) throws(GuestFault) -> Bool {
        guard elements <= Self.maxTableElements else {
            if action == .refuseGrowth { return false }
            throw GuestFault(
                kind: .memoryLimit, message: "a table of \(elements) elements is over the limit of \(Self.maxTableElements)")
        }
        let bytes = elements * elementBytes
        guard try admit(bytes, what: "a table of \(elements) elements") else { return false }
        try chargeFuel(forBytes: elements * Self.tableElementBytes)
        tableBytes += bytes
        return true
    }

    /// Reserves `bytes` for a value put in a queue; `nil` when they do not fit.
    func reserveQueued(_ bytes: Int) -> QueueCharge? {
        if let limit, committed + bytes > limit { return nil }
        queuedBytes.wrappingAdd(bytes, ordering: .relaxed)
        return QueueCharge(account: self, bytes: bytes)
    }
}

/// Bytes a queued value counts against the interpreter that put it, released when it leaves the
/// queue.
struct QueueCharge: Sendable {
    let account: ResourceAccount
    let bytes: Int

    func release() { account.queuedBytes.wrappingSubtract(bytes, ordering: .relaxed) }
}
