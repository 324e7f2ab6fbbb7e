// SPDX-License-Identifier: Apache-2.0
// The checkpoint readers against the upstream writers' arithmetic (writers.hpp): AutoAWQ, and GPTQ
// zeros as GPTQModel, AutoAWQ and AutoGPTQ write them, under every reading, with the edge cases
// first (a zero of 0 and its borrow, runs of zeros, a zero of 0 in the top nibble); the count of
// zeros the readings disagree on; and every bad input rejected with the numbers.
#include <dq4/checkpoint.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "writers.hpp"

namespace {

using dq4::format;
using dq4::order;
using dq4::zeros;
using dq4_test::gptq_writer;

constexpr std::array<gptq_writer, 3> v1_writers = {gptq_writer::gptqmodel_v1, gptq_writer::autoawq_v1,
                                                   gptq_writer::autogptq_v1};
constexpr std::array<zeros, 3> v1_readings = {zeros::gptq_v1, zeros::gptq_v1_wrap, zeros::gptq_v1_no_wrap};

std::string writer_name(gptq_writer w) {
  switch (w) {
    case gptq_writer::v2: return "v2";
    case gptq_writer::gptqmodel_v1: return "GPTQModel v1 export";
    case gptq_writer::autoawq_v1: return "AutoAWQ v1 conversion";
    case gptq_writer::autogptq_v1: return "AutoGPTQ pack";
  }
  return "?";
}

// Whether the writer kept column j's zero: the AutoGPTQ writer keeps the columns up to its first
// zero of 0 and sets the rest to 15; the word writers keep every column.
bool kept_by_writer(gptq_writer writer, const std::array<int, 8>& z, int j) {
  return writer != gptq_writer::autogptq_v1 || j < dq4_test::autogptq_kept_columns(z);
}

// Whether `reading` gives back the quantizer's zero of a kept column j from the word `writer` made
// of z, derived from the writers' arithmetic rather than from the readings: a word writer subtracts
// 1 from every column with borrows (column j borrows when its z_j - 1 - borrow_j is negative); the
// AutoGPTQ writer stores a zero of 0 as 15 and no borrows.
bool recovers(gptq_writer writer, zeros reading, const std::array<int, 8>& z, int j) {
  const int zj = z[static_cast<std::size_t>(j)];
  if (writer == gptq_writer::autogptq_v1) return reading != zeros::gptq_v1_no_wrap || zj != 0;  // its 15 means 0
  int borrow = 0;
  for (int i = 0; i < j; ++i) borrow = z[static_cast<std::size_t>(i)] - 1 - borrow < 0 ? 1 : 0;
  if (reading == zeros::gptq_v1) return true;  // the exact inverse of the word subtraction
  if (borrow != 0) return false;               // per-nibble readings cannot see the borrow
  return reading == zeros::gptq_v1_wrap || zj != 0;
}

// The zeros word each v1 writer makes of z, read under each v1 reading: of the columns the writer
// kept, exactly the recoverable ones come back.
void expect_readings_of(const std::array<int, 8>& z) {
  for (const gptq_writer writer : v1_writers) {
    const std::uint32_t word = dq4_test::write_zeros_word(writer, z);
    for (const zeros reading : v1_readings) {
      for (int j = 0; j < 8; ++j) {
        if (!kept_by_writer(writer, z, j)) continue;
        const bool equal = dq4::detail::zero_of(reading, word, j) == z[static_cast<std::size_t>(j)];
        ASSERT_EQ(equal, recovers(writer, reading, z, j))
            << writer_name(writer) << ", reading " << dq4::detail::zeros_name(reading) << ", column " << j << ", word 0x"
            << std::hex << word;
      }
    }
  }
  // v2 words are read back by the v2 reading.
  for (int j = 0; j < 8; ++j) ASSERT_EQ(dq4::detail::zero_of(zeros::gptq_v2, dq4_test::v2_zeros_word(z), j), z[static_cast<std::size_t>(j)]);
}

TEST(GptqV1Zeros, EveryZeroInEveryColumnWithEveryNeighbour) {
  for (int position = 0; position < 8; ++position)
    for (int value = 0; value < 16; ++value)
      for (int neighbour = 0; neighbour < 16; ++neighbour) {
        std::array<int, 8> z{};
        z.fill(neighbour);
        z[static_cast<std::size_t>(position)] = value;
        expect_readings_of(z);
      }
}

TEST(GptqV1Zeros, RunsOfZerosChainTheirBorrows) {
  for (int first = 0; first < 8; ++first)
    for (int last = first; last < 8; ++last)
      for (int other = 0; other < 16; ++other) {
        std::array<int, 8> z{};
        for (int j = 0; j < 8; ++j) z[static_cast<std::size_t>(j)] = j >= first && j <= last ? 0 : (other + 3 * j) % 16;
        expect_readings_of(z);
      }
}

TEST(GptqV1Zeros, AZeroInTheTopNibbleBorrowsOutOfTheWord) {
  const std::array<int, 8> z = {5, 6, 7, 8, 9, 10, 11, 0};
  EXPECT_EQ(dq4_test::gptqmodel_v1_zeros_word(z), 0xFA987654u);  // 0x0BA98765 - 0x11111111 mod 2^32
  expect_readings_of(z);
  const std::array<int, 8> all_zero{};
  EXPECT_EQ(dq4_test::gptqmodel_v1_zeros_word(all_zero), 0xEEEEEEEFu);  // 0 - 0x11111111 mod 2^32
  EXPECT_EQ(dq4_test::autogptq_v1_zeros_word(all_zero), 0xFFFFFFFFu);
  expect_readings_of(all_zero);
}

// The writers agree with each other where they should: AutoAWQ's int64 sum is GPTQModel's word
// subtraction, for every word (z in every column from a sweep of words), and AutoGPTQ's differs
// exactly where a zero of 0 flooded the nibbles above it.
TEST(GptqV1Zeros, AutoAwqWritesWhatGptqModelWrites) {
  std::uint32_t state = 7;
  for (int i = 0; i < 200000; ++i) {
    state = state * 1664525u + 1013904223u;
    std::array<int, 8> z{};
    for (int j = 0; j < 8; ++j) z[static_cast<std::size_t>(j)] = static_cast<int>((state >> (4 * j)) & 0xFu);
    ASSERT_EQ(dq4_test::autoawq_v1_zeros_word(z), dq4_test::gptqmodel_v1_zeros_word(z)) << std::hex << state;
    if (dq4_test::autogptq_kept_columns(z) == 8 && z[7] != 0) {
      ASSERT_EQ(dq4_test::autogptq_v1_zeros_word(z), dq4_test::gptqmodel_v1_zeros_word(z)) << std::hex << state;
    }
  }
}

// The case that was reported: K = 256, N = 64, G = 32, a layer exported by GPTQModel. Group 0's zeros
// word of columns 0..7 is 0x7584F878; column 3's zero is 0 (stored 15, borrowing from column 4,
// whose 6 is stored as 4). W[0][3] with q = 3 and scale 0x222A is 0x28A0 (3 * 0.012), as
// GPTQModel's reader gives; the no-wrap reading (z = 16) gave 0xB102 (-13 * 0.012).
TEST(GptqV1Zeros, TheReportedLayer) {
  const std::array<int, 8> z = {9, 8, 9, 0, 6, 9, 6, 8};
  ASSERT_EQ(dq4_test::gptqmodel_v1_zeros_word(z), 0x7584F878u);
  dq4_test::int_matrix m = dq4_test::make_matrix(256, 64, 32, 99, 0);
  for (std::size_t j = 0; j < 8; ++j) m.z[j] = z[j];
  m.q[3] = 3;
  m.s[3] = 0x222A;
  const dq4_test::gptq_tensors t = dq4_test::write_gptq(m, gptq_writer::gptqmodel_v1);
  ASSERT_EQ(static_cast<std::uint32_t>(t.qzeros[0]), 0x7584F878u);
  const auto read = [&](zeros reading) {
    return dq4::from_gptq(t.qweight.data(), t.qzeros.data(), m.s.data(), t.g_idx.data(), 256, 64, 32, reading,
                          order::interleaved, format::fp16);
  };
  const auto weight_bits = [](const dq4::packed_matrix& p, std::size_t k, std::size_t n) {
    return dq4::reference::round_to(format::fp16, dq4::reference::times(p.weight(k, n) - p.zero(k / p.group_size, n),
                                                                       dq4::reference::number_of(format::fp16, p.scale(0, n))));
  };
  const dq4::packed_matrix exact = read(zeros::gptq_v1);
  EXPECT_EQ(exact.zero(0, 3), 0);
  EXPECT_EQ(exact.zero(0, 4), 6);
  EXPECT_EQ(weight_bits(exact, 0, 3), 0x28A0u);
  const dq4::packed_matrix no_wrap = read(zeros::gptq_v1_no_wrap);
  EXPECT_EQ(no_wrap.zero(0, 3), 16);
  EXPECT_EQ(no_wrap.zero(0, 4), 5);
  EXPECT_EQ(weight_bits(no_wrap, 0, 3), 0xB102u);
  EXPECT_EQ(read(zeros::gptq_v1_wrap).zero(0, 4), 5);
  // In this layer the readings disagree on column 3 (a stored 15) and column 4 (the carry into it).
  EXPECT_EQ(dq4::count_gptq_v1_disagreements(t.qzeros.data(), 1), 2u);
}

// What a kernel computes from a packed_matrix, element by element, through the reference: every
// word with its group's zeros word and scales, against (q - z) * s rounded once, z the quantizer's.
template <zeros Z, order O>
void expect_dequantizes_like_the_integers(const dq4::packed_matrix& p, const dq4_test::int_matrix& m) {
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

void expect_same_integers(const dq4::packed_matrix& p, const dq4_test::int_matrix& m) {
  for (std::size_t k = 0; k < m.rows; ++k)
    for (std::size_t n = 0; n < m.cols; ++n) ASSERT_EQ(p.weight(k, n), m.q[k * m.cols + n]) << k << "," << n;
  for (std::size_t g = 0; g < m.rows / m.group_size; ++g)
    for (std::size_t n = 0; n < m.cols; ++n) {
      ASSERT_EQ(p.zero(g, n), m.z[g * m.cols + n]) << g << "," << n;
      ASSERT_EQ(p.scale(g, n), m.s[g * m.cols + n]) << g << "," << n;
    }
}

TEST(Checkpoint, AwqRoundTripsAndDequantizes) {
  const dq4_test::int_matrix m = dq4_test::make_matrix(64, 48, 16, 12345, 7);
  const dq4_test::awq_tensors t = dq4_test::write_awq(m);
  const dq4::packed_matrix p = dq4::from_awq(t.qweight.data(), t.qzeros.data(), m.s.data(), 64, 48, 16, format::fp16);
  EXPECT_EQ(p.word_order, order::interleaved);
  EXPECT_EQ(p.zero_convention, zeros::awq);
  expect_same_integers(p, m);
  expect_dequantizes_like_the_integers<zeros::awq, order::interleaved>(p, m);
}

// Whole layers (one zero in seven is 0) from the word writers and from v2, in either word order:
// the exact readings give back every integer and dequantize as (q - z) * s.
TEST(Checkpoint, GptqLayersFromEveryExactWriterInEitherOrder) {
  struct exact_case {
    gptq_writer writer;
    zeros reading;
  };
  for (const exact_case c : {exact_case{gptq_writer::v2, zeros::gptq_v2}, exact_case{gptq_writer::gptqmodel_v1, zeros::gptq_v1},
                             exact_case{gptq_writer::autoawq_v1, zeros::gptq_v1}}) {
    const dq4_test::int_matrix m = dq4_test::make_matrix(64, 48, 32, 777, 7);
    const dq4_test::gptq_tensors t = dq4_test::write_gptq(m, c.writer);
    for (const order o : {order::interleaved, order::sequential}) {
      SCOPED_TRACE(writer_name(c.writer) + (o == order::interleaved ? ", interleaved" : ", sequential"));
      const dq4::packed_matrix p =
          dq4::from_gptq(t.qweight.data(), t.qzeros.data(), m.s.data(), t.g_idx.data(), 64, 48, 32, c.reading, o, format::fp16);
      EXPECT_EQ(p.zero_convention, zeros::gptq_v2);  // stored as z
      expect_same_integers(p, m);
      if (o == order::interleaved) expect_dequantizes_like_the_integers<zeros::gptq_v2, order::interleaved>(p, m);
      if (o == order::sequential) expect_dequantizes_like_the_integers<zeros::gptq_v2, order::sequential>(p, m);
    }
  }
}

// The device path reads a raw GPTQ v1 zeros word (sequential) with prepare_zeros under each reading:
// (q - z) * s with the zero the reading gives, for every word an AutoGPTQ or GPTQModel writer made
// in the edge-case sets above (the host runs the same prepared registers the device gets).
TEST(Checkpoint, PrepareZerosReadsRawV1WordsLikeTheReference) {
  const auto scales = dq4::splat<format::fp16>(0x2E66);
  const auto check_word = [&](std::uint32_t word) {
    for (std::uint32_t q = 0; q < 16; ++q) {
      const std::uint32_t weights = q * 0x11111111u;
      const auto check = [&](auto zero_point) {
        using P = decltype(zero_point);
        const auto prepared = dq4::prepare_zeros<format::fp16, P::value, order::sequential>(word);
        const auto fast = dq4::dequantize<format::fp16, order::sequential>(weights, prepared, scales);
        const auto expected = dq4::reference::dequantize<format::fp16, P::value, order::sequential>(weights, word, scales);
        for (int r = 0; r < 4; ++r) ASSERT_EQ(fast.regs[r], expected.regs[r]) << std::hex << word;
      };
      check(std::integral_constant<zeros, zeros::gptq_v1>{});
      check(std::integral_constant<zeros, zeros::gptq_v1_wrap>{});
      check(std::integral_constant<zeros, zeros::gptq_v1_no_wrap>{});
    }
  };
  for (int value = 0; value < 16; ++value)
    for (int position = 0; position < 8; ++position) {
      std::array<int, 8> z{};
      z.fill(1 + position);
      z[static_cast<std::size_t>(position)] = value;
      for (const gptq_writer writer : v1_writers) check_word(dq4_test::write_zeros_word(writer, z));
    }
}

TEST(Checkpoint, DisagreementsAreCountedOnlyWhereAStoredNibbleIs15) {
  std::vector<std::int32_t> qzeros;
  std::size_t expected = 0;
  std::uint32_t state = 99;
  for (int i = 0; i < 4096; ++i) {
    state = state * 1664525u + 1013904223u;
    const std::uint32_t word = i < 2048 ? state & 0xEEEEEEEEu : state;  // the first half has no nibble 15
    qzeros.push_back(static_cast<std::int32_t>(word));
    int carry = 0;  // the readings disagree on a stored 15 (16 or 0) and where its carry arrives
    for (int k = 0; k < 8; ++k) {
      const unsigned n = (word >> (4 * k)) & 0xFu;
      if (n == 15 || carry != 0) ++expected;
      carry = n + 1 + static_cast<unsigned>(carry) >= 16 ? 1 : 0;
    }
  }
  EXPECT_EQ(dq4::count_gptq_v1_disagreements(qzeros.data(), 2048), 0u);
  EXPECT_EQ(dq4::count_gptq_v1_disagreements(qzeros.data(), qzeros.size()), expected);
  EXPECT_NE(expected, 0u);
  EXPECT_EQ(dq4::count_gptq_v1_disagreements(nullptr, 0), 0u);
  EXPECT_THROW((void)dq4::count_gptq_v1_disagreements(nullptr, 1), dq4::layout_error);
}

template <class Call>
void expect_layout_error(const Call& call, const std::vector<std::string>& expected_texts) {
  try {
    call();
    ADD_FAILURE() << "accepted; expected an error containing \"" << expected_texts.front() << "\"";
  } catch (const dq4::layout_error& e) {
    for (const std::string& text : expected_texts) EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, RejectsShapesThatDoNotDivideOrDoNotFitWithTheNumbers) {
  const dq4_test::int_matrix m = dq4_test::make_matrix(64, 48, 16, 1, 0);
  const dq4_test::awq_tensors a = dq4_test::write_awq(m);
  const dq4_test::gptq_tensors g = dq4_test::write_gptq(m, gptq_writer::v2);
  const auto* qw = a.qweight.data();
  const auto* qz = a.qzeros.data();
  const auto* s = m.s.data();
  const auto awq = [&](std::size_t k, std::size_t n, std::size_t group) {
    return [=] { (void)dq4::from_awq(qw, qz, s, k, n, group, format::fp16); };
  };
  const auto gptq = [&](std::size_t k, std::size_t n, std::size_t group) {
    return [=, &g] {
      (void)dq4::from_gptq(g.qweight.data(), g.qzeros.data(), s, nullptr, k, n, group, zeros::gptq_v2, order::sequential, format::fp16);
    };
  };
  expect_layout_error(awq(64, 44, 16), {"N = 44", "not a multiple of 8"});
  expect_layout_error(awq(60, 48, 16), {"K = 60", "multiple of the group size 16"});
  expect_layout_error(awq(0, 48, 16), {"empty matrix", "K = 0", "N = 48"});
  expect_layout_error(awq(64, 48, 0), {"group size 0"});
  expect_layout_error(gptq(60, 48, 4), {"K = 60", "not a multiple of 8"});
  expect_layout_error(gptq(64, 48, std::numeric_limits<std::size_t>::max()), {"group_size = -1", "G = K"});
  expect_layout_error(gptq(64, 48, 128), {"G = 128", "larger than K = 64"});
  // Sizes whose products overflow or exceed memory: rejected before any tensor is read.
  expect_layout_error(awq(std::size_t{1} << 32, std::size_t{1} << 35, 1), {"qweight", "4294967296 x 4294967296"});
  expect_layout_error(gptq(std::size_t{1} << 32, std::size_t{1} << 35, std::size_t{1} << 32), {"qweight", "more than fit"});
  expect_layout_error(gptq(std::size_t{1} << 33, std::size_t{1} << 33, std::size_t{1} << 33), {"qweight", "8589934592 x 1073741824"});
}

TEST(Checkpoint, RejectsNullTensorsNamingThem) {
  const dq4_test::int_matrix m = dq4_test::make_matrix(64, 48, 16, 1, 0);
  const dq4_test::awq_tensors a = dq4_test::write_awq(m);
  const auto* s = m.s.data();
  expect_layout_error([&] { (void)dq4::from_awq(nullptr, a.qzeros.data(), s, 64, 48, 16, format::fp16); }, {"null qweight"});
  expect_layout_error([&] { (void)dq4::from_awq(a.qweight.data(), nullptr, s, 64, 48, 16, format::fp16); }, {"null qzeros"});
  expect_layout_error([&] { (void)dq4::from_awq(a.qweight.data(), a.qzeros.data(), nullptr, 64, 48, 16, format::fp16); }, {"null scales"});
}

TEST(Checkpoint, RejectsValuesThatNameNoEnumerator) {
  const dq4_test::int_matrix m = dq4_test::make_matrix(64, 48, 16, 1, 0);
  const dq4_test::awq_tensors a = dq4_test::write_awq(m);
  const dq4_test::gptq_tensors g = dq4_test::write_gptq(m, gptq_writer::v2);
  const auto* s = m.s.data();
  const auto awq = [&](format f) { return [&, f] { (void)dq4::from_awq(a.qweight.data(), a.qzeros.data(), s, 64, 48, 16, f); }; };
  expect_layout_error(awq(format::fp32), {"scale format fp32", "fp16 or format::bf16"});
  expect_layout_error(awq(static_cast<format>(7)), {"format(7)"});
  const auto gptq = [&](zeros z, order o, format f) {
    return [&, z, o, f] { (void)dq4::from_gptq(g.qweight.data(), g.qzeros.data(), s, nullptr, 64, 48, 16, z, o, f); };
  };
  expect_layout_error(gptq(zeros::awq, order::sequential, format::fp16), {"zero reading awq"});
  expect_layout_error(gptq(static_cast<zeros>(9), order::sequential, format::fp16), {"zeros(9)"});
  expect_layout_error(gptq(zeros::gptq_v2, static_cast<order>(2), format::fp16), {"word order order(2)"});
  expect_layout_error(gptq(zeros::gptq_v2, order::sequential, format::fp32), {"scale format fp32"});
}

TEST(Checkpoint, RejectsActOrderAndNegativeGroupIndices) {
  const dq4_test::int_matrix m = dq4_test::make_matrix(64, 48, 16, 1, 0);
  dq4_test::gptq_tensors g = dq4_test::write_gptq(m, gptq_writer::v2);
  const auto read = [&] {
    (void)dq4::from_gptq(g.qweight.data(), g.qzeros.data(), m.s.data(), g.g_idx.data(), 64, 48, 16, zeros::gptq_v2,
                         order::sequential, format::fp16);
  };
  g.g_idx[5] = -1;
  expect_layout_error(read, {"g_idx[5] = -1", "negative"});
  g.g_idx[5] = 0;
  std::swap(g.g_idx[3], g.g_idx[40]);  // an act-order permutation
  expect_layout_error(read, {"g_idx[3] = 2", "k / G = 0", "act-order"});
}

TEST(Checkpoint, PackedMatrixAccessorsCheckTheirIndices) {
  const dq4::packed_matrix empty;
  EXPECT_EQ(empty.groups(), 0u);  // no division by a group size of 0
  EXPECT_THROW((void)empty.weight(0, 0), std::out_of_range);
  EXPECT_THROW((void)empty.zero(0, 0), std::out_of_range);
  const dq4_test::int_matrix m = dq4_test::make_matrix(64, 48, 16, 1, 0);
  const dq4_test::awq_tensors a = dq4_test::write_awq(m);
  const dq4::packed_matrix p = dq4::from_awq(a.qweight.data(), a.qzeros.data(), m.s.data(), 64, 48, 16, format::bf16);
  EXPECT_EQ(p.scale_format, format::bf16);
  EXPECT_NO_THROW((void)p.weight(63, 47));
  EXPECT_THROW((void)p.weight(64, 0), std::out_of_range);
  EXPECT_THROW((void)p.zero(4, 0), std::out_of_range);
  EXPECT_THROW((void)p.scale(0, 48), std::out_of_range);
  try {
    (void)p.weight(64, 3);
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("weight(64, 3): the matrix has 64 rows of 48 columns"), std::string::npos) << e.what();
  }
}

}  // namespace
