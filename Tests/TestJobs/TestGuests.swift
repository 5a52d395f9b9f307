package import ConcurrentFutures

/// Guests that several test targets (and the MPI scenarios) share.
package enum TestGuests {
    /// A module whose start function needs about 3 million units of fuel (a million loop
    /// iterations): more than a limit of 10,000 units allows, less than a call with 100 million.
    /// Its `ready` returns 1 once the start function has run.
    package static let slowStart = try! GuestModule(
        wat: """
            (module
              (global $ready (mut i64) (i64.const 0))
              (func $start (local $i i32)
                (loop $spin
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $spin (i32.lt_u (local.get $i) (i32.const 1000000))))
                (global.set $ready (i64.const 1)))
              (start $start)
              (func (export "ready") (result i64) (global.get $ready)))
            """, name: "slow-start")
}
