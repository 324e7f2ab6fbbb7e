// SPDX-License-Identifier: Apache-2.0
// The block-scaled fp4 checkpoint readers (checkpoint_fp4.hpp) against the upstream writers' and
// readers' arithmetic (fp4_writers.hpp): gpt-oss MXFP4 as ModelOpt's exporter and triton_kernels
// pack it and as gpt-oss / transformers read it; NVFP4 as ModelOpt and compressed-tensors pack it
// and as ModelOpt, compressed-tensors and vLLM read it. Edge cases first (the -0 nibble, scale
// bytes 0 and 0xFF, NaN and -0 e4m3 scales, widths that are not whole blocks), then round trips,
// then every bad input rejected with the numbers. No tolerances: values are compared as bits.
// dq4.cuh sizes arrays with int constants, which -Wsign-conversion (not one of dq4's own warning
// flags) reports; it is included first with that one warning off, so that checkpoint.hpp,
// checkpoint_fp4.hpp and this file are still built with it.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif  // defined(__GNUC__)
#include <dq4/dq4.cuh>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif  // defined(__GNUC__)

#include <dq4/checkpoint_fp4.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "fp4_writers.hpp"

namespace {

using dq4::nvfp4_checkpoint;
using dq4_test::bits_of;

static_assert(std::numeric_limits<float>::is_iec559 && FLT_EVAL_METHOD == 0,
              "the vLLM model below divides in IEEE fp32, as torch does");

// The exact value of an e2m1 nibble (dq4::reference::number_of_nibble) times 2^exponent, as a
// double (exact for every exponent an e8m0 byte gives).
double e2m1_times_power_of_two(unsigned nibble, int exponent) {
  const dq4::reference::exact_number x = dq4::reference::number_of_nibble<dq4::encoding::e2m1>(nibble);
  const double magnitude = std::ldexp(static_cast<double>(x.magnitude), x.exponent + exponent);
  return x.negative ? -magnitude : magnitude;
}

// What dq4's reader output means by dq4's definitions: the nibble's value times 2^(E - 127), and
// NaN for E = 0xFF (dq4::e8m0, as in OCP MX).
double dq4_mxfp4_value(unsigned nibble, dq4::e8m0 scale) {
  if (scale.bits == 0xFFu) return std::numeric_limits<double>::quiet_NaN();
  return e2m1_times_power_of_two(nibble, static_cast<int>(scale.bits) - 127);
}

// The e2m1 value of a nibble as an fp32, from dq4's definition.
float dq4_e2m1_float(unsigned nibble) {
  const dq4::reference::exact_number x = dq4::reference::number_of_nibble<dq4::encoding::e2m1>(nibble);
  const float magnitude = std::ldexp(static_cast<float>(x.magnitude), x.exponent);
  return x.negative ? -magnitude : magnitude;
}

// The nibble dq4's sequential order puts element j of a word at (reference::nibble, order::sequential).
unsigned word_nibble(std::uint32_t word, std::size_t j) {
  return dq4::reference::nibble(word, dq4::source_nibble(dq4::order::sequential, static_cast<int>(j)));
}

dq4::mxfp4_matrix read_gpt_oss(const dq4_test::mxfp4_tensors& t, std::size_t experts, std::size_t n,
                               std::size_t groups) {
  return dq4::from_gpt_oss_mxfp4(t.blocks.data(), {experts, n, groups, 16}, t.scales.data(), {experts, n, groups});
}

// Every element of the reader's output, decoded with dq4's definitions from the words and scales
// alone, equals transformers' dequantization of the stored bytes, bit for bit, at transformers'
// transposed position [e][k][n]; in blocks with the scale byte 0xFF (NaN to dq4, 2^128 to
// transformers) the reader's nibble times 2^128 equals transformers' value.
void expect_matches_transformers(const dq4_test::mxfp4_tensors& t, std::size_t experts, std::size_t n_dim,
                                 std::size_t groups) {
  const dq4::mxfp4_matrix m = read_gpt_oss(t, experts, n_dim, groups);
  ASSERT_EQ(m.experts, experts);
  ASSERT_EQ(m.rows, n_dim);
  ASSERT_EQ(m.cols, groups * 32);
  const std::size_t k_dim = m.cols;
  const std::vector<double> upstream = dq4_test::transformers_convert_moe_packed_tensors(t, experts, n_dim, groups);
  for (std::size_t e = 0; e < experts; ++e)
    for (std::size_t n = 0; n < n_dim; ++n)
      for (std::size_t k = 0; k < k_dim; ++k) {
        const std::uint32_t word = m.words[(e * n_dim + n) * (k_dim / 8) + k / 8];
        const dq4::e8m0 s = m.scales[(e * n_dim + n) * (k_dim / 32) + k / 32];
        ASSERT_EQ(m.nibble(e, n, k), word_nibble(word, k % 8));
        ASSERT_EQ(m.scale(e, n, k).bits, s.bits);
        const double ours = dq4_mxfp4_value(word_nibble(word, k % 8), s);
        if (s.bits == 0xFFu) {
          ASSERT_TRUE(std::isnan(ours));
          ASSERT_EQ(bits_of(e2m1_times_power_of_two(word_nibble(word, k % 8), 128)),
                    bits_of(upstream[(e * k_dim + k) * n_dim + n]));
          continue;
        }
        ASSERT_EQ(bits_of(ours), bits_of(upstream[(e * k_dim + k) * n_dim + n]))
            << "expert " << e << ", n " << n << ", k " << k << ": " << ours << " vs "
            << upstream[(e * k_dim + k) * n_dim + n];
      }
}

// ---- gpt-oss MXFP4: edge cases ----

TEST(GptOssMxfp4, TheMinusZeroNibbleReadsAsMinusZeroLikeTransformers) {
  // One block of one row: nibble 8 (-0) at every even k, nibble 0 (+0) at every odd k, as
  // triton_kernels packs codes (evens | odds << 4).
  std::vector<unsigned> codes(32);
  for (std::size_t k = 0; k < 32; ++k) codes[k] = k % 2 == 0 ? 8u : 0u;
  dq4_test::mxfp4_tensors t{dq4_test::triton_mxfp4_pack(codes), {127}};
  EXPECT_EQ(t.blocks[0], 0x08u);
  expect_matches_transformers(t, 1, 1, 1);
  const dq4::mxfp4_matrix m = read_gpt_oss(t, 1, 1, 1);
  EXPECT_EQ(m.words[0], 0x08080808u);
  EXPECT_EQ(bits_of(dq4_mxfp4_value(m.nibble(0, 0, 0), m.scale(0, 0, 0))), bits_of(-0.0));
  EXPECT_EQ(bits_of(dq4_mxfp4_value(m.nibble(0, 0, 1), m.scale(0, 0, 1))), bits_of(+0.0));
}

TEST(GptOssMxfp4, ModelOptsExporterWritesEveryZeroAsMinusZeroAndZeroBlocksAsScaleZero) {
  // torch.sign(0) = 0 makes ModelOpt's sign bit (2 - 0) // 2 = 1; an all-zero block's scale is
  // ceil(max(log2(0), -127)) + 127 = 0.
  std::vector<float> param(32 * 2, 0.0f);  // [E = 1][K = 32][N = 2]
  for (std::size_t k = 0; k < 32; ++k) param[k * 2 + 1] = k % 4 == 0 ? 0.0f : 1.5f;  // column n = 1
  const dq4_test::mxfp4_tensors t = dq4_test::modelopt_gpt_oss_export(param, 1, 32, 2);
  const dq4::mxfp4_matrix m = read_gpt_oss(t, 1, 2, 1);
  EXPECT_EQ(m.scale(0, 0, 0).bits, 0u);  // row n = 0 is all zeros
  for (std::size_t k = 0; k < 32; ++k) {
    EXPECT_EQ(m.nibble(0, 0, k), 8u) << k;
    EXPECT_EQ(m.nibble(0, 1, k), k % 4 == 0 ? 8u : 7u) << k;  // 1.5 = 6 * 2^-2
  }
  EXPECT_EQ(m.scale(0, 1, 0).bits, 125u);  // descale 1.5 / 6 = 2^-2: ceil(log2) = -2, + 127
  expect_matches_transformers(t, 1, 2, 1);
}

TEST(GptOssMxfp4, ScaleByteZeroIsTwoToTheMinus127AndByteFFIsKeptAsStored) {
  std::vector<unsigned> codes(64);
  for (std::size_t k = 0; k < 64; ++k) codes[k] = static_cast<unsigned>(k % 16);  // every nibble twice
  dq4_test::mxfp4_tensors t{dq4_test::triton_mxfp4_pack(codes), {0x00, 0xFF}};
  const dq4::mxfp4_matrix m = read_gpt_oss(t, 1, 1, 2);
  EXPECT_EQ(m.scales[0].bits, 0x00u);
  EXPECT_EQ(m.scales[1].bits, 0xFFu);
  // E = 0: gpt-oss and transformers ldexp by -127, which is what 2^(E - 127) means to dq4 too.
  expect_matches_transformers(t, 1, 1, 2);
  EXPECT_EQ(dq4_mxfp4_value(1, dq4::e8m0{0x00}), std::ldexp(0.5, -127));  // a subnormal in fp32, exact in bf16
  // E = 0xFF: no upstream reader special-cases it. gpt-oss and transformers compute ldexp(v, 128)
  // (beyond bf16: +-inf, or NaN for a zero where torch forms 2^128 first); triton_kernels' torch
  // reference reads the byte as the fp32 exponent field, +inf; OCP MX and dq4's e8m0 paths read
  // it as NaN. The reader keeps the byte; what it means is the kernel's choice.
  EXPECT_TRUE(std::isinf(dq4_test::triton_upcast_scale(0xFF)));
  EXPECT_EQ(bits_of(dq4_test::triton_upcast_scale(0x00)), 0u);  // and 0 is +0 there, not 2^-127
  using dq4::encoding, dq4::format, dq4::order;
  const auto nan = dq4::reference::dequantize<format::e4m3, encoding::e2m1, order::sequential>(m.words[4], m.scales[1]);
  EXPECT_EQ(nan.regs[0] & 0x7F7F7F7Fu, 0x7F7F7F7Fu);
  EXPECT_EQ(nan.regs[1] & 0x7F7F7F7Fu, 0x7F7F7F7Fu);
}

// ---- gpt-oss MXFP4: round trips ----

TEST(GptOssMxfp4, ModelOptsExportReadsBackAsTransformersDequantizesIt) {
  // transformers' parameter [E][K][N], with values of every e2m1 magnitude under many block
  // scales, signs, zeros and values between e2m1 points (which the writer rounds its way).
  constexpr std::size_t experts = 3, k_dim = 96, n_dim = 5;
  // Each block (e, n, k / 32) has its own power of two (2^-20 .. 2^19) and values of 0 .. 6 in
  // steps of 0.5 times it: the writer's scale is that power wherever the block's amax is above 3.
  std::vector<float> param(experts * k_dim * n_dim);
  std::uint32_t state = 12345;
  for (std::size_t e = 0; e < experts; ++e)
    for (std::size_t k = 0; k < k_dim; ++k)
      for (std::size_t n = 0; n < n_dim; ++n) {
        state = state * 1664525u + 1013904223u;
        const int exponent = static_cast<int>((e * 131 + n * 17 + (k / 32) * 7) % 40) - 20;
        const float magnitude = static_cast<float>((state >> 16) % 13) * 0.5f;  // 0 .. 6, also 2.5, 3.5, 4.5, 5, 5.5
        const float x = std::ldexp(magnitude, exponent);
        param[(e * k_dim + k) * n_dim + n] = ((state >> 30) & 1u) != 0 ? -x : x;
      }
  const dq4_test::mxfp4_tensors t = dq4_test::modelopt_gpt_oss_export(param, experts, k_dim, n_dim);
  expect_matches_transformers(t, experts, n_dim, k_dim / 32);
  // Exactly representable inputs come back exactly (zeros as -0, see above).
  const dq4::mxfp4_matrix m = read_gpt_oss(t, experts, n_dim, k_dim / 32);
  std::size_t exact = 0;
  for (std::size_t e = 0; e < experts; ++e)
    for (std::size_t k = 0; k < k_dim; ++k)
      for (std::size_t n = 0; n < n_dim; ++n) {
        const float x = param[(e * k_dim + k) * n_dim + n];
        const double ours = dq4_mxfp4_value(m.nibble(e, n, k), m.scale(e, n, k));
        if (x == 0) {
          EXPECT_EQ(bits_of(ours), bits_of(-0.0));
        } else if (std::fabs(ours - static_cast<double>(x)) == 0) {
          ++exact;
        }
      }
  EXPECT_GT(exact, param.size() / 3);
}

TEST(GptOssMxfp4, AThreeDimensionalPairIsOneMatrix) {
  std::vector<unsigned> codes(2 * 64);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<unsigned>((i * 7) % 16);
  const std::vector<std::uint8_t> blocks = dq4_test::triton_mxfp4_pack(codes);
  const std::vector<std::uint8_t> scales = {120, 121, 122, 123};
  const dq4::mxfp4_matrix m = dq4::from_gpt_oss_mxfp4(blocks.data(), {2, 2, 16}, scales.data(), {2, 2});
  EXPECT_EQ(m.experts, 1u);
  EXPECT_EQ(m.rows, 2u);
  EXPECT_EQ(m.cols, 64u);
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t k = 0; k < 64; ++k) {
      EXPECT_EQ(m.nibble(0, n, k), codes[n * 64 + k]);
      EXPECT_EQ(m.scale(0, n, k).bits, scales[n * 2 + k / 32]);
    }
}

// ---- NVFP4: edge cases ----

// A [rows][cols] NVFP4 tensor set from nibble codes (packed low nibble first, as both exporters do),
// scale bytes and a global scale.
dq4_test::nvfp4_tensors nvfp4_of_codes(const std::vector<unsigned>& codes, std::vector<std::uint8_t> scales,
                                       float global) {
  dq4_test::nvfp4_tensors t;
  t.weight = dq4_test::triton_mxfp4_pack(codes);  // the same byte order: evens | odds << 4
  t.weight_scale = std::move(scales);
  t.global_scale = global;
  return t;
}

dq4::nvfp4_matrix read_nvfp4(nvfp4_checkpoint c, const dq4_test::nvfp4_tensors& t, std::size_t rows, std::size_t cols) {
  const std::array<std::uint8_t, 4> g = dq4_test::le_bytes(t.global_scale);
  return dq4::from_nvfp4(c, t.weight.data(), {rows, cols / 2}, t.weight_scale.data(), {rows, cols / 16}, g.data(), {});
}

// The reader's output decoded with dq4's definitions, multiplied in ModelOpt's order
// (e2m1 * (s * g), fp32), against ModelOpt's own dequantization of the stored tensors: equal bits
// everywhere but at nibble 8, which ModelOpt's table reads as +0 and dq4 (like OCP e2m1, the
// hardware conversions, transformers and compressed-tensors) as -0: there exactly the sign bit of
// a zero differs. Returns how many nibbles were 8.
std::size_t expect_matches_modelopt(const dq4_test::nvfp4_tensors& t, std::size_t rows, std::size_t cols) {
  const dq4::nvfp4_matrix m = read_nvfp4(nvfp4_checkpoint::modelopt, t, rows, cols);
  EXPECT_EQ(m.global_scale_from, dq4::nvfp4_global_scale::stored_multiplier);
  EXPECT_EQ(bits_of(m.global_scale), bits_of(t.global_scale));
  EXPECT_EQ(bits_of(m.stored_global_scale), bits_of(t.global_scale));
  const std::vector<float> upstream = dq4_test::modelopt_nvfp4_dequantize(t, rows, cols);
  std::size_t minus_zeros = 0;
  for (std::size_t n = 0; n < rows; ++n)
    for (std::size_t k = 0; k < cols; ++k) {
      const unsigned q = word_nibble(m.words[n * (cols / 8) + k / 8], k % 8);
      const float s = dq4_test::e4m3_to_float(m.scales[n * (cols / 16) + k / 16]);
      const float ours = dq4_e2m1_float(q) * (s * m.global_scale);
      const float theirs = upstream[n * cols + k];
      if (q == 8) {
        ++minus_zeros;
        if (!std::isnan(theirs)) {
          EXPECT_EQ(bits_of(ours) ^ bits_of(theirs), 0x80000000u) << n << ", " << k;
          EXPECT_EQ(ours, 0.0f);
        }
      } else {
        EXPECT_EQ(bits_of(ours), bits_of(theirs)) << n << ", " << k << ": " << ours << " vs " << theirs;
      }
      EXPECT_EQ(m.nibble(n, k), q);
      EXPECT_EQ(m.scale(n, k), m.scales[n * (cols / 16) + k / 16]);
    }
  return minus_zeros;
}

// The same for compressed-tensors: its own decompression (e2m1 * (s / D), fp32) from the stored
// tensors against the reader's output decoded by dq4 with stored_global_scale (equal everywhere,
// nibble 8 included), and the multiplier against vLLM's 1.0 / D.
void expect_matches_compressed_tensors(const dq4_test::nvfp4_tensors& t, std::size_t rows, std::size_t cols) {
  const dq4::nvfp4_matrix m = read_nvfp4(nvfp4_checkpoint::compressed_tensors, t, rows, cols);
  EXPECT_EQ(m.global_scale_from, dq4::nvfp4_global_scale::fp32_reciprocal_of_stored);
  EXPECT_EQ(bits_of(m.stored_global_scale), bits_of(t.global_scale));
  EXPECT_EQ(bits_of(m.global_scale), bits_of(dq4_test::vllm_ct_weight_global_scale(t.global_scale)));
  const std::vector<float> upstream = dq4_test::ct_decompress(t, rows, cols);
  for (std::size_t n = 0; n < rows; ++n)
    for (std::size_t k = 0; k < cols; ++k) {
      const unsigned q = word_nibble(m.words[n * (cols / 8) + k / 8], k % 8);
      const float s = dq4_test::e4m3_to_float(m.scales[n * (cols / 16) + k / 16]);
      const float ours = dq4_e2m1_float(q) * (s / m.stored_global_scale);
      EXPECT_EQ(bits_of(ours), bits_of(upstream[n * cols + k]))
          << n << ", " << k << ": " << ours << " vs " << upstream[n * cols + k];
    }
}

TEST(Nvfp4, TheMinusZeroNibbleDiffersFromModelOptsTableOnlyInTheSignOfZero) {
  std::vector<unsigned> codes(32);
  for (std::size_t k = 0; k < 32; ++k) codes[k] = k % 3 == 0 ? 8u : static_cast<unsigned>(k % 16);
  const dq4_test::nvfp4_tensors t = nvfp4_of_codes(codes, {0x38, 0x40}, 0.25f);  // s = 1, 2
  EXPECT_EQ(expect_matches_modelopt(t, 1, 32), 12u);  // k = 0, 3, ..., 30 and k = 8
  expect_matches_compressed_tensors(t, 1, 32);
  const dq4::nvfp4_matrix m = read_nvfp4(nvfp4_checkpoint::modelopt, t, 1, 32);
  EXPECT_EQ(m.nibble(0, 0), 8u);
  EXPECT_EQ(bits_of(dq4_e2m1_float(m.nibble(0, 0))), bits_of(-0.0f));
}

TEST(Nvfp4, NanAndMinusZeroScaleBytesAreKeptWhereTheyAre) {
  // Rows of 32: blocks with scale bytes 0x7F (NaN), 0xFF (-NaN), 0x80 (-0) and 0x01 (2^-9, the
  // smallest), each read where the writer put it.
  std::vector<unsigned> codes(64);
  for (std::size_t k = 0; k < 64; ++k) codes[k] = static_cast<unsigned>((k * 5) % 16);
  const dq4_test::nvfp4_tensors t = nvfp4_of_codes(codes, {0x7F, 0xFF, 0x80, 0x01}, 3.0f);
  for (const nvfp4_checkpoint c : {nvfp4_checkpoint::modelopt, nvfp4_checkpoint::compressed_tensors}) {
    const dq4::nvfp4_matrix m = read_nvfp4(c, t, 2, 32);
    EXPECT_EQ(m.scales, (std::vector<std::uint8_t>{0x7F, 0xFF, 0x80, 0x01}));
    EXPECT_EQ(m.scale(0, 15), 0x7Fu);
    EXPECT_EQ(m.scale(0, 16), 0xFFu);
    EXPECT_EQ(m.scale(1, 0), 0x80u);
    EXPECT_EQ(m.scale(1, 31), 0x01u);
  }
  expect_matches_modelopt(t, 2, 32);
  expect_matches_compressed_tensors(t, 2, 32);
  EXPECT_TRUE(std::isnan(dq4_test::e4m3_to_float(0x7F)));
  EXPECT_EQ(bits_of(dq4_test::e4m3_to_float(0x80)), bits_of(-0.0f));
}

TEST(Nvfp4, AWidthThatIsNotAWholeNumberOfBlocksIsRefusedWithTheReason) {
  // K = 40: ModelOpt asserts K % 16 == 0 before it exports, vLLM refuses the layer, and
  // compressed-tensors refuses to quantize it: no checkpoint has one, and there is no padding rule
  // to read it by. The scales of K = 40 would be 2 (vLLM's K // 16) or 3 (a ceiling): both refused.
  const std::vector<std::uint8_t> weight(4 * 20), scales(4 * 3);
  const std::array<std::uint8_t, 4> g = dq4_test::le_bytes(1.0f);
  for (const nvfp4_checkpoint c : {nvfp4_checkpoint::modelopt, nvfp4_checkpoint::compressed_tensors}) {
    for (const std::size_t blocks : {std::size_t{2}, std::size_t{3}}) {
      try {
        (void)dq4::from_nvfp4(c, weight.data(), {4, 20}, scales.data(), {4, blocks}, g.data(), {1});
        ADD_FAILURE() << "K = 40 accepted";
      } catch (const dq4::layout_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("K = 40"), std::string::npos) << what;
        EXPECT_NE(what.find("not a multiple of the block size 16"), std::string::npos) << what;
        EXPECT_NE(what.find("[4, 20]"), std::string::npos) << what;
      }
    }
  }
}

// ---- NVFP4: round trips ----

TEST(Nvfp4, ModelOptsExportReadsBackAsModelOptDequantizesIt) {
  constexpr std::size_t rows = 6, cols = 96;
  std::vector<float> w(rows * cols);
  std::uint32_t state = 99;
  for (float& x : w) {
    state = state * 1664525u + 1013904223u;
    const float magnitude =
        std::ldexp(static_cast<float>((state >> 8) & 0xFFFu), static_cast<int>((state >> 20) % 12) - 16);
    x = ((state >> 31) & 1u) != 0 ? -magnitude : magnitude;
  }
  for (std::size_t k = 0; k < 16; ++k) w[2 * cols + 16 + k] = 0.0f;  // an all-zero block (scale 1.0)
  w[3 * cols + 7] = -1e-30f;                                           // a small negative: nibble 8
  const dq4_test::nvfp4_tensors t = dq4_test::modelopt_nvfp4_export(w, rows, cols);
  EXPECT_GE(expect_matches_modelopt(t, rows, cols), 1u);
}

TEST(Nvfp4, CompressedTensorsPackReadsBackAsCompressedTensorsAndVllmReadIt) {
  constexpr std::size_t rows = 4, cols = 64;
  constexpr std::array<float, 16> values = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<float> q(rows * cols);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = values[(i * 11 + i / 64) % 16];
  std::vector<std::uint8_t> scales(rows * cols / 16);
  for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = static_cast<std::uint8_t>(0x08 + 7 * i);  // normal, > 0
  for (const float amax : {1.0f, 3.3f, 1e-3f, 7.25e4f, 123.456f}) {
    dq4_test::nvfp4_tensors t;
    t.weight = dq4_test::ct_pack_fp4_to_uint8(q);
    t.weight_scale = scales;
    t.global_scale = dq4_test::ct_generate_gparam(amax);
    expect_matches_compressed_tensors(t, rows, cols);
    const dq4::nvfp4_matrix m = read_nvfp4(nvfp4_checkpoint::compressed_tensors, t, rows, cols);
    for (std::size_t n = 0; n < rows; ++n)
      for (std::size_t k = 0; k < cols; ++k)
        ASSERT_EQ(bits_of(dq4_e2m1_float(m.nibble(n, k))), bits_of(q[n * cols + k])) << n << ", " << k;  // -0 too
  }
}

// g = 1 / D rounded once to fp32 with integer arithmetic gives the bits of the IEEE division vLLM
// does (torch's reciprocal), for every exponent field, subnormal D included (where 1 / D
// overflows the reader refuses: tested below), and for every mantissa of two binades.
TEST(Nvfp4, TheCompressedTensorsMultiplierIsVllmsFp32Reciprocal) {
  const auto check = [](std::uint32_t bits) {
    const float stored = dq4_test::float_of(bits);
    const std::uint32_t expected = bits_of(1.0f / stored);
    ASSERT_EQ(dq4::detail::fp32_reciprocal_bits(bits), expected) << std::hex << bits;
  };
  std::uint32_t state = 1;
  for (std::uint32_t field = 0; field < 255; ++field) {
    for (const std::uint32_t mantissa : {0u, 1u, 2u, 0x400000u, 0x555555u, 0x7FFFFEu, 0x7FFFFFu}) {
      if (field == 0 && mantissa == 0) continue;
      check(field << 23 | mantissa);
    }
    for (int i = 0; i < 2000; ++i) {
      state = state * 1664525u + 1013904223u;
      if ((field << 23 | (state >> 9)) != 0) check(field << 23 | (state >> 9));
    }
  }
  for (std::uint32_t mantissa = 0; mantissa < (1u << 23); ++mantissa) {
    check(127u << 23 | mantissa);   // 1 <= D < 2: results in the binade below
    check(253u << 23 | mantissa);   // 2^126 <= D < 2^127: subnormal results, rounded
  }
}

TEST(Nvfp4, TheTwoConventionsCanDifferInTheLastBitForTheSameAmax) {
  // ModelOpt's g = amax / 2688; compressed-tensors' D = 2688 / amax, and vLLM's g = 1 / D: two
  // roundings, which sometimes land one ulp away. (So a compressed-tensors checkpoint converted
  // from ModelOpt, or the same weights exported both ways, need not give the same bits.)
  std::size_t differ = 0, total = 0;
  float example = 0;
  for (float amax = 1.0f; amax < 2.0f; amax += 0x1p-12f) {
    ++total;
    const float modelopt = amax / 2688.0f;
    const float vllm = dq4_test::vllm_ct_weight_global_scale(dq4_test::ct_generate_gparam(amax));
    if (bits_of(modelopt) != bits_of(vllm)) {
      ++differ;
      example = amax;
      EXPECT_EQ(std::fabs(static_cast<double>(bits_of(modelopt)) - static_cast<double>(bits_of(vllm))), 1.0) << amax;
    }
  }
  EXPECT_GT(differ, 0u) << "of " << total;
  RecordProperty("example_amax", std::to_string(example));
}

// ---- bad input ----

void expect_layout_error(const std::function<void()>& call, std::initializer_list<const char*> texts) {
  try {
    call();
    ADD_FAILURE() << "no layout_error";
  } catch (const dq4::layout_error& e) {
    for (const char* text : texts) EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(GptOssMxfp4, RejectsBadInputWithTheNumbers) {
  const std::vector<std::uint8_t> bytes(4096);
  const std::uint8_t* b = bytes.data();
  using shape = std::vector<std::size_t>;
  const auto read = [](const std::uint8_t* blocks, shape bs, const std::uint8_t* scales, shape ss) {
    return [=] { (void)dq4::from_gpt_oss_mxfp4(blocks, bs, scales, ss); };
  };
  expect_layout_error(read(nullptr, {1, 2, 3, 16}, b, {1, 2, 3}), {"null blocks"});
  expect_layout_error(read(b, {1, 2, 3, 16}, nullptr, {1, 2, 3}), {"null scales"});
  expect_layout_error(read(b, {2, 3 * 16}, b, {2, 3}), {"[2, 48]", "rank 2", "[E, N, K/32, 16]"});
  expect_layout_error(read(b, {1, 1, 2, 3, 16}, b, {1, 1, 2, 3}), {"rank 5"});
  expect_layout_error(read(b, {1, 0, 3, 16}, b, {1, 0, 3}), {"[1, 0, 3, 16]", "empty"});
  expect_layout_error(read(b, {1, 2, 3, 32}, b, {1, 2, 3}), {"last dimension is 32", "not 16"});
  expect_layout_error(read(b, {1, 2, 3, 16}, b, {1, 2, 4}),
                      {"scales has shape [1, 2, 4]", "[1, 2, 3, 16]", "need scales of shape [1, 2, 3]"});
  expect_layout_error(read(b, {1, 2, 3, 16}, b, {2, 3}), {"scales has shape [2, 3]"});
  expect_layout_error(read(b, {1, 2, 3, 16}, b, {1, 2, 3, 1}), {"scales has shape [1, 2, 3, 1]"});
  // Sizes whose product overflows or exceeds memory: rejected before anything is read.
  const std::size_t huge = std::size_t{1} << 40;
  expect_layout_error(read(b, {huge, huge, 1, 16}, b, {huge, huge, 1}),
                      {"blocks [1099511627776, 1099511627776, 1, 16]", "more than fit"});
  expect_layout_error(read(b, {1, std::size_t{1} << 62, 1, 16}, b, {1, std::size_t{1} << 62, 1}), {"more than fit"});
}

TEST(Nvfp4, RejectsBadInputWithTheNumbers) {
  const std::vector<std::uint8_t> bytes(4096);
  const std::uint8_t* b = bytes.data();
  const std::array<std::uint8_t, 4> one = dq4_test::le_bytes(1.0f);
  using shape = std::vector<std::size_t>;
  const auto read = [](nvfp4_checkpoint c, const std::uint8_t* w, shape ws, const std::uint8_t* s, shape ss,
                       const std::uint8_t* g, shape gs) {
    return [=] { (void)dq4::from_nvfp4(c, w, ws, s, ss, g, gs); };
  };
  const nvfp4_checkpoint mo = nvfp4_checkpoint::modelopt, ct = nvfp4_checkpoint::compressed_tensors;
  expect_layout_error(read(static_cast<nvfp4_checkpoint>(7), b, {4, 16}, b, {4, 2}, one.data(), {}),
                      {"nvfp4_checkpoint(7)", "names no"});
  expect_layout_error(read(mo, nullptr, {4, 16}, b, {4, 2}, one.data(), {}), {"(modelopt)", "null weight tensor"});
  expect_layout_error(read(ct, nullptr, {4, 16}, b, {4, 2}, one.data(), {}),
                      {"(compressed_tensors)", "null weight_packed"});
  expect_layout_error(read(mo, b, {4, 16}, nullptr, {4, 2}, one.data(), {}), {"null weight_scale"});
  expect_layout_error(read(mo, b, {4, 16}, b, {4, 2}, nullptr, {}), {"null weight_scale_2"});
  expect_layout_error(read(ct, b, {4, 16}, b, {4, 2}, nullptr, {}), {"null weight_global_scale"});
  expect_layout_error(read(mo, b, {2, 4, 16}, b, {2, 4, 2}, one.data(), {}), {"[2, 4, 16]", "rank 3", "[E, K/2, N]"});
  expect_layout_error(read(ct, b, {64}, b, {4}, one.data(), {}), {"weight_packed has shape [64]", "rank 1"});
  expect_layout_error(read(mo, b, {0, 16}, b, {0, 2}, one.data(), {}), {"[0, 16]", "empty"});
  expect_layout_error(read(mo, b, {4, 4}, b, {4, 1}, one.data(), {}), {"K = 8", "not a multiple of the block size 16"});
  expect_layout_error(read(mo, b, {4, 16}, b, {4, 4}, one.data(), {}),
                      {"weight_scale has shape [4, 4]", "K = 32", "needs [4, 2]"});
  expect_layout_error(read(ct, b, {4, 16}, b, {2, 4}, one.data(), {}),
                      {"weight_scale has shape [2, 4]", "needs [4, 2]"});
  expect_layout_error(read(mo, b, {4, 16}, b, {4, 2, 1}, one.data(), {}), {"weight_scale has shape [4, 2, 1]"});
  expect_layout_error(read(mo, b, {4, 16}, b, {4, 2}, one.data(), {2}), {"weight_scale_2 has shape [2]", "[] or [1]"});
  expect_layout_error(read(ct, b, {4, 16}, b, {4, 2}, one.data(), {1, 1}), {"weight_global_scale has shape [1, 1]"});
  // Global scales no writer produces.
  const auto bad_global = [&](nvfp4_checkpoint c, float value, std::initializer_list<const char*> texts) {
    const std::array<std::uint8_t, 4> g = dq4_test::le_bytes(value);
    expect_layout_error(read(c, b, {4, 16}, b, {4, 2}, g.data(), {1}), texts);
  };
  bad_global(mo, std::numeric_limits<float>::quiet_NaN(),
             {"weight_scale_2 = nan (0x7FC00000)", "not a finite number >= 0"});
  bad_global(mo, -std::numeric_limits<float>::infinity(), {"= -inf (0xFF800000)"});
  bad_global(mo, -1.0f, {"= -1 (0xBF800000)", "amax / (6 * 448)"});
  bad_global(mo, -0.0f, {"= -0 (0x80000000)"});
  bad_global(ct, 0.0f, {"weight_global_scale = 0 (0x00000000)", "not a finite number > 0"});
  bad_global(ct, -2.0f, {"= -2 (0xC0000000)"});
  bad_global(ct, std::numeric_limits<float>::infinity(), {"= inf (0x7F800000)", "6 * 448 / amax"});
  bad_global(ct, 0x1p-149f, {"(0x00000001)", "no finite fp32 reciprocal"});
  bad_global(ct, 0x1p-128f, {"(0x00200000)", "no finite fp32 reciprocal"});
  // ModelOpt's weight_scale_2 of an all-zero weight is +0 (amax / 2688): accepted.
  const std::array<std::uint8_t, 4> zero = dq4_test::le_bytes(0.0f);
  EXPECT_EQ(dq4::from_nvfp4(mo, b, {4, 16}, b, {4, 2}, zero.data(), {}).global_scale, 0.0f);
  // The smallest compressed-tensors divisor whose reciprocal is finite: 2^-128 + 2^-149.
  const std::array<std::uint8_t, 4> small = dq4_test::le_bytes(dq4_test::float_of(0x00200001u));
  EXPECT_TRUE(std::isfinite(dq4::from_nvfp4(ct, b, {4, 16}, b, {4, 2}, small.data(), {}).global_scale));
  // Sizes that overflow: rejected before anything is read.
  const std::size_t huge = std::size_t{1} << 62;
  expect_layout_error(read(mo, b, {huge, huge}, b, {huge, huge / 8}, one.data(), {}),
                      {"weight [4611686018427387904, 4611686018427387904]", "more than fit"});
  expect_layout_error(read(ct, b, {4, std::numeric_limits<std::size_t>::max() - 15}, b, {4, 1}, one.data(), {}),
                      {"more than fit"});
}

TEST(Fp4Checkpoint, AccessorsCheckTheirIndices) {
  const dq4::mxfp4_matrix empty_mx;
  EXPECT_THROW((void)empty_mx.nibble(0, 0, 0), std::out_of_range);
  const dq4::nvfp4_matrix empty_nv;
  EXPECT_THROW((void)empty_nv.scale(0, 0), std::out_of_range);
  std::vector<unsigned> codes(64);
  const dq4_test::mxfp4_tensors t{dq4_test::triton_mxfp4_pack(codes), {127, 127}};
  const dq4::mxfp4_matrix m = read_gpt_oss(t, 2, 1, 1);
  EXPECT_NO_THROW((void)m.nibble(1, 0, 31));
  EXPECT_THROW((void)m.nibble(2, 0, 0), std::out_of_range);
  EXPECT_THROW((void)m.scale(0, 1, 0), std::out_of_range);
  try {
    (void)m.nibble(0, 0, 32);
    ADD_FAILURE();
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("nibble(0, 0, 32): the matrix has 2 experts of 1 rows of 32 columns"),
              std::string::npos)
        << e.what();
  }
  const dq4_test::nvfp4_tensors nv = nvfp4_of_codes(codes, {0x38, 0x38, 0x38, 0x38}, 1.0f);
  const dq4::nvfp4_matrix n = read_nvfp4(nvfp4_checkpoint::modelopt, nv, 2, 32);
  EXPECT_THROW((void)n.nibble(0, 32), std::out_of_range);
  EXPECT_THROW((void)n.scale(2, 0), std::out_of_range);
}

}  // namespace
