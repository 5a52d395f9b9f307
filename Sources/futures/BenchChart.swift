import Foundation

/// `futures bench --svg FILE`: the results as a bar chart in the spirit of the article's figures:
/// one group per benchmark, one bar per executor and guest, seconds on a log axis.
enum BenchChart {
    /// A row's bar label: executor and guest, and the engine when it is the compiled one.
    static func label(_ row: BenchRow) -> String {
        "\(row.executor) \(row.guest)" + (row.engine == "compiled" ? " compiled" : "")
    }

    static func svg(_ rows: [BenchRow], machine: String) -> String {
        let benchmarks = ["cpu", "startup", "transfer"].filter { name in rows.contains { $0.benchmark == name } }
        let series = rows.filter { $0.benchmark != "memory" && $0.workers > 1 || $0.benchmark == "startup" }
            .map(label)
            .reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let colors = ["#4e79a7", "#a0cbe8", "#f28e2b", "#59a14f", "#8cd17d", "#b6992d", "#e15759", "#ff9d9a", "#79706e"]
        let values = rows.filter { $0.benchmark != "memory" }.map(\.median).filter { $0 > 0 }
        let low = pow(10, floor(log10(values.min() ?? 1e-5)))
        let high = pow(10, ceil(log10(values.max() ?? 1)))
        let (width, height) = (Double(140 + benchmarks.count * (series.count * 34 + 40)), 420.0)
        let (left, top, bottom) = (80.0, 50.0, 330.0)
        func y(_ seconds: Double) -> Double {
            bottom - (log10(seconds) - log10(low)) / (log10(high) - log10(low)) * (bottom - top)
        }
        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(left)\" y=\"24\" font-size=\"15\">ConcurrentFutures: median time per benchmark (log scale, lower is better)</text>",
            "<text x=\"\(left)\" y=\"40\" fill=\"#555\">\(escape(machine))</text>",
        ]
        var decade = low
        while decade <= high * 1.001 {
            let position = y(decade)
            svg.append("<line x1=\"\(left)\" y1=\"\(position)\" x2=\"\(width - 20)\" y2=\"\(position)\" stroke=\"#ddd\"/>")
            svg.append("<text x=\"\(left - 6)\" y=\"\(position + 4)\" text-anchor=\"end\">\(BenchReport.seconds(decade))</text>")
            decade *= 10
        }
        for (group, benchmark) in benchmarks.enumerated() {
            let groupLeft = left + 20 + Double(group * (series.count * 34 + 40))
            for (index, name) in series.enumerated() {
                guard let row = rows.first(where: { label($0) == name && $0.benchmark == benchmark && ($0.workers > 1 || benchmark == "startup") })
                else { continue }
                let x = groupLeft + Double(index * 34)
                let barTop = y(row.median)
                svg.append(
                    "<rect x=\"\(x)\" y=\"\(barTop)\" width=\"28\" height=\"\(Swift.max(1, bottom - barTop))\" "
                        + "fill=\"\(colors[index % colors.count])\"><title>\(escape(name)): \(BenchReport.seconds(row.median))</title></rect>")
                svg.append(
                    "<text x=\"\(x + 14)\" y=\"\(barTop - 4)\" text-anchor=\"middle\" font-size=\"9\">\(BenchReport.seconds(row.median))</text>")
            }
            svg.append(
                "<text x=\"\(groupLeft + Double(series.count * 34) / 2)\" y=\"\(bottom + 18)\" text-anchor=\"middle\" font-size=\"13\">\(benchmark)</text>"
            )
        }
        for (index, name) in series.enumerated() {
            let x = left + Double(index % 5) * 150
            let legendY = bottom + 42 + Double(index / 5) * 18
            svg.append("<rect x=\"\(x)\" y=\"\(legendY - 10)\" width=\"12\" height=\"12\" fill=\"\(colors[index % colors.count])\"/>")
            svg.append("<text x=\"\(x + 16)\" y=\"\(legendY)\">\(escape(name))</text>")
        }
        svg.append("</svg>")
        return svg.joined(separator: "\n")
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
