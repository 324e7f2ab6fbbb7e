#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the benchmarks (with the default preset, when they are not built yet) and runs every
# benchmark on a GPU machine, then writes results.json, results.md and gemv_speedup.png:
#   benchmarks/run.sh [build dir, default build/default] [output dir, default $OUT or results]
# 1. dq4_alu_bound: every dq4 path in an ALU-bound loop, against naive and CUTLASS conversions;
# 2. awq_gemv: the fused W4A16 GEMV and the bulk dequantization against cuBLAS and the copy bandwidth;
# 3. tinygemm.py: PyTorch's int4 GEMV at the same shapes (skipped without PyTorch);
# 4. report.py: the merged results, table and plot.
set -euo pipefail
build=${1:-build/default}
out=${2:-${OUT:-results}}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
if [ ! -x "$build/benchmarks/dq4_alu_bound" ] || [ ! -x "$build/examples/awq_gemv" ]; then
  (cd "$here/.." && cmake --preset default && cmake --build --preset default --target dq4_alu_bound awq_gemv)
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$out/device.txt"
"$build/benchmarks/dq4_alu_bound" "$out/alu_bound.csv" | tee "$out/alu_bound.txt"
"$build/examples/awq_gemv" --csv "$out/awq_gemv.csv" | tee "$out/awq_gemv.txt"
if python3 -c "import torch" 2>/dev/null; then
  python3 "$here/tinygemm.py" "$out/tinygemm.csv" | tee "$out/tinygemm.txt"
  python3 "$here/report.py" "$out"
else
  echo "PyTorch not found: no tinygemm comparison"
  python3 "$here/report.py" "$out" --no-tinygemm
fi
