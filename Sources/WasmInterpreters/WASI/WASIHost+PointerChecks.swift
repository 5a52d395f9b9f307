@_spi(WASIPlatform) import WASI
@_spi(Fuzzing) import WasmKit
import WasmTypes

/// The memory every WASI preview 1 function reads or writes, checked before WasmKit's bridge runs
/// it: the bridge trusts guest pointers (one out of range stops the process), so a pointer out of
/// bounds, an iovec array too long or too large, or an input vector that the data read could
/// overwrite is `EFAULT` or `EINVAL` for the guest here.
extension WASIHost {
    // MARK: Pointer checks

    /// A memory range a function's arguments name.
    enum PointerCheck {
        /// `bytes` bytes at argument `pointer`.
        case fixed(pointer: Int, bytes: UInt64)
        /// `length` elements of `size` bytes at `pointer`; `filled` when the call writes into it
        /// and says how much it wrote (then what it wrote is paid for, after it).
        case span(pointer: Int, length: Int, size: UInt64, filled: Bool = false)
        /// An array of `count` iovecs at `pointer`, and every buffer they name; `filled` when the
        /// call writes into the buffers (then no buffer may overlap the array: the bridge reads
        /// each iovec when it gets to it, after filling the ones before).
        case iovecs(pointer: Int, count: Int, filled: Bool)
    }

    /// The ranges each preview 1 function reads or writes.
    static let pointerChecks: [String: [PointerCheck]] = [
        "clock_res_get": [.fixed(pointer: 1, bytes: 8)],
        "clock_time_get": [.fixed(pointer: 2, bytes: 8)],
        "fd_fdstat_get": [.fixed(pointer: 1, bytes: 24)],
        "fd_filestat_get": [.fixed(pointer: 1, bytes: 64)],
        "fd_pread": [.iovecs(pointer: 1, count: 2, filled: true), .fixed(pointer: 4, bytes: 4)],
        "fd_pwrite": [.iovecs(pointer: 1, count: 2, filled: false), .fixed(pointer: 4, bytes: 4)],
        "fd_read": [.iovecs(pointer: 1, count: 2, filled: true), .fixed(pointer: 3, bytes: 4)],
        "fd_write": [.iovecs(pointer: 1, count: 2, filled: false), .fixed(pointer: 3, bytes: 4)],
        "fd_prestat_get": [.fixed(pointer: 1, bytes: 8)],
        "fd_prestat_dir_name": [.span(pointer: 1, length: 2, size: 1)],
        "fd_readdir": [.span(pointer: 1, length: 2, size: 1, filled: true), .fixed(pointer: 4, bytes: 4)],
        "fd_seek": [.fixed(pointer: 3, bytes: 8)],
        "fd_tell": [.fixed(pointer: 1, bytes: 8)],
        "path_create_directory": [.span(pointer: 1, length: 2, size: 1)],
        "path_filestat_get": [.span(pointer: 2, length: 3, size: 1), .fixed(pointer: 4, bytes: 64)],
        "path_filestat_set_times": [.span(pointer: 2, length: 3, size: 1)],
        "path_link": [.span(pointer: 2, length: 3, size: 1), .span(pointer: 5, length: 6, size: 1)],
        "path_open": [.span(pointer: 2, length: 3, size: 1), .fixed(pointer: 8, bytes: 4)],
        "path_readlink": [.span(pointer: 1, length: 2, size: 1), .span(pointer: 3, length: 4, size: 1, filled: true), .fixed(pointer: 5, bytes: 4)],
        "path_remove_directory": [.span(pointer: 1, length: 2, size: 1)],
        "path_rename": [.span(pointer: 1, length: 2, size: 1), .span(pointer: 4, length: 5, size: 1)],
        "path_symlink": [.span(pointer: 0, length: 1, size: 1), .span(pointer: 3, length: 4, size: 1)],
        "path_unlink_file": [.span(pointer: 1, length: 2, size: 1)],
        "poll_oneoff": [.span(pointer: 0, length: 2, size: 48), .span(pointer: 1, length: 2, size: 32), .fixed(pointer: 3, bytes: 4)],
        "random_get": [.span(pointer: 0, length: 1, size: 1)],
        "sock_accept": [.fixed(pointer: 2, bytes: 4)],
        "sock_recv": [.iovecs(pointer: 1, count: 2, filled: true), .fixed(pointer: 4, bytes: 4), .fixed(pointer: 5, bytes: 2)],
        "sock_send": [.iovecs(pointer: 1, count: 2, filled: false), .fixed(pointer: 4, bytes: 4)],
    ]

    /// The most iovecs one call may pass (POSIX's `IOV_MAX` on Linux, and wasi-libc's).
    static let maxIovecs: UInt32 = 1024

    /// `EFAULT` or `EINVAL` when the ranges are not all inside `memory`; else the bytes they
    /// span that the call moves (its buffers and strings, not its small fixed-size results).
    static func check<M: WASIGuestMemory>(_ checks: [PointerCheck], _ arguments: [WasmKit.Value], _ memory: M) -> Result<UInt64, WASIAbi.Errno> {
        var moved: UInt64 = 0
        for check in checks {
            switch check {
            case .fixed(let pointer, let bytes):
                guard inBounds(memory, arguments[pointer].i32, bytes) else { return .failure(.EFAULT) }
            case .span(let pointer, let length, let size, let filled):
                let bytes = UInt64(arguments[length].i32) * size
                guard inBounds(memory, arguments[pointer].i32, bytes) else { return .failure(.EFAULT) }
                if !filled { moved += bytes }
            case .iovecs(let pointer, let count, let filled):
                let base = arguments[pointer].i32
                let count = arguments[count].i32
                guard count <= maxIovecs else { return .failure(.EINVAL) }
                guard inBounds(memory, base, UInt64(count) * 8) else { return .failure(.EFAULT) }
                let vectorEnd = UInt64(base) + UInt64(count) * 8
                var total: UInt64 = 0
                let failure = memory.withUnsafeMutableBufferPointer(offset: UInt(base), count: Int(count) * 8) { vector -> WASIAbi.Errno? in
                    for index in 0..<Int(count) {
                        let buffer = UInt32(littleEndian: vector.loadUnaligned(fromByteOffset: index * 8, as: UInt32.self))
                        let length = UInt32(littleEndian: vector.loadUnaligned(fromByteOffset: index * 8 + 4, as: UInt32.self))
                        guard inBounds(memory, buffer, UInt64(length)) else { return .EFAULT }
                        // The bridge counts bytes in 32 bits.
                        total += UInt64(length)
                        guard total <= UInt64(Int32.max) else { return .EINVAL }
                        if filled, length > 0, UInt64(buffer) < vectorEnd, UInt64(buffer) + UInt64(length) > UInt64(base) {
                            return .EFAULT
                        }
                    }
                    return nil
                }
                if let failure { return .failure(failure) }
                // What a read fills is paid for after it, by what it read.
                if !filled { moved += total }
            }
        }
        return .success(moved)
    }

    /// Whether `bytes` bytes at `pointer` lie inside `memory`. A memory of no bytes has no
    /// address at all (WasmKit stops the process on an access to one, even of no bytes).
    static func inBounds<M: WASIGuestMemory>(_ memory: M, _ pointer: UInt32, _ bytes: UInt64) -> Bool {
        let size = UInt64(memory.byteCount)
        return size > 0 && UInt64(pointer) + bytes <= size
    }
}
