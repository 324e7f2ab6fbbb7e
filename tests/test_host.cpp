// SPDX-License-Identifier: Apache-2.0
// Host tests, compiled by the plain C++ compiler with no CUDA headers on the include path: they also
// prove that the public header builds as ordinary C++17.
#if defined(__CUDACC__)
#error "test_host.cpp must be compiled by the host C++ compiler, without nvcc"
#endif

#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
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

constexpr std::array<order, 2> all_orders = {order::interleaved, order::sequential};

// The same checks at compile time: the reference is constexpr.
static_assert(dq4::reference::fp16_bits(-8) == 0xC800 && dq4::reference::fp16_bits(15) == 0x4B80);
static_assert(dq4::reference::bits_of(format::bf16, -8) == 0xC100 && dq4::reference::bits_of(format::fp32, 15) == 0x41700000);
static_assert(dq4::reference::to_fp16<dq4::u4, dq4::interleaved>(0x75316420u).regs[0] == 0x3C000000u);
static_assert(dq4::reference::dequantize<format::bf16, dq4::e2m1, dq4::sequential>(0x000000F1u).regs[0] == 0xC0C03F00u);
static_assert(dq4::pack<dq4::u4, dq4::interleaved>({0, 1, 2, 3, 4, 5, 6, 7}) == 0x75316420u);
static_assert(dq4::pack<dq4::u4, dq4::sequential>({0, 1, 2, 3, 4, 5, 6, 7}) == 0x76543210u);
static_assert(dq4::unpack<dq4::s4, dq4::sequential>(0x89ABCDEFu)[0] == -1 &&
              dq4::unpack<dq4::s4, dq4::sequential>(0x89ABCDEFu)[7] == -8);
static_assert(dq4::reorder<dq4::interleaved, dq4::sequential>(0x75316420u) == 0x76543210u);

// One word per (position, value, background): nibble `position` holds `value`, every other nibble
// holds `background`. The set puts every value in every position next to every neighbour value.
std::uint32_t probe_word(int position, unsigned value, unsigned background) {
  const std::uint32_t filled = background * 0x11111111u;
  return (filled & ~(0xFu << (4 * position))) | (value << (4 * position));
}

template <format F, encoding E, order O>
void expect_reference_matches_oracle() {
  for (int position = 0; position < 8; ++position) {
    for (unsigned value = 0; value < 16; ++value) {
      for (unsigned background = 0; background < 16; ++background) {
        const std::uint32_t word = probe_word(position, value, background);
        const auto ref = dq4::reference::dequantize<F, E, O>(word);
        const auto host = dq4::dequantize<F, E, O>(word);  // the portable path host code runs
        for (int j = 0; j < 8; ++j) {
          const unsigned nibble = oracle_source(O, j) == position ? value : background;
          ASSERT_EQ(ref.bits(j), oracle_bits(F, E, nibble)) << "word 0x" << std::hex << word << " element " << std::dec << j;
          ASSERT_EQ(host.bits(j), ref.bits(j)) << "word 0x" << std::hex << word;
        }
      }
    }
  }
}

TEST(Reference, MatchesOracleForEveryValueInEveryPositionOfEveryPath) {
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_reference_matches_oracle<P::format, P::encoding, P::order>();
  });
}

TEST(Reference, SourceNibbleMatchesOracle) {
  for (order o : all_orders)
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

TEST(Reference, ZeroPointConventions) {
  using dq4::zeros;
  EXPECT_EQ(dq4::reference::zero_of(zeros::awq, 0), 0);
  EXPECT_EQ(dq4::reference::zero_of(zeros::gptq_v2, 15), 15);
  EXPECT_EQ(dq4::reference::zero_of(zeros::gptq_v1, 0), 1);
  EXPECT_EQ(dq4::reference::zero_of(zeros::gptq_v1, 15), 16);  // stored z - 1 = 15: z = 16, no wrap to 0
  // (q - z) * s for q = 0, stored zero 15, scale 1: -15 (AWQ / v2) and -16 (v1), in fp16.
  const auto one = dq4::splat<format::fp16>(0x3C00);
  EXPECT_EQ((dq4::reference::dequantize<format::fp16, zeros::awq, order::sequential>(0u, 0xFu, one).bits(0)), 0xCB80u);
  EXPECT_EQ((dq4::reference::dequantize<format::fp16, zeros::gptq_v1, order::sequential>(0u, 0xFu, one).bits(0)), 0xCC00u);
  // A scale of -0 times q - z = 0 gives -0; NaN scales give the canonical NaN.
  const auto minus_zero = dq4::splat<format::bf16>(0x8000);
  EXPECT_EQ((dq4::reference::dequantize<format::bf16, zeros::awq, order::sequential>(0x5u, 0x5u, minus_zero).bits(0)), 0x8000u);
  const auto nan = dq4::splat<format::bf16>(0x7FC1);
  EXPECT_EQ((dq4::reference::dequantize<format::bf16, zeros::awq, order::sequential>(0x5u, 0x5u, nan).bits(0)), 0x7FFFu);
}

template <encoding E, order O>
void expect_pack_round_trips() {
  // Every value in every position, with every other value as neighbour.
  for (int position = 0; position < 8; ++position) {
    for (int v = dq4::min_value<E>; v <= dq4::max_value<E>; ++v) {
      for (int other = dq4::min_value<E>; other <= dq4::max_value<E>; ++other) {
        std::array<int, 8> values{};
        values.fill(other);
        values[static_cast<std::size_t>(position)] = v;
        const std::uint32_t word = dq4::pack<E, O>(values);
        ASSERT_EQ((dq4::unpack<E, O>(word)), values);
        const dq4::fp16x8 out = dq4::to_fp16<E, O>(word);
        const dq4::bf16x8 out_bf16 = dq4::to_bf16<E, O>(word);
        const dq4::fp32x8 out_fp32 = dq4::to_fp32<E, O>(word);
        for (int j = 0; j < 8; ++j) {
          const int value = values[static_cast<std::size_t>(j)];
          ASSERT_EQ(out.bits(j), dq4::reference::fp16_bits(value));
          ASSERT_EQ(out_bf16.bits(j), dq4::reference::bits_of(format::bf16, value));
          ASSERT_EQ(out_fp32.value(j), static_cast<float>(value));
        }
        // The other order reads a differently packed word back to the same values.
        constexpr order other_order = O == order::interleaved ? order::sequential : order::interleaved;
        ASSERT_EQ((dq4::reorder<O, other_order>(word)), (dq4::pack<E, other_order>(values)));
      }
    }
  }
}

TEST(Pack, RoundTripsThroughUnpackDequantizeAndReorder) {
  dq4_test::for_each_order_and_encoding<format::fp32>([](auto p) {
    using P = decltype(p);
    expect_pack_round_trips<P::encoding, P::order>();
  });
}

TEST(Pack, AwqOrderIsTheInverseOfTheOutputOrder) {
  // AWQ checkpoints: nibble k holds value [0,2,4,6,1,3,5,7][k].
  const std::uint32_t word = dq4::pack<dq4::u4, dq4::interleaved>({10, 11, 12, 13, 14, 15, 0, 1});
  const std::array<unsigned, 8> awq_nibble_holds = {0, 2, 4, 6, 1, 3, 5, 7};
  const std::array<unsigned, 8> values = {10, 11, 12, 13, 14, 15, 0, 1};
  for (int k = 0; k < 8; ++k)
    EXPECT_EQ(dq4::reference::nibble(word, k), values[awq_nibble_holds[static_cast<std::size_t>(k)]]);
}

template <encoding E>
void expect_out_of_range_rejected(int bad_value) {
  std::array<int, 8> values{};
  values.fill(dq4::min_value<E>);
  values[5] = bad_value;
  try {
    (void)dq4::pack<E, order::sequential>(values);
    FAIL() << "value " << bad_value << " was accepted";
  } catch (const dq4::pack_error& e) {
    EXPECT_EQ(e.index(), 5u);
    EXPECT_EQ(e.value(), bad_value);
    const std::string message = e.what();
    EXPECT_NE(message.find("value " + std::to_string(bad_value)), std::string::npos) << message;
    EXPECT_NE(message.find("index 5"), std::string::npos) << message;
  }
}

TEST(Pack, RejectsValuesOutOfRangeNamingValueAndIndex) {
  expect_out_of_range_rejected<encoding::u4>(16);
  expect_out_of_range_rejected<encoding::u4>(-1);
  expect_out_of_range_rejected<encoding::u4b8>(8);
  expect_out_of_range_rejected<encoding::u4b8>(-9);
  expect_out_of_range_rejected<encoding::s4>(8);
  expect_out_of_range_rejected<encoding::s4>(-9);
}

TEST(Pack, BufferReportsIndexInWholeBuffer) {
  std::vector<int> values(32, 3);
  values[21] = 99;
  std::vector<std::uint32_t> words(4);
  try {
    dq4::pack<dq4::u4, dq4::interleaved>(values.data(), values.size(), words.data());
    FAIL() << "out-of-range value accepted";
  } catch (const dq4::pack_error& e) {
    EXPECT_EQ(e.index(), 21u);
    EXPECT_EQ(e.value(), 99);
  }
}

TEST(Pack, BufferRejectsBadSizesAndNullPointers) {
  std::vector<int> values(12, 0);
  std::vector<std::uint32_t> words(2);
  EXPECT_THROW((dq4::pack<dq4::u4, dq4::sequential>(values.data(), 12, words.data())), std::invalid_argument);
  EXPECT_THROW((dq4::pack<dq4::u4, dq4::sequential>(nullptr, 8, words.data())), std::invalid_argument);
  EXPECT_THROW((dq4::pack<dq4::u4, dq4::sequential>(values.data(), 8, nullptr)), std::invalid_argument);
  EXPECT_THROW((dq4::reorder<dq4::sequential, dq4::interleaved>(nullptr, 1, words.data())), std::invalid_argument);
  EXPECT_NO_THROW((dq4::pack<dq4::u4, dq4::sequential>(nullptr, 0, nullptr)));
}

TEST(Pack, BufferMatchesWordPacker) {
  std::vector<int> values(64);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>((i * 7 + 3) % 16) - 8;
  std::vector<std::uint32_t> words(8);
  dq4::pack<dq4::s4, dq4::interleaved>(values.data(), values.size(), words.data());
  for (std::size_t w = 0; w < words.size(); ++w) {
    std::array<int, 8> group{};
    for (std::size_t j = 0; j < 8; ++j) group[j] = values[8 * w + j];
    EXPECT_EQ(words[w], (dq4::pack<dq4::s4, dq4::interleaved>(group)));
  }
  // In-place reorder to sequential and back.
  std::vector<std::uint32_t> copy = words;
  dq4::reorder<dq4::interleaved, dq4::sequential>(copy.data(), copy.size(), copy.data());
  for (std::size_t w = 0; w < words.size(); ++w)
    EXPECT_EQ(copy[w], (dq4::reorder<dq4::interleaved, dq4::sequential>(words[w])));
  dq4::reorder<dq4::sequential, dq4::interleaved>(copy.data(), copy.size(), copy.data());
  EXPECT_EQ(copy, words);
}

// Checkpoint layouts, written here from the AutoAWQ / AutoGPTQ packing rules, independently of dq4.
struct int_matrix {
  std::size_t rows, cols, group_size;
  std::vector<int> q;             // [K][N], 0..15
  std::vector<int> z;             // [K/G][N], 0..15 (AWQ, GPTQ v2) or 1..16 (GPTQ v1)
  std::vector<std::uint16_t> s;   // [K/G][N], fp16 bits
};

int_matrix make_matrix(std::size_t rows, std::size_t cols, std::size_t group_size, int zero_offset) {
  int_matrix m{rows, cols, group_size, {}, {}, {}};
  std::uint32_t state = 12345;
  const auto next = [&state] { return (state = state * 1664525u + 1013904223u) >> 8; };
  for (std::size_t i = 0; i < rows * cols; ++i) m.q.push_back(static_cast<int>(next() % 16));
  for (std::size_t i = 0; i < rows / group_size * cols; ++i) {
    m.z.push_back(static_cast<int>(next() % 16) + zero_offset);
    m.s.push_back(static_cast<std::uint16_t>(0x2000 + next() % 0x1800));  // 2^-7 .. about 0.4
  }
  return m;
}

constexpr std::array<int, 8> awq_order = {0, 2, 4, 6, 1, 3, 5, 7};  // nibble i holds column awq_order[i]

struct awq_tensors {
  std::vector<std::int32_t> qweight, qzeros;
};

awq_tensors to_awq(const int_matrix& m) {
  awq_tensors t;
  const std::size_t words = m.cols / 8;
  const auto pack_row = [&](const std::vector<int>& values, std::size_t row, std::vector<std::int32_t>& out) {
    for (std::size_t c = 0; c < words; ++c) {
      std::uint32_t word = 0;
      for (int i = 0; i < 8; ++i) word |= static_cast<std::uint32_t>(values[row * m.cols + 8 * c + awq_order[i]]) << (4 * i);
      out.push_back(static_cast<std::int32_t>(word));
    }
  };
  for (std::size_t k = 0; k < m.rows; ++k) pack_row(m.q, k, t.qweight);
  for (std::size_t g = 0; g < m.rows / m.group_size; ++g) pack_row(m.z, g, t.qzeros);
  return t;
}

struct gptq_tensors {
  std::vector<std::int32_t> qweight, qzeros, g_idx;
};

gptq_tensors to_gptq(const int_matrix& m, bool v1) {
  gptq_tensors t;
  for (std::size_t i = 0; i < m.rows / 8; ++i) {  // eight rows per word, row 8i + j in nibble j
    for (std::size_t n = 0; n < m.cols; ++n) {
      std::uint32_t word = 0;
      for (std::size_t j = 0; j < 8; ++j) word |= static_cast<std::uint32_t>(m.q[(8 * i + j) * m.cols + n]) << (4 * j);
      t.qweight.push_back(static_cast<std::int32_t>(word));
    }
  }
  for (std::size_t g = 0; g < m.rows / m.group_size; ++g) {  // eight columns per word, stored z - 1 in v1
    for (std::size_t c = 0; c < m.cols / 8; ++c) {
      std::uint32_t word = 0;
      for (std::size_t j = 0; j < 8; ++j)
        word |= static_cast<std::uint32_t>(m.z[g * m.cols + 8 * c + j] - (v1 ? 1 : 0)) << (4 * j);
      t.qzeros.push_back(static_cast<std::int32_t>(word));
    }
  }
  for (std::size_t k = 0; k < m.rows; ++k) t.g_idx.push_back(static_cast<std::int32_t>(k / m.group_size));
  return t;
}

// What a kernel computes from a packed_matrix, element by element, through the reference: every
// word with its group's zeros word and scales, against (q - z) * s rounded once.
template <dq4::zeros Z, order O>
void expect_dequantizes_like_the_integers(const dq4::packed_matrix& p, const int_matrix& m) {
  for (std::size_t k = 0; k < p.rows; ++k) {
    const std::size_t g = k / p.group_size;
    for (std::size_t c = 0; c < p.words_per_row(); ++c) {
      std::uint32_t scale_bits[8];
      for (int j = 0; j < 8; ++j) scale_bits[j] = p.scale(g, 8 * c + static_cast<std::size_t>(j));
      const auto values = dq4::reference::dequantize<format::fp16, Z, O>(
          p.weights[k * p.words_per_row() + c], p.zero_points[g * p.words_per_row() + c], dq4::reference::assemble<format::fp16>(scale_bits));
      for (int j = 0; j < 8; ++j) {
        const std::size_t n = 8 * c + static_cast<std::size_t>(j);
        const int difference = m.q[k * m.cols + n] - m.z[g * m.cols + n];
        const std::uint32_t expected = dq4::reference::round_to(
            format::fp16, dq4::reference::times(difference, dq4::reference::number_of(format::fp16, m.s[g * m.cols + n])));
        ASSERT_EQ(values.bits(j), expected) << "row " << k << " column " << n;
      }
    }
  }
}

void expect_same_integers(const dq4::packed_matrix& p, const int_matrix& m) {
  for (std::size_t k = 0; k < m.rows; ++k)
    for (std::size_t n = 0; n < m.cols; ++n) ASSERT_EQ(p.weight(k, n), m.q[k * m.cols + n]) << k << "," << n;
  for (std::size_t g = 0; g < m.rows / m.group_size; ++g)
    for (std::size_t n = 0; n < m.cols; ++n) {
      ASSERT_EQ(p.zero(g, n), m.z[g * m.cols + n]) << g << "," << n;
      ASSERT_EQ(p.scale(g, n), m.s[g * m.cols + n]) << g << "," << n;
    }
}

TEST(Checkpoint, AwqRoundTripsAndDequantizes) {
  const int_matrix m = make_matrix(64, 48, 16, 0);
  const awq_tensors t = to_awq(m);
  const dq4::packed_matrix p = dq4::from_awq(t.qweight.data(), t.qzeros.data(), m.s.data(), 64, 48, 16);
  EXPECT_EQ(p.word_order, order::interleaved);
  EXPECT_EQ(p.zero_convention, dq4::zeros::awq);
  expect_same_integers(p, m);
  expect_dequantizes_like_the_integers<dq4::zeros::awq, order::interleaved>(p, m);
}

TEST(Checkpoint, GptqV1AndV2RoundTripAndDequantizeInEitherOrder) {
  for (const bool v1 : {true, false}) {
    const int_matrix m = make_matrix(64, 48, 32, v1 ? 1 : 0);  // v1 zeros 1..16: 16 is stored as 15
    const gptq_tensors t = to_gptq(m, v1);
    const dq4::zeros z = v1 ? dq4::zeros::gptq_v1 : dq4::zeros::gptq_v2;
    for (const order o : all_orders) {
      const dq4::packed_matrix p =
          dq4::from_gptq(t.qweight.data(), t.qzeros.data(), m.s.data(), t.g_idx.data(), 64, 48, 32, z, o);
      expect_same_integers(p, m);
      if (v1 && o == order::interleaved) expect_dequantizes_like_the_integers<dq4::zeros::gptq_v1, order::interleaved>(p, m);
      if (v1 && o == order::sequential) expect_dequantizes_like_the_integers<dq4::zeros::gptq_v1, order::sequential>(p, m);
      if (!v1 && o == order::interleaved) expect_dequantizes_like_the_integers<dq4::zeros::gptq_v2, order::interleaved>(p, m);
      if (!v1 && o == order::sequential) expect_dequantizes_like_the_integers<dq4::zeros::gptq_v2, order::sequential>(p, m);
    }
  }
}

template <class Call>
void expect_layout_error(const Call& call, const std::string& expected_text) {
  try {
    call();
    FAIL() << "accepted; expected an error containing \"" << expected_text << "\"";
  } catch (const dq4::layout_error& e) {
    EXPECT_NE(std::string(e.what()).find(expected_text), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, RejectsShapesThatDoNotDivideAndBadTensors) {
  const int_matrix m = make_matrix(64, 48, 16, 1);
  const awq_tensors a = to_awq(m);
  gptq_tensors g = to_gptq(m, true);
  const auto* s = m.s.data();
  expect_layout_error([&] { (void)dq4::from_awq(a.qweight.data(), a.qzeros.data(), s, 64, 44, 16); }, "not a multiple of 8");
  expect_layout_error([&] { (void)dq4::from_awq(a.qweight.data(), a.qzeros.data(), s, 60, 48, 16); }, "multiple of the group size 16");
  expect_layout_error([&] { (void)dq4::from_awq(a.qweight.data(), nullptr, s, 64, 48, 16); }, "null tensor");
  expect_layout_error([&] { (void)dq4::from_awq(a.qweight.data(), a.qzeros.data(), s, 64, 48, 0); }, "group size 0");
  expect_layout_error([&] { (void)dq4::from_gptq(g.qweight.data(), g.qzeros.data(), s, nullptr, 60, 48, 4, dq4::zeros::gptq_v1, order::sequential); },
                      "not a multiple of 8");
  expect_layout_error([&] { (void)dq4::from_gptq(g.qweight.data(), g.qzeros.data(), s, nullptr, 64, 48, 16, dq4::zeros::awq, order::sequential); },
                      "gptq_v1 or zeros::gptq_v2");
  std::swap(g.g_idx[3], g.g_idx[40]);  // an act-order permutation
  expect_layout_error([&] { (void)dq4::from_gptq(g.qweight.data(), g.qzeros.data(), s, g.g_idx.data(), 64, 48, 16, dq4::zeros::gptq_v1, order::sequential); },
                      "act-order");
}

// The A-fragment recipe of the tensor-core GEMV (examples/awq_gemv.cu): the AWQ words of rows k and
// k + 1 merged by one byte permute (0x5410: low halves, 0x7632: high halves), dequantized with the
// zeros word permuted the same way and each column's scale in both halves of its register, give
// registers {W[k][c], W[k + 1][c]}: the even columns c = 2j from 0x5410, the odd ones from 0x7632.
// dequantize is bit-exact to the reference for every word, zeros word and scales, so checking the
// recipe against the plain per-row reference here proves the device path too.
template <format F>
void expect_merged_rows_give_column_pairs(std::uint32_t row0, std::uint32_t row1, std::uint32_t zeros) {
  using dq4::detail::prmt;
  using dq4::order;
  dq4::fragment<F, 8> scales{}, even_scales{}, odd_scales{};
  // A different scale per column c: 1 + c / 16 (`one`: 1.0 in F's bits; `sixteenth` adds 1/16 in [1, 2)).
  const std::uint32_t one = F == format::fp16 ? 0x3C00u : 0x3F80u, sixteenth = F == format::fp16 ? 0x40u : 0x8u;
  for (int j = 0; j < 4; ++j) {
    const std::uint32_t s0 = one + static_cast<std::uint32_t>(2 * j) * sixteenth, s1 = s0 + sixteenth;
    scales.regs[j] = s0 | s1 << 16;
    even_scales.regs[j] = prmt(scales.regs[j], scales.regs[j], 0x1010);
    odd_scales.regs[j] = prmt(scales.regs[j], scales.regs[j], 0x3232);
  }
  const auto w0 = dq4::reference::dequantize<F, dq4::zeros::awq, order::interleaved>(row0, zeros, scales);
  const auto w1 = dq4::reference::dequantize<F, dq4::zeros::awq, order::interleaved>(row1, zeros, scales);
  const auto even = dq4::dequantize<F, order::interleaved>(
      prmt(row0, row1, 0x5410), dq4::prepare_zeros<F, dq4::zeros::awq, order::interleaved>(prmt(zeros, zeros, 0x5410)),
      even_scales);
  const auto odd = dq4::dequantize<F, order::interleaved>(
      prmt(row0, row1, 0x7632), dq4::prepare_zeros<F, dq4::zeros::awq, order::interleaved>(prmt(zeros, zeros, 0x7632)),
      odd_scales);
  for (int j = 0; j < 4; ++j) {
    ASSERT_EQ(even.bits(2 * j), w0.bits(2 * j)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j;
    ASSERT_EQ(even.bits(2 * j + 1), w1.bits(2 * j)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j;
    ASSERT_EQ(odd.bits(2 * j), w0.bits(2 * j + 1)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j + 1;
    ASSERT_EQ(odd.bits(2 * j + 1), w1.bits(2 * j + 1)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j + 1;
  }
}

template <format F>
void expect_mma_fragment_recipe() {
  for (std::uint32_t q0 = 0; q0 < 16; ++q0)  // every (q0, q1, z) in every column
    for (std::uint32_t q1 = 0; q1 < 16; ++q1)
      for (std::uint32_t z = 0; z < 16; ++z) expect_merged_rows_give_column_pairs<F>(q0 * 0x11111111u, q1 * 0x11111111u, z * 0x11111111u);
  std::uint32_t state = 12345;  // and mixed words, so that a column reading another column's nibble shows
  const auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  for (int i = 0; i < 20000; ++i) {
    const std::uint32_t row0 = next(), row1 = next(), zeros = next();
    expect_merged_rows_give_column_pairs<F>(row0, row1, zeros);
  }
}

TEST(MmaFragmentRecipe, MergedRowsGiveColumnPairsFp16) { expect_mma_fragment_recipe<format::fp16>(); }
TEST(MmaFragmentRecipe, MergedRowsGiveColumnPairsBf16) { expect_mma_fragment_recipe<format::bf16>(); }

TEST(FloatModel, RoundsToNearestEven) {
  using dq4_test::add_half;
  using dq4_test::bf16_layout;
  using dq4_test::fp16_layout;
  using dq4_test::mul_half;
  EXPECT_EQ(add_half(fp16_layout, 0x6400 | 5, 0xE400), 0x4500);     // (1024 + 5) - 1024 = 5
  EXPECT_EQ(add_half(fp16_layout, 0x5400 | 0x80, 0xD480), 0x0000);  // 72 - 72 = +0
  EXPECT_EQ(add_half(fp16_layout, 0x6800, 0x3C00), 0x6800);         // 2048 + 1 = 2049: tie to even 2048
  EXPECT_EQ(add_half(fp16_layout, 0x6801, 0x3C00), 0x6802);         // 2050 + 1 = 2051: tie to even 2052
  EXPECT_EQ(add_half(fp16_layout, 0x7BFF, 0x7BFF), 0x7C00);         // 65504 + 65504 overflows
  EXPECT_EQ(add_half(fp16_layout, 0x0001, 0x0001), 0x0002);         // subnormals add exactly
  EXPECT_EQ(add_half(fp16_layout, 0x8000, 0x8000), 0x8000);         // -0 + -0 = -0
  EXPECT_EQ(add_half(fp16_layout, 0x7C00, 0xFC00), 0x7FFF);         // inf - inf = NaN
  EXPECT_EQ(add_half(fp16_layout, 0x7BFF, 0x0001), 0x7BFF);         // a far smaller addend rounds away
  EXPECT_EQ(add_half(bf16_layout, 0x4300 | 5, 0xC300), 0x40A0);      // (128 + 5) - 128 = 5
  EXPECT_EQ(add_half(bf16_layout, 0x4380, 0x3F80), 0x4380);         // 256 + 1 = 257: tie to even 256
  EXPECT_EQ(mul_half(fp16_layout, 0x0001, 0x3800), 0x0000);         // 2^-24 * 0.5: tie to even 0
  EXPECT_EQ(mul_half(fp16_layout, 0x0003, 0x3800), 0x0002);         // 1.5 * 2^-24: tie to even 2
  EXPECT_EQ(mul_half(fp16_layout, 0x4B80, 0x7BFF), 0x7C00);         // 15 * 65504 overflows
  EXPECT_EQ(mul_half(fp16_layout, 0x0000, 0xFC00), 0x7FFF);         // 0 * -inf = NaN
  EXPECT_EQ(mul_half(fp16_layout, 0x0000, 0xBC00), 0x8000);         // 0 * -1 = -0
  EXPECT_EQ(mul_half(bf16_layout, 0x0001, 0x4000), 0x0002);         // bf16 subnormals multiply exactly
  EXPECT_EQ(mul_half(bf16_layout, 0x4170, 0x7F7F), 0x7F80);         // 15 * max overflows
}

}  // namespace
