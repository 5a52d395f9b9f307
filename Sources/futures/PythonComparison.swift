import BundledGuests
import Foundation
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// `futures bench --python PATH`: the article's Python programs, run with that interpreter on the
/// same sizes, for every executor it offers (InterpreterPoolExecutor needs Python 3.14).
enum PythonComparison {
    /// Runs the benchmarks in Python and returns one row per benchmark and executor.
    static func run(python: String, sizes: BenchSizes, runs: Int, benchmarks: Set<String>) async throws -> [BenchRow] {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("futures-bench-\(UUID().uuidString).py")
        try source.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let arguments = [
            script.path, String(sizes.workers), String(sizes.tasks), String(sizes.iterations), String(sizes.items),
            String(runs), benchmarks.sorted().joined(separator: ","),
        ]
        let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
        do {
            result = try await Subprocess.run(
                python.contains("/") ? .path(FilePath(python)) : .name(python), arguments: Arguments(arguments),
                output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        } catch {
            throw CommandFailure("cannot run \(python): \(error)")
        }
        let output = result.standardOutput
        guard result.terminationStatus.isSuccess,
            let data = output.split(separator: "\n").last.map({ Data($0.utf8) }),
            let objects = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else {
            let detail = result.standardError.split(separator: "\n").last.map(String.init) ?? "no output"
            throw CommandFailure("the Python benchmarks failed (\(result.terminationStatus)): \(detail)")
        }
        return objects.compactMap { object in
            guard let benchmark = object["benchmark"] as? String, let executor = object["executor"] as? String,
                let seconds = object["seconds"] as? [Double], !seconds.isEmpty
            else { return nil }
            var row = BenchRow(
                benchmark: benchmark, executor: executor, guest: "python", engine: "cpython", workers: sizes.workers, seconds: seconds)
            row.note = object["version"] as? String ?? ""
            return row
        }
    }

    /// Adds to each of `rows` the Python time of the same benchmark and executor, and the ratio.
    static func annotate(_ rows: inout [BenchRow], with python: [BenchRow]) {
        for index in rows.indices where rows[index].guest != "python" {
            guard let match = python.first(where: { $0.benchmark == rows[index].benchmark && $0.executor == rows[index].executor })
            else { continue }
            rows[index].extra["python_median_s"] = match.median
            rows[index].extra["ratio_to_python"] = rows[index].median / match.median
        }
    }

    /// The article's programs, timed the same way as ours: from creating the executor to the end
    /// of the `with` block, one untimed run first.
    static let source = #"""
        import json, platform, sys, time
        from concurrent.futures import ThreadPoolExecutor, ProcessPoolExecutor
        try:
            from concurrent.futures import InterpreterPoolExecutor
        except ImportError:
            InterpreterPoolExecutor = None

        \#(BundledGuests.Python.cpuBoundDefinition)

        def noop():
            pass

        def double(x):
            return x * 2

        def measure(body, runs):
            body()
            seconds = []
            for _ in range(runs):
                start = time.perf_counter()
                body()
                seconds.append(time.perf_counter() - start)
            return seconds

        def main():
            workers, tasks, iterations, items, runs = (int(a) for a in sys.argv[1:6])
            benchmarks = sys.argv[6].split(",")
            executors = [("thread", ThreadPoolExecutor), ("process", ProcessPoolExecutor)]
            if InterpreterPoolExecutor is not None:
                executors.append(("interpreter", InterpreterPoolExecutor))
            expected = cpu_bound(iterations)
            rows = []
            for name, executor in executors:
                def cpu():
                    with executor(max_workers=workers) as pool:
                        futures = [pool.submit(cpu_bound, iterations) for _ in range(tasks)]
                        assert [f.result() for f in futures] == [expected] * tasks
                def startup():
                    with executor(max_workers=workers) as pool:
                        for f in [pool.submit(noop) for _ in range(workers)]:
                            f.result()
                def transfer():
                    with executor(max_workers=workers) as pool:
                        assert list(pool.map(double, range(items))) == [2 * x for x in range(items)]
                for benchmark, body in (("cpu", cpu), ("startup", startup), ("transfer", transfer)):
                    if benchmark in benchmarks:
                        rows.append({"benchmark": benchmark, "executor": name, "seconds": measure(body, runs),
                                     "version": "Python " + platform.python_version()})
            print(json.dumps(rows))

        if __name__ == "__main__":
            main()
        """#
}
