import ConcurrentFutures
import Synchronization

/// The modules posted lately, by content and memory limit, so that a guest posted again (a burst
/// of the same plugin) is parsed and validated once, and the pool's interpreters instantiate one
/// module rather than one per request.
final class ModuleCache: Sendable {
    private struct Key: Hashable {
        let bytes: [UInt8]
        let memoryBytes: Int
    }

    private let modules = Mutex<[Key: GuestModule]>([:])
    /// The most modules kept; past it the cache starts again empty.
    static let capacity = 64

    /// The module for `bytes` under a memory limit of `memoryBytes`.
    ///
    /// - Throws: ``ServiceError`` `.badModule` when it does not load.
    func module(_ bytes: [UInt8], memoryBytes: Int) throws(ServiceError) -> GuestModule {
        let key = Key(bytes: bytes, memoryBytes: memoryBytes)
        if let module = modules.withLock({ $0[key] }) { return module }
        var limits = PluginService.limits
        limits.memoryBytes = memoryBytes
        let module: GuestModule
        do {
            if bytes.starts(with: [0, 0x61, 0x73, 0x6d]) {
                module = try GuestModule(bytes: bytes, name: "plugin", limits: limits)
            } else {
                module = try GuestModule(wat: String(decoding: bytes, as: UTF8.self), name: "plugin", limits: limits)
            }
        } catch {
            throw ServiceError(.badModule, "\(error)")
        }
        modules.withLock { modules in
            if modules.count >= Self.capacity { modules.removeAll() }
            modules[key] = module
        }
        return module
    }
}
