// SPDX-License-Identifier: Apache-2.0
// The 8-bit outputs (int8, e4m3, e5m2), q - z without a scale, and e8m0 block scales, on the host:
//   - the reference against oracles typed independently of it: the OCP FP8 bit patterns of every
//     integer in -16..16 and of every e2m1 value, the byte layouts, and e4m3's rounding of every e2m1
//     value times every e8m0 scale, by a nearest-value search over all finite e4m3 values as doubles;
//   - the fast algorithms (the same detail:: functions the GPU runs; LOP3, PRMT and shifts by their
//     portable definitions, fp16/bf16/fp32 adds by the exact float model) against the reference:
//     every register reads exactly its own nibbles (found by flipping each bit) and gives the
//     reference's bits for every value of them; q - z for every (q, z) in every position with varied
//     neighbours under every zero convention; the block-scale tables for all 256 scale bytes.
#if defined(__CUDACC__)
#error "test_eight_bit.cpp must be compiled by the host C++ compiler, without nvcc"
#endif

#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "float_model.hpp"
#include "oracle.hpp"

namespace {

using dq4::encoding;
using dq4::format;
using dq4::order;
using dq4::zeros;
namespace reference = dq4::reference;

// ---- Oracles, typed from the OCP 8-bit floating point specification (OFP8, rev 1.0) ------------

// e4m3 ("e4m3fn": bias 7, no infinities, S.1111.111 is NaN) bit patterns of 0..16.
constexpr std::uint8_t e4m3_of_integer[17] = {0x00, 0x38, 0x40, 0x44, 0x48, 0x4A, 0x4C, 0x4E, 0x50,
                                              0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58};
// e4m3 and e5m2 bit patterns of the e2m1 magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6.
constexpr std::uint8_t e4m3_of_e2m1[8] = {0x00, 0x30, 0x38, 0x3C, 0x40, 0x44, 0x48, 0x4C};
constexpr std::uint8_t e5m2_of_e2m1[8] = {0x00, 0x38, 0x3C, 0x3E, 0x40, 0x42, 0x44, 0x46};

// The integer a nibble stands for, by the encodings' definitions.
int integer_of(encoding e, unsigned n) {
  if (e == encoding::u4) return static_cast<int>(n);
  if (e == encoding::u4b8) return static_cast<int>(n) - 8;
  return n < 8 ? static_cast<int>(n) : static_cast<int>(n) - 16;  // s4
}

std::uint32_t e4m3_oracle(int v) { return v < 0 ? 0x80u | e4m3_of_integer[-v] : e4m3_of_integer[v]; }

// The byte layouts: which nibble element p of an 8-bit fragment holds (README diagrams).
int layout_oracle(format f, order o, int p) {
  static constexpr int split[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // int8, interleaved words
  return f == format::int8 && o == order::interleaved ? split[p] : p;
}

// The value of an e4m3 bit pattern as a double (NaN for S.1111.111).
double e4m3_value(unsigned bits) {
  const unsigned e = (bits >> 3) & 0xFu, m = bits & 7u;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double magnitude = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, static_cast<int>(e) - 10);
  return (bits & 0x80u) != 0 ? -magnitude : magnitude;
}

// x rounded to e4m3 by search: the nearest finite value (ties to the even pattern), so that beyond
// 448 the result is 448 (saturation).
std::uint32_t e4m3_nearest(double x) {
  std::uint32_t best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (std::uint32_t bits = 0; bits < 256; ++bits) {
    const double v = e4m3_value(bits);
    if (std::isnan(v) || (v == 0 && (bits != 0) != std::signbit(x))) continue;
    if (std::signbit(v) != std::signbit(x) && v != 0) continue;
    const double distance = std::fabs(v - x);
    if (distance < best_distance || (distance == best_distance && (bits & 1u) == 0)) {
      best = bits;
      best_distance = distance;
    }
  }
  return best;
}

// The fp16 bits of a small integer, from the host's float: the same sign, the exponent re-biased,
// the top ten mantissa bits (exact for |v| < 2048).
std::uint32_t fp16_of_small_integer(int v) {
  if (v == 0) return 0;
  const std::uint32_t f = dq4_test::fp32_bits_of(static_cast<float>(v));
  return ((f >> 16) & 0x8000u) | ((((f >> 23) & 0xFFu) - 127u + 15u) << 10) | ((f >> 13) & 0x3FFu);
}

// One word per (position, value, background): nibble `position` holds `value`, every other nibble
// `background`.
std::uint32_t probe_word(int position, unsigned value, unsigned background) {
  const std::uint32_t filled = background * 0x11111111u;
  return (filled & ~(0xFu << (4 * position))) | (value << (4 * position));
}

template <format F>
std::uint32_t element_bits(const dq4::fragment<F, 8>& f, int p) {
  return f.bits(p);
}

// ---- The reference against the oracles ------------------------------------------------------

TEST(EightBitReference, IntegersAndE2m1ValuesHaveTheirOcpBitPatterns) {
  for (int v = -16; v <= 16; ++v) {
    EXPECT_EQ(reference::integer_bits(format::e4m3, v), e4m3_oracle(v)) << v;
    if (v < 16) {
      EXPECT_EQ(reference::integer_bits(format::int8, v), static_cast<std::uint32_t>(v) & 0xFFu) << v;
    }
  }
  for (unsigned n = 0; n < 16; ++n) {
    const std::uint32_t sign = (n & 8u) << 4;
    EXPECT_EQ(reference::round_to(format::e4m3, reference::number_of_nibble<encoding::e2m1>(n)), sign | e4m3_of_e2m1[n & 7]);
    EXPECT_EQ(reference::round_to(format::e5m2, reference::number_of_nibble<encoding::e2m1>(n)), sign | e5m2_of_e2m1[n & 7]);
  }
  // e4m3's edges: 448 is the largest finite value, beyond it round_to saturates; 0x7F is NaN.
  EXPECT_EQ(reference::round_to(format::e4m3, {false, 448, 0, false, false}), 0x7Eu);
  EXPECT_EQ(reference::round_to(format::e4m3, {false, 464, 0, false, false}), 0x7Eu);  // a tie, to the even 448
  EXPECT_EQ(reference::round_to(format::e4m3, {true, 465, 0, false, false}), 0xFEu);
  EXPECT_EQ(reference::round_to(format::e4m3, {false, 1, 300, false, false}), 0x7Eu);
  EXPECT_EQ(reference::round_to(format::e4m3, {true, 0, 0, true, false}), 0xFEu);  // -infinity saturates
  EXPECT_EQ(reference::round_to(format::e4m3, {false, 0, 0, false, true}), 0x7Fu);
  EXPECT_TRUE(reference::number_of(format::e4m3, 0xFFu).nan);
  EXPECT_FALSE(reference::number_of(format::e4m3, 0x7Eu).nan);
  EXPECT_TRUE(reference::number_of(format::e5m2, 0x7Cu).infinite);
}

template <format F, encoding E, order O>
void expect_unscaled_reference_matches_oracle() {
  for (int position = 0; position < 8; ++position) {
    for (unsigned value = 0; value < 16; ++value) {
      for (unsigned background = 0; background < 16; ++background) {
        const std::uint32_t word = probe_word(position, value, background);
        const auto out = reference::dequantize<F, E, O>(word);
        for (int p = 0; p < 8; ++p) {
          const unsigned n = (word >> (4 * layout_oracle(F, O, p))) & 0xFu;
          std::uint32_t expected = 0;
          if constexpr (E == encoding::e2m1) {
            expected = ((n & 8u) << 4) | (F == format::e4m3 ? e4m3_of_e2m1[n & 7] : e5m2_of_e2m1[n & 7]);
          } else if constexpr (F == format::int8) {
            expected = static_cast<std::uint32_t>(integer_of(E, n)) & 0xFFu;
          } else {
            expected = e4m3_oracle(integer_of(E, n));
          }
          ASSERT_EQ(element_bits<F>(out, p), expected) << "word 0x" << std::hex << word << " element " << p;
        }
      }
    }
  }
}

TEST(EightBitReference, EveryUnscaledPathMatchesTheOracleInEveryPosition) {
  expect_unscaled_reference_matches_oracle<format::int8, encoding::u4, order::interleaved>();
  expect_unscaled_reference_matches_oracle<format::int8, encoding::u4b8, order::interleaved>();
  expect_unscaled_reference_matches_oracle<format::int8, encoding::s4, order::interleaved>();
  expect_unscaled_reference_matches_oracle<format::int8, encoding::u4, order::sequential>();
  expect_unscaled_reference_matches_oracle<format::int8, encoding::u4b8, order::sequential>();
  expect_unscaled_reference_matches_oracle<format::int8, encoding::s4, order::sequential>();
  expect_unscaled_reference_matches_oracle<format::e4m3, encoding::u4, order::interleaved>();
  expect_unscaled_reference_matches_oracle<format::e4m3, encoding::s4, order::interleaved>();
  expect_unscaled_reference_matches_oracle<format::e4m3, encoding::u4b8, order::sequential>();
  expect_unscaled_reference_matches_oracle<format::e4m3, encoding::e2m1, order::interleaved>();
  expect_unscaled_reference_matches_oracle<format::e4m3, encoding::e2m1, order::sequential>();
  expect_unscaled_reference_matches_oracle<format::e5m2, encoding::e2m1, order::interleaved>();
  expect_unscaled_reference_matches_oracle<format::e5m2, encoding::e2m1, order::sequential>();
}

TEST(EightBitReference, DifferenceIsQMinusZInEveryFormat) {
  // Every (q, z) in every position; gptq_v1_no_wrap gives z = 16 (q - z = -16).
  for (int position = 0; position < 8; ++position) {
    for (unsigned q = 0; q < 16; ++q) {
      for (unsigned n = 0; n < 16; ++n) {
        const std::uint32_t word = probe_word(position, q, 5), zw = probe_word(position, n, 9);
        const auto fp16 = reference::dequantize<format::fp16, zeros::gptq_v1_no_wrap, order::interleaved>(word, zw);
        const auto int8 = reference::dequantize<format::int8, zeros::gptq_v1_no_wrap, order::interleaved>(word, zw);
        const auto e4m3 = reference::dequantize<format::e4m3, zeros::gptq_v1_no_wrap, order::sequential>(word, zw);
        const auto fp32 = reference::dequantize<format::fp32, zeros::awq, order::sequential>(word, zw);
        for (int p = 0; p < 8; ++p) {
          const auto nibble = [](std::uint32_t w, int k) { return static_cast<int>((w >> (4 * k)) & 0xFu); };
          const int k16 = dq4::source_nibble(order::interleaved, p);
          const std::uint32_t fp32_bits = dq4_test::fp32_bits_of(static_cast<float>(nibble(word, p) - nibble(zw, p)));
          ASSERT_EQ(fp16.bits(p), fp16_of_small_integer(nibble(word, k16) - nibble(zw, k16) - 1));
          const int k8 = layout_oracle(format::int8, order::interleaved, p);
          ASSERT_EQ(int8.bits(p), static_cast<std::uint32_t>(nibble(word, k8) - nibble(zw, k8) - 1) & 0xFFu);
          ASSERT_EQ(e4m3.bits(p), e4m3_oracle(nibble(word, p) - nibble(zw, p) - 1));
          ASSERT_EQ(fp32.bits(p), fp32_bits);
        }
      }
    }
  }
}

TEST(EightBitReference, E8m0TimesE2m1RoundsOnceToE4m3ForEveryScale) {
  for (unsigned s = 0; s < 256; ++s) {
    for (unsigned n = 0; n < 16; ++n) {
      const auto out = reference::dequantize<format::e4m3, encoding::e2m1, order::sequential>(n, dq4::e8m0{static_cast<std::uint8_t>(s)});
      const double magnitudes[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
      const double x = std::ldexp((n & 8u) != 0 ? -magnitudes[n & 7] : magnitudes[n & 7], static_cast<int>(s) - 127);
      const std::uint32_t expected = s == 0xFF ? (0x7Fu | ((n & 8u) << 4)) : e4m3_nearest((n & 8u) != 0 && x == 0 ? -0.0 : x);
      ASSERT_EQ(out.bits(0), expected) << "scale byte " << s << " nibble " << n;
    }
  }
}

TEST(EightBitReference, Int8RoundingSaturatesAndRoundsHalvesToEven) {
  using x = reference::exact_number;
  EXPECT_EQ(reference::round_to(format::int8, x{false, 5, -1, false, false}), 2u);     // 2.5 -> 2
  EXPECT_EQ(reference::round_to(format::int8, x{true, 7, -1, false, false}), 0xFCu);   // -3.5 -> -4
  EXPECT_EQ(reference::round_to(format::int8, x{false, 255, 0, false, false}), 0x7Fu);
  EXPECT_EQ(reference::round_to(format::int8, x{true, 1, 7, false, false}), 0x80u);    // -128
  EXPECT_EQ(reference::round_to(format::int8, x{true, 1, 8, false, false}), 0x80u);    // -256 saturates
  EXPECT_EQ(reference::round_to(format::int8, x{false, ~std::uint64_t{0}, 1000, false, false}), 0x7Fu);
  EXPECT_EQ(reference::round_to(format::int8, x{false, ~std::uint64_t{0}, -64, false, false}), 1u);
  EXPECT_EQ(reference::round_to(format::int8, x{false, std::uint64_t{1} << 63, -64, false, false}), 0u);
  EXPECT_EQ(reference::round_to(format::int8, x{false, 0, 0, false, true}), 0u);
  EXPECT_EQ(reference::number_of(format::int8, 0xF0u).magnitude, 16u);
  EXPECT_TRUE(reference::number_of(format::int8, 0xF0u).negative);
}

// ---- The fast algorithms, on the host model ------------------------------------------------------

// The fast unscaled algorithm of an 8-bit path (the dispatch of dq4::dequantize on the device).
template <format F, encoding E, order O>
dq4::fragment<F, 8> fast_unscaled(std::uint32_t word) {
  if constexpr (F == format::int8) {
    return dq4::detail::int8_dequantize<E, O>(word);
  } else if constexpr (E == encoding::e2m1) {
    return dq4::detail::fp8_from_e2m1<F>(word, dq4::detail::e2m1_magnitudes<F>());
  } else {
    return dq4::detail::fp8_from_integers<F, E>(word);
  }
}

// Register g must read exactly the nibbles of its elements (found by flipping each bit of varied
// words), and give the reference's bits for all 2^16 values of them, with the other nibbles at 16
// background values.
template <format F, class Fast, class Expected>
void expect_registers_read_only_their_nibbles(order o, const Fast& fast, const Expected& expected) {
  const std::uint32_t bases[] = {0u, ~0u, 0x55555555u, 0xAAAAAAAAu, 0x12345678u, 0x9ABCDEF0u};
  for (int g = 0; g < 2; ++g) {
    std::uint32_t nibble_bits = 0;
    for (int i = 0; i < 4; ++i) nibble_bits |= 0xFu << (4 * layout_oracle(F, o, 4 * g + i));
    std::uint32_t read = 0;
    for (std::uint32_t base : bases)
      for (int bit = 0; bit < 32; ++bit)
        if (fast(base).regs[g] != fast(base ^ (1u << bit)).regs[g]) read |= 1u << bit;
    ASSERT_EQ(read, nibble_bits) << "register " << g << " reads other bits than its nibbles";
    for (std::uint32_t background = 0; background < 16; ++background) {
      const std::uint32_t rest = (background * 0x11111111u) & ~nibble_bits;
      for (std::uint32_t v = 0; v < (1u << 16); ++v) {
        std::uint32_t word = rest;
        for (int i = 0; i < 4; ++i) word |= ((v >> (4 * i)) & 0xFu) << (4 * layout_oracle(F, o, 4 * g + i));
        ASSERT_EQ(fast(word).regs[g], expected(word).regs[g]) << "register " << g << " word 0x" << std::hex << word;
      }
    }
  }
}

template <format F, encoding E, order O>
void expect_unscaled_fast_path_exact() {
  expect_registers_read_only_their_nibbles<F>(O, fast_unscaled<F, E, O>,
                                              [](std::uint32_t w) { return reference::dequantize<F, E, O>(w); });
}

#define DQ4_EIGHT_BIT_CASE(F, E, O)                                              \
  TEST(EightBitHostModel, F##_##E##_##O##_EveryRegisterReadsOnlyItsNibbles) {  \
    expect_unscaled_fast_path_exact<format::F, encoding::E, order::O>();        \
  }
DQ4_EIGHT_BIT_CASE(int8, u4, interleaved)
DQ4_EIGHT_BIT_CASE(int8, u4b8, interleaved)
DQ4_EIGHT_BIT_CASE(int8, s4, interleaved)
DQ4_EIGHT_BIT_CASE(int8, u4, sequential)
DQ4_EIGHT_BIT_CASE(int8, u4b8, sequential)
DQ4_EIGHT_BIT_CASE(int8, s4, sequential)
DQ4_EIGHT_BIT_CASE(e4m3, u4, interleaved)
DQ4_EIGHT_BIT_CASE(e4m3, u4b8, interleaved)
DQ4_EIGHT_BIT_CASE(e4m3, s4, interleaved)
DQ4_EIGHT_BIT_CASE(e4m3, e2m1, interleaved)
DQ4_EIGHT_BIT_CASE(e4m3, u4, sequential)
DQ4_EIGHT_BIT_CASE(e4m3, u4b8, sequential)
DQ4_EIGHT_BIT_CASE(e4m3, s4, sequential)
DQ4_EIGHT_BIT_CASE(e4m3, e2m1, sequential)
DQ4_EIGHT_BIT_CASE(e5m2, e2m1, interleaved)
DQ4_EIGHT_BIT_CASE(e5m2, e2m1, sequential)
#undef DQ4_EIGHT_BIT_CASE

// A canary: a table with one wrong entry is caught, so the sweep above can fail.
TEST(EightBitHostModel, WrongTableEntryIsCaught) {
  dq4::detail::byte_table table = dq4::detail::e2m1_magnitudes<format::e4m3>();
  table.hi ^= 0x00010000u;  // entry 6 (4.0) off by one mantissa step
  const auto broken = [&](std::uint32_t w) { return dq4::detail::fp8_from_e2m1<format::e4m3>(w, table); };
  int mismatches = 0;
  for (unsigned n = 0; n < 16; ++n) {
    const auto word = static_cast<std::uint32_t>(n);
    if (broken(word).regs[0] != reference::dequantize<format::e4m3, encoding::e2m1, order::sequential>(word).regs[0]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 2);  // nibbles 6 and 14 (+-4.0)
}

// The device's register arithmetic, modelled exactly (adds only: q - z has no multiply).
template <format F>
struct model_add {
  std::uint32_t add(std::uint32_t a, std::uint32_t b) const {
    if constexpr (F == format::fp32) {
      return dq4_test::host_fp32(a, b, false);
    } else {
      return dq4_test::add_half2(F == format::bf16 ? dq4_test::bf16_layout : dq4_test::fp16_layout, a, b);
    }
  }
};

// The fast q - z algorithm of a format (the dispatch of dq4::dequantize on the device).
template <format F, order O>
dq4::fragment<F, 8> fast_difference(std::uint32_t word, const dq4::zero_point<F, O>& zero) {
  if constexpr (F == format::int8) {
    return dq4::detail::int8_difference<O>(word, zero);
  } else if constexpr (F == format::e4m3) {
    return dq4::detail::fp8_difference<O>(word, zero, model_add<format::fp16>{});
  } else {
    return dq4::detail::magic_dequantize<F, O>(word, zero, model_add<F>{});
  }
}

// Every (q, stored zero nibble) in every position, with 24 random weight and zeros backgrounds, for
// one convention: the host's prepare_zeros, the fast algorithm and the portable path all give the
// reference's bits.
template <format F, zeros Z, order O>
void expect_difference_exact() {
  std::mt19937 random(1234);
  for (int background = 0; background < 24; ++background) {
    const std::uint32_t weights = random(), stored = random();
    for (int position = 0; position < 8; ++position) {
      for (unsigned q = 0; q < 16; ++q) {
        for (unsigned n = 0; n < 16; ++n) {
          const std::uint32_t word = (weights & ~(0xFu << (4 * position))) | (q << (4 * position));
          const std::uint32_t zw = (stored & ~(0xFu << (4 * position))) | (n << (4 * position));
          const auto zero = dq4::prepare_zeros<F, Z, O>(zw);
          const auto expected = reference::dequantize<F, Z, O>(word, zw);
          const auto fast = fast_difference<F, O>(word, zero);
          const auto portable = dq4::dequantize<F, O>(word, zero);  // host code: the portable path
          for (int r = 0; r < dq4::fragment<F, 8>::registers; ++r) {
            ASSERT_EQ(fast.regs[r], expected.regs[r]) << "register " << r << " word 0x" << std::hex << word << " zeros 0x" << zw;
            ASSERT_EQ(portable.regs[r], expected.regs[r]) << "register " << r << " word 0x" << std::hex << word;
          }
        }
      }
    }
  }
}

template <format F>
void expect_difference_exact_for_every_convention() {
  expect_difference_exact<F, zeros::awq, order::interleaved>();
  expect_difference_exact<F, zeros::gptq_v2, order::interleaved>();
  expect_difference_exact<F, zeros::gptq_v1_wrap, order::interleaved>();
  expect_difference_exact<F, zeros::gptq_v1_no_wrap, order::interleaved>();
  expect_difference_exact<F, zeros::awq, order::sequential>();
  expect_difference_exact<F, zeros::gptq_v2, order::sequential>();
  expect_difference_exact<F, zeros::gptq_v1, order::sequential>();
  expect_difference_exact<F, zeros::gptq_v1_wrap, order::sequential>();
  expect_difference_exact<F, zeros::gptq_v1_no_wrap, order::sequential>();
}

TEST(DifferenceHostModel, Fp16EveryPairEveryConvention) { expect_difference_exact_for_every_convention<format::fp16>(); }
TEST(DifferenceHostModel, Bf16EveryPairEveryConvention) { expect_difference_exact_for_every_convention<format::bf16>(); }
TEST(DifferenceHostModel, Fp32EveryPairEveryConvention) { expect_difference_exact_for_every_convention<format::fp32>(); }
TEST(DifferenceHostModel, Int8EveryPairEveryConvention) { expect_difference_exact_for_every_convention<format::int8>(); }
TEST(DifferenceHostModel, E4m3EveryPairEveryConvention) { expect_difference_exact_for_every_convention<format::e4m3>(); }

// The block-scale tables for all 256 scale bytes, through the fast path, against the reference; and
// the in-range shortcut (one IADD per table register) against the per-entry rounding it replaces.
TEST(BlockScaleHostModel, EveryScaleByteEveryNibbleEveryPosition) {
  for (unsigned s = 0; s < 256; ++s) {
    const dq4::e8m0 scale{static_cast<std::uint8_t>(s)};
    const auto block = dq4::prepare_block_scale<format::e4m3>(scale);
    const dq4::detail::byte_table table{block.table[0], block.table[1]};
    for (int position = 0; position < 8; ++position) {
      for (unsigned value = 0; value < 16; ++value) {
        for (unsigned background = 0; background < 16; ++background) {
          const std::uint32_t word = probe_word(position, value, background);
          const auto fast = dq4::detail::fp8_from_e2m1<format::e4m3>(word, table);
          const auto interleaved = reference::dequantize<format::e4m3, encoding::e2m1, order::interleaved>(word, scale);
          const auto sequential = reference::dequantize<format::e4m3, encoding::e2m1, order::sequential>(word, scale);
          const auto host = dq4::dequantize<format::e4m3, encoding::e2m1, order::sequential>(word, block);
          for (int r = 0; r < 2; ++r) {
            ASSERT_EQ(fast.regs[r], sequential.regs[r]) << "scale " << s << " word 0x" << std::hex << word;
            ASSERT_EQ(fast.regs[r], interleaved.regs[r]) << "scale " << s;  // e4m3 keeps the nibble order
            ASSERT_EQ(host.regs[r], sequential.regs[r]) << "scale " << s;
          }
        }
      }
    }
    const int k = static_cast<int>(s) - 127;
    if (s != 0xFF) {
      for (unsigned i = 1; i < 8; ++i) {
        const unsigned twice = reference::twice_e2m1(i), m = twice % 3 == 0 ? 3u : 1u;
        int p = 0;
        while ((m << p) != twice) ++p;
        EXPECT_EQ((block.table[i / 4] >> (8 * (i % 4))) & 0xFFu, dq4::detail::e4m3_of_power(m, p + k - 1))
            << "scale byte " << s << " entry " << i;
      }
    }
  }
}

}  // namespace
