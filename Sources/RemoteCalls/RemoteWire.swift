/// What both transports' messages share besides the typed messages.
package enum RemoteWire {
    /// The largest message either side of either transport accepts.
    package static let maximumMessageBytes = 1 << 30

    /// A duration in whole nanoseconds, clamped to `Int64`.
    package static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (seconds < 0 ? .min : .max) : whole &+ attoseconds / 1_000_000_000
    }
}
