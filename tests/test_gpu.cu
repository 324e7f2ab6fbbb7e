// SPDX-License-Identifier: Apache-2.0
// Every device fast path against its reference, bit for bit, on the GPU: every unscaled path over all
// 2^32 words (and all 2^32 values of each word of the 128-bit form); every scaled and zero-point path
// over every fp16 / bf16 scale pattern (all 2^32 fp32 patterns) with every weight nibble and (q, z)
// pair, and over all 2^32 words with eight fixed, different scales and zeros (lanes do not mix);
// every zero-point reading over all 2^32 zeros words; zero points prepared on the host and used on
// the device. The 8-bit outputs (int8, e4m3, e5m2) unscaled over all 2^32 words in both forms; q - z
// without a scale (fp16, bf16, fp32, int8, e4m3) over every (q, z) pair in every position among varied
// neighbours, all 2^32 words with eight fixed zeros and all 2^32 zeros words; e8m0 block scales
// (e2m1 to e4m3) over every scale byte with every nibble in every position and over all 2^32 words
// for ten fixed scales; zero points and block scales prepared on the host and used on the device;
// the device compilation of every reference against the host's. Each test runs once per path (typed
// tests), so a failure names its path.
// Built twice: for the real targets, and as compute_75 PTX that the driver compiles for the GPU at
// hand, which runs the code paths of sm_75 (bf16 through fp32, the reference for bf16 scales).
// Without a usable GPU every test here skips and says why.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gpu_harness.cuh"
#include "paths.hpp"
#include "support/cuda_support.cuh"

namespace {

using namespace dq4_gpu_test;
using dq4::encoding;
using dq4::order;

// An unscaled path: every 32-bit index is a word (or four words, for the 128-bit form).
template <dq4::format F, encoding E, order O, int Words>
struct unscaled_path {
  static constexpr int registers = Words * registers_of<F>;
  static constexpr int log2_count = 32;
  static std::string name() {
    return dq4_test::format_name(F) + " " + dq4::detail::encoding_name(E) + " " + dq4_test::order_name(O) + (Words == 1 ? " 32-bit" : " 128-bit");
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

using dq4_support::eight_scales;
using dq4_support::eight_zeros;

// Scale sweeps: index i selects a scale (every 16-bit pattern, or every fp32 pattern) and a few
// words that put every weight nibble (or (q, stored zero) pair) under it. Word sweeps: every 32-bit
// word with eight_scales (and eight_zeros).
template <dq4::format F, int WordsPerScale>
__host__ __device__ std::uint32_t scale_of(std::uint32_t i) {
  return F == dq4::format::fp32 ? i : i / WordsPerScale;
}
template <dq4::format F, int WordsPerScale>
constexpr int scale_sweep_log2 = F == dq4::format::fp32 ? 32 : 16 + (WordsPerScale == 32 ? 5 : 1);

// What a zero-point sweep varies: every (q, stored zero) pair under every scale; every weight word
// with eight_zeros and eight_scales; every zeros word with varied weights and eight_scales.
enum class zero_sweep { pairs_and_scales, weight_words, zeros_words };

template <dq4::format F, dq4::zeros Z, order O, zero_sweep Sweep>
struct zero_point_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = Sweep == zero_sweep::pairs_and_scales ? scale_sweep_log2<F, 32> : 32;
  static std::string name() {
    return dq4_test::format_name(F) + " " + dq4_test::zeros_name(Z) + " " + dq4_test::order_name(O) +
           (Sweep == zero_sweep::pairs_and_scales ? " every scale"
            : Sweep == zero_sweep::weight_words   ? " every word"
                                                  : " every zeros word");
  }
  __host__ __device__ static void inputs(std::uint32_t i, std::uint32_t& w, std::uint32_t& z, dq4::fragment<F, 8>& s) {
    if constexpr (Sweep == zero_sweep::pairs_and_scales) {
      // pair index 8k + p (q = low nibble, stored zero = high nibble) at nibble p of pair k = i % 32
      w = z = 0;
      for (unsigned p = 0; p < 8; ++p) {
        const unsigned pair = 8 * (i % 32) + p;
        w |= (pair & 0xFu) << (4 * p);
        z |= (pair >> 4) << (4 * p);
      }
      s = dq4::splat<F>(scale_of<F, 32>(i));
    } else if constexpr (Sweep == zero_sweep::weight_words) {
      w = i;
      z = eight_zeros;
      s = eight_scales<F>();
    } else {
      w = i * 0x9E3779B1u;  // a bijection: weights vary with the zeros word
      z = i;
      s = eight_scales<F>();
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
    return dq4_test::format_name(F) + " " + dq4::detail::encoding_name(E) + " " + dq4_test::order_name(O) + " scaled" +
           (AllScales ? " every scale" : " every word");
  }
  __host__ __device__ static void inputs(std::uint32_t i, std::uint32_t& w, dq4::fragment<F, 8>& s) {
    if constexpr (AllScales) {
      w = i % 2 != 0 ? 0xFEDCBA98u : 0x76543210u;  // every nibble under every scale
      s = dq4::splat<F>(scale_of<F, 2>(i));
    } else {
      w = i;
      s = eight_scales<F>();
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

template <class P>
class GpuPath : public ::testing::Test {};
TYPED_TEST_SUITE(GpuPath, dq4_test::all_paths);

TYPED_TEST(GpuPath, UnscaledEveryWord32Bit) {
  expect_exhaustively_equal<unscaled_path<TypeParam::format, TypeParam::encoding, TypeParam::order, 1>>();
}
TYPED_TEST(GpuPath, UnscaledEveryWord128Bit) {
  expect_exhaustively_equal<unscaled_path<TypeParam::format, TypeParam::encoding, TypeParam::order, 4>>();
}
TYPED_TEST(GpuPath, ScaledEveryNibbleAndScale) {
  expect_exhaustively_equal<scaled_path<TypeParam::format, TypeParam::encoding, TypeParam::order, true>>();
}
TYPED_TEST(GpuPath, ScaledEveryWordWithFixedScales) {
  expect_exhaustively_equal<scaled_path<TypeParam::format, TypeParam::encoding, TypeParam::order, false>>();
}

template <class P>
class GpuZeroPath : public ::testing::Test {};
TYPED_TEST_SUITE(GpuZeroPath, dq4_test::all_zero_paths);

TYPED_TEST(GpuZeroPath, EveryPairAndScale) {
  expect_exhaustively_equal<zero_point_path<TypeParam::format, TypeParam::zeros, TypeParam::order, zero_sweep::pairs_and_scales>>();
}
TYPED_TEST(GpuZeroPath, EveryWordWithFixedScalesAndZeros) {
  expect_exhaustively_equal<zero_point_path<TypeParam::format, TypeParam::zeros, TypeParam::order, zero_sweep::weight_words>>();
}
TYPED_TEST(GpuZeroPath, EveryZerosWord) {
  expect_exhaustively_equal<zero_point_path<TypeParam::format, TypeParam::zeros, TypeParam::order, zero_sweep::zeros_words>>();
}

// The sweep can fail, and reports the count and the first mismatch exactly.
TEST(GpuCanary, BrokenPathIsCaughtWithCountAndFirstWord) {
  int log2 = 0;
  std::string error;
  ASSERT_TRUE(sweep_log2(32, log2, error)) << error;
  DQ4_REQUIRE_GPU();
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
  store<F>(dq4::reference::dequantize<F, E, O>(words[i], eight_scales<F>()), out + registers_of<F> * i);
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
    store<F>(dq4::reference::dequantize<F, E, O>(words[i], eight_scales<F>()), host);
    for (std::size_t k = 0; k < per_word; ++k)
      ASSERT_EQ(out[per_word * i + k], host[k]) << "word 0x" << std::hex << words[i] << " register " << k;
  }
}

TYPED_TEST(GpuPath, DeviceAndHostReferencesAgree) {
  DQ4_REQUIRE_GPU();
  expect_device_reference_matches_host<TypeParam::format, TypeParam::encoding, TypeParam::order>();
}

// Zero points prepared on the host, copied to the device and used there: the device's own
// preparation gives the same registers, bit for bit, and dequantize gives the reference's bits.
// The zeros words: every 16-bit pattern in the low half with a scrambled copy in the high half, and
// each nibble value in all eight nibbles.
__host__ __device__ std::uint32_t host_prepared_weights(std::size_t i, int k) {
  return k == 0 ? static_cast<std::uint32_t>(i) * 0x9E3779B1u : 0xFEDCBA98u ^ static_cast<std::uint32_t>(i);
}

template <dq4::format F, dq4::zeros Z, order O>
__global__ void host_prepared_kernel(const std::uint32_t* zeros_words, const dq4::zero_point<F, O>* host_prepared,
                                     std::size_t n, std::uint32_t* device_prepared, std::uint32_t* out) {
  const std::size_t i = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const dq4::zero_point<F, O> mine = dq4::prepare_zeros<F, Z, O>(zeros_words[i]);
  for (int r = 0; r < registers_of<F>; ++r) device_prepared[registers_of<F> * i + r] = mine.regs[r];
  for (int k = 0; k < 2; ++k) {
    store<F>(dq4::dequantize<F, O>(host_prepared_weights(i, k), host_prepared[i], eight_scales<F>()),
             out + registers_of<F> * (2 * i + static_cast<std::size_t>(k)));
  }
}

TYPED_TEST(GpuZeroPath, PreparedOnTheHostUsedOnTheDevice) {
  DQ4_REQUIRE_GPU();
  constexpr dq4::format F = TypeParam::format;
  constexpr dq4::zeros Z = TypeParam::zeros;
  constexpr order O = TypeParam::order;
  constexpr std::size_t per_zero = registers_of<F>;
  std::vector<std::uint32_t> zeros_words;
  for (std::uint32_t v = 0; v < 65536; ++v) zeros_words.push_back(v | ((v * 40503u) & 0xFFFFu) << 16);
  for (std::uint32_t v = 0; v < 16; ++v) zeros_words.push_back(v * 0x11111111u);
  const std::size_t n = zeros_words.size();
  std::vector<dq4::zero_point<F, O>> prepared;
  for (const std::uint32_t z : zeros_words) prepared.push_back(dq4::prepare_zeros<F, Z, O>(z));
  std::uint32_t *d_zeros = nullptr, *d_device_prepared = nullptr, *d_out = nullptr;
  dq4::zero_point<F, O>* d_prepared = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&d_zeros, n * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMalloc(&d_prepared, n * sizeof(dq4::zero_point<F, O>)));
  DQ4_CUDA_OK(cudaMalloc(&d_device_prepared, n * per_zero * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMalloc(&d_out, 2 * n * per_zero * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMemcpy(d_zeros, zeros_words.data(), n * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  DQ4_CUDA_OK(cudaMemcpy(d_prepared, prepared.data(), n * sizeof(dq4::zero_point<F, O>), cudaMemcpyHostToDevice));
  DQ4_CUDA_OK(cudaMemset(d_device_prepared, 0xEE, n * per_zero * sizeof(std::uint32_t)));  // poison
  DQ4_CUDA_OK(cudaMemset(d_out, 0xEE, 2 * n * per_zero * sizeof(std::uint32_t)));
  host_prepared_kernel<F, Z, O><<<static_cast<unsigned>((n + 255) / 256), 256>>>(d_zeros, d_prepared, n, d_device_prepared, d_out);
  DQ4_LAUNCH_OK();
  std::vector<std::uint32_t> device_prepared(n * per_zero), out(2 * n * per_zero);
  DQ4_CUDA_OK(cudaMemcpy(device_prepared.data(), d_device_prepared, device_prepared.size() * sizeof(std::uint32_t),
                         cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(d_zeros));
  DQ4_CUDA_OK(cudaFree(d_prepared));
  DQ4_CUDA_OK(cudaFree(d_device_prepared));
  DQ4_CUDA_OK(cudaFree(d_out));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t r = 0; r < per_zero; ++r) {
      ASSERT_EQ(device_prepared[per_zero * i + r], prepared[i].regs[r])
          << "zeros word 0x" << std::hex << zeros_words[i] << " register " << r;
    }
    for (int k = 0; k < 2; ++k) {
      const std::uint32_t word = host_prepared_weights(i, k);
      std::uint32_t expected[8];
      store<F>(dq4::reference::dequantize<F, Z, O>(word, zeros_words[i], eight_scales<F>()), expected);
      for (std::size_t r = 0; r < per_zero; ++r) {
        ASSERT_EQ(out[per_zero * (2 * i + static_cast<std::size_t>(k)) + r], expected[r])
            << "zeros word 0x" << std::hex << zeros_words[i] << " word 0x" << word;
      }
    }
  }
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

// ------------------------------------------------------------------------------------------------
// The 8-bit outputs (int8, e4m3, e5m2), unscaled.
// ------------------------------------------------------------------------------------------------

// The references' device compilation against the host's: Sample::expected(i) for every index below
// Sample::count, on both.
template <dq4::format F, encoding E, order O>
struct unscaled_reference_sample {
  static constexpr int registers = registers_of<F>;
  static constexpr std::uint32_t count = sample_word_count;
  static std::string input(std::uint32_t i) { return "word " + hex_word(sample_word(i)); }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::reference::dequantize<F, E, O>(sample_word(i)), out);
  }
};

template <class P>
class Gpu8BitPath : public ::testing::Test {};
TYPED_TEST_SUITE(Gpu8BitPath, dq4_test::eight_bit_paths);

TYPED_TEST(Gpu8BitPath, UnscaledEveryWord32Bit) {
  expect_exhaustively_equal<unscaled_path<TypeParam::format, TypeParam::encoding, TypeParam::order, 1>>();
}
TYPED_TEST(Gpu8BitPath, UnscaledEveryWord128Bit) {
  expect_exhaustively_equal<unscaled_path<TypeParam::format, TypeParam::encoding, TypeParam::order, 4>>();
}
TYPED_TEST(Gpu8BitPath, DeviceAndHostReferencesAgree) {
  DQ4_REQUIRE_GPU();
  expect_references_agree<unscaled_reference_sample<TypeParam::format, TypeParam::encoding, TypeParam::order>>();
}

// ------------------------------------------------------------------------------------------------
// q - z without a scale (fp16, bf16, fp32, int8, e4m3).
// ------------------------------------------------------------------------------------------------


// Two neighbour words for pattern t: both all 0 or all 1 (gptq_v1's carry runs through every nibble),
// one of each, then scrambled words.
__host__ __device__ constexpr void neighbour_words(std::uint32_t t, std::uint32_t& a, std::uint32_t& b) {
  if (t < 4) {
    a = (t & 1u) != 0 ? ~0u : 0u;
    b = t == 1 || t == 2 ? ~0u : 0u;
  } else {
    a = scrambled(2 * t);
    b = scrambled(2 * t + 1);
  }
}

// The word a with nibble p replaced by n.
__host__ __device__ constexpr std::uint32_t with_nibble(std::uint32_t a, unsigned p, unsigned n) {
  return (a & ~(0xFu << (4 * p))) | (n & 0xFu) << (4 * p);
}

template <dq4::format F, order O>
constexpr std::size_t zero_registers_of = sizeof(dq4::zero_point<F, O>::regs) / sizeof(std::uint32_t);

// q - z without a scale (kernels that apply the group scale after the MMA): every (q, stored zero)
// pair in every nibble position among varied neighbours (gptq_v1's carries come from the nibbles
// below); every weight word with eight_zeros; every zeros word with weights that vary with it.
enum class difference_sweep { pairs_in_every_position, weight_words, zeros_words };

template <dq4::format F, dq4::zeros Z, order O, difference_sweep Sweep>
struct difference_path {
  static constexpr int registers = registers_of<F>;
  // pairs: index = 8 positions x 256 (q, stored zero) pairs x 2^13 neighbour patterns
  static constexpr int log2_count = Sweep == difference_sweep::pairs_in_every_position ? 24 : 32;
  static std::string name() {
    return dq4_test::format_name(F) + " " + dq4_test::zeros_name(Z) + " " + dq4_test::order_name(O) + " q - z" +
           (Sweep == difference_sweep::pairs_in_every_position ? " every pair in every position"
            : Sweep == difference_sweep::weight_words          ? " every word"
                                                               : " every zeros word");
  }
  __host__ __device__ static void inputs(std::uint32_t i, std::uint32_t& w, std::uint32_t& z) {
    if constexpr (Sweep == difference_sweep::pairs_in_every_position) {
      const unsigned p = i % 8, q = (i / 8) % 16, stored = (i / 128) % 16;
      neighbour_words(i / 2048, w, z);
      w = with_nibble(w, p, q);
      z = with_nibble(z, p, stored);
    } else if constexpr (Sweep == difference_sweep::weight_words) {
      w = i;
      z = eight_zeros;
    } else {
      w = i * 0x9E3779B1u;  // a bijection: weights vary with the zeros word
      z = i;
    }
  }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w, z;
    inputs(i, w, z);
    store<F>(dq4::dequantize<F, O>(w, dq4::prepare_zeros<F, Z, O>(z)), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w, z;
    inputs(i, w, z);
    store<F>(dq4::reference::dequantize<F, Z, O>(w, z), out);
  }
};

template <dq4::format F, dq4::zeros Z, order O>
struct difference_reference_sample {
  static constexpr int registers = registers_of<F>;
  static constexpr std::uint32_t count = 2 * sample_word_count;  // two weight words per zeros word
  static std::string input(std::uint32_t i) {
    return "word " + hex_word(weight(i)) + ", zeros word " + hex_word(sample_word(i / 2));
  }
  __host__ __device__ static std::uint32_t weight(std::uint32_t i) {
    return host_prepared_weights(i / 2, static_cast<int>(i % 2));
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::reference::dequantize<F, Z, O>(weight(i), sample_word(i / 2)), out);
  }
};

template <class P>
class GpuUnscaledZeroPath : public ::testing::Test {};
TYPED_TEST_SUITE(GpuUnscaledZeroPath, dq4_test::unscaled_zero_paths);

TYPED_TEST(GpuUnscaledZeroPath, EveryPairInEveryPosition) {
  expect_exhaustively_equal<difference_path<TypeParam::format, TypeParam::zeros, TypeParam::order,
                                            difference_sweep::pairs_in_every_position>>();
}
TYPED_TEST(GpuUnscaledZeroPath, EveryWordWithFixedZeros) {
  expect_exhaustively_equal<
      difference_path<TypeParam::format, TypeParam::zeros, TypeParam::order, difference_sweep::weight_words>>();
}
TYPED_TEST(GpuUnscaledZeroPath, EveryZerosWord) {
  expect_exhaustively_equal<
      difference_path<TypeParam::format, TypeParam::zeros, TypeParam::order, difference_sweep::zeros_words>>();
}
TYPED_TEST(GpuUnscaledZeroPath, DeviceAndHostReferencesAgree) {
  DQ4_REQUIRE_GPU();
  expect_references_agree<difference_reference_sample<TypeParam::format, TypeParam::zeros, TypeParam::order>>();
}

// Zero points prepared on the host, copied to the device and used there without a scale: the device's
// own preparation gives the same registers, and dequantize the reference's q - z, bit for bit.
template <dq4::format F, dq4::zeros Z, order O>
__global__ void host_prepared_difference_kernel(const std::uint32_t* zeros_words, const dq4::zero_point<F, O>* host_prepared,
                                                std::size_t n, std::uint32_t* device_prepared, std::uint32_t* out) {
  const std::size_t i = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  constexpr std::size_t per_zero = zero_registers_of<F, O>;
  const dq4::zero_point<F, O> mine = dq4::prepare_zeros<F, Z, O>(zeros_words[i]);
  for (std::size_t r = 0; r < per_zero; ++r) device_prepared[per_zero * i + r] = mine.regs[r];
  for (int k = 0; k < 2; ++k) {
    store<F>(dq4::dequantize<F, O>(host_prepared_weights(i, k), host_prepared[i]),
             out + registers_of<F> * (2 * i + static_cast<std::size_t>(k)));
  }
}

TYPED_TEST(GpuUnscaledZeroPath, PreparedOnTheHostUsedOnTheDevice) {
  DQ4_REQUIRE_GPU();
  constexpr dq4::format F = TypeParam::format;
  constexpr dq4::zeros Z = TypeParam::zeros;
  constexpr order O = TypeParam::order;
  constexpr std::size_t per_zero = zero_registers_of<F, O>, per_output = registers_of<F>;
  const std::size_t n = sample_word_count;
  std::vector<std::uint32_t> zeros_words;
  std::vector<dq4::zero_point<F, O>> prepared;
  for (std::uint32_t i = 0; i < n; ++i) {
    zeros_words.push_back(sample_word(i));
    prepared.push_back(dq4::prepare_zeros<F, Z, O>(zeros_words.back()));
  }
  std::uint32_t *d_zeros = nullptr, *d_device_prepared = nullptr, *d_out = nullptr;
  dq4::zero_point<F, O>* d_prepared = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&d_zeros, n * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMalloc(&d_prepared, n * sizeof(dq4::zero_point<F, O>)));
  DQ4_CUDA_OK(cudaMalloc(&d_device_prepared, n * per_zero * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMalloc(&d_out, 2 * n * per_output * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMemcpy(d_zeros, zeros_words.data(), n * sizeof(std::uint32_t), cudaMemcpyHostToDevice));
  DQ4_CUDA_OK(cudaMemcpy(d_prepared, prepared.data(), n * sizeof(dq4::zero_point<F, O>), cudaMemcpyHostToDevice));
  DQ4_CUDA_OK(cudaMemset(d_device_prepared, 0xEE, n * per_zero * sizeof(std::uint32_t)));  // poison
  DQ4_CUDA_OK(cudaMemset(d_out, 0xEE, 2 * n * per_output * sizeof(std::uint32_t)));
  host_prepared_difference_kernel<F, Z, O>
      <<<static_cast<unsigned>((n + 255) / 256), 256>>>(d_zeros, d_prepared, n, d_device_prepared, d_out);
  DQ4_LAUNCH_OK();
  std::vector<std::uint32_t> device_prepared(n * per_zero), out(2 * n * per_output);
  DQ4_CUDA_OK(cudaMemcpy(device_prepared.data(), d_device_prepared, device_prepared.size() * sizeof(std::uint32_t),
                         cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(d_zeros));
  DQ4_CUDA_OK(cudaFree(d_prepared));
  DQ4_CUDA_OK(cudaFree(d_device_prepared));
  DQ4_CUDA_OK(cudaFree(d_out));
  mismatch_log registers_log, outputs_log;
  for (std::size_t i = 0; i < n; ++i) {
    registers_log.compare(device_prepared.data() + per_zero * i, prepared[i].regs, per_zero,
                          [&] { return "zeros word " + hex_word(zeros_words[i]); });
    for (int k = 0; k < 2; ++k) {
      const std::uint32_t word = host_prepared_weights(i, k);
      std::uint32_t expected[8];
      store<F>(dq4::reference::dequantize<F, Z, O>(word, zeros_words[i]), expected);
      outputs_log.compare(out.data() + per_output * (2 * i + static_cast<std::size_t>(k)), expected, per_output,
                          [&] { return "word " + hex_word(word) + ", zeros word " + hex_word(zeros_words[i]); });
    }
  }
  EXPECT_EQ(registers_log.count(), 0u) << registers_log.count() << " of " << n << " zero points prepared on the device "
                                       << "differ from the host's; " << registers_log.first();
  EXPECT_EQ(outputs_log.count(), 0u) << outputs_log.count() << " of " << 2 * n << " results from host-prepared zero "
                                     << "points differ from the reference; " << outputs_log.first();
}

// ------------------------------------------------------------------------------------------------
// e8m0 block scales, e2m1 to e4m3.
// ------------------------------------------------------------------------------------------------

// The e8m0 scale of byte s (0..255).
__host__ __device__ constexpr dq4::e8m0 scale_byte(std::uint32_t s) { return dq4::e8m0{static_cast<std::uint8_t>(s)}; }

// e8m0 block scales, e2m1 to e4m3. Scale < 0: every scale byte with every nibble value in every
// position among varied neighbours (index = 256 scales x 8 positions x 16 values x 512 neighbour
// words); otherwise every word with the scale byte Scale.
template <order O, int Scale>
struct block_scale_path {
  static constexpr dq4::format F = dq4::format::e4m3;
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = Scale < 0 ? 24 : 32;
  static std::string name() {
    return "e4m3 e2m1 " + dq4_test::order_name(O) + " e8m0 " +
           (Scale < 0 ? std::string("every scale, nibble and position") : std::to_string(Scale) + " every word");
  }
  __host__ __device__ static void inputs(std::uint32_t i, std::uint32_t& w, std::uint32_t& s) {
    if constexpr (Scale < 0) {
      s = i % 256;
      const unsigned p = (i / 256) % 8, n = (i / 2048) % 16, t = i / 32768;
      constexpr std::uint32_t plain[4] = {0u, ~0u, 0x88888888u, 0x77777777u};  // zeros, -6, -0, 6 around
      w = with_nibble(t < 4 ? plain[t] : scrambled(t), p, n);
    } else {
      w = i;
      s = static_cast<std::uint32_t>(Scale);
    }
  }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w, s;
    inputs(i, w, s);
    const dq4::block_scale<F> scale = dq4::prepare_block_scale<F>(scale_byte(s));
    store<F>(dq4::dequantize<F, encoding::e2m1, O>(w, scale), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    std::uint32_t w, s;
    inputs(i, w, s);
    store<F>(dq4::reference::dequantize<F, encoding::e2m1, O>(w, scale_byte(s)), out);
  }
};

// The fixed scales of the word sweeps: 2^0, the ends of the range where scaling adds to the exponent
// field (122, 133) and the bytes just outside it (121, 134), the smallest scales (0, 1), one that
// rounds every value to a subnormal or zero (117: 2^-10), the largest finite scale and NaN.
using fixed_block_scales = std::integer_sequence<int, 127, 122, 133, 134, 121, 0, 1, 117, 254, 255>;

// One sweep per scale; after a fatal failure (or a skip) the rest are not run.
template <order O, int... Scales>
void expect_every_word_with_scales(std::integer_sequence<int, Scales...>) {
  ((::testing::Test::HasFatalFailure() || ::testing::Test::IsSkipped()
        ? void()
        : expect_exhaustively_equal<block_scale_path<O, Scales>>()),
   ...);
}

// The words each block scale is tried on: each nibble value in all eight nibbles, then scrambled words.
constexpr std::uint32_t block_word_count = 256;
__host__ __device__ constexpr std::uint32_t block_word(std::uint32_t t) {
  return t < 16 ? t * 0x11111111u : scrambled(t);
}

template <order O>
struct block_scale_reference_sample {
  static constexpr dq4::format F = dq4::format::e4m3;
  static constexpr int registers = registers_of<F>;
  static constexpr std::uint32_t count = 256 * block_word_count;  // every scale byte with every word
  static std::string input(std::uint32_t i) {
    return "word " + hex_word(block_word(i / 256)) + ", scale " + std::to_string(i % 256);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::reference::dequantize<F, encoding::e2m1, O>(block_word(i / 256), scale_byte(i % 256)), out);
  }
};

template <class P>
class GpuBlockScalePath : public ::testing::Test {};
TYPED_TEST_SUITE(GpuBlockScalePath, dq4_test::block_scale_paths);

TYPED_TEST(GpuBlockScalePath, EveryScaleAndNibbleInEveryPosition) {
  expect_exhaustively_equal<block_scale_path<TypeParam::order, -1>>();
}
TYPED_TEST(GpuBlockScalePath, EveryWordWithFixedScales) {
  expect_every_word_with_scales<TypeParam::order>(fixed_block_scales{});
}
TYPED_TEST(GpuBlockScalePath, DeviceAndHostReferencesAgree) {
  DQ4_REQUIRE_GPU();
  expect_references_agree<block_scale_reference_sample<TypeParam::order>>();
}

// Block scales prepared on the host for all 256 bytes, copied to the device and used there: the
// device's own prepare_block_scale gives the same table registers and scale, and dequantize the
// reference's bits.
template <order O>
__global__ void host_prepared_block_scale_kernel(const dq4::block_scale<dq4::format::e4m3>* host_prepared,
                                                 std::uint32_t* device_prepared, std::uint32_t* out) {
  constexpr dq4::format F = dq4::format::e4m3;
  const unsigned s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= 256) return;
  const dq4::block_scale<F> mine = dq4::prepare_block_scale<F>(scale_byte(s));
  device_prepared[3 * s] = mine.table[0];
  device_prepared[3 * s + 1] = mine.table[1];
  device_prepared[3 * s + 2] = mine.scale.bits;
  for (std::uint32_t t = 0; t < block_word_count; ++t) {
    store<F>(dq4::dequantize<F, encoding::e2m1, O>(block_word(t), host_prepared[s]),
             out + registers_of<F> * (std::size_t{block_word_count} * s + t));
  }
}

TYPED_TEST(GpuBlockScalePath, PreparedOnTheHostUsedOnTheDevice) {
  DQ4_REQUIRE_GPU();
  constexpr dq4::format F = dq4::format::e4m3;
  constexpr order O = TypeParam::order;
  constexpr std::size_t per_output = registers_of<F>, outputs = 256 * std::size_t{block_word_count} * per_output;
  std::vector<dq4::block_scale<F>> prepared;
  for (unsigned s = 0; s < 256; ++s) prepared.push_back(dq4::prepare_block_scale<F>(scale_byte(s)));
  dq4::block_scale<F>* d_prepared = nullptr;
  std::uint32_t *d_device_prepared = nullptr, *d_out = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&d_prepared, 256 * sizeof(dq4::block_scale<F>)));
  DQ4_CUDA_OK(cudaMalloc(&d_device_prepared, 3 * 256 * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMalloc(&d_out, outputs * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMemcpy(d_prepared, prepared.data(), 256 * sizeof(dq4::block_scale<F>), cudaMemcpyHostToDevice));
  DQ4_CUDA_OK(cudaMemset(d_device_prepared, 0xEE, 3 * 256 * sizeof(std::uint32_t)));  // poison
  DQ4_CUDA_OK(cudaMemset(d_out, 0xEE, outputs * sizeof(std::uint32_t)));
  host_prepared_block_scale_kernel<O><<<2, 128>>>(d_prepared, d_device_prepared, d_out);
  DQ4_LAUNCH_OK();
  std::vector<std::uint32_t> device_prepared(3 * 256), out(outputs);
  DQ4_CUDA_OK(cudaMemcpy(device_prepared.data(), d_device_prepared, device_prepared.size() * sizeof(std::uint32_t),
                         cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(d_prepared));
  DQ4_CUDA_OK(cudaFree(d_device_prepared));
  DQ4_CUDA_OK(cudaFree(d_out));
  mismatch_log registers_log, outputs_log;
  for (unsigned s = 0; s < 256; ++s) {
    const std::uint32_t host[3] = {prepared[s].table[0], prepared[s].table[1], prepared[s].scale.bits};
    registers_log.compare(device_prepared.data() + 3 * s, host, 3,
                          [&] { return "scale " + std::to_string(s) + " (table[0], table[1], scale)"; });
    for (std::uint32_t t = 0; t < block_word_count; ++t) {
      std::uint32_t expected[2];
      store<F>(dq4::reference::dequantize<F, encoding::e2m1, O>(block_word(t), scale_byte(s)), expected);
      outputs_log.compare(out.data() + per_output * (std::size_t{block_word_count} * s + t), expected, per_output,
                          [&] { return "word " + hex_word(block_word(t)) + ", scale " + std::to_string(s); });
    }
  }
  EXPECT_EQ(registers_log.count(), 0u) << registers_log.count() << " of 256 block scales prepared on the device differ "
                                       << "from the host's; " << registers_log.first();
  EXPECT_EQ(outputs_log.count(), 0u) << outputs_log.count() << " of " << 256 * block_word_count << " results from "
                                     << "host-prepared block scales differ from the reference; " << outputs_log.first();
}

}  // namespace
