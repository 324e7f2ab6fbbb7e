#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs dq4's GPU checks on a machine with a GPU, from an already built tree:
#   tests/run_gpu_suite.sh [build dir, default build/default] [log dir, default $OUT or build dir]
# 1. the exhaustive GPU tests, built for the real targets and as compute_75 PTX (sm_75's code paths,
#    compiled by the driver for this GPU), each binary run once (every typed test, every path);
# 2. the examples (dequantize_buffer at full size, awq_gemv --quick) and the README's kernels as the
#    consumer test built them; 3. the GPU tests, dequantize_buffer and awq_gemv --quick again under
#    compute-sanitizer memcheck and racecheck (and awq_gemv under synccheck too; the GPU tests with
#    sweeps of 2^DQ4_SANITIZER_SWEEP_LOG2 indices per path, 16..32, default 24: the sanitizers slow
#    every access down); 4. the SASS budgets with the machine's own cuobjdump.
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
  tail -n 8 "$logs/$name.log"
  echo "=== $name: exit $rc, $ms ms"
  [ "$rc" -eq 0 ] || status=1
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
step gpu_tests "$build/tests/dq4_gpu_tests"
step gpu_tests_compute75 "$build/tests/dq4_gpu_tests_compute75"
step dequantize_buffer "$build/examples/dequantize_buffer"
if [ -x "$build/examples/awq_gemv" ]; then step awq_gemv_quick "$build/examples/awq_gemv" --quick; fi
readme=$(find "$build/tests/consumer" -name consumer_cuda -type f 2>/dev/null | head -n 1)
if [ -n "$readme" ]; then step readme_kernels "$readme"; else echo "=== readme_kernels: not built (run ctest -L consumer first)"; status=1; fi
sweep=${DQ4_SANITIZER_SWEEP_LOG2:-24}
step memcheck_gpu_tests env DQ4_SWEEP_LOG2=$sweep \
  compute-sanitizer --tool memcheck --error-exitcode 1 "$build/tests/dq4_gpu_tests"
step racecheck_gpu_tests env DQ4_SWEEP_LOG2=$sweep \
  compute-sanitizer --tool racecheck --error-exitcode 1 "$build/tests/dq4_gpu_tests"
step memcheck_example compute-sanitizer --tool memcheck --error-exitcode 1 "$build/examples/dequantize_buffer"
step racecheck_example compute-sanitizer --tool racecheck --error-exitcode 1 "$build/examples/dequantize_buffer"
if [ -x "$build/examples/awq_gemv" ]; then
  for tool in memcheck racecheck synccheck; do
    step ${tool}_awq_gemv compute-sanitizer --tool $tool --error-exitcode 1 "$build/examples/awq_gemv" --quick
  done
fi
probes=$(find "$build/tests" -name 'probes.cu.o' | head -n 1)
archs=$(grep -E '^CMAKE_CUDA_ARCHITECTURES' "$build/CMakeCache.txt" | cut -d= -f2 | tr ';' ',')
step sass_budgets python3 tests/sass/check_sass.py --cuobjdump "$(command -v cuobjdump)" --archs "$archs" "$probes"
echo "=== overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
