// SPDX-License-Identifier: Apache-2.0
// The reference against oracles written independently of it: the bit patterns of every value per
// encoding (oracle.hpp), the rounding of products by a nearest-value search over every finite value
// of the format, the zero-point readings by their definitions, and the edges of the helpers' domains.
// Compiled by the host C++ compiler with no CUDA headers on the include path: the header is plain C++17.
#if defined(__CUDACC__)
#error "test_reference.cpp must be compiled by the host C++ compiler, without nvcc"
#endif

#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "float_model.hpp"
#include "oracle.hpp"
#include "paths.hpp"

namespace {

using dq4::encoding;
using dq4::format;
using dq4::order;
using dq4_test::oracle_bits;
using dq4_test::oracle_source;

// The same checks at compile time: the reference is constexpr.
static_assert(dq4::reference::fp16_bits(-8) == 0xC800 && dq4::reference::fp16_bits(15) == 0x4B80);
static_assert(dq4::reference::bits_of(format::bf16, -8) == 0xC100 && dq4::reference::bits_of(format::fp32, 15) == 0x41700000);
static_assert(dq4::reference::to_fp16<dq4::u4, dq4::interleaved>(0x75316420u).regs[0] == 0x3C000000u);
static_assert(dq4::reference::dequantize<format::bf16, dq4::e2m1, dq4::sequential>(0x000000F1u).regs[0] == 0xC0C03F00u);
static_assert(dq4::reference::zero_of<dq4::zeros::gptq_v1>(0x7584F878u, 3) == 0);
static_assert(dq4::reference::zero_of<dq4::zeros::gptq_v1>(0x7584F878u, 4) == 6);

// One word per (position, value, background): nibble `position` holds `value`, every other nibble
// holds `background`. The set puts every value in every position next to every neighbour value.
std::uint32_t probe_word(int position, unsigned value, unsigned background) {
  const std::uint32_t filled = background * 0x11111111u;
  return (filled & ~(0xFu << (4 * position))) | (value << (4 * position));
}

template <class P>
class ReferenceOfPath : public ::testing::Test {};
TYPED_TEST_SUITE(ReferenceOfPath, dq4_test::all_paths);

TYPED_TEST(ReferenceOfPath, MatchesOracleForEveryValueInEveryPosition) {
  constexpr format F = TypeParam::format;
  constexpr encoding E = TypeParam::encoding;
  constexpr order O = TypeParam::order;
  for (int position = 0; position < 8; ++position) {
    for (unsigned value = 0; value < 16; ++value) {
      for (unsigned background = 0; background < 16; ++background) {
        const std::uint32_t word = probe_word(position, value, background);
        const auto ref = dq4::reference::dequantize<F, E, O>(word);
        for (int j = 0; j < 8; ++j) {
          const unsigned nibble = oracle_source(O, j) == position ? value : background;
          ASSERT_EQ(ref.bits(j), oracle_bits(F, E, nibble)) << "word 0x" << std::hex << word << " element " << std::dec << j;
        }
      }
    }
  }
}

TEST(Reference, SourceNibbleMatchesOracle) {
  for (order o : {order::interleaved, order::sequential})
    for (int j = 0; j < 8; ++j) EXPECT_EQ(dq4::source_nibble(o, j), oracle_source(o, j));
}

TEST(Reference, BitsOfEveryExactInteger) {
  // fp16 and bf16 against the float model's independent rounding; fp32 against the host's float.
  for (int v = -2047; v < 2048; ++v) {
    const bool negative = v < 0;
    const std::int64_t magnitude = negative ? -std::int64_t{v} : std::int64_t{v};
    ASSERT_EQ(dq4::reference::fp16_bits(v), dq4_test::round_half(dq4_test::fp16_layout, negative, magnitude, 0)) << v;
    if (v > -256 && v < 256) {
      ASSERT_EQ(dq4::reference::bits_of(format::bf16, v), dq4_test::round_half(dq4_test::bf16_layout, negative, magnitude, 0)) << v;
    }
    ASSERT_EQ(dq4::reference::bits_of(format::fp32, v), dq4_test::fp32_bits_of(static_cast<float>(v))) << v;
  }
}

// The helpers' domains: every int, every nibble index, every exponent, without undefined behaviour
// (the fuzz test runs these under UBSan too).
TEST(Reference, DomainEdges) {
  using dq4::reference::bits_of;
  using dq4::reference::number_of;
  using dq4::reference::round_to;
  using dq4::reference::times;
  EXPECT_EQ(bits_of(format::fp32, INT_MIN), dq4_test::fp32_bits_of(-2147483648.0f));
  EXPECT_EQ(bits_of(format::fp32, INT_MAX), dq4_test::fp32_bits_of(2147483648.0f));  // rounds to 2^31
  EXPECT_EQ(bits_of(format::fp16, INT_MIN), 0xFC00u);                                 // -infinity
  const auto minus_int_min = times(INT_MIN, number_of(format::fp32, 0xBF800000u));      // INT_MIN * -1
  EXPECT_FALSE(minus_int_min.negative);  // 2^31 * 2^23 * 2^-23
  EXPECT_EQ(minus_int_min.magnitude, std::uint64_t{1} << 54);
  EXPECT_EQ(minus_int_min.exponent, -23);
  EXPECT_EQ(dq4::reference::nibble(0xFFFFFFFFu, 8), 0u);  // the bits beyond the word are 0
  EXPECT_EQ(dq4::reference::nibble(0xFFFFFFFFu, -1), 0u);
  EXPECT_EQ(dq4::reference::nibble(0xA0000000u, 7), 0xAu);
  const dq4::reference::exact_number huge{false, 1, INT_MAX, false, false}, tiny{true, 1, INT_MIN, false, false};
  EXPECT_EQ(round_to(format::fp16, huge), 0x7C00u);
  EXPECT_EQ(round_to(format::bf16, tiny), 0x8000u);  // -0
  const dq4::reference::exact_number wide{false, ~std::uint64_t{0}, -40, false, false};  // 2^64 - 1 times 2^-40
  EXPECT_EQ(round_to(format::fp32, wide), dq4_test::fp32_bits_of(16777216.0f));           // 2^24 after rounding
}

// An independent oracle for a rounded product: every finite value of the format as a double (exact),
// sorted; the nearest one to k * s (exact in a double: at most 5 + 11 significant bits), ties to the
// even bit pattern, beyond the largest finite value plus half its step: infinity.
class nearest_value_oracle {
 public:
  explicit nearest_value_oracle(format f) : f_(f) {
    for (std::uint32_t bits = 0; bits < 0x7FFFu; ++bits) {
      const double v = decode(bits);
      if (std::isfinite(v)) values_.push_back({v, static_cast<std::uint16_t>(bits)});
    }
    std::sort(values_.begin(), values_.end());
  }
  double decode(std::uint32_t bits) const {
    const int m = dq4::mantissa_bits(f_), bias = dq4::exponent_bias(f_);
    const unsigned field = (bits >> m) & ((1u << dq4::exponent_bits(f_)) - 1u), fraction = bits & ((1u << m) - 1u);
    const double sign = (bits & 0x8000u) != 0 ? -1.0 : 1.0;
    if (field == (1u << dq4::exponent_bits(f_)) - 1u) return fraction != 0 ? NAN : sign * INFINITY;
    if (field == 0) return sign * std::ldexp(fraction, 1 - bias - m);
    return sign * std::ldexp(fraction + (1u << m), static_cast<int>(field) - bias - m);
  }
  std::uint16_t product(int k, std::uint16_t s) const {
    const double scale = decode(s);
    if (std::isnan(scale) || (std::isinf(scale) && k == 0)) return 0x7FFF;
    const bool negative = (k < 0) != ((s & 0x8000u) != 0);
    const std::uint16_t sign = negative ? 0x8000 : 0;
    const double magnitude = std::fabs(k * scale);
    const std::uint16_t infinity = static_cast<std::uint16_t>(((1u << dq4::exponent_bits(f_)) - 1u) << dq4::mantissa_bits(f_));
    if (std::isinf(magnitude)) return sign | infinity;
    const auto above = std::lower_bound(values_.begin(), values_.end(), std::make_pair(magnitude, std::uint16_t{0}));
    if (above == values_.end()) {  // beyond the largest finite value
      const double largest = values_.back().first, step = largest - std::prev(values_.end(), 2)->first;
      return sign | (magnitude >= largest + step / 2 ? infinity : values_.back().second);
    }
    if (above->first == magnitude || above == values_.begin()) return sign | above->second;
    const auto below = std::prev(above);
    const double up = above->first - magnitude, down = magnitude - below->first;
    if (up != down) return sign | (up < down ? above->second : below->second);
    return sign | ((above->second & 1u) == 0 ? above->second : below->second);
  }

 private:
  format f_;
  std::vector<std::pair<double, std::uint16_t>> values_;
};

// reference::dequantize with scales rounds (q - z) * s once: held to the oracle for every product of
// an integer -16..16 (every q - z and every signed value times 1 or 2) and every scale bit pattern,
// NaN, infinities and subnormals included.
template <format F>
void expect_rounded_products_match_oracle() {
  const nearest_value_oracle oracle(F);
  for (std::uint32_t s = 0; s < 0x10000u; ++s) {
    for (int k = -16; k <= 16; ++k) {
      const std::uint32_t ref = dq4::reference::round_to(F, dq4::reference::times(k, dq4::reference::number_of(F, s)));
      ASSERT_EQ(ref, oracle.product(k, static_cast<std::uint16_t>(s))) << std::hex << "scale 0x" << s << std::dec << " k " << k;
    }
  }
}

TEST(Reference, RoundedProductsMatchNearestValueOracleFp16) { expect_rounded_products_match_oracle<format::fp16>(); }
TEST(Reference, RoundedProductsMatchNearestValueOracleBf16) { expect_rounded_products_match_oracle<format::bf16>(); }

// The zero readings by their definitions, for every stored nibble in every position of words whose
// other nibbles take every value: the per-nibble readings look at their own nibble only; gptq_v1
// is the nibble of the word plus 0x11111111, computed here by carries from nibble 0 upwards.
TEST(Reference, ZeroReadingsFollowTheirDefinitions) {
  using dq4::reference::zero_of;
  using dq4::zeros;
  for (int position = 0; position < 8; ++position) {
    for (unsigned value = 0; value < 16; ++value) {
      for (unsigned background = 0; background < 16; ++background) {
        const std::uint32_t word = probe_word(position, value, background);
        int carry = 0;
        for (int k = 0; k < 8; ++k) {
          const int n = static_cast<int>((word >> (4 * k)) & 0xFu);
          const int sum = n + 1 + carry;
          carry = sum >= 16 ? 1 : 0;
          ASSERT_EQ(zero_of<zeros::gptq_v1>(word, k), sum % 16) << std::hex << word << " nibble " << k;
          ASSERT_EQ(zero_of<zeros::gptq_v1_wrap>(word, k), n == 15 ? 0 : n + 1);
          ASSERT_EQ(zero_of<zeros::gptq_v1_no_wrap>(word, k), n + 1);
          ASSERT_EQ(zero_of<zeros::gptq_v2>(word, k), n);
          ASSERT_EQ(zero_of<zeros::awq>(word, k), n);
        }
      }
    }
  }
}

// (q - z) * s under each reading, against the float model's independent rounding.
TEST(Reference, ZeroPointProductsRoundOnce) {
  using dq4::zeros;
  const auto scales = dq4::splat<format::fp16>(0x2E66);  // an inexact 0.1
  // stored zeros word 0xF: z = 0 (gptq_v1, carry out of nibble 0), 0 (wrap), 16 (no wrap); q = 3
  const auto expect = [&](auto zero_path, int z) {
    using P = decltype(zero_path);
    const auto out = dq4::reference::dequantize<format::fp16, P::zeros, order::sequential>(0x3u, 0xFu, scales);
    const std::int64_t difference = 3 - z;  // times 0x2E66 = 1638 * 2^-14
    EXPECT_EQ(out.bits(0), dq4_test::round_half(dq4_test::fp16_layout, difference < 0, (difference < 0 ? -difference : difference) * 1638, -14))
        << P::name();
  };
  expect(dq4_test::zero_path<format::fp16, zeros::gptq_v1, order::sequential>{}, 0);
  expect(dq4_test::zero_path<format::fp16, zeros::gptq_v1_wrap, order::sequential>{}, 0);
  expect(dq4_test::zero_path<format::fp16, zeros::gptq_v1_no_wrap, order::sequential>{}, 16);
  expect(dq4_test::zero_path<format::fp16, zeros::gptq_v2, order::sequential>{}, 15);
  // A scale of -0 times q - z = 0 gives -0; NaN scales give the canonical NaN.
  const auto minus_zero = dq4::splat<format::bf16>(0x8000);
  EXPECT_EQ((dq4::reference::dequantize<format::bf16, zeros::awq, order::sequential>(0x5u, 0x5u, minus_zero).bits(0)), 0x8000u);
  const auto nan = dq4::splat<format::bf16>(0x7FC1);
  EXPECT_EQ((dq4::reference::dequantize<format::bf16, zeros::awq, order::sequential>(0x5u, 0x5u, nan).bits(0)), 0x7FFFu);
}

}  // namespace
