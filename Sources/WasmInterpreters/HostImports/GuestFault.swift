import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// A failure the host detects in a guest's request (a bad pointer, a malformed value...). Thrown
/// from a host function, it aborts the guest call and becomes an ``GuestError``.
struct GuestFault: Error, CustomStringConvertible {
    let kind: GuestError.Kind
    let message: String
    var description: String { message }
}
