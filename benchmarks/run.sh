#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the benchmarks (with the default preset, when they are not built yet) and runs every
# benchmark on a GPU machine, then writes results.json, results.md and gemv_vs_floor.png:
#   benchmarks/run.sh [build dir, default build/default] [output dir, default $OUT or results]
# 1. dq4_alu_bound: every dq4 path in an ALU-bound loop, against naive and CUTLASS conversions;
# 2. awq_gemv: the checks of the GEMV and bulk kernels at the benchmark's shapes (stops the run if one fails);
# 3. dq4_gemv_benchmark: the GEMV and bulk kernels against the read floor, cuBLAS and a copy;
# 4. tinygemm.py and gemlite_bench.py: PyTorch's int4 GEMV and GemLite's at the same shapes (skipped without
#    PyTorch; GemLite where it imports: a wheel built with `pip wheel --no-deps gemlite==0.6.0.post2`);
# 5. report.py: the merged results, table and plot.
set -euo pipefail
build=${1:-build/default}
out=${2:-${OUT:-results}}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
if [ ! -x "$build/benchmarks/dq4_alu_bound" ] || [ ! -x "$build/benchmarks/dq4_gemv_benchmark" ] || [ ! -x "$build/examples/awq_gemv" ]; then
  (cd "$here/.." && cmake --preset default && cmake --build --preset default --target dq4_alu_bound dq4_gemv_benchmark awq_gemv)
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$out/device.txt"
"$build/benchmarks/dq4_alu_bound" "$out/alu_bound.csv" | tee "$out/alu_bound.txt"
"$build/examples/awq_gemv" --csv "$out/accuracy.csv" | tee "$out/awq_gemv.txt"
"$build/benchmarks/dq4_gemv_benchmark" --csv "$out/gemv_benchmark.csv" | tee "$out/gemv_benchmark.txt"
if python3 -c "import torch, gemlite" 2>/dev/null; then
  python3 "$here/tinygemm.py" "$out/tinygemm.csv" | tee "$out/tinygemm.txt"
  python3 "$here/gemlite_bench.py" "$out/gemlite.csv" | tee "$out/gemlite.txt"
  python3 "$here/report.py" "$out"
else
  echo "PyTorch or GemLite not found: no comparison with tinygemm and GemLite"
  python3 "$here/report.py" "$out" --no-peers
fi
