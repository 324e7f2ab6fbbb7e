// SPDX-License-Identifier: Apache-2.0
// Host tests, compiled by the plain C++ compiler with no CUDA headers on the include path: they also
// prove that the public header builds as ordinary C++17.
#if defined(__CUDACC__)
#error "test_host.cpp must be compiled by the host C++ compiler, without nvcc"
#endif

#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fp16_model.hpp"
#include "oracle.hpp"
#include "paths.hpp"

namespace {

using dq4::encoding;
using dq4::order;
using dq4_test::oracle_fp16;
using dq4_test::oracle_source;

constexpr std::array<order, 2> all_orders = {order::interleaved, order::sequential};

// The same checks at compile time: the reference is constexpr.
static_assert(dq4::reference::fp16_bits(-8) == 0xC800 && dq4::reference::fp16_bits(15) == 0x4B80);
static_assert(dq4::reference::to_fp16<dq4::u4, dq4::interleaved>(0x75316420u).pairs[0] == 0x3C000000u);
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

template <encoding E, order O>
void expect_reference_matches_oracle() {
  for (int position = 0; position < 8; ++position) {
    for (unsigned value = 0; value < 16; ++value) {
      for (unsigned background = 0; background < 16; ++background) {
        const std::uint32_t word = probe_word(position, value, background);
        const dq4::fp16x8 ref = dq4::reference::to_fp16<E, O>(word);
        const dq4::fp16x8 host = dq4::to_fp16<E, O>(word);  // the portable path host code runs
        for (int j = 0; j < 8; ++j) {
          const unsigned nibble = oracle_source(O, j) == position ? value : background;
          ASSERT_EQ(ref.bits(j), oracle_fp16(E, nibble))
              << "word 0x" << std::hex << word << " element " << std::dec << j;
          ASSERT_EQ(host.bits(j), ref.bits(j)) << "word 0x" << std::hex << word;
        }
      }
    }
  }
}

TEST(Reference, MatchesOracleForEveryValueInEveryPosition) {
  dq4_test::for_each_path([](auto p) {
    using P = decltype(p);
    expect_reference_matches_oracle<P::encoding, P::order>();
  });
}

TEST(Reference, SourceNibbleMatchesOracle) {
  for (order o : all_orders)
    for (int j = 0; j < 8; ++j) EXPECT_EQ(dq4::source_nibble(o, j), oracle_source(o, j));
}

TEST(Reference, Fp16BitsOfEveryExactInteger) {
  // Against the fp16 model's independent rounding: every |v| < 2048 is exact.
  for (int v = -2047; v < 2048; ++v) {
    const std::int64_t units = (v < 0 ? -std::int64_t{v} : std::int64_t{v}) << 24;
    ASSERT_EQ(dq4::reference::fp16_bits(v), v == 0 ? 0 : dq4_test::round_to_fp16(v < 0, units)) << v;
  }
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
        for (int j = 0; j < 8; ++j)
          ASSERT_EQ(out.bits(j), dq4::reference::fp16_bits(values[static_cast<std::size_t>(j)]));
        // The other order reads a differently packed word back to the same values.
        constexpr order other_order = O == order::interleaved ? order::sequential : order::interleaved;
        ASSERT_EQ((dq4::reorder<O, other_order>(word)), (dq4::pack<E, other_order>(values)));
      }
    }
  }
}

TEST(Pack, RoundTripsThroughUnpackDequantizeAndReorder) {
  dq4_test::for_each_path([](auto p) {
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

TEST(Fp16Model, RoundsToNearestEven) {
  using dq4_test::sub_fp16;
  EXPECT_EQ(sub_fp16(0x6400 | 5, 0x6400), 0x4500);           // (1024 + 5) - 1024 = 5
  EXPECT_EQ(sub_fp16(0x5400 | 0x80, 0x5480), 0x0000);        // 72 - 72 = +0
  EXPECT_EQ(sub_fp16(0x6800 | 1, 0x0000), 0x6801);            // 2050 stays 2050
  EXPECT_EQ(dq4_test::add_fp16(0x6800, 0x3C00), 0x6800);      // 2048 + 1 = 2049: tie to even 2048
  EXPECT_EQ(dq4_test::add_fp16(0x6801, 0x3C00), 0x6802);      // 2050 + 1 = 2051: tie to even 2052
  EXPECT_EQ(dq4_test::add_fp16(0x7BFF, 0x7BFF), 0x7C00);      // 65504 + 65504 overflows
  EXPECT_EQ(dq4_test::add_fp16(0x0001, 0x0001), 0x0002);      // subnormals add exactly
  EXPECT_EQ(sub_fp16(0x8000, 0x0000), 0x8000);                // -0 - +0 = -0
  EXPECT_EQ(sub_fp16(0x7C00, 0x7C00), 0x7FFF);                // inf - inf = NaN
}

}  // namespace
