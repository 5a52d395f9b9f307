import CFuturesShims
import Futures
import Synchronization
@_spi(WASIPlatform) import WASI
@_spi(Fuzzing) import WasmKit
import WasmTypes

#if canImport(Glibc)
import Glibc
#endif

/// What a WASI guest may do with descriptors, around WasmKit's bridge (which has no read-only
/// mode and no limit of its own):
///
/// - under a read-only preopen, nothing changes: creating, truncating, appending, writing,
///   renaming, removing, linking are `EROFS`, and files are opened without the rights to change
///   them; what is opened under a read-only directory is read-only in turn;
/// - a guest holds at most ``WASIOptions/maxOpenFiles`` descriptors it opened (`EMFILE` past
///   that), so that one guest cannot take the descriptors of the whole process;
/// - only regular files and directories open: a FIFO, socket or device could make the host wait
///   in `open` or `read`, where a time limit cannot stop it (`ENOTSUP`). The path is checked
///   before it is opened and the descriptor after (a FIFO with a writer opens, and is closed
///   again). WasmKit's bridge opens without `O_NONBLOCK` whatever the flags, so a FIFO swapped
///   in between the check and the open blocks that `open` until a writer (or reader) comes: at
///   the call's deadline the watchdog becomes one (``FIFOUnblocker``), the `open` returns, the
///   descriptor is refused, and the call ends `timedOut`;
/// - a symbolic link a guest makes may not point outside the directory: an absolute target, or
///   one with a `..` component, is refused (`EPERM`), since the host's programs would follow it
///   later where the guest cannot.
///
/// Used by the thread holding the interpreter's run lock only.
final class WASIDescriptorGuard: @unchecked Sendable {
    typealias Implementation<M> = @Sendable (M, [WasmKit.Value]) throws -> [WasmKit.Value]

    /// Descriptors under a read-only preopen: the preopens themselves and what was opened under them.
    private var readOnly: Set<UInt32>
    /// Descriptors the guest opened and has not closed.
    private var opened: Set<UInt32> = []
    /// The host paths of the directories paths are opened under: the preopens, and the
    /// directories the guest opened.
    private var directories: [UInt32: String]
    private let maxOpenFiles: Int
    /// The bridge's `path_filestat_get`, run on a scratch memory of the host's.
    private let fileStatus: WASIHostFunction<WASIScratchMemory>?
    /// The bridge's `fd_filestat_get` and `fd_close`, likewise.
    private let descriptorStatus: WASIHostFunction<WASIScratchMemory>?
    private let close: WASIHostFunction<WASIScratchMemory>?

    /// A guard; `bridge` holds the bridge's functions on scratch memory (empty without the file
    /// system, where nothing can be opened).
    init(
        readOnly: Set<UInt32>, directories: [UInt32: String], maxOpenFiles: Int, bridge: [String: WASIHostFunction<WASIScratchMemory>]
    ) {
        self.readOnly = readOnly
        self.directories = directories
        self.maxOpenFiles = maxOpenFiles
        fileStatus = bridge["path_filestat_get"]
        descriptorStatus = bridge["fd_filestat_get"]
        close = bridge["fd_close"]
    }

    private static func errno(_ code: WASIAbi.Errno) -> [WasmKit.Value] { [.i32(UInt32(code.rawValue))] }

    /// `implementation` of the preview 1 function `name`, guarded; `deadline` tells when the
    /// call running it must end.
    func guarding<M: WASIGuestMemory>(
        _ name: String, _ implementation: @escaping Implementation<M>, deadline: @escaping () -> Deadline?
    ) -> (M, [WasmKit.Value]) throws -> [WasmKit.Value] {
        switch name {
        case "path_open": return { memory, arguments in try self.open(memory, arguments, implementation, deadline: deadline()) }
        case "path_symlink":
            // path_symlink(old_path, old_len, fd, new_path, new_len): the target is old_path.
            return { memory, arguments in
                if self.readOnly.contains(arguments[2].i32) { return Self.errno(.EROFS) }
                let target = memory.withUnsafeMutableBufferPointer(offset: UInt(arguments[0].i32), count: Int(arguments[1].i32)) {
                    [UInt8]($0)
                }
                if target.first == UInt8(ascii: "/") || target.split(separator: UInt8(ascii: "/")).contains([0x2E, 0x2E]) {
                    return Self.errno(.EPERM)
                }
                return try implementation(memory, arguments)
            }
        case "fd_close":
            return { memory, arguments in
                let result = try implementation(memory, arguments)
                if result.first?.i32 == 0 {
                    self.opened.remove(arguments[0].i32)
                    self.readOnly.remove(arguments[0].i32)
                    self.directories[arguments[0].i32] = nil
                }
                return result
            }
        case "fd_renumber":
            return { memory, arguments in
                let (from, to) = (arguments[0].i32, arguments[1].i32)
                if self.readOnly.contains(from) || self.readOnly.contains(to) { return Self.errno(.EROFS) }
                let result = try implementation(memory, arguments)
                if result.first?.i32 == 0, from != to {
                    let wasOpened = self.opened.remove(from) != nil
                    self.opened.remove(to)
                    if wasOpened { self.opened.insert(to) }
                    self.directories[to] = self.directories.removeValue(forKey: from)
                }
                return result
            }
        default:
            guard let positions = Self.changingCalls[name] else { return implementation }
            return { memory, arguments in
                if positions.contains(where: { self.readOnly.contains(arguments[$0].i32) }) { return Self.errno(.EROFS) }
                return try implementation(memory, arguments)
            }
        }
    }

    /// `path_open(fd, dirflags, path, path_len, oflags, rights_base, rights_inheriting, fdflags, *fd)`.
    private func open<M: WASIGuestMemory>(
        _ memory: M, _ arguments: [WasmKit.Value], _ implementation: Implementation<M>, deadline: Deadline?
    ) throws -> [WasmKit.Value] {
        guard opened.count < maxOpenFiles else { return Self.errno(.EMFILE) }
        if let refusal = try refuseSpecialFile(memory, arguments) { return Self.errno(refusal) }
        var changed = arguments
        let directory = arguments[0].i32
        let underReadOnly = readOnly.contains(directory)
        if underReadOnly {
            let oflags = WASIAbi.Oflags(rawValue: arguments[4].i32)
            let rights = WASIAbi.Rights(rawValue: arguments[5].i64)
            let fdflags = WASIAbi.Fdflags(rawValue: UInt16(truncatingIfNeeded: arguments[7].i32))
            // Creating, truncating, appending or opening to write only is refused; otherwise the
            // file opens without the rights to change it (C libraries ask for every right a mode
            // allows, so refusing those would refuse every open).
            if !oflags.isDisjoint(with: [.CREAT, .TRUNC]) || fdflags.contains(.APPEND) { return Self.errno(.EROFS) }
            if rights.contains(.FD_WRITE) && !rights.contains(.FD_READ) { return Self.errno(.EROFS) }
            let writing: WASIAbi.Rights = [.FD_WRITE, .FD_ALLOCATE, .FD_FILESTAT_SET_SIZE, .FD_FILESTAT_SET_TIMES, .FD_DATASYNC]
            changed[5] = .i64(rights.subtracting(writing).rawValue)
            changed[6] = .i64(WASIAbi.Rights(rawValue: arguments[6].i64).subtracting(writing).rawValue)
        }
        // The path on the host, for the watchdog to end a wait in `open` at the deadline.
        let path = directories[directory].map { base in
            base + "/"
                + String(
                    decoding: memory.withUnsafeMutableBufferPointer(offset: UInt(arguments[2].i32), count: Int(arguments[3].i32)) {
                        [UInt8]($0)
                    }, as: UTF8.self)
        }
        let unblocker = deadline == nil ? nil : path.map(FIFOUnblocker.init(path:))
        let ticket = try unblocker.flatMap { unblocker in
            try deadline.map { deadline throws(ExecutorError) in try CallWatchdog.shared.arm(unblocker, deadline: deadline) }
        }
        func finished() {
            unblocker?.waiting.store(false, ordering: .releasing)
            if let ticket { _ = CallWatchdog.shared.disarm(ticket) }
        }
        let result: [WasmKit.Value]
        do {
            result = try implementation(memory, changed)
        } catch {
            finished()
            throw error
        }
        finished()
        if result.first?.i32 == 0 {
            // The pointer was checked before the call (`WASIHost.pointerChecks`).
            let descriptor = memory.withUnsafeMutableBufferPointer(offset: UInt(arguments[8].i32), count: 4) {
                UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))
            }
            let type = try fileType(of: descriptor)
            if let type, ![.REGULAR_FILE, .DIRECTORY].contains(type) {
                _ = try close?.implementation(WASIScratchMemory(count: 8), [.i32(descriptor)])
                return Self.errno(.ENOTSUP)
            }
            opened.insert(descriptor)
            if underReadOnly { readOnly.insert(descriptor) }
            if let path, type == .DIRECTORY {
                directories[descriptor] = path
            }
        }
        return result
    }

    /// `ENOTSUP` when the path names something other than a regular file, a directory or a
    /// symbolic link (a FIFO, a socket, a device), found with the bridge's own `path_filestat_get`
    /// (same directory, path and symbolic-link flag) on a scratch memory; `nil` to go on (a path
    /// that does not exist yet is for `path_open` to create or refuse).
    private func refuseSpecialFile<M: WASIGuestMemory>(_ memory: M, _ arguments: [WasmKit.Value]) throws -> WASIAbi.Errno? {
        guard let fileStatus else { return nil }
        let length = Int(arguments[3].i32)
        guard length <= 4096 else { return .ENAMETOOLONG }
        // The path at 0, the 64-byte file status after it (8-byte aligned).
        let statusOffset = (length + 7) & ~7
        let scratch = WASIScratchMemory(count: statusOffset + 64)
        memory.withUnsafeMutableBufferPointer(offset: UInt(arguments[2].i32), count: length) { path in
            scratch.bytes.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(path)) }
        }
        let result = try fileStatus.implementation(
            scratch, [.i32(arguments[0].i32), .i32(arguments[1].i32), .i32(0), .i32(UInt32(length)), .i32(UInt32(statusOffset))])
        guard result.first?.i32 == 0 else { return nil }
        let type = WASIAbi.FileType(rawValue: scratch.bytes[statusOffset + 16])
        return [.REGULAR_FILE, .DIRECTORY, .SYMBOLIC_LINK].contains(type) ? nil : .ENOTSUP
    }

    /// The type of an open descriptor, from the bridge's `fd_filestat_get`; `nil` when unknown.
    private func fileType(of descriptor: UInt32) throws -> WASIAbi.FileType? {
        guard let descriptorStatus else { return nil }
        let scratch = WASIScratchMemory(count: 64)
        let result = try descriptorStatus.implementation(scratch, [.i32(descriptor), .i32(0)])
        guard result.first?.i32 == 0 else { return nil }
        return WASIAbi.FileType(rawValue: scratch.bytes[16])
    }

    /// The calls that change files, with the positions of their descriptor arguments.
    private static let changingCalls: [String: [Int]] = [
        "path_create_directory": [0], "path_remove_directory": [0], "path_unlink_file": [0],
        "path_rename": [0, 3], "path_link": [0, 4], "path_filestat_set_times": [0],
        "fd_write": [0], "fd_pwrite": [0], "fd_allocate": [0], "fd_filestat_set_size": [0],
        "fd_filestat_set_times": [0], "fd_fdstat_set_flags": [0],
    ]
}

/// A few bytes of the host's own, which WasmKit's WASI functions can run on as if on a guest's
/// memory (they are generic over it): to ask the bridge a question without touching the guest.
final class WASIScratchMemory: WasmTypes.GuestMemory, @unchecked Sendable {
    var bytes: [UInt8]

    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    func withUnsafeMutableBufferPointer<T>(offset: UInt, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
        // The bridge reaches only the ranges the caller laid out.
        precondition(Int(offset) + count <= bytes.count, "scratch memory access out of bounds")
        return try bytes.withUnsafeMutableBytes { buffer in
            try body(UnsafeMutableRawBufferPointer(rebasing: buffer[Int(offset)..<Int(offset) + count]))
        }
    }
}

/// What the watchdog does at the deadline of a call still in WASI's `open`, which waits when the
/// path is a FIFO without a writer (or reader): a thread of its own wakes the waiting thread with
/// a signal (the `open` returns `EINTR`, and the bridge tries the path again, as it is then) and
/// opens a FIFO found at the path, read and write without blocking (Linux counts every open of
/// either end, so a waiting `open` returns), every 10 ms until the `open` has returned. A FIFO
/// swapped out after the `open` began is no longer at the path, which is why the signal comes
/// first. Only a FIFO is opened: the path is checked first, and links are not followed.
final class FIFOUnblocker: Interruptible, @unchecked Sendable {
    let path: String
    /// The thread in `open`.
    let thread: UInt
    /// Whether the `open` is still running: the waking stops when it is not.
    let waiting = Atomic<Bool>(true)

    init(path: String) {
        self.path = path
        thread = cf_wakeup_prepare()
    }

    /// Whether the waking thread was started (the watchdog calls ``interrupt()`` again and again
    /// while the ticket is armed).
    private let started = Atomic<Bool>(false)

    func interrupt() {
        guard waiting.load(ordering: .acquiring), !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = try? DetachedThread.start(name: "futures-open-waker", pool: nil) { [self] in
            for _ in 0..<6_000 where waiting.load(ordering: .acquiring) {
                _ = cf_wake_thread(thread)
                var status = stat()
                if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFIFO {
                    let descriptor = Glibc.open(path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)
                    if descriptor >= 0 { Glibc.close(descriptor) }
                }
                usleep(10_000)
            }
        }
    }
}
