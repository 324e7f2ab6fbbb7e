#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""PyTorch's built-in int4 GEMV (tinygemm, torch._weight_int4pack_mm: bf16 activations, group size 128)
at the shapes of benchmarks/gemv_benchmark.cu, timed the same way: CUDA events, a warm-up, the median over 11
runs of 10 calls queued back to back behind a kernel that holds the GPU while Python enqueues them (the GPU's
time per call, not Python's launch latency), weights rotated through more than 512 MB so that they come
from DRAM. Writes a CSV.

    tinygemm.py results.csv [--shapes K N [K N ...]]
"""
import csv
import sys

import torch

from peer_timing import arguments, median_us, rotated_copies

GROUP = 128
INNER_K_TILES = 8


def packed_weights(k, n):
    """Random int4 weights [N][K] packed for tinygemm, with bf16 scales and zeros [K/G][N][2]."""
    q = torch.randint(0, 16, (n, k), dtype=torch.int32, device="cuda")
    as_bytes = ((q[:, ::2] << 4) | q[:, 1::2]).to(torch.uint8)  # two nibbles per byte, as torch 2.5+ expects
    packed = torch._convert_weight_to_int4pack(as_bytes, INNER_K_TILES)
    scales_and_zeros = torch.rand((k // GROUP, n, 2), dtype=torch.bfloat16, device="cuda") * 0.05
    return packed, scales_and_zeros


def main():
    path, shapes = arguments(sys.argv[1:], "tinygemm.csv")
    name = torch.cuda.get_device_name(0)
    rows = []
    for k, n in shapes:
        weight_bytes = k * n // 2
        copies = rotated_copies(k, n)
        layers = [packed_weights(k, n) for _ in range(copies)]
        for batch in (1, 8):
            x = torch.rand((batch, k), dtype=torch.bfloat16, device="cuda") - 0.5
            # a hold of about 2 ms at 2 GHz: longer than Python takes to enqueue 10 calls
            us = median_us(lambda r: torch._weight_int4pack_mm(x, layers[r % copies][0], GROUP, layers[r % copies][1]), 4_000_000)
            moved = weight_bytes + k // GROUP * n * 4 + batch * (k + n) * 2
            rows.append({"device": name, "format": "bf16", "k": k, "n": n, "batch": batch,
                         "tinygemm_us": f"{us:.3f}", "tinygemm_gbs": f"{moved / (us * 1e3):.1f}"})
            print(f"tinygemm bf16 K={k} N={n} batch {batch}: {us:.2f} us, {moved / (us * 1e3):.0f} GB/s")
        del layers
        torch.cuda.empty_cache()
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
