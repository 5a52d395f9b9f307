"""Runs one WASI command on Wasmtime (PyPI's `wasmtime`) as `futures run` would run it: the standard
streams inherited, the arguments given, nothing else granted. The module is precompiled once (to
MODULE.cwasm, next to it) and loaded from there; the CPU and wall time of loading, instantiating and
running it go to TIMING_FILE as JSON, so that Python's own start-up is not counted. Exits with the program's status.

    python wasmtime_run.py MODULE TIMING_FILE [ARGUMENTS...]
"""
import json
import os
import resource
import sys
import time

import wasmtime


def main():
    module_path, timing_file, *arguments = sys.argv[1:]
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    engine = wasmtime.Engine()
    precompiled = module_path + ".cwasm"
    if not os.path.exists(precompiled) or os.path.getmtime(precompiled) < os.path.getmtime(module_path):
        with open(precompiled + ".tmp", "wb") as file:
            file.write(wasmtime.Module.from_file(engine, module_path).serialize())
        os.rename(precompiled + ".tmp", precompiled)
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    module = wasmtime.Module.deserialize_file(engine, precompiled)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [os.path.basename(module_path)] + arguments
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store.set_wasi(wasi)
    status = 0
    try:
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exit:
        status = exit.code
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sys.stdout.flush()
    with open(timing_file, "w") as file:
        json.dump({"cpu_s": cpu, "wall_s": wall}, file)
    sys.exit(status)


if __name__ == "__main__":
    main()
