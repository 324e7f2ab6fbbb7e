// SPDX-License-Identifier: Apache-2.0
// Every device fast path against its reference, bit for bit, on the GPU: every unscaled path over all
// 2^32 words (and all 2^32 values of each word of the 128-bit form); every scaled and zero-point path
// over every fp16 / bf16 scale pattern (all 2^32 fp32 patterns) with every weight nibble and (q, z)
// pair, and over all 2^32 words with eight fixed, different scales and zeros (lanes do not mix).
// Built twice: for the real targets, and as compute_75 PTX that the driver compiles for the GPU at
// hand, which runs the code paths of sm_75 (bf16 through fp32, the reference for bf16 scales).
// Without a usable GPU every test here skips and says why.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
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

// log2 of the number of indices swept: the path's own count unless DQ4_SWEEP_LOG2 asks for fewer (for
// slow tools such as compute-sanitizer). The sweep size is printed with every result.
int sweep_log2(int path_log2) {
  const char* env = std::getenv("DQ4_SWEEP_LOG2");
  const int n = env != nullptr ? std::atoi(env) : 32;
  return n >= 8 && n < path_log2 ? n : path_log2;
}

std::string format_name(dq4::format f) {
  return f == dq4::format::fp16 ? "fp16" : f == dq4::format::bf16 ? "bf16" : "fp32";
}
std::string order_name(order o) { return o == order::interleaved ? "interleaved" : "sequential"; }
std::string zeros_name(dq4::zeros z) {
  return z == dq4::zeros::awq ? "awq" : z == dq4::zeros::gptq_v1 ? "gptq_v1" : "gptq_v2";
}

template <dq4::format F>
constexpr int registers_of = dq4::fragment<F, 8>::registers;

template <dq4::format F>
__host__ __device__ void store(const dq4::fragment<F, 8>& f, std::uint32_t* out) {
  for (int k = 0; k < registers_of<F>; ++k) out[k] = f.regs[k];
}

// An unscaled path: every 32-bit index is a word (or four words, for the 128-bit form).
template <dq4::format F, encoding E, order O, int Words>
struct unscaled_path {
  static constexpr int registers = Words * registers_of<F>;
  static constexpr int log2_count = 32;
  static std::string name() {
    return format_name(F) + " " + dq4::detail::encoding_name(E) + " " + order_name(O) + (Words == 1 ? " 32-bit" : " 128-bit");
  }
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
      store<F>(dq4::dequantize<F, E, O>(w[0]), out);
    } else {
      const dq4::fragment<F, 32> r = dq4::dequantize<F, E, O>(make_uint4(w[0], w[1], w[2], w[3]));
      for (int k = 0; k < registers; ++k) out[k] = r.regs[k];
    }
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w[Words];
    inputs(i, w);
    for (int n = 0; n < Words; ++n) store<F>(dq4::reference::dequantize<F, E, O>(w[n]), out + n * registers_of<F>);
  }
};

// Eight different scales for the sweeps that keep the scales fixed (a lane that read its neighbour's
// scale or zero would show): 1, a negative, the smallest subnormal, the largest finite value, two
// inexact fractions, -2 and the smallest normal.
template <dq4::format F>
__host__ __device__ dq4::fragment<F, 8> lane_scales() {
  const std::uint32_t fp16[8] = {0x3C00, 0xB555, 0x0001, 0x7BFF, 0x2E66, 0xC000, 0x0400, 0x3555};
  const std::uint32_t bf16[8] = {0x3F80, 0xBEAB, 0x0001, 0x7F7F, 0x3DCD, 0xC000, 0x0080, 0x3EAB};
  const std::uint32_t fp32[8] = {0x3F800000, 0xBEAAAAAB, 0x00000001, 0x7F7FFFFF,
                                 0x3DCCCCCD, 0xC0000000, 0x00800000, 0x3EAAAAAB};
  return dq4::reference::assemble<F>(F == dq4::format::fp16 ? fp16 : F == dq4::format::bf16 ? bf16 : fp32);
}
constexpr std::uint32_t lane_zeros = 0x2F8E5B4Cu;  // eight different stored zeros, 15 and 0 among them

// Scale sweeps: index i selects a scale (every 16-bit pattern, or every fp32 pattern) and a few
// words that put every weight nibble (or (q, stored zero) pair) under it. Word sweeps (AllScales
// false): every 32-bit word with lane_scales and lane_zeros.
template <dq4::format F, int WordsPerScale>
__host__ __device__ std::uint32_t scale_of(std::uint32_t i) {
  return F == dq4::format::fp32 ? i : i / WordsPerScale;
}
template <dq4::format F, int WordsPerScale>
constexpr int scale_sweep_log2 = F == dq4::format::fp32 ? 32 : 16 + (WordsPerScale == 32 ? 5 : 1);

template <dq4::format F, dq4::zeros Z, order O, bool AllScales>
struct zero_point_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = AllScales ? scale_sweep_log2<F, 32> : 32;
  static std::string name() {
    return format_name(F) + " " + zeros_name(Z) + " " + order_name(O) + (AllScales ? " every scale" : " every word");
  }
  __host__ __device__ static void inputs(std::uint32_t i, std::uint32_t& w, std::uint32_t& z, dq4::fragment<F, 8>& s) {
    if constexpr (AllScales) {
      // pair index 8k + p (q = low nibble, stored zero = high nibble) at nibble p of pair k = i % 32
      w = z = 0;
      for (unsigned p = 0; p < 8; ++p) {
        const unsigned pair = 8 * (i % 32) + p;
        w |= (pair & 0xFu) << (4 * p);
        z |= (pair >> 4) << (4 * p);
      }
      s = dq4::splat<F>(scale_of<F, 32>(i));
    } else {
      w = i;
      z = lane_zeros;
      s = lane_scales<F>();
    }
  }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w, z;
    dq4::fragment<F, 8> s;
    inputs(i, w, z, s);
    const dq4::zero_point<F, O> zero = dq4::prepare_zeros<F, Z, O>(z);
    store<F>(dq4::dequantize<F, O>(w, zero, s), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w, z;
    dq4::fragment<F, 8> s;
    inputs(i, w, z, s);
    store<F>(dq4::reference::dequantize<F, Z, O>(w, z, s), out);
  }
};

template <dq4::format F, encoding E, order O, bool AllScales>
struct scaled_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = AllScales ? scale_sweep_log2<F, 2> : 32;
  static std::string name() {
    return format_name(F) + " " + dq4::detail::encoding_name(E) + " " + order_name(O) + " scaled" +
           (AllScales ? " every scale" : " every word");
  }
  __host__ __device__ static void inputs(std::uint32_t i, std::uint32_t& w, dq4::fragment<F, 8>& s) {
    if constexpr (AllScales) {
      w = i % 2 != 0 ? 0xFEDCBA98u : 0x76543210u;  // every nibble under every scale
      s = dq4::splat<F>(scale_of<F, 2>(i));
    } else {
      w = i;
      s = lane_scales<F>();
    }
  }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w;
    dq4::fragment<F, 8> s;
    inputs(i, w, s);
    store<F>(dq4::dequantize<F, E, O>(w, s), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w;
    dq4::fragment<F, 8> s;
    inputs(i, w, s);
    store<F>(dq4::reference::dequantize<F, E, O>(w, s), out);
  }
};

// A deliberately broken path: element 1 (bit 16 of register 0) of the fp16 u4 interleaved result is
// wrong whenever the low 16 bits of the index are 0x1234, i.e. for 2^(log2 - 16) indices from 0x1234.
struct broken_path {
  using base = unscaled_path<dq4::format::fp16, encoding::u4, order::interleaved, 1>;
  static constexpr int registers = 4;
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    base::fast(i, out);
    if ((i & 0xFFFFu) == 0x1234u) out[0] ^= 0x00010000u;
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) { base::expected(i, out); }
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
void expect_exhaustively_equal() {
  DQ4_REQUIRE_GPU();
  const int log2 = sweep_log2(Path::log2_count);
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

TEST(GpuExhaustive, UnscaledEveryWord32Bit) {
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_exhaustively_equal<unscaled_path<P::format, P::encoding, P::order, 1>>();
  });
}

TEST(GpuExhaustive, UnscaledEveryWord128Bit) {
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_exhaustively_equal<unscaled_path<P::format, P::encoding, P::order, 4>>();
  });
}

TEST(GpuExhaustive, ZeroPointEveryPairAndScale) {
  const auto each = [](auto p) {
    using P = decltype(p);
    expect_exhaustively_equal<zero_point_path<P::format, P::zeros, P::order, true>>();
  };
  dq4_test::for_each_zero_path<dq4::format::fp16>(each);
  dq4_test::for_each_zero_path<dq4::format::bf16>(each);
  dq4_test::for_each_zero_path<dq4::format::fp32>(each);
}

TEST(GpuExhaustive, ZeroPointEveryWordWithFixedScalesAndZeros) {
  const auto each = [](auto p) {
    using P = decltype(p);
    expect_exhaustively_equal<zero_point_path<P::format, P::zeros, P::order, false>>();
  };
  dq4_test::for_each_zero_path<dq4::format::fp16>(each);
  dq4_test::for_each_zero_path<dq4::format::bf16>(each);
  dq4_test::for_each_zero_path<dq4::format::fp32>(each);
}

TEST(GpuExhaustive, ScaledEveryNibbleAndScale) {
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_exhaustively_equal<scaled_path<P::format, P::encoding, P::order, true>>();
  });
}

TEST(GpuExhaustive, ScaledEveryWordWithFixedScales) {
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_exhaustively_equal<scaled_path<P::format, P::encoding, P::order, false>>();
  });
}

// The sweep can fail, and reports the count and the first mismatch exactly.
TEST(GpuCanary, BrokenPathIsCaughtWithCountAndFirstWord) {
  DQ4_REQUIRE_GPU();
  const int log2 = sweep_log2(32);
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
template <dq4::format F, encoding E, order O>
__global__ void reference_kernel(const std::uint32_t* words, std::size_t n, std::uint32_t* out) {
  const std::size_t i = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  store<F>(dq4::reference::dequantize<F, E, O>(words[i], lane_scales<F>()), out + registers_of<F> * i);
}

template <dq4::format F, encoding E, order O>
void expect_device_reference_matches_host() {
  // Every 16-bit pattern in the low half with its mirror in the high half, plus each value in all
  // eight nibbles: every value reaches every position.
  std::vector<std::uint32_t> words;
  for (std::uint32_t v = 0; v < 65536; ++v) words.push_back(v | ((v * 40503u) & 0xFFFFu) << 16);
  for (std::uint32_t v = 0; v < 16; ++v) words.push_back(v * 0x11111111u);
  const std::size_t n = words.size(), per_word = registers_of<F>;
  std::uint32_t *d_words = nullptr, *d_out = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&d_words, n * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMalloc(&d_out, per_word * n * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMemcpy(d_words, words.data(), n * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  DQ4_CUDA_OK(cudaMemset(d_out, 0xEE, per_word * n * sizeof(std::uint32_t)));  // poison
  reference_kernel<F, E, O><<<static_cast<unsigned>((n + 255) / 256), 256>>>(d_words, n, d_out);
  DQ4_LAUNCH_OK();
  std::vector<std::uint32_t> out(per_word * n);
  DQ4_CUDA_OK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(d_words));
  DQ4_CUDA_OK(cudaFree(d_out));
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t host[8];
    store<F>(dq4::reference::dequantize<F, E, O>(words[i], lane_scales<F>()), host);
    for (std::size_t k = 0; k < per_word; ++k)
      ASSERT_EQ(out[per_word * i + k], host[k]) << "word 0x" << std::hex << words[i] << " register " << k;
  }
}

TEST(GpuReference, DeviceAndHostReferencesAgree) {
  DQ4_REQUIRE_GPU();
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_device_reference_matches_host<P::format, P::encoding, P::order>();
  });
}

// fragment::half2(i) and bfloat162(i) hand out register i unchanged, elements 2i (low) and 2i+1 (high).
__global__ void half2_kernel(uint4 words, __half2* out, __nv_bfloat162* out_bf16) {
  const dq4::fp16x32 v = dq4::to_fp16<encoding::s4, order::sequential>(words);
  const dq4::bf16x32 b = dq4::to_bf16<encoding::s4, order::sequential>(words);
  for (int i = 0; i < 16; ++i) {
    out[i] = v.half2(i);
    out_bf16[i] = b.bfloat162(i);
  }
}

TEST(GpuApi, Half2AccessorGivesTheRegisterBits) {
  DQ4_REQUIRE_GPU();
  const std::uint32_t words[4] = {0x89AB7654u, 0x765489ABu, 0x0F1E2D3Cu, 0xC3D2E1F0u};
  __half2* device = nullptr;
  __nv_bfloat162* device_bf16 = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&device, 16 * sizeof(__half2)));
  DQ4_CUDA_OK(cudaMalloc(&device_bf16, 16 * sizeof(__nv_bfloat162)));
  DQ4_CUDA_OK(cudaMemset(device, 0xEE, 16 * sizeof(__half2)));  // poison
  DQ4_CUDA_OK(cudaMemset(device_bf16, 0xEE, 16 * sizeof(__nv_bfloat162)));
  half2_kernel<<<1, 1>>>(make_uint4(words[0], words[1], words[2], words[3]), device, device_bf16);
  DQ4_LAUNCH_OK();
  std::uint32_t out[16], out_bf16[16];
  DQ4_CUDA_OK(cudaMemcpy(out, device, sizeof out, cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaMemcpy(out_bf16, device_bf16, sizeof out_bf16, cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(device));
  DQ4_CUDA_OK(cudaFree(device_bf16));
  for (int i = 0; i < 16; ++i) {
    const std::uint32_t word = words[i / 4];
    EXPECT_EQ(out[i], (dq4::reference::dequantize<dq4::format::fp16, encoding::s4, order::sequential>(word).regs[i % 4])) << i;
    EXPECT_EQ(out_bf16[i], (dq4::reference::dequantize<dq4::format::bf16, encoding::s4, order::sequential>(word).regs[i % 4])) << i;
  }
}

}  // namespace
