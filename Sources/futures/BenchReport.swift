import Foundation

/// Formats benchmark rows as a table or JSON.
enum BenchReport {
    static func json(_ rows: [BenchRow]) -> String {
        var objects: [[String: Any]] = rows.map { row in
            var object: [String: Any] = [
                "benchmark": row.benchmark, "executor": row.executor, "guest": row.guest, "engine": row.engine,
                "workers": row.workers, "runs": row.seconds.count,
                "median_s": row.median, "min_s": row.min, "max_s": row.max,
            ]
            // JSON has no infinities or NaNs: a figure that is not finite is written as null.
            for (key, value) in row.extra { object[key] = value.isFinite ? value : NSNull() }
            if !row.note.isEmpty { object["note"] = row.note }
            return object
        }
        for index in objects.indices {
            for key in ["median_s", "min_s", "max_s"] where !((objects[index][key] as? Double)?.isFinite ?? true) {
                objects[index][key] = NSNull()
            }
        }
        guard let data = try? JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys]) else {
            return "[]"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func table(_ rows: [BenchRow], sizes: BenchSizes) -> String {
        var lines = [
            "futures bench: \(sizes.tasks) x cpu_bound(\(sizes.iterations)), \(sizes.workers) no-op tasks, map(double) over \(sizes.items) items; "
                + "time from creating the executor to shutdown returning",
            machine,
            "",
            "benchmark  executor     guest   engine    workers   median        min           max           notes",
            String(repeating: "-", count: 110),
        ]
        for row in rows {
            var notes = row.note
            if let ratio = row.extra["overhead_ratio"] {
                notes +=
                    (notes.isEmpty ? "" : "; ")
                    + String(format: "%.2fx of ideal (1 task takes %@)", ratio, seconds(row.extra["single_task_s"]!))
            }
            if let bytes = row.extra["bytes_per_worker"] {
                notes += (notes.isEmpty ? "" : "; ") + String(format: "%.0f KiB per worker", bytes / 1024)
            }
            if let speedup = row.extra["speedup_over_1_worker"] {
                notes += String(format: "; %.2fx faster than 1 worker", speedup)
            }
            if let ratio = row.extra["ratio_to_python"] {
                notes += (notes.isEmpty ? "" : "; ") + String(format: "%.3fx of Python's time", ratio)
            }
            lines.append(
                [
                    pad(row.benchmark, 10), pad(row.executor, 12), pad(row.guest, 7), pad(row.engine, 9), pad(String(row.workers), 9),
                    pad(seconds(row.median), 13), pad(seconds(row.min), 13), pad(seconds(row.max), 13), notes,
                ]
                .joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// The machine the numbers come from.
    static var machine: String {
        var model = "unknown CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let name = line.split(separator: ":", maxSplits: 1).last
        {
            model = name.trimmingCharacters(in: .whitespaces)
        }
        let memory = ProcessInfo.processInfo.physicalMemory >> 30
        return "machine: \(model), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(memory) GiB, "
            + "\(ProcessInfo.processInfo.operatingSystemVersionString)"
    }

    static func seconds(_ value: Double) -> String {
        if value < 1e-3 { return String(format: "%.1f µs", value * 1e6) }
        if value < 1 { return String(format: "%.2f ms", value * 1e3) }
        return String(format: "%.3f s", value)
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
