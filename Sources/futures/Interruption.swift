import CFuturesShims
import ConcurrentFutures
import Dispatch
@preconcurrency import Foundation

/// Ctrl-C and SIGTERM handling: the first SIGINT or SIGTERM runs `onInterrupt` (cancelling the
/// queued work); the map then stops reading, lets running calls end, and reports: the drain a
/// service manager's stop expects. A second signal runs `onSecondInterrupt`, which ends the run at
/// once.
///
/// A signal handler writes to a pipe that a thread of its own reads. The handler is in place when
/// `init` returns, so a Ctrl-C that comes later is never lost; a Dispatch signal source registers
/// asynchronously, and a signal that came before it was dropped.
final class Interruption: @unchecked Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32
    private let flag = NSLock()
    private var interrupted = false

    init(onInterrupt: @escaping @Sendable () -> Void, onSecondInterrupt: @escaping @Sendable () -> Void) {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            ends.forEach(cf_set_cloexec)
        } else {
            ends = [-1, -1]
        }
        (readEnd, writeEnd) = (ends[0], ends[1])
        guard readEnd >= 0 else { return }  // no pipe: Ctrl-C keeps its default action
        _ = cf_interrupt_pipe_install(writeEnd)
        Thread.detachNewThread { [self] in
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count < 0, errno == EINTR { continue }
                guard count == 1 else { break }
                let first = flag.withLock {
                    defer { interrupted = true }
                    return !interrupted
                }
                if first {
                    // Cancelling runs on a thread of its own, so that this one is free for a
                    // second Ctrl-C even while the cancellation waits on the pool.
                    Thread.detachNewThread { onInterrupt() }
                } else {
                    onSecondInterrupt()
                }
            }
            close(readEnd)
        }
    }

    var happened: Bool { flag.withLock { interrupted } }

    /// Restores Ctrl-C's default action and ends the reading thread.
    func stop() {
        guard writeEnd >= 0 else { return }
        cf_interrupt_pipe_remove()
        close(writeEnd)
    }
}
