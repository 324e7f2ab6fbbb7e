// SPDX-License-Identifier: Apache-2.0
// Every device fast path against its reference over all 2^32 words, bit for bit, on the GPU.
// Without a usable GPU every test here skips and says why.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "paths.hpp"

namespace {

using dq4::encoding;
using dq4::order;

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

// Why the GPU tests cannot run here, or an empty string when they can.
std::string reason_to_skip() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    return std::string("no CUDA device (") + cudaGetErrorString(status) +
           "): the GPU tests need one; the CPU tests prove the algorithm on the host";
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cudaGetDeviceProperties failed";
  if (prop.major * 10 + prop.minor < 75) {
    return "device 0 is sm_" + std::to_string(prop.major * 10 + prop.minor) + ": dq4 supports sm_75 and newer";
  }
  return {};
}

#define DQ4_REQUIRE_GPU()                                   \
  do {                                                      \
    const std::string reason_ = reason_to_skip();           \
    if (!reason_.empty()) GTEST_SKIP() << reason_;          \
  } while (0)

// log2 of the number of words swept: 32 unless DQ4_SWEEP_LOG2 asks for fewer (for slow tools such as
// compute-sanitizer). The sweep size is printed with every result.
int sweep_log2() {
  const char* env = std::getenv("DQ4_SWEEP_LOG2");
  const int n = env != nullptr ? std::atoi(env) : 32;
  return n >= 8 && n <= 32 ? n : 32;
}

// A path under test: the words one sweep index feeds it, its fast result and its reference result.
// `Words` input words give 8 * Words outputs (4 * Words registers).
template <encoding E, order O, int Words>
struct dq4_path {
  static constexpr int registers = 4 * Words;
  // Four bijections of the 32-bit index, so each input word of the 128-bit form sees all 2^32 values.
  __host__ __device__ static void inputs(std::uint32_t i, std::uint32_t (&w)[Words]) {
    w[0] = i;
    if constexpr (Words == 4) {
      w[1] = ~i;
      w[2] = i * 0x9E3779B1u;  // odd multiplier: a bijection mod 2^32
      w[3] = (i >> 16) | (i << 16);
    }
  }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w[Words];
    inputs(i, w);
    if constexpr (Words == 1) {
      const dq4::fp16x8 r = dq4::to_fp16<E, O>(w[0]);
      for (int k = 0; k < registers; ++k) out[k] = r.pairs[k];
    } else {
      const dq4::fp16x32 r = dq4::to_fp16<E, O>(make_uint4(w[0], w[1], w[2], w[3]));
      for (int k = 0; k < registers; ++k) out[k] = r.pairs[k];
    }
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w[Words];
    inputs(i, w);
    for (int n = 0; n < Words; ++n) {
      const dq4::fp16x8 r = dq4::reference::to_fp16<E, O>(w[n]);
      for (int k = 0; k < 4; ++k) out[4 * n + k] = r.pairs[k];
    }
  }
};

// A deliberately broken path: element 1 (bit 16 of register 0) of the u4 interleaved result is
// wrong whenever the low 16 bits of the index are 0x1234, i.e. for 2^(log2 - 16) indices from 0x1234.
struct broken_path {
  static constexpr int registers = 4;
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    dq4_path<encoding::u4, order::interleaved, 1>::fast(i, out);
    if ((i & 0xFFFFu) == 0x1234u) out[0] ^= 0x00010000u;
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    dq4_path<encoding::u4, order::interleaved, 1>::expected(i, out);
  }
};

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
void expect_exhaustively_equal(const char* name) {
  DQ4_REQUIRE_GPU();
  const int log2 = sweep_log2();
  const std::uint64_t count = std::uint64_t{1} << log2;
  sweep_result result{};
  ASSERT_NO_FATAL_FAILURE(run_sweep<Path>(count, result));
  ASSERT_EQ(result.counters.checked, count) << "the sweep did not visit every word";
  std::string detail;
  if (result.counters.mismatches != 0) {
    ASSERT_NO_FATAL_FAILURE(describe_mismatch<Path>(static_cast<std::uint32_t>(result.counters.first_mismatch), detail));
  }
  EXPECT_EQ(result.counters.mismatches, 0u) << name << ": " << detail;
  std::printf("[ dq4      ] %-28s 2^%d words, %llu mismatches, %.2f ms\n", name, log2,
              result.counters.mismatches, result.milliseconds);
}

#define DQ4_EXHAUSTIVE_TEST(enc, ord)                                                            \
  TEST(GpuExhaustive, enc##_##ord##_32bit) {                                                     \
    expect_exhaustively_equal<dq4_path<encoding::enc, order::ord, 1>>(#enc " " #ord " 32-bit");  \
  }                                                                                              \
  TEST(GpuExhaustive, enc##_##ord##_128bit) {                                                    \
    expect_exhaustively_equal<dq4_path<encoding::enc, order::ord, 4>>(#enc " " #ord " 128-bit"); \
  }

DQ4_EXHAUSTIVE_TEST(u4, interleaved)
DQ4_EXHAUSTIVE_TEST(u4b8, interleaved)
DQ4_EXHAUSTIVE_TEST(s4, interleaved)
DQ4_EXHAUSTIVE_TEST(u4, sequential)
DQ4_EXHAUSTIVE_TEST(u4b8, sequential)
DQ4_EXHAUSTIVE_TEST(s4, sequential)

// The sweep can fail, and reports the count and the first mismatch exactly.
TEST(GpuCanary, BrokenPathIsCaughtWithCountAndFirstWord) {
  DQ4_REQUIRE_GPU();
  const int log2 = sweep_log2();
  sweep_result result{};
  ASSERT_NO_FATAL_FAILURE(run_sweep<broken_path>(std::uint64_t{1} << log2, result));
  EXPECT_EQ(result.counters.mismatches, std::uint64_t{1} << (log2 - 16));
  EXPECT_EQ(result.counters.first_mismatch, 0x1234u);
  std::string detail;
  ASSERT_NO_FATAL_FAILURE(describe_mismatch<broken_path>(0x1234u, detail));
  // Word 0x00001234: element 0 = nibble 0 = 4 (0x4400), element 1 = nibble 4 = 0 (0x0000).
  EXPECT_NE(detail.find("expected 00004400"), std::string::npos) << detail;
  EXPECT_NE(detail.find("actual   00014400"), std::string::npos) << detail;
}

// The device compilation of the reference gives the host's bits.
template <encoding E, order O>
__global__ void reference_kernel(const std::uint32_t* words, std::size_t n, std::uint32_t* out) {
  const std::size_t i = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const dq4::fp16x8 r = dq4::reference::to_fp16<E, O>(words[i]);
  for (int k = 0; k < 4; ++k) out[4 * i + k] = r.pairs[k];
}

template <encoding E, order O>
void expect_device_reference_matches_host() {
  // Every 16-bit pattern in the low half with its mirror in the high half, plus each value in all
  // eight nibbles: every value reaches every position.
  std::vector<std::uint32_t> words;
  for (std::uint32_t v = 0; v < 65536; ++v) words.push_back(v | ((v * 40503u) & 0xFFFFu) << 16);
  for (std::uint32_t v = 0; v < 16; ++v) words.push_back(v * 0x11111111u);
  const std::size_t n = words.size();
  std::uint32_t *d_words = nullptr, *d_out = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&d_words, n * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMalloc(&d_out, 4 * n * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMemcpy(d_words, words.data(), n * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  DQ4_CUDA_OK(cudaMemset(d_out, 0xEE, 4 * n * sizeof(std::uint32_t)));  // poison
  reference_kernel<E, O><<<static_cast<unsigned>((n + 255) / 256), 256>>>(d_words, n, d_out);
  DQ4_LAUNCH_OK();
  std::vector<std::uint32_t> out(4 * n);
  DQ4_CUDA_OK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(d_words));
  DQ4_CUDA_OK(cudaFree(d_out));
  for (std::size_t i = 0; i < n; ++i) {
    const dq4::fp16x8 host = dq4::reference::to_fp16<E, O>(words[i]);
    for (int k = 0; k < 4; ++k)
      ASSERT_EQ(out[4 * i + k], host.pairs[k]) << "word 0x" << std::hex << words[i] << " register " << k;
  }
}

TEST(GpuReference, DeviceAndHostReferencesAgree) {
  DQ4_REQUIRE_GPU();
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_device_reference_matches_host<P::encoding, P::order>();
  });
}

// fp16_array::half2(i) hands out register i unchanged, elements 2i (low) and 2i+1 (high).
__global__ void half2_kernel(uint4 words, __half2* out) {
  const dq4::fp16x32 v = dq4::to_fp16<encoding::s4, order::sequential>(words);
  for (int i = 0; i < 16; ++i) out[i] = v.half2(i);
}

TEST(GpuApi, Half2AccessorGivesTheRegisterBits) {
  DQ4_REQUIRE_GPU();
  const std::uint32_t words[4] = {0x89AB7654u, 0x765489ABu, 0x0F1E2D3Cu, 0xC3D2E1F0u};
  __half2* device = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&device, 16 * sizeof(__half2)));
  DQ4_CUDA_OK(cudaMemset(device, 0xEE, 16 * sizeof(__half2)));  // poison
  half2_kernel<<<1, 1>>>(make_uint4(words[0], words[1], words[2], words[3]), device);
  DQ4_LAUNCH_OK();
  std::uint32_t out[16];
  DQ4_CUDA_OK(cudaMemcpy(out, device, sizeof out, cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(device));
  for (int i = 0; i < 16; ++i) {
    const dq4::fp16x8 expected = dq4::reference::to_fp16<encoding::s4, order::sequential>(words[i / 4]);
    EXPECT_EQ(out[i], expected.pairs[i % 4]) << "register " << i;
  }
}

}  // namespace
