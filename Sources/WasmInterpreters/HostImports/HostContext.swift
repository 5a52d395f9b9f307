import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// The per-interpreter state that host functions use during a call.
///
/// Host functions capture this object, never the store or an instance: the store owns the host
/// functions, so capturing it would make a reference cycle that keeps every store alive.
final class HostContext: @unchecked Sendable {
    let interpreterID: Int
    var maxValueBytes: Int = InterpreterLimits.default.maxValueBytes
    /// What the interpreter's guests hold of the host's memory.
    let account: ResourceAccount
    /// A value the guest returned through `cf.return_*` during the current call.
    var returned: ShareableValue?
    /// How many guest callbacks (`cf_alloc`, `cf_free`) the host is inside now: while one runs,
    /// host functions that would call the guest again fail instead of recursing.
    var callbackDepth = 0
    /// When the current call must end (its time limit): blocking host functions wait no longer.
    var callDeadline: Deadline?

    init(interpreterID: Int, account: ResourceAccount) {
        self.interpreterID = interpreterID
        self.account = account
    }

    /// The deadline for a host function that blocks: the guest's own, capped by the call's.
    /// `capped` tells whether the call's deadline is the earlier one.
    func blockingDeadline(_ guest: Deadline?) -> (deadline: Deadline?, capped: Bool) {
        guard let callDeadline else { return (guest, false) }
        guard let guest, guest < callDeadline else { return (callDeadline, true) }
        return (guest, false)
    }

    /// The error for a host function that waited until the call's deadline.
    func waitTimedOut(_ what: String) -> GuestFault {
        GuestFault(kind: .timedOut, message: "the call reached its time limit while \(what)")
    }
}
