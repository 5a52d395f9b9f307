import Futures

/// The per-module metrics of one interpreter pool worker's guest calls: calls, failures by guest
/// error kind (traps, fuel or time running out), fuel used and the peak memory committed.
///
/// Counted here, on the worker's thread, and reported when the pool ends the batch the calls ran
/// in (``flush()``): one update per module and batch, so that no call writes to counters every
/// worker shares. Failures are reported at once.
struct GuestCallMetrics {
    /// What one module's calls added since the last flush.
    private struct Pending {
        let handles: GuestModuleMetrics
        var calls = 0
        var fuel: Int64 = 0
        var peakMemory = 0
    }

    let metrics: PoolMetrics
    private var modules: [Int: Pending] = [:]

    init(metrics: PoolMetrics) { self.metrics = metrics }

    /// Runs `invocation` in `interpreter`, counting it.
    ///
    /// - Throws: What the call throws.
    mutating func measure(_ invocation: GuestInvocation, in interpreter: Interpreter, limits: InterpreterLimits) throws -> ShareableValue {
        let module = invocation.module
        if modules[module.id] == nil { modules[module.id] = Pending(handles: metrics.module(module.name)) }
        let budget = invocation.fuel ?? limits.fuel
        defer {
            var fuel: Int64 = 0
            if let budget, let left = interpreter.remainingFuelAfterCall, left <= budget { fuel = Int64(clamping: budget - left) }
            let memory = interpreter.memoryBytesAfterCall
            modules[module.id]!.calls += 1
            modules[module.id]!.fuel += fuel
            modules[module.id]!.peakMemory = max(modules[module.id]!.peakMemory, memory)
        }
        do {
            return try interpreter.run(invocation, wait: false)
        } catch let error as GuestError {
            modules[module.id]!.handles.trapped(error.kind.name)
            throw error
        }
    }

    /// Reports what the calls since the last flush added.
    mutating func flush() {
        for (id, pending) in modules where pending.calls > 0 {
            pending.handles.calls.increment(by: pending.calls)
            if pending.fuel > 0 { pending.handles.fuelUsed.increment(by: pending.fuel) }
            pending.handles.sawMemory(bytes: pending.peakMemory)
            modules[id] = Pending(handles: pending.handles)
        }
    }
}
