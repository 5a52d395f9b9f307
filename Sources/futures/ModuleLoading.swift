import BundledGuests
import ConcurrentFutures
import Foundation

/// Finds the module a command names: a `.wasm` or `.wat` file, or, when no such file exists,
/// one of the modules bundled with the tool (`Tasks.wasm`, `Examples.wasm`, `faults.wasm`).
enum ModuleLoading {
    /// The bytes of the module at `path` and its name. A file is checked against the module size
    /// limit before it is read.
    ///
    /// - Throws: ``CommandFailure`` with one sentence saying what to do.
    static func bytes(_ path: String, limit: Int = InterpreterLimits.default.maxModuleBytes) throws -> (bytes: [UInt8], name: String) {
        let name = URL(fileURLWithPath: path).lastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else { throw CommandFailure("\(path) is a directory: give a .wasm or .wat file") }
            // The file a symbolic link names, not the link.
            let attributes = try? FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
            guard attributes?[.type] as? FileAttributeType == .typeRegular else {
                throw CommandFailure("\(path) is not a regular file (a device, a pipe): give a .wasm or .wat file")
            }
            if let size = attributes?[.size] as? Int, size > limit {
                throw CommandFailure(
                    "\(path) is \(size) bytes, over the module size limit of \(limit) bytes: a WebAssembly module is rarely that large; "
                        + "check that this is the file you meant")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CommandFailure("cannot read \(path): check that it exists and that you may read it")
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
        throw CommandFailure("no such file: \(path): give the path of a .wasm or .wat file")
    }

    /// The module at `path`, loaded with `wasi` (what a WASI guest may reach).
    ///
    /// - Throws: ``CommandFailure`` with one sentence saying what to do.
    static func module(_ path: String, wasi: WASIOptions = .default) throws -> GuestModule {
        let (bytes, name) = try bytes(path)
        do {
            return try GuestModule(bytes: bytes, name: name, wasi: wasi)
        } catch {
            throw CommandFailure(error.message)
        }
    }
}
