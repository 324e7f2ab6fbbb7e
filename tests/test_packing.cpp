// SPDX-License-Identifier: Apache-2.0
// The host packers (pack, unpack, reorder) against the oracle's encodings and order lists, and their
// errors: values out of range, bad sizes, null buffers, nothing written before an error.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "oracle.hpp"
#include "paths.hpp"

namespace {

using dq4::encoding;
using dq4::format;
using dq4::order;

static_assert(dq4::pack<dq4::u4, dq4::interleaved>({0, 1, 2, 3, 4, 5, 6, 7}) == 0x75316420u);
static_assert(dq4::pack<dq4::u4, dq4::sequential>({0, 1, 2, 3, 4, 5, 6, 7}) == 0x76543210u);
static_assert(dq4::unpack<dq4::s4, dq4::sequential>(0x89ABCDEFu)[0] == -1 &&
              dq4::unpack<dq4::s4, dq4::sequential>(0x89ABCDEFu)[7] == -8);
static_assert(dq4::reorder<dq4::interleaved, dq4::sequential>(0x75316420u) == 0x76543210u);
static_assert(dq4::min_value<dq4::u4> == 0 && dq4::max_value<dq4::u4> == 15 && dq4::min_value<dq4::s4> == -8 &&
              dq4::max_value<dq4::u4b8> == 7);

// The nibble that stands for value v under encoding e, found in the oracle's table of values.
unsigned oracle_nibble(encoding e, int v) {
  const auto& values = dq4_test::oracle_values(e);
  return static_cast<unsigned>(std::find(values.begin(), values.end(), v) - values.begin());
}

// The word the oracle expects for eight values: value j's nibble at the position output j reads.
std::uint32_t oracle_word(encoding e, order o, const std::array<int, 8>& values) {
  std::uint32_t word = 0;
  for (int j = 0; j < 8; ++j)
    word |= oracle_nibble(e, values[static_cast<std::size_t>(j)]) << (4 * dq4_test::oracle_source(o, j));
  return word;
}

template <class P>
class PackOfPath : public ::testing::Test {};
TYPED_TEST_SUITE(PackOfPath, dq4_test::integer_paths_fp32);

// Every value in every position, with every other value as neighbour: pack writes the oracle's word,
// unpack reads the values back, reorder moves them to the other order's word.
TYPED_TEST(PackOfPath, WritesTheOraclesWordForEveryValueInEveryPosition) {
  constexpr encoding E = TypeParam::encoding;
  constexpr order O = TypeParam::order;
  constexpr order other = O == order::interleaved ? order::sequential : order::interleaved;
  for (int position = 0; position < 8; ++position) {
    for (int v = dq4::min_value<E>; v <= dq4::max_value<E>; ++v) {
      for (int neighbour = dq4::min_value<E>; neighbour <= dq4::max_value<E>; ++neighbour) {
        std::array<int, 8> values{};
        values.fill(neighbour);
        values[static_cast<std::size_t>(position)] = v;
        const std::uint32_t word = dq4::pack<E, O>(values);
        ASSERT_EQ(word, oracle_word(E, O, values)) << "value " << v << " at " << position;
        ASSERT_EQ((dq4::unpack<E, O>(word)), values);
        ASSERT_EQ((dq4::reorder<O, other>(word)), oracle_word(E, other, values));
      }
    }
  }
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
    EXPECT_NE(message.find("[" + std::to_string(dq4::min_value<E>) + ", " + std::to_string(dq4::max_value<E>) + "]"),
              std::string::npos)
        << message;
  }
}

TEST(Pack, RejectsValuesOutOfRangeNamingValueIndexAndRange) {
  expect_out_of_range_rejected<encoding::u4>(16);
  expect_out_of_range_rejected<encoding::u4>(-1);
  expect_out_of_range_rejected<encoding::u4b8>(8);
  expect_out_of_range_rejected<encoding::u4b8>(-9);
  expect_out_of_range_rejected<encoding::s4>(8);
  expect_out_of_range_rejected<encoding::s4>(-9);
}

// The buffer packer against the oracle's words, and an error at the last value leaves every word
// as it was (values are checked before anything is written).
TEST(Pack, BufferWritesTheOraclesWordsOrNothing) {
  std::vector<int> values(64);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int>((i * 7 + 3) % 16) - 8;
  std::vector<std::uint32_t> words(8, 0xDEADBEEFu);
  dq4::pack<dq4::s4, dq4::interleaved>(values.data(), values.size(), words.data());
  for (std::size_t w = 0; w < words.size(); ++w) {
    std::array<int, 8> group{};
    std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(8 * w), 8, group.begin());
    EXPECT_EQ(words[w], oracle_word(encoding::s4, order::interleaved, group)) << w;
  }
  values[63] = 99;
  std::vector<std::uint32_t> untouched(8, 0xDEADBEEFu);
  try {
    dq4::pack<dq4::s4, dq4::interleaved>(values.data(), values.size(), untouched.data());
    FAIL() << "out-of-range value accepted";
  } catch (const dq4::pack_error& e) {
    EXPECT_EQ(e.index(), 63u);
    EXPECT_EQ(e.value(), 99);
  }
  EXPECT_EQ(untouched, std::vector<std::uint32_t>(8, 0xDEADBEEFu));
}

TEST(Pack, BufferRejectsBadSizesAndNullPointersSayingWhich) {
  std::vector<int> values(12, 0);
  std::vector<std::uint32_t> words(2);
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message([&] { dq4::pack<dq4::u4, dq4::sequential>(values.data(), 12, words.data()); }).find("count 12"), std::string::npos);
  EXPECT_NE(message([&] { dq4::pack<dq4::u4, dq4::sequential>(nullptr, 8, words.data()); }).find("null values"), std::string::npos);
  EXPECT_NE(message([&] { dq4::pack<dq4::u4, dq4::sequential>(values.data(), 8, nullptr); }).find("null words"), std::string::npos);
  EXPECT_NE(message([&] { dq4::reorder<dq4::sequential, dq4::interleaved>(nullptr, 1, words.data()); }).find("null input"), std::string::npos);
  EXPECT_NE(message([&] { dq4::reorder<dq4::sequential, dq4::interleaved>(words.data(), 1, nullptr); }).find("null output"), std::string::npos);
  EXPECT_NO_THROW((dq4::pack<dq4::u4, dq4::sequential>(nullptr, 0, nullptr)));
}

// In-place reorder of a buffer, to sequential and back, against the oracle's order lists.
TEST(Reorder, BufferInPlaceFollowsTheOrderLists) {
  std::vector<std::uint32_t> words(64);
  std::uint32_t state = 12345;
  for (auto& w : words) w = state = state * 1664525u + 1013904223u;
  std::vector<std::uint32_t> copy = words;
  dq4::reorder<dq4::interleaved, dq4::sequential>(copy.data(), copy.size(), copy.data());
  for (std::size_t i = 0; i < words.size(); ++i) {
    for (int j = 0; j < 8; ++j) {  // output j's nibble moves from its interleaved to its sequential place
      ASSERT_EQ(dq4::reference::nibble(copy[i], dq4_test::oracle_source(order::sequential, j)),
                dq4::reference::nibble(words[i], dq4_test::oracle_source(order::interleaved, j)));
    }
  }
  dq4::reorder<dq4::sequential, dq4::interleaved>(copy.data(), copy.size(), copy.data());
  EXPECT_EQ(copy, words);
}

}  // namespace
