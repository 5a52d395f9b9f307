package import Futures
package import WasmInterpreters

/// The limits and engine a pool gives its workers' interpreters, as eight fields of a message
/// (docs/wire.md): fuel | none, memory bytes | none, largest value, stack bytes, time limit in ns |
/// none, whether growth past the memory limit is refused, largest module, engine name.
package struct WorkerConfiguration: Sendable, Equatable {
    package var limits: InterpreterLimits
    package var engine: GuestEngine

    package init(limits: InterpreterLimits, engine: GuestEngine) {
        self.limits = limits
        self.engine = engine
    }

    /// Reads the eight fields.
    ///
    /// - Throws: ``RemoteError`` `.jobFailed` when `fields` are not eight such fields.
    package init(wire fields: ArraySlice<ShareableValue>) throws(RemoteError) {
        let fields = Array(fields)
        guard fields.count == 8, case .string(let name) = fields[7], let engine = GuestEngine(rawValue: name) else {
            throw RemoteError(.jobFailed, "an unreadable configuration: \(fields)")
        }
        var limits = InterpreterLimits.default
        if case .int(let fuel) = fields[0] { limits.fuel = UInt64(clamping: fuel) } else { limits.fuel = nil }
        if case .int(let memory) = fields[1] { limits.memoryBytes = Int(memory) } else { limits.memoryBytes = nil }
        if case .int(let maxValue) = fields[2] { limits.maxValueBytes = Int(maxValue) }
        if case .int(let stack) = fields[3] { limits.stackBytes = Int(stack) }
        if case .int(let nanoseconds) = fields[4] { limits.timeLimit = .nanoseconds(nanoseconds) } else { limits.timeLimit = nil }
        limits.onMemoryLimit = fields[5] == .bool(true) ? .refuseGrowth : .failCall
        if case .int(let maxModule) = fields[6] { limits.maxModuleBytes = Int(maxModule) }
        self.limits = limits
        self.engine = engine
    }

    /// The eight fields.
    package var wire: [ShareableValue] {
        [
            limits.fuel.map { .int(Int64(clamping: $0)) } ?? .none, limits.memoryBytes.map { .int(Int64($0)) } ?? .none,
            .int(Int64(limits.maxValueBytes)), .int(Int64(limits.stackBytes)),
            limits.timeLimit.map { .int(RemoteWire.nanoseconds($0)) } ?? .none, .bool(limits.onMemoryLimit == .refuseGrowth),
            .int(Int64(limits.maxModuleBytes)), .string(engine.rawValue),
        ]
    }
}
