import CFuturesShims
import ConcurrentFutures
@preconcurrency import Foundation

/// Where results go: the original standard output, written line by line with `write(2)`, so
/// that a consumer at the other end of a pipe sees each result as soon as it is known.
///
/// Standard output itself (descriptor 1) is pointed at standard error for the rest of the run:
/// whatever else writes there (a guest's `cf.write(1, ...)`, a library's `print`, worker
/// processes, which inherit it) lands on standard error and never among the results.
final class ResultWriter {
    private let fd: Int32

    init() throws {
        fd = dup(1)
        guard fd >= 0 else { throw CommandFailure("cannot duplicate standard output") }
        cf_set_cloexec(fd)
        fflush(stdout)
        dup2(2, 1)
    }

    deinit { close(fd) }

    func write(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}
