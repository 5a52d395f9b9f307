@_spi(WASIPlatform) import WASI

#if canImport(Glibc)
import Glibc
#endif

/// The standard streams and `argv`/`environ` of the call running now, for one ``WASIHost``.
final class WASICallState: @unchecked Sendable {
    let programName: String
    let maxOutputBytes: Int
    /// The module's `argv` and environment, encoded once: most calls use them.
    private let defaultArguments: [[UInt8]]
    private let defaultEnvironment: [[UInt8]]
    /// `argv`, each without its terminating zero.
    private(set) var arguments: [[UInt8]]
    /// `KEY=value` strings.
    private(set) var environment: [[UInt8]]
    /// Whether `arguments` or `environment` hold a call's own values rather than the defaults.
    private var hasCallValues = false
    var stdin: [UInt8] = []
    var stdinOffset = 0
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    /// For a resident program (``ResidentProgram``): what a read of exhausted input waits on.
    /// Its streams are then captured whatever the module's output destination.
    weak var exchange: ResidentProgram?

    init(programName: String, options: WASIOptions, maxOutputBytes: Int) {
        self.programName = programName
        self.maxOutputBytes = maxOutputBytes
        defaultArguments = Self.encode(arguments: options.arguments, programName: programName)
        defaultEnvironment = Self.encode(environment: options.environment)
        arguments = defaultArguments
        environment = defaultEnvironment
    }

    private static func encode(arguments: [String], programName: String) -> [[UInt8]] {
        ([programName] + arguments).map { Array($0.utf8) }
    }

    private static func encode(environment: [String: String]) -> [[UInt8]] {
        environment.sorted { $0.key < $1.key }.map { Array("\($0.key)=\($0.value)".utf8) }
    }

    /// Starts a call: its arguments, environment and input. (Output is empty: ``end()`` leaves it
    /// so.) A call with the module's defaults, the common case, changes nothing.
    func begin(_ call: WASICallOptions?) {
        if let call {
            arguments = call.arguments.map { Self.encode(arguments: $0, programName: programName) } ?? defaultArguments
            environment = call.environment.map(Self.encode(environment:)) ?? defaultEnvironment
            hasCallValues = true
            stdin = call.stdin
        } else if hasCallValues {
            arguments = defaultArguments
            environment = defaultEnvironment
            hasCallValues = false
        }
        stdinOffset = 0
    }

    /// Ends a call: its output, and the buffers emptied.
    func end() -> (stdout: [UInt8], stderr: [UInt8]) {
        if !stdin.isEmpty { stdin = [] }
        if stdout.isEmpty && stderr.isEmpty { return ([], []) }
        defer {
            stdout = []
            stderr = []
        }
        return (stdout, stderr)
    }

    /// Appends `bytes` to stream 1 or 2.
    ///
    /// - Throws: ``GuestFault`` `.outputLimit` past ``maxOutputBytes``.
    func append(_ bytes: UnsafeRawBufferPointer, to number: Int) throws {
        let current = number == 1 ? stdout.count : stderr.count
        guard current + bytes.count <= maxOutputBytes else {
            throw GuestFault(
                kind: .outputLimit,
                message: "the guest wrote more than \(maxOutputBytes) bytes to standard \(number == 1 ? "output" : "error") in one call")
        }
        if number == 1 { stdout.append(contentsOf: bytes) } else { stderr.append(contentsOf: bytes) }
    }
}

/// Descriptor 0, 1 or 2 of a WASI guest.
///
/// Captured, it reads the call's input and appends to its output buffers. Inherited
/// (``WASIOptions/OutputDestination/inherit``), it reads and writes the process's own descriptor
/// `number`, and nothing else: flags, size, times and position of the host's descriptors stay
/// out of the guest's reach, but for whether it is a terminal: an inherited stream is a character
/// device only when the host's descriptor is a terminal, so that a program reading a redirected file
/// (`futures run sqlite3.wasm < script.sql`) is not interactive, as natively and on Wasmtime.
/// A captured stream is a character device.
struct StandardStream: WASIFile {
    let state: WASICallState
    let number: Int
    let inherited: Bool

    var isBorrowed: Bool { true }
    func attributes() throws -> WASIAbi.Filestat {
        WASIAbi.Filestat(dev: 0, ino: 0, filetype: try fileType(), nlink: 1, size: 0, atim: 0, mtim: 0, ctim: 0)
    }
    func fileType() throws -> WASIAbi.FileType {
        inherited && state.exchange == nil && isatty(Int32(number)) == 0 ? .UNKNOWN : .CHARACTER_DEVICE
    }
    func status() throws -> WASIAbi.Fdflags { [] }
    func setTimes(atim: WASIAbi.Timestamp, mtim: WASIAbi.Timestamp, fstFlags: WASIAbi.FstFlags) throws {}
    func advise(offset: WASIAbi.FileSize, length: WASIAbi.FileSize, advice: WASIAbi.Advice) throws {}
    func close() throws {}
    func fdStat() throws -> WASIAbi.FdStat {
        WASIAbi.FdStat(
            fsFileType: try fileType(), fsFlags: [], fsRightsBase: number == 0 ? .FD_READ : .FD_WRITE, fsRightsInheriting: [])
    }
    func setFdStatFlags(_ flags: WASIAbi.Fdflags) throws {}
    func setFilestatSize(_ size: WASIAbi.FileSize) throws { throw WASIAbi.Errno.EINVAL }
    func sync() throws {}
    func datasync() throws {}
    func tell() throws -> WASIAbi.FileSize { throw WASIAbi.Errno.ESPIPE }
    func seek(offset: WASIAbi.FileDelta, whence: WASIAbi.Whence) throws -> WASIAbi.FileSize { throw WASIAbi.Errno.ESPIPE }

    func write(vectored buffers: GuestBuffers) throws -> WASIAbi.Size {
        guard number != 0 else { throw WASIAbi.Errno.EBADF }
        var total = 0
        for index in 0..<buffers.count {
            total += try buffers.withHostBuffer(at: index) { buffer in
                if inherited && state.exchange == nil {
                    return try Self.writeAll(UnsafeRawBufferPointer(buffer), to: Int32(number))
                }
                try state.append(UnsafeRawBufferPointer(buffer), to: number)
                return buffer.count
            }
        }
        return WASIAbi.Size(total)
    }

    /// Writes all of `bytes` to the host's descriptor.
    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) throws -> Int {
        var written = 0
        while written < bytes.count {
            let count = Glibc.write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if count < 0 {
                if Glibc.errno == EINTR { continue }
                throw WASIAbi.Errno.EIO
            }
            written += count
        }
        return written
    }

    func pwrite(vectored buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size { throw WASIAbi.Errno.ESPIPE }

    func read(into buffers: GuestBuffers) throws -> WASIAbi.Size {
        guard number == 0 else { throw WASIAbi.Errno.EBADF }
        if let exchange = state.exchange {
            // A resident program asking for more than its call gave ends the exchange, and waits.
            if state.stdinOffset == state.stdin.count { try exchange.awaitRequest(state) }
        } else if inherited {
            // One read, into the first buffer that has room: what a read of a terminal or pipe gives.
            for index in 0..<buffers.count {
                var done = false
                let count = try buffers.withHostBuffer(at: index) { buffer -> Int in
                    guard buffer.count > 0 else { return 0 }
                    done = true
                    while true {
                        let count = Glibc.read(0, buffer.baseAddress!, buffer.count)
                        if count >= 0 { return count }
                        if Glibc.errno != EINTR { throw WASIAbi.Errno.EIO }
                    }
                }
                if done { return WASIAbi.Size(count) }
            }
            return 0
        }
        var total = 0
        for index in 0..<buffers.count {
            total += try buffers.withHostBuffer(at: index) { buffer in
                let count = min(buffer.count, state.stdin.count - state.stdinOffset)
                if count > 0 {
                    state.stdin.withUnsafeBytes { source in
                        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[state.stdinOffset..<state.stdinOffset + count]))
                    }
                    state.stdinOffset += count
                }
                return count
            }
        }
        return WASIAbi.Size(total)
    }

    func pread(into buffers: GuestBuffers, offset: WASIAbi.FileSize) throws -> WASIAbi.Size { throw WASIAbi.Errno.ESPIPE }
}
