extension BundledGuests {
    /// Python source for CPython's own WASI build (`python.wasm`) run as a resident command
    /// (`GuestModule.residentCommand()`): the driver that serves one script per call, and the
    /// article's CPU-bound function.
    public enum Python {
        /// Reads `<length>\n<script>` requests from standard input, runs each script in a fresh
        /// namespace (an exception's traceback goes to standard error), and flushes its output
        /// before asking for the next. Run it with `python.wasm -c DRIVER`.
        public static let driver = """
            import sys
            requests = sys.stdin.buffer
            while True:
                header = requests.readline()
                if not header:
                    break
                script = requests.read(int(header)).decode()
                try:
                    exec(compile(script, "<call>", "exec"), {"__name__": "__main__"})
                except BaseException:
                    import traceback
                    traceback.print_exc()
                sys.stdout.flush()
                sys.stderr.flush()
            """

        /// The article's `cpu_bound`, as Python source.
        public static let cpuBoundDefinition = """
            def cpu_bound(n):
                total = 0
                for i in range(n):
                    total += i * i
                    total %= 1_000_000_000
                return total
            """

        /// A script that prints `cpu_bound(n)`.
        public static func cpuBoundScript(_ n: Int) -> String { cpuBoundDefinition + "\nprint(cpu_bound(\(n)))\n" }

        /// `script` as one request for ``driver``.
        public static func request(_ script: String) -> [UInt8] { Array("\(script.utf8.count)\n\(script)".utf8) }
    }
}
