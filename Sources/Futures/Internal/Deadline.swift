#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time on the monotonic clock, used for every timeout in the package.
///
/// Timeouts are measured from the call that received them (as Python measures `map`'s timeout
/// from the call to `map`), so they are turned into a deadline once and compared against it.
@usableFromInline
package struct Deadline: Sendable, Comparable {
    /// Nanoseconds since an arbitrary start, on `CLOCK_MONOTONIC`.
    @usableFromInline
    package let nanoseconds: UInt64

    @usableFromInline
    package init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The current instant.
    @usableFromInline
    package static var now: Deadline {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Deadline(nanoseconds: UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec))
    }

    /// The deadline `duration` from now; `nil` stays `nil` (wait forever). Negative durations
    /// give a deadline that has already passed.
    @usableFromInline
    package static func after(_ duration: Duration?) -> Deadline? {
        guard let duration else { return nil }
        let now = Deadline.now.nanoseconds
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return Deadline(nanoseconds: now) }
        let nanos = UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let total = nanos.partialValue.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        if nanos.overflow || total.overflow { return Deadline(nanoseconds: .max / 2) }
        return Deadline(nanoseconds: now &+ min(total.partialValue, .max / 4))
    }

    @usableFromInline
    package var hasPassed: Bool { Deadline.now >= self }

    /// Time left until the deadline, zero when it has passed.
    package var remaining: Duration {
        let now = Deadline.now.nanoseconds
        return now >= nanoseconds ? .zero : .nanoseconds(Int64(clamping: nanoseconds - now))
    }

    var posixTime: timespec {
        timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    }

    @usableFromInline
    package static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    package var seconds: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}

/// Gives the processor to another runnable thread, if any.
@inline(__always)
package func yieldProcessor() {
    sched_yield()
}
