import Foundation

/// Formats benchmark rows as a table or JSON.
enum BenchReport {
    static func json(_ rows: [BenchRow]) -> String {
        let objects: [[String: Any]] = rows.map { row in
            var object: [String: Any] = [
                "benchmark": row.benchmark, "executor": row.executor, "guest": row.guest,
                "workers": row.workers, "runs": row.seconds.count,
                "median_s": row.median, "min_s": row.min, "max_s": row.max,
            ]
            for (key, value) in row.extra { object[key] = value }
            if !row.note.isEmpty { object["note"] = row.note }
            return object
        }
        let data = try! JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func table(_ rows: [BenchRow], sizes: BenchSizes) -> String {
        var lines = [
            "benchmark  executor     guest   workers   median        min           max           notes",
            String(repeating: "-", count: 100),
        ]
        for row in rows {
            var notes = row.note
            if let ratio = row.extra["overhead_ratio"] {
                notes += String(format: "%.2fx of ideal (1 task %@)", ratio, seconds(row.extra["single_task_s"]!))
            }
            if let bytes = row.extra["bytes_per_worker"] {
                notes += String(format: "%.0f KiB per worker", bytes / 1024)
            }
            lines.append(
                [pad(row.benchmark, 10), pad(row.executor, 12), pad(row.guest, 7), pad(String(row.workers), 9),
                 pad(seconds(row.median), 13), pad(seconds(row.min), 13), pad(seconds(row.max), 13), notes]
                    .joined(separator: " "))
        }
        return lines.joined(separator: "\n")
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
