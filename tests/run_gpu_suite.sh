#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs dq4's GPU checks on a machine with a GPU, from an already built tree:
#   tests/run_gpu_suite.sh [build dir, default build/default] [log dir, default $OUT or build dir]
# 1. the exhaustive GPU tests (all 2^32 words per path), 2. the example at full size,
# 3. both again under compute-sanitizer memcheck and racecheck (DQ4_SANITIZER_SWEEP_LOG2 can shrink
#    the sweeps there; the default is all 2^32 words), 4. the SASS budgets with the machine's own
#    cuobjdump.
set -uo pipefail
build=${1:-build/default}
logs=${2:-${OUT:-$build}}
mkdir -p "$logs"
status=0
step() {  # step NAME COMMAND...: runs, logs, times, and remembers a failure
  local name=$1; shift
  echo "=== $name: $*"
  local start=$(date +%s%N)
  "$@" > "$logs/$name.log" 2>&1
  local rc=$?
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  tail -n 25 "$logs/$name.log"
  echo "=== $name: exit $rc, $ms ms"
  [ "$rc" -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
step gpu_tests "$build/tests/dq4_gpu_tests"
step example "$build/examples/dequantize_buffer"
step memcheck_gpu_tests env DQ4_SWEEP_LOG2=${DQ4_SANITIZER_SWEEP_LOG2:-32} \
  compute-sanitizer --tool memcheck --error-exitcode 1 "$build/tests/dq4_gpu_tests"
step racecheck_gpu_tests env DQ4_SWEEP_LOG2=${DQ4_SANITIZER_SWEEP_LOG2:-32} \
  compute-sanitizer --tool racecheck --error-exitcode 1 "$build/tests/dq4_gpu_tests"
step memcheck_example compute-sanitizer --tool memcheck --error-exitcode 1 "$build/examples/dequantize_buffer"
step racecheck_example compute-sanitizer --tool racecheck --error-exitcode 1 "$build/examples/dequantize_buffer"
probes=$(find "$build/tests" -name 'probes.cu.o' | head -n 1)
archs=$(grep -E '^CMAKE_CUDA_ARCHITECTURES' "$build/CMakeCache.txt" | cut -d= -f2 | tr ';' ',')
step sass_budgets python3 tests/sass/check_sass.py --cuobjdump "$(command -v cuobjdump)" --archs "$archs" "$probes"
echo "=== overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
