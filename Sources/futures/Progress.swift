@preconcurrency import Foundation

/// A progress bar with rate and ETA on standard error.
final class Progress: @unchecked Sendable {
    let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let lock = NSLock()
    private var total: Int?

    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// Counts the non-blank lines of `path` on a thread of its own, reading it in chunks, so that
    /// neither the first result nor memory waits for a large input; the bar shows a total once
    /// the count is known.
    func countLines(of path: String) {
        Thread.detachNewThread { [self] in
            guard let file = fopen(path, "r") else { return }
            defer { fclose(file) }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var count = 0
            var lineHasText = false
            while true {
                let read = fread(&buffer, 1, buffer.count, file)
                if read <= 0 { break }
                for byte in buffer[0..<read] {
                    if byte == 0x0A {
                        if lineHasText { count += 1 }
                        lineHasText = false
                    } else if byte != 0x20, byte != 0x09, byte != 0x0D {
                        lineHasText = true
                    }
                }
            }
            if lineHasText { count += 1 }
            lock.withLock { total = count }
        }
    }

    func update(done: Int) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var line = "\r\(done)"
        if let total = lock.withLock({ total }), total > 0 {
            let fraction = Swift.min(1, Double(done) / Double(total))
            let filled = Int(fraction * 30)
            let eta = rate > 0 ? Double(Swift.max(0, total - done)) / rate : 0
            line =
                "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                + "] \(done)/\(total)  \(Int(rate))/s  ETA \(Int(eta) / 60):" + String(format: "%02d", Int(eta) % 60)
        } else {
            line += " done  \(Int(rate))/s"
        }
        writeStandardErrorRaw(line + "\u{1B}[K")
    }

    func clear() {
        if enabled { writeStandardErrorRaw("\r\u{1B}[K") }
    }
}
