// SPDX-License-Identifier: Apache-2.0
// The GPU tests' harness, shared by test_gpu.cu and test_gpu_fp4.cu: CUDA error checks, the skip
// without a GPU, exhaustive sweeps of a Path (name(), log2_count, registers, fast(i, out) on the
// device, expected(i, out) on both) that count mismatches and describe the first, and the check that
// a Sample's reference gives the same bits compiled for the device and for the host.
#pragma once

#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "support/cuda_support.cuh"

namespace dq4_gpu_test {

// A bijection of 32-bit words (MurmurHash3's finalizer): neighbours that differ in every nibble.
__host__ __device__ constexpr std::uint32_t scrambled(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x;
}

#define DQ4_CUDA_OK(call)                                                                      \
  do {                                                                                         \
    const cudaError_t status_ = (call);                                                        \
    ASSERT_EQ(status_, cudaSuccess) << #call << ": " << cudaGetErrorString(status_);           \
  } while (0)

// Launch error, then the kernel's own execution error.
#define DQ4_LAUNCH_OK()                   \
  do {                                    \
    DQ4_CUDA_OK(cudaGetLastError());      \
    DQ4_CUDA_OK(cudaDeviceSynchronize()); \
  } while (0)

#define DQ4_REQUIRE_GPU()                                                                             \
  do {                                                                                                \
    cudaDeviceProp prop_{};                                                                           \
    const std::string reason_ = dq4_support::why_no_device(75, prop_);                                \
    if (!reason_.empty()) GTEST_SKIP() << reason_ << ": the CPU tests prove the algorithm on the host"; \
  } while (0)

// log2 of the number of indices swept: the path's own count, or fewer when DQ4_SWEEP_LOG2 asks (for
// slow tools such as compute-sanitizer). DQ4_SWEEP_LOG2 must be an integer from 16 to 32 (the
// canary needs 2^16 indices); anything else is an error, not a silent default.
inline bool sweep_log2(int path_log2, int& log2, std::string& error) {
  const char* env = std::getenv("DQ4_SWEEP_LOG2");
  log2 = path_log2;
  if (env == nullptr) return true;
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || n < 16 || n > 32) {
    error = std::string("DQ4_SWEEP_LOG2=") + env + " is not an integer from 16 to 32";
    return false;
  }
  log2 = std::min(path_log2, static_cast<int>(n));
  return true;
}

template <dq4::format F>
constexpr int registers_of = dq4::fragment<F, 8>::registers;

template <dq4::format F>
__host__ __device__ void store(const dq4::fragment<F, 8>& f, std::uint32_t* out) {
  for (int k = 0; k < registers_of<F>; ++k) out[k] = f.regs[k];
}

struct sweep_counters {
  unsigned long long checked;
  unsigned long long mismatches;
  unsigned long long first_mismatch;
};

template <class Path>
__global__ void sweep_kernel(std::uint64_t count, sweep_counters* counters) {
  unsigned long long checked = 0, mismatches = 0, first = ~0ull;
  const std::uint64_t stride = std::uint64_t{gridDim.x} * blockDim.x;
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count; i += stride) {
    std::uint32_t fast[Path::registers], expected[Path::registers];
    Path::fast(static_cast<std::uint32_t>(i), fast);
    Path::expected(static_cast<std::uint32_t>(i), expected);
    bool equal = true;
    for (int k = 0; k < Path::registers; ++k) equal = equal && fast[k] == expected[k];
    ++checked;
    if (!equal) {
      ++mismatches;
      if (i < first) first = i;
    }
  }
  atomicAdd(&counters->checked, checked);
  if (mismatches != 0) {
    atomicAdd(&counters->mismatches, mismatches);
    atomicMin(&counters->first_mismatch, first);
  }
}

// The fast result of one index, for the failure message.
template <class Path>
__global__ void evaluate_kernel(std::uint32_t i, std::uint32_t* out) {
  Path::fast(i, out);
}

constexpr std::uint32_t poison = 0xDEADBEEFu;

struct sweep_result {
  sweep_counters counters;
  float milliseconds;
};

template <class Path>
void run_sweep(std::uint64_t count, sweep_result& result) {
  sweep_counters* device = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&device, sizeof(sweep_counters)));
  const sweep_counters initial{0, 0, ~0ull};
  DQ4_CUDA_OK(cudaMemcpy(device, &initial, sizeof initial, cudaMemcpyHostToDevice));
  int sms = 0;
  DQ4_CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaEvent_t start, stop;
  DQ4_CUDA_OK(cudaEventCreate(&start));
  DQ4_CUDA_OK(cudaEventCreate(&stop));
  DQ4_CUDA_OK(cudaEventRecord(start));
  sweep_kernel<Path><<<sms * 8, 256>>>(count, device);
  DQ4_CUDA_OK(cudaGetLastError());
  DQ4_CUDA_OK(cudaEventRecord(stop));
  DQ4_CUDA_OK(cudaEventSynchronize(stop));
  DQ4_LAUNCH_OK();
  DQ4_CUDA_OK(cudaEventElapsedTime(&result.milliseconds, start, stop));
  DQ4_CUDA_OK(cudaMemcpy(&result.counters, device, sizeof result.counters, cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaEventDestroy(start));
  DQ4_CUDA_OK(cudaEventDestroy(stop));
  DQ4_CUDA_OK(cudaFree(device));
}

template <class Path>
void describe_mismatch(std::uint32_t i, std::string& text) {
  std::uint32_t* device = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&device, Path::registers * sizeof(std::uint32_t)));
  const std::vector<std::uint32_t> poisoned(Path::registers, poison);
  DQ4_CUDA_OK(cudaMemcpy(device, poisoned.data(), Path::registers * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  evaluate_kernel<Path><<<1, 1>>>(i, device);
  DQ4_LAUNCH_OK();
  std::vector<std::uint32_t> actual(Path::registers), expected(Path::registers);
  DQ4_CUDA_OK(cudaMemcpy(actual.data(), device, Path::registers * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(device));
  Path::expected(i, expected.data());
  std::ostringstream s;
  s << std::hex << std::setfill('0') << "first mismatch at sweep index 0x" << std::setw(8) << i << "\n  expected";
  for (auto x : expected) s << " " << std::setw(8) << x;
  s << "\n  actual  ";
  for (auto x : actual) s << " " << std::setw(8) << x;
  text = s.str();
}

template <class Path>
void expect_exhaustively_equal() {
  int log2 = 0;
  std::string error;
  ASSERT_TRUE(sweep_log2(Path::log2_count, log2, error)) << error;  // checked with or without a GPU
  DQ4_REQUIRE_GPU();
  const std::uint64_t count = std::uint64_t{1} << log2;
  sweep_result result{};
  ASSERT_NO_FATAL_FAILURE(run_sweep<Path>(count, result));
  ASSERT_EQ(result.counters.checked, count) << "the sweep did not visit every index";
  std::string detail;
  if (result.counters.mismatches != 0) {
    ASSERT_NO_FATAL_FAILURE(describe_mismatch<Path>(static_cast<std::uint32_t>(result.counters.first_mismatch), detail));
  }
  EXPECT_EQ(result.counters.mismatches, 0u) << Path::name() << ": " << detail;
  std::printf("[ dq4      ] %-44s 2^%d indices, %llu mismatches, %.2f ms\n", Path::name().c_str(), log2,
              result.counters.mismatches, result.milliseconds);
}

// The 65552 words the references' device/host agreement reads: every 16-bit pattern in the low half
// with a scrambled copy in the high half, then each nibble value in all eight nibbles.
constexpr std::uint32_t sample_word_count = 65536 + 16;
__host__ __device__ constexpr std::uint32_t sample_word(std::uint32_t i) {
  return i < 65536 ? i | ((i * 40503u) & 0xFFFFu) << 16 : (i - 65536) * 0x11111111u;
}

inline std::string hex_registers(const std::uint32_t* regs, std::size_t n) {
  std::ostringstream s;
  s << std::hex << std::setfill('0');
  for (std::size_t k = 0; k < n; ++k) s << " " << std::setw(8) << regs[k];
  return s.str();
}

// Counts the results that differ from the expected ones, and describes the first (where() names its
// inputs; it runs for the first mismatch only).
class mismatch_log {
 public:
  template <class Where>
  void compare(const std::uint32_t* actual, const std::uint32_t* expected, std::size_t n, Where&& where) {
    if (std::equal(expected, expected + n, actual)) return;
    if (count_++ == 0) {
      first_ = "first mismatch at " + where() + "\n  expected" + hex_registers(expected, n) + "\n  actual  " +
               hex_registers(actual, n);
    }
  }
  [[nodiscard]] std::size_t count() const { return count_; }
  [[nodiscard]] const std::string& first() const { return first_; }

 private:
  std::size_t count_ = 0;
  std::string first_;
};

inline std::string hex_word(std::uint32_t x) {
  std::ostringstream s;
  s << "0x" << std::hex << std::setfill('0') << std::setw(8) << x;
  return s.str();
}

template <class Sample>
__global__ void sample_kernel(std::uint32_t count, std::uint32_t* out) {
  const std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) Sample::expected(i, out + std::size_t{Sample::registers} * i);
}

template <class Sample>
void expect_references_agree() {
  constexpr std::size_t per = Sample::registers;
  const std::size_t count = Sample::count, bytes = per * count * sizeof(std::uint32_t);
  std::uint32_t* device = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&device, bytes));
  DQ4_CUDA_OK(cudaMemset(device, 0xEE, bytes));  // poison
  sample_kernel<Sample><<<static_cast<unsigned>((count + 255) / 256), 256>>>(Sample::count, device);
  DQ4_LAUNCH_OK();
  std::vector<std::uint32_t> out(per * count);
  DQ4_CUDA_OK(cudaMemcpy(out.data(), device, bytes, cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(device));
  mismatch_log log;
  std::uint32_t host[8];
  for (std::uint32_t i = 0; i < Sample::count; ++i) {
    Sample::expected(i, host);
    log.compare(out.data() + per * i, host, per, [&] { return "index " + std::to_string(i) + ": " + Sample::input(i); });
  }
  EXPECT_EQ(log.count(), 0u) << log.count() << " of " << count << " device results differ from the host's; "
                             << log.first();
}

}  // namespace dq4_gpu_test
