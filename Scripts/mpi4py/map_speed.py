"""mpi4py.futures' side of the MPI pool's map rows (docs/cluster.md): map of 10,000 doublings with
chunk sizes 1 and 100, median of N runs, on the same launch shape as `futures bench --executor mpi`:
in one pool made beforehand, and as `futures bench` measures, each run making its pool and shutting
it down (the `transfer` and `chunked` rows).

    python3 -m venv /tmp/mpi4py-venv && /tmp/mpi4py-venv/bin/pip install mpi4py==4.1.2
    # the wheel loads libmpi.so.12, which Debian names libmpich.so.12:
    mkdir -p /tmp/mpi4py-lib && ln -sf /usr/lib/x86_64-linux-gnu/libmpich.so.12 /tmp/mpi4py-lib/libmpi.so.12
    mpiexec -n 3 -genv LD_LIBRARY_PATH /tmp/mpi4py-lib /tmp/mpi4py-venv/bin/python -m mpi4py.futures Scripts/mpi4py/map_speed.py [runs]
"""
import statistics
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def double(x):
    return x * 2


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    inputs = list(range(10_000))
    expected = [x * 2 for x in inputs]
    with MPIPoolExecutor() as pool:
        list(pool.map(double, range(100)))  # the workers are up
        for chunksize in (1, 100):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                assert list(pool.map(double, inputs, chunksize=chunksize)) == expected
                times.append(time.perf_counter() - start)
            print(f"mpi4py map 10000 chunksize {chunksize}, one pool: median {statistics.median(times) * 1000:.1f} ms "
                  f"(min {min(times) * 1000:.1f}, runs {runs})")
    for chunksize in (1, 100):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            with MPIPoolExecutor() as pool:
                assert list(pool.map(double, inputs, chunksize=chunksize)) == expected
            times.append(time.perf_counter() - start)
        print(f"mpi4py map 10000 chunksize {chunksize}, pool made and shut down: median {statistics.median(times) * 1000:.1f} ms "
              f"(min {min(times) * 1000:.1f}, runs {runs})")


if __name__ == "__main__":
    main()
