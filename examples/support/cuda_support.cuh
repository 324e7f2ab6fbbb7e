// SPDX-License-Identifier: Apache-2.0
// Helpers shared by dq4's tests, examples and benchmarks (not part of the library): the fixtures they
// share (eight different scales, eight different zeros), and under CUDA the GPU detection, CUDA
// error checks that stop the program with the failing call named, and timing loops on CUDA events
// (the back-to-back timing of the GEMV benchmark is in benchmarks/timing.cuh).
// The fixtures are plain C++ (host tests include this header without CUDA).
#pragma once

#include <dq4/dq4.cuh>

#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#endif  // defined(__CUDACC__)

namespace dq4_support {

// Eight different scales, one per output element, so that a lane that read its neighbour's scale
// would show: 1, a negative, the smallest subnormal, the largest finite value, two inexact
// fractions, -2 and the smallest normal.
template <dq4::format F>
DQ4_HD constexpr dq4::fragment<F, 8> eight_scales() noexcept {
  constexpr std::uint32_t fp16[8] = {0x3C00, 0xB555, 0x0001, 0x7BFF, 0x2E66, 0xC000, 0x0400, 0x3555};
  constexpr std::uint32_t bf16[8] = {0x3F80, 0xBEAB, 0x0001, 0x7F7F, 0x3DCD, 0xC000, 0x0080, 0x3EAB};
  constexpr std::uint32_t fp32[8] = {0x3F800000, 0xBEAAAAAB, 0x00000001, 0x7F7FFFFF,
                                     0x3DCCCCCD, 0xC0000000, 0x00800000, 0x3EAAAAAB};
  return dq4::reference::assemble<F>(F == dq4::format::fp16 ? fp16 : F == dq4::format::bf16 ? bf16 : fp32);
}

// Eight different stored zeros (nibbles 0..7: 15, 14, 0, 5, 11, 8, 15, 2): 0 and 15 among them, and
// under zeros::gptq_v1 a carry that runs from nibble 0 through the 14 of nibble 1 into nibble 2.
inline constexpr std::uint32_t eight_zeros = 0x2F8B50EFu;

#if defined(__CUDACC__)

// Prints the failing call and exits: these programs have no way to recover from a CUDA error.
inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

// The file at `path` opened for writing, or null for a null path; a file that cannot be opened
// stops the program with the reason, so that no run loses its results silently.
inline std::FILE* open_output(const char* path) {
  if (path == nullptr) return nullptr;
  std::FILE* file = std::fopen(path, "w");
  if (file == nullptr) {
    std::perror(path);
    std::exit(1);
  }
  return file;
}

// Closes a file from open_output (null: nothing), stopping the program if anything written was lost.
inline void close_output(std::FILE* file, const char* path) {
  if (file == nullptr) return;
  const bool failed = std::ferror(file) != 0;
  if (std::fclose(file) != 0 || failed) {
    std::fprintf(stderr, "%s: write failed\n", path);
    std::exit(1);
  }
}

// Why device 0 cannot run code that needs sm_<arch>, or an empty string when it can (its properties
// then in `prop`). The words ("no CUDA device (...)", "device 0 (...) is sm_XY, this needs sm_ZW or
// newer") are what the CTest entries of the GPU tests and example_awq_gemv take as "skipped".
inline std::string why_no_device(int arch, cudaDeviceProp& prop) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) return std::string("no CUDA device (") + cudaGetErrorString(status) + ")";
  const cudaError_t properties = cudaGetDeviceProperties(&prop, 0);
  if (properties != cudaSuccess) return std::string("cudaGetDeviceProperties failed (") + cudaGetErrorString(properties) + ")";
  if (prop.major * 10 + prop.minor < arch) {
    return "device 0 (" + std::string(prop.name) + ") is sm_" + std::to_string(prop.major * 10 + prop.minor) +
           ", this needs sm_" + std::to_string(arch) + " or newer";
  }
  return {};
}

// Whether device 0 is usable for sm_<arch> code; if not, prints why followed by `otherwise`, what
// the program does instead.
inline bool device_at_least(int arch, const char* otherwise, cudaDeviceProp& prop) {
  const std::string why = why_no_device(arch, prop);
  if (!why.empty()) std::printf("%s: %s\n", why.c_str(), otherwise);
  return why.empty();
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

#endif  // defined(__CUDACC__)

}  // namespace dq4_support
