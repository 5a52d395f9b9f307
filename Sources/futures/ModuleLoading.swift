import BundledGuests
import ConcurrentFutures
import Foundation

/// Finds the module a command names: a `.wasm` or `.wat` file, or, when no such file exists,
/// one of the modules bundled with the tool (`Tasks.wasm`, `Examples.wasm`, `faults.wasm`).
enum ModuleLoading {
    static func bytes(_ path: String) throws -> (bytes: [UInt8], name: String) {
        let name = URL(fileURLWithPath: path).lastPathComponent
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CommandFailure("cannot read \(path)")
            }
            if path.hasSuffix(".wat") {
                do {
                    return (try GuestModule.compile(wat: String(decoding: data, as: UTF8.self), name: name), name)
                } catch {
                    throw CommandFailure(error.message)
                }
            }
            return ([UInt8](data), name)
        }
        if let bundled = BundledGuests.bytes(named: path) { return (bundled, path) }
        throw CommandFailure("no such file: \(path)")
    }

    static func module(_ path: String) throws -> GuestModule {
        let (bytes, name) = try bytes(path)
        do {
            return try GuestModule(bytes: bytes, name: name)
        } catch {
            throw CommandFailure(error.message)
        }
    }
}
