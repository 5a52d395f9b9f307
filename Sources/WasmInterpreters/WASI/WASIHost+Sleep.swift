import Futures
@_spi(WASIPlatform) import WASI
import WasmKitWASI

#if canImport(Glibc)
import Glibc
#endif

extension WASIHost {
    /// `poll_oneoff` when every subscription is a clock (how `sleep`, `usleep` and
    /// `nanosleep` reach the host): the wait ends at the earliest clock, or at the call's time
    /// limit, which fails the call with ``GuestError/Kind-swift.struct/timedOut`` (a sleep in the
    /// host was not interrupted by it). Returns `nil` when a subscription waits on a descriptor:
    /// the bridge's implementation serves those.
    ///
    /// Layout (preview 1): a subscription is 48 bytes (userdata at 0, tag at 8, clock id at 16,
    /// timeout at 24, precision at 32, flags at 40, bit 0 absolute); an event is 32 bytes
    /// (userdata at 0, errno at 8, type at 10).
    ///
    /// - Throws: ``GuestFault`` `.timedOut` at the call's time limit; what charging fuel throws.
    static func sleep<M: WASIGuestMemory>(
        _ memory: M, subscriptions: UInt32, events: UInt32, count: UInt32, eventCount: UInt32, context: HostContext
    ) throws -> WASIAbi.Errno? {
        guard count > 0 else { return .EINVAL }
        guard inBounds(memory, subscriptions, UInt64(count) * 48), inBounds(memory, events, UInt64(count) * 32),
            inBounds(memory, eventCount, 4)
        else { return .EFAULT }
        var clocks: [(userdata: UInt64, deadline: Deadline)] = []
        let now = Deadline.now
        for index in 0..<count {
            let base = UInt(subscriptions) + UInt(index) * 48
            let fields = memory.withUnsafeMutableBufferPointer(offset: base, count: 48) { bytes in
                (
                    userdata: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    tag: bytes[8],
                    clock: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self)),
                    timeout: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)),
                    flags: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 40, as: UInt16.self))
                )
            }
            guard fields.tag == 0 else { return nil }
            var wait = fields.timeout
            if fields.flags & 1 != 0 {
                // Absolute: against the clock it names, converted to a wait from now.
                var time = timespec()
                clock_gettime(fields.clock == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &time)
                let current = UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
                wait = fields.timeout > current ? fields.timeout - current : 0
            }
            let (sum, overflow) = now.nanoseconds.addingReportingOverflow(wait)
            clocks.append((fields.userdata, Deadline(nanoseconds: overflow ? .max : sum)))
        }
        try context.account.chargeFuel(UInt64(count), for: "poll_oneoff on \(count) clocks")
        let earliest = clocks.map(\.deadline).min()!
        let (deadline, capped) = context.blockingDeadline(earliest)
        while true {
            let now = Deadline.now
            guard let deadline, now < deadline else { break }
            let remaining = min(deadline.nanoseconds - now.nanoseconds, 50_000_000)
            var pause = timespec(tv_sec: 0, tv_nsec: Int(remaining))
            nanosleep(&pause, nil)
        }
        if capped { throw context.waitTimedOut("sleeping in poll_oneoff") }
        let fired = clocks.filter { $0.deadline <= Deadline.now }
        for (index, clock) in fired.enumerated() {
            memory.withUnsafeMutableBufferPointer(offset: UInt(events) + UInt(index) * 32, count: 32) { bytes in
                for offset in 0..<32 { bytes[offset] = 0 }
                bytes.storeBytes(of: clock.userdata.littleEndian, toByteOffset: 0, as: UInt64.self)
            }
        }
        memory.withUnsafeMutableBufferPointer(offset: UInt(eventCount), count: 4) { bytes in
            bytes.storeBytes(of: UInt32(fired.count).littleEndian, as: UInt32.self)
        }
        return .SUCCESS
    }
}
