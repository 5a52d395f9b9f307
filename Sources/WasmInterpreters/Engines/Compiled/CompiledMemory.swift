import CFuturesShims
import Futures
import WasmKit

#if canImport(Glibc)
import Glibc
#endif

/// A compiled instance's linear memory (the runtime's `wasm_rt_memory_t`: data pointer, pages,
/// maximum pages, 64-bit size).
struct CompiledMemory: LinearMemory, WASIGuestMemory {
    let raw: UnsafeMutableRawPointer

    var byteCount: Int { Int(raw.load(fromByteOffset: 16, as: UInt64.self)) }
    private var data: UnsafeMutablePointer<UInt8>? { raw.load(as: UnsafeMutablePointer<UInt8>?.self) }

    func copyBytes(at offset: Int, count: Int) -> [UInt8] {
        guard let data else { return [] }
        return Array(UnsafeBufferPointer(start: data + offset, count: count))
    }

    func store(_ bytes: [UInt8], at offset: Int) {
        guard let data else { return }
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            (data + offset).update(from: base, count: buffer.count)
        }
    }

    /// The guest's bytes at `offset`, for WASI's bridge: callers check the range first
    /// (``WASIHost/check(_:_:_:)``), as WasmKit's own memory requires.
    func withUnsafeMutableBufferPointer<T>(offset: UInt, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
        precondition(count >= 0 && Int(offset) + count <= byteCount, "compiled guest memory access out of bounds")
        return try body(UnsafeMutableRawBufferPointer(start: data.map { UnsafeMutableRawPointer($0 + Int(offset)) }, count: count))
    }
}
