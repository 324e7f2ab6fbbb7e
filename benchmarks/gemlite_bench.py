#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""GemLite's W4A16 GEMV (gemlite 0.6.0.post2, Triton: asymmetric int4, group size 128, fp16 and bf16) at the
shapes of benchmarks/gemv_benchmark.cu, timed the same way: CUDA events, a warm-up, the median over 11 runs of
10 calls queued back to back behind a kernel that holds the GPU while Python enqueues them, weights rotated
through more than 512 MB. Writes a CSV: the fastest kernel per format, shape and batch.

    gemlite_bench.py results.csv [--shapes K N [K N ...]]

(Not named gemlite.py: the script's own folder comes first on sys.path, and it would shadow the package.)

Which GemLite: its GemLiteLinearTriton, packed from uint8 weights [N][K] with scales and zeros [N][K / 128]
(`pack`, fma_mode as shipped), called with `forward_manual(x, matmul_type)` for each kernel that takes the
batch: GEMV_REVSPLITK and GEMV for 1 token, GEMM_SPLITK and GEMM for 8 (GEMV_REVSPLITK takes 1 row only).
Kernel caching on. GemLite loads tuned configurations only for GPUs named in its configs/ (H100, not H200), so
this loads configs/h100.json itself: where it has the shape's signature (core.py, kernel_config_pruner:
(M, N, K, group, elements per word, type)) that configuration runs, elsewhere GemLite's own "fast" autotune
picks one on the first call. Each kernel's output is checked against a float32 product with the dequantized
weights (q - z) * s; a kernel off by more than 1e-2 relative to the largest output is reported and skipped.
"""
import copy
import csv
import os
import sys
import time

import torch

import gemlite
from gemlite import DType, GemLiteLinearTriton
from peer_timing import arguments, median_us, rotated_copies

GROUP = 128
KERNELS = {1: ["GEMV_REVSPLITK", "GEMV"], 8: ["GEMM_SPLITK", "GEMM"]}
START = time.time()


def log(message):
    print(f"[{time.time() - START:6.1f} s] {message}", flush=True)


def layer_of(k, n, dtype):
    """A random layer: GemLite's packed module and the float32 dequantized weights [N][K]."""
    q = torch.randint(0, 16, (n, k), dtype=torch.uint8, device="cuda")
    z = torch.randint(0, 16, (n, k // GROUP), device="cuda").to(dtype)
    s = (torch.rand((n, k // GROUP), device="cuda") * 0.05 + 0.004).to(dtype)
    w = ((q.float().view(n, k // GROUP, GROUP) - z.float()[..., None]) * s.float()[..., None]).view(n, k)
    gdtype = DType.FP16 if dtype == torch.float16 else DType.BF16
    module = GemLiteLinearTriton(W_nbits=4, group_size=GROUP, in_features=k, out_features=n, input_dtype=gdtype, output_dtype=gdtype)
    module.pack(q, s, z, bias=None)
    return module, w


def main():
    path, shapes = arguments(sys.argv[1:], "gemlite.csv")
    gemlite.set_kernel_caching(True)
    h100 = os.path.join(os.path.dirname(gemlite.__file__), "configs", "h100.json")
    log(f"GemLite {gemlite.__version__}; loaded {h100}: {gemlite.load_config(h100)}")
    name = torch.cuda.get_device_name(0)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["device", "format", "k", "n", "batch", "gemlite_us", "kernel", "tried"])
        writer.writeheader()
        for k, n in shapes:
            for dtype, fmt in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
                module, w = layer_of(k, n, dtype)
                copies = rotated_copies(k, n)
                layers = [module] + [copy.deepcopy(module) for _ in range(copies - 1)]
                for batch in (1, 8):
                    x = (torch.rand((batch, k), device="cuda") * 2 - 1).to(dtype)
                    reference = x.float() @ w.t()
                    best, tried = None, []
                    for kernel in KERNELS[batch]:
                        try:
                            y = module.forward_manual(x, matmul_type=kernel)
                            error = ((y.float() - reference).abs().max() / reference.abs().max()).item()
                            if not error <= 1e-2:
                                log(f"{fmt} K={k} N={n} batch {batch} {kernel}: relative error {error:.2e}, skipped")
                                continue
                            # a hold of about 10 ms at 2 GHz: longer than Python takes to enqueue 10 GemLite calls
                            us = median_us(lambda r: layers[r % copies].forward_manual(x, matmul_type=kernel), 20_000_000)
                        except Exception as e:  # a kernel that does not take this batch or shape
                            log(f"{fmt} K={k} N={n} batch {batch} {kernel}: {type(e).__name__}: {str(e)[:160]}")
                            continue
                        tried.append(f"{kernel} {us:.2f}")
                        log(f"{fmt} K={k} N={n} batch {batch} {kernel}: {us:.2f} us (relative error {error:.1e})")
                        if best is None or us < best[0]:
                            best = (us, kernel)
                    if best is not None:
                        writer.writerow({"device": name, "format": fmt, "k": k, "n": n, "batch": batch,
                                         "gemlite_us": f"{best[0]:.3f}", "kernel": best[1], "tried": "; ".join(tried)})
                        f.flush()
                del layers, module, w
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
