# SPDX-License-Identifier: Apache-2.0
"""What tinygemm.py and gemlite_bench.py share: the shapes of benchmarks/gemv_benchmark.cu, their command line,
how many copies of a layer rotate through more than 512 MB, and the timing of benchmarks/timing.cuh from Python
(CUDA events, a warm-up, the median over 11 runs of the time per call of 10 calls queued back to back behind a
kernel that holds the GPU while Python enqueues them)."""
import statistics

import torch

SHAPES = [(4096, 4096), (4096, 14336), (14336, 4096), (8192, 8192), (8192, 28672), (28672, 8192)]


def arguments(args, default_path):
    """The results path and the shapes of `script results.csv [--shapes K N [K N ...]]`."""
    path = args[0] if args and not args[0].startswith("--") else default_path
    shapes = SHAPES
    if "--shapes" in args:
        values = [int(v) for v in args[args.index("--shapes") + 1:]]
        shapes = list(zip(values[::2], values[1::2]))
    return path, shapes


def rotated_copies(k, n):
    """Copies of a K x N int4 layer whose weights take more than 512 MB, so that every call reads from DRAM."""
    return max(2, (512 << 20) // (k * n // 2) + 1)


def median_us(fn, hold_cycles, runs=11, calls=10):
    """Median time per call (us) of fn(r), r counting up, behind torch.cuda._sleep(hold_cycles): the hold must
    outlast Python's enqueueing of the calls."""
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn(0)
    torch.cuda.synchronize()
    times, r = [], 1
    for _ in range(runs):
        torch.cuda._sleep(hold_cycles)
        start.record()
        for _ in range(calls):
            fn(r)
            r += 1
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e3 / calls)
    return statistics.median(times)
