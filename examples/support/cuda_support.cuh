// SPDX-License-Identifier: Apache-2.0
// Helpers shared by dq4's examples and benchmarks (not part of the library): CUDA error checks that
// stop the program with the failing call named, and a timing loop on CUDA events.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace dq4_support {

// Prints the failing call and exits: these programs have no way to recover from a CUDA error.
inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

// Whether device 0 exists and is sm_<arch> or newer (its properties then in `prop`); if not, prints
// why ("no CUDA device (...)" or "device 0 (...) is sm_XY, ...": the words example_awq_gemv's CTest
// entry takes as "skipped") followed by `otherwise`, what the program does instead.
inline bool device_at_least(int arch, const char* otherwise, cudaDeviceProp& prop) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    std::printf("no CUDA device (%s): %s\n", cudaGetErrorString(status), otherwise);
    return false;
  }
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  if (prop.major * 10 + prop.minor < arch) {
    std::printf("device 0 (%s) is sm_%d%d, this needs sm_%d or newer: %s\n", prop.name, prop.major, prop.minor, arch,
                otherwise);
    return false;
  }
  return true;
}

// Median over `runs` of the milliseconds between two events recorded around timed(run), after
// before_start() has been enqueued ahead of the first event.
template <class BeforeStart, class Timed>
float median_event_ms(int runs, BeforeStart before_start, Timed timed) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<float> times;
  for (int run = 0; run < runs; ++run) {
    before_start();
    check(cudaEventRecord(start), "cudaEventRecord");
    timed(run);
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  check(cudaEventDestroy(start), "cudaEventDestroy");
  check(cudaEventDestroy(stop), "cudaEventDestroy");
  std::nth_element(times.begin(), times.begin() + runs / 2, times.end());
  return times[static_cast<std::size_t>(runs / 2)];
}

// Median of `runs` timings (ms) of launch(r), r = 1 .. runs, after one warm-up launch(0); r lets a
// caller rotate buffers between runs.
template <class Launch>
float median_ms(int runs, Launch launch) {
  launch(0);
  check(cudaDeviceSynchronize(), "warm-up");
  return median_event_ms(runs, [] {}, [&](int run) { launch(run + 1); });
}

// Returns after about `ns` nanoseconds of the GPU's global timer.
__device__ inline void sleep_ns(unsigned long long ns) {
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

// Keeps the GPU busy for about `ns` nanoseconds, so that launches queued behind it start back to back.
__global__ void hold_gpu(unsigned long long ns) { sleep_ns(ns); }

// Median over `runs` of the time per call (us) of `calls` back-to-back calls launch(r), r counting
// up from 1 across runs, after one warm-up launch(0). Each run is queued behind a 200 us kernel
// that holds the GPU while the host enqueues the calls, so the time is the GPU's alone -- as in a
// decode step, whose kernels run back to back -- and not the host's launch latency; the gaps between
// the calls are counted.
template <class Launch>
float median_us_back_to_back(int runs, int calls, Launch launch) {
  launch(0);
  check(cudaDeviceSynchronize(), "warm-up");
  const auto hold = [] {
    hold_gpu<<<1, 1>>>(200000);
    check(cudaGetLastError(), "hold_gpu");
  };
  const float ms = median_event_ms(runs, hold, [&](int run) {
    for (int c = 0; c < calls; ++c) launch(1 + run * calls + c);
  });
  return 1000 * ms / static_cast<float>(calls);
}

}  // namespace dq4_support
