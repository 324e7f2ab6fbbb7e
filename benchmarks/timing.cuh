// SPDX-License-Identifier: Apache-2.0
// How the GEMV benchmark times a call: as the kernels of a decode step run, back to back, with the
// host's launch latency left out.
#pragma once

#include <cuda_runtime.h>

#include "support/cuda_support.cuh"

namespace dq4_bench {

// Keeps the GPU busy for about `ns` nanoseconds, so that launches queued behind it start back to back.
static __global__ void hold_gpu(unsigned long long ns) { dq4_support::sleep_ns(ns); }

// Median over `runs` of the time per call (us) of `calls` back-to-back calls launch(r), r counting
// up from 1 across runs, after one warm-up launch(0). Each run is queued behind a 200 us kernel
// that holds the GPU while the host enqueues the calls, so the time is the GPU's alone -- as in a
// decode step, whose kernels run back to back -- and not the host's launch latency; the gaps between
// the calls are counted.
template <class Launch>
float median_us_back_to_back(int runs, int calls, Launch launch) {
  launch(0);
  dq4_support::check(cudaDeviceSynchronize(), "warm-up");
  const auto hold = [] {
    hold_gpu<<<1, 1>>>(200000);
    dq4_support::check(cudaGetLastError(), "hold_gpu");
  };
  const float ms = dq4_support::median_event_ms(runs, hold, [&](int run) {
    for (int c = 0; c < calls; ++c) launch(1 + run * calls + c);
  });
  return 1000 * ms / static_cast<float>(calls);
}

}  // namespace dq4_bench
