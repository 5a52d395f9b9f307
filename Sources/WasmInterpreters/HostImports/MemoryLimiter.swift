import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// The store's resource limiter: asks the interpreter's ``ResourceAccount``. Refusing growth by
/// throwing aborts the call with a clear error instead of handing the guest a `-1` it may not
/// check.
final class MemoryLimiter: ResourceLimiter {
    let account: ResourceAccount

    init(account: ResourceAccount) { self.account = account }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        try account.growMemory(to: desired)
    }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        try account.growTable(to: desired)
    }
}
