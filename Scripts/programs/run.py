#!/usr/bin/env python3
"""Runs the program corpus side by side: each program natively, on WasmKit (`futures run`), on the
compiled engine (`futures run --engine compiled`) and on Wasmtime (PyPI's `wasmtime`, the module
precompiled once, timed inside Python so that Python's own start-up is left out).

Every run's output is checked: it must equal the native build's (or, for lz4's compressor, whose 32-bit
build picks other matches than the 64-bit one, decode with the native lz4 to the input) and, where
expected.json has the digest for these inputs, that digest. Any mismatch or failure ends with status 1.

Called by corpus.sh, which fetches and builds first; see Scripts/programs/README.md.
"""
import argparse
import hashlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ["native", "wasmkit", "compiled", "wasmtime"]
CPU_BOUND = "def cpu_bound(n): return sum(i * i for i in range(n))\nprint(cpu_bound({n}))"


class Program:
    """One corpus row. `native` names the program run natively when it is not the module's own native
    build: `python3` for CPython, or `node` for QuickJS, whose native build no registry here has
    (node runs the same script: its output checks the guests', and its time is shown but not compared)."""

    def __init__(self, name, label, module, arguments, stdin, check="same", native=None, compared=True):
        self.name, self.label, self.module, self.arguments, self.stdin, self.check = name, label, module, arguments, stdin, check
        self.native, self.compared = native, compared


def programs(short):
    scale = "1" if short else "3"
    n = 100_000 if short else 5_000_000
    rows = 20_000 if short else 300_000
    with open(os.path.join(HERE, "bench.js")) as file:
        script = f"const SCALE = {scale};\n" + file.read()
    return [
        Program("zlib-compress", "zlib `minigzip`, compress", "minigzip", [], "text"),
        Program("zlib-decompress", "zlib `minigzip -d`", "minigzip", ["-d"], "text.gz"),
        Program("lz4-compress", "lz4 `-c`", "lz4", ["-c"], "text", check="lz4-roundtrip"),
        Program("lz4-decompress", "lz4 `-d -c`", "lz4", ["-d", "-c"], "text.lz4"),
        Program("xxhsum", "xxHash `xxhsum -H64`", "xxhsum", ["-H64"], "text"),
        Program("brotli", "brotli `-q 5`", "brotli", ["-q", "5", "-c", "-f"], "text"),
        Program("lua", f"Lua 5.4, bench.lua (scale {scale})", "lua", ["-", scale], "bench.lua"),
        Program("sqlite", f"SQLite 3.40 shell, bench.sql ({rows:,} rows)", "sqlite3", [], "bench.sql"),
        Program("ripgrep", "ripgrep 13 (Rust) `-o '[a-z]{4,}'`", "ripgrep", ["-o", "[a-z]{4,}"], "text"),
        Program("python", f"CPython 3.12 `python.wasm`, cpu_bound({n:_})", "python", ["-c", CPU_BOUND.format(n=n)], None,
                native="python3"),
        Program("quickjs", f"QuickJS-ng 0.11 `qjs`, bench.js (scale {scale})", "quickjs", ["-e", script], None,
                native="node", compared=False),
    ]


def make_inputs(work, short, native_bin):
    """Deterministic inputs: text of words and numbers (compressible like logs), and its gzip and lz4
    forms made by the native tools."""
    directory = os.path.join(work, "inputs", "short" if short else "full")
    os.makedirs(directory, exist_ok=True)
    text = os.path.join(directory, "text")
    if not os.path.exists(text):
        size = (256 << 10) if short else (8 << 20)
        generator = random.Random(19)
        words = ["".join(generator.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(generator.randint(2, 9))) for _ in range(2000)]
        parts, total = [], 0
        while total < size:
            line = " ".join(generator.choice(words) for _ in range(generator.randint(3, 14))) + " %d\n" % generator.randint(0, 10**6)
            parts.append(line)
            total += len(line)
        with open(text + ".tmp", "w") as file:
            file.write("".join(parts)[:size])
        os.rename(text + ".tmp", text)
    for suffix, command in (("gz", ["minigzip"]), ("lz4", ["lz4", "-c"])):
        path = f"{text}.{suffix}"
        if not os.path.exists(path):
            with open(text, "rb") as source, open(path + ".tmp", "wb") as target:
                subprocess.run([os.path.join(native_bin, command[0] + ".native")] + command[1:], stdin=source, stdout=target, check=True)
            os.rename(path + ".tmp", path)
    lua = os.path.join(directory, "bench.lua")
    with open(os.path.join(HERE, "bench.lua"), "rb") as source, open(lua, "wb") as target:
        target.write(source.read())
    with open(os.path.join(HERE, "bench.sql")) as source, open(os.path.join(directory, "bench.sql"), "w") as target:
        target.write(f"CREATE TABLE config AS SELECT {20_000 if short else 300_000} AS n;\n" + source.read())
    return directory


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def command_for(program, engine, options):
    module = os.path.join(options.bin, program.module + ".wasm")
    if engine == "native":
        if program.native == "python3":
            return [options.python] + program.arguments
        if program.native is not None:
            return [program.native] + program.arguments
        return [os.path.join(options.bin, program.module + ".native")] + program.arguments
    if engine == "wasmkit":
        return [options.futures, "run", module] + program.arguments
    if engine == "compiled":
        return [options.futures, "run", "--engine", "compiled", "--build-timeout", str(options.build_timeout),
                "--build-memory", str(options.build_memory), module] + program.arguments
    return [options.wasmtime_python, os.path.join(HERE, "wasmtime_run.py"), module, options.timing_file] + program.arguments


def run_once(program, engine, options, inputs, output):
    """One run: (cpu seconds, wall seconds, exit status, stderr)."""
    command = command_for(program, engine, options)
    stdin = open(os.path.join(inputs, program.stdin), "rb") if program.stdin else subprocess.DEVNULL
    environment = dict(os.environ, CONCURRENT_FUTURES_CACHE=os.path.join(options.work, "cache"))
    with open(output, "wb") as out, open(output + ".err", "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=stdin, stdout=out, stderr=err, env=environment)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    if stdin is not subprocess.DEVNULL:
        stdin.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    if engine == "wasmtime" and process.returncode == 0:
        with open(options.timing_file) as file:
            timing = json.load(file)
        cpu, wall = timing["cpu_s"], timing["wall_s"]
    with open(output + ".err", "rb") as file:
        errors = file.read().decode(errors="replace")
    return cpu, wall, process.returncode, errors


def check(program, digest, native_digest, expected, output, inputs, options):
    """None when the output is right, else why not."""
    if program.check == "lz4-roundtrip":
        decoded = subprocess.run([os.path.join(options.bin, "lz4.native"), "-d", "-c"], stdin=open(output, "rb"), capture_output=True)
        if decoded.returncode != 0 or hashlib.sha256(decoded.stdout).hexdigest() != sha256(os.path.join(inputs, "text")):
            return "does not decode to the input with the native lz4"
        return None
    if native_digest is not None and digest != native_digest:
        return f"output differs from the native build's (sha256 {digest[:16]} against {native_digest[:16]})"
    if expected is not None and digest != expected:
        return f"output's sha256 {digest[:16]} is not the expected {expected[:16]}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--futures", required=True)
    parser.add_argument("--wasmtime-python", required=True)
    parser.add_argument("--python", default="python3", help="the native CPython to compare python.wasm with")
    parser.add_argument("--short", action="store_true", help="small inputs, one run (CI)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs (default 5, or 1 with --short)")
    parser.add_argument("--only", default=None, help="programs to run, comma-separated")
    parser.add_argument("--engines", default=",".join(ENGINES), help="engines to run, comma-separated")
    parser.add_argument("--build-timeout", type=int, default=900, help="the compiled engine's build budget, in seconds")
    parser.add_argument("--build-memory", type=int, default=12288,
                        help="the memory each build tool may map, in MiB (CPython's evaluation loop needs more than the default 4096)")
    parser.add_argument("--json", default=None, help="write the rows as JSON to this file")
    parser.add_argument("--markdown", default=None, help="write the table as Markdown to this file")
    parser.add_argument("--record-expected", action="store_true", help="write the native outputs' digests to expected.json")
    options = parser.parse_args()
    options.bin = os.path.join(options.work, "bin")
    options.timing_file = os.path.join(options.work, "wasmtime-timing.json")
    runs = options.runs or (1 if options.short else 5)
    engines = [engine for engine in ENGINES if engine in options.engines.split(",")]
    if "native" not in engines:
        engines.insert(0, "native")  # outputs are checked against it
    selected = [p for p in programs(options.short) if options.only is None or p.name in options.only.split(",")]
    inputs = make_inputs(options.work, options.short, options.bin)
    with open(os.path.join(HERE, "expected.json")) as file:
        expected_digests = json.load(file)["short" if options.short else "full"]
    outputs = os.path.join(options.work, "outputs")
    os.makedirs(outputs, exist_ok=True)

    rows, failures = [], []
    for program in selected:
        native_digest = None
        for engine in engines:
            if options.short and engine == "compiled" and program.name == "python":
                # A build of about ten minutes on two cores and 12 GiB: the full run's.
                print(f"{program.name:16} {engine:9} not in the short form (a ten-minute build)", flush=True)
                continue
            output = os.path.join(outputs, f"{program.name}.{engine}")
            # An untimed first run: the compiled engine builds (and caches) the module, Wasmtime
            # precompiles it, and every file is in the page cache.
            timings, error = [], None
            for index in range(runs + (1 if engine in ("compiled", "wasmtime") or runs > 1 else 0)):
                cpu, wall, status, errors = run_once(program, engine, options, inputs, output)
                if status != 0:
                    error = f"exit status {status}: {errors.strip()[-400:]}"
                    break
                timings.append((cpu, wall))
            if error is None:
                timings = timings[-runs:]
                digest = sha256(output)
                if engine == "native":
                    native_digest = digest
                error = check(program, digest, native_digest, expected_digests.get(program.name), output, inputs, options)
            if error is not None:
                failures.append(f"{program.name} on {engine}: {error}")
                print(f"corpus: {program.name} on {engine}: {error}", file=sys.stderr)
                rows.append({"benchmark": "program", "program": program.name, "engine": engine, "error": error})
                continue
            cpus, walls = [t[0] for t in timings], [t[1] for t in timings]
            row = {
                "benchmark": "program", "program": program.name, "engine": engine, "runs": runs,
                "cpu_median_s": statistics.median(cpus), "cpu_min_s": min(cpus), "cpu_max_s": max(cpus),
                "wall_median_s": statistics.median(walls), "wall_min_s": min(walls), "wall_max_s": max(walls),
                "output_sha256": digest,
            }
            rows.append(row)
            print(f"{program.name:16} {engine:9} cpu {row['cpu_median_s']:.3f} s  wall {row['wall_median_s']:.3f} s", flush=True)

    table = markdown(selected, engines, rows, runs)
    print(table)
    if options.json:
        with open(options.json, "w") as file:
            json.dump(rows, file, indent=2)
    if options.markdown:
        with open(options.markdown, "w") as file:
            file.write(table)
    if options.record_expected:
        path = os.path.join(HERE, "expected.json")
        with open(path) as file:
            recorded = json.load(file)
        size = "short" if options.short else "full"
        for row in rows:
            if row["engine"] == "native" and "output_sha256" in row and row["program"] != "lz4-compress":
                recorded[size][row["program"]] = row["output_sha256"]
        with open(path, "w") as file:
            json.dump(recorded, file, indent=2, sort_keys=True)
            file.write("\n")
    if failures:
        print(f"corpus: {len(failures)} failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


def markdown(selected, engines, rows, runs):
    """The side-by-side table: CPU time (median) and its ratio to native; wall time in brackets; the
    compiled engine's CPU time against Wasmtime's; the geometric means of the ratios over the programs
    every engine ran (a program without a native build of its own counts only against Wasmtime)."""
    by = {(row["program"], row["engine"]): row for row in rows}
    names = {"native": "native", "wasmkit": "WasmKit", "compiled": "compiled", "wasmtime": "Wasmtime, precompiled"}
    peer = "compiled" in engines and "wasmtime" in engines
    lines = [
        f"CPU time (user + sys), median of {runs}; wall time in brackets; ratio to native.",
        "",
        "| program | " + " | ".join(names[e] for e in engines) + (" | compiled ÷ Wasmtime |" if peer else " |"),
        "|---" * (len(engines) + 1 + (1 if peer else 0)) + "|",
    ]
    ratios = {engine: [] for engine in engines}
    against_peer = []
    cpu = lambda program, engine: by.get((program.name, engine), {}).get("cpu_median_s")
    for program in selected:
        native = cpu(program, "native") if program.compared else None
        complete = all(cpu(program, e) is not None for e in engines)
        cells = []
        for engine in engines:
            row = by.get((program.name, engine), {})
            if "cpu_median_s" not in row:
                cells.append("failed" if "error" in row else "—")
                continue
            cell = f"{row['cpu_median_s']:.3f} s ({row['wall_median_s']:.3f})"
            if engine == "native" and not program.compared:
                cell = f"{program.native}: {cell}, not compared"
            if engine != "native" and native:
                ratio = row["cpu_median_s"] / native
                cell += f" {ratio:.2f}×"
                if complete:
                    ratios[engine].append(ratio)
            cells.append(cell)
        if peer:
            if cpu(program, "compiled") and cpu(program, "wasmtime"):
                ratio = cpu(program, "compiled") / cpu(program, "wasmtime")
                against_peer.append(ratio)
                cells.append(f"{ratio:.2f}×")
            else:
                cells.append("—")
        lines.append(f"| {program.label} | " + " | ".join(cells) + " |")
    geometric = lambda values: f"{math.exp(sum(map(math.log, values)) / len(values)):.2f}×" if values else "—"
    means = ["—"] + [geometric(ratios[e]) for e in engines[1:]] + ([geometric(against_peer)] if peer else [])
    lines.append("| geometric mean of the ratios | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
