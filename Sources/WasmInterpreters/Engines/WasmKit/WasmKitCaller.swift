import Futures
import Synchronization
@_spi(Fuzzing) import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// A WasmKit instance calling a host function.
struct WasmKitCaller: HostCaller {
    let instance: Instance?

    func memory() throws -> any LinearMemory {
        guard let memory = instance?.exports[memory: "memory"] else { throw GuestMemory.noMemory() }
        return memory
    }

    func allocate(_ count: Int, context: HostContext) throws -> UInt32 {
        guard let instance, let memory = instance.exports[memory: "memory"] else { throw GuestMemory.noMemory() }
        return try GuestMemory.allocate(count, in: instance, memory: memory, context: context)
    }
}
