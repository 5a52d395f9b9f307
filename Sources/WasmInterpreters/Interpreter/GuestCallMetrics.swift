import CoreMetrics
import Futures

/// The per-module metrics of guest calls in a pool's interpreters: calls, failures by guest
/// error kind (traps, fuel or time running out), fuel used and the peak memory committed.
enum GuestCallMetrics {
    /// Runs `invocation` in `interpreter` and records it in `module`, the handles of its module.
    ///
    /// - Throws: What the call throws.
    static func measure(
        _ invocation: GuestInvocation, in interpreter: Interpreter, limits: InterpreterLimits, metrics module: GuestModuleMetrics
    ) throws -> ShareableValue {
        module.calls.increment()
        let budget = invocation.fuel ?? limits.fuel
        defer {
            if let budget, let left = interpreter.remainingFuelAfterCall, left <= budget {
                module.fuelUsed.increment(by: Int64(clamping: budget - left))
            }
            module.sawMemory(bytes: interpreter.memoryBytesAfterCall)
        }
        do {
            return try interpreter.run(invocation, wait: false)
        } catch let error as GuestError {
            module.trapped(error.kind.name)
            throw error
        }
    }
}
