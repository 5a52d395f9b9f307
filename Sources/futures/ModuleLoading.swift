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
            let data = try Data(Self.readRegularFile(path, limit: limit))
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

    /// The bytes of the regular file at `path`, checked and read through one descriptor: opened
    /// non-blocking (a FIFO or device swapped in cannot hold the open), its type and size taken
    /// from that descriptor (`fstat`: a symbolic link is the file it names), and at most `limit`
    /// bytes read from it.
    ///
    /// - Throws: ``CommandFailure`` with one sentence saying what to do.
    private static func readRegularFile(_ path: String, limit: Int) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw CommandFailure("cannot read \(path): check that it exists and that you may read it") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw CommandFailure("\(path) is not a regular file (a device, a pipe): give a .wasm or .wat file")
        }
        guard Int(status.st_size) <= limit else {
            throw CommandFailure(
                "\(path) is \(status.st_size) bytes, over the module size limit of \(limit) bytes: a WebAssembly module is rarely that large; "
                    + "check that this is the file you meant")
        }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
        var count = 0
        while count < bytes.count {
            let read = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if read < 0, errno == EINTR { continue }
            guard read >= 0 else { throw CommandFailure("cannot read \(path): check that it exists and that you may read it") }
            if read == 0 { break }
            count += read
        }
        guard count <= limit else { throw CommandFailure("\(path) grew past the module size limit of \(limit) bytes while it was read") }
        return Array(bytes[0..<count])
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
