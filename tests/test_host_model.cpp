// SPDX-License-Identifier: Apache-2.0
// The fast algorithm's bit-level steps (the same detail::magic_to_fp16 the GPU runs, with its LOP3,
// PRMT and shift evaluated by their portable definitions) and an exact software model of the fp16
// subtraction, held to the reference over all 2^32 words, on the host, for every encoding and order.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fp16_model.hpp"

namespace {

using dq4::encoding;
using dq4::order;

// sub.rn.f16x2 for the constants one path subtracts, each tabulated per 16-bit lane once.
class modelled_sub_f16x2 {
 public:
  explicit modelled_sub_f16x2(const std::vector<std::uint32_t>& subtrahends) {
    for (std::uint32_t s : subtrahends) {
      if (std::none_of(tables_.begin(), tables_.end(), [&](const auto& t) { return t.subtrahend() == s; }))
        tables_.emplace_back(s);
    }
  }
  std::uint32_t operator()(std::uint32_t a, std::uint32_t b) const {
    for (const auto& t : tables_)
      if (t.subtrahend() == b) return t(a);
    ADD_FAILURE() << "the algorithm subtracted an untabulated constant 0x" << std::hex << b;
    return 0;
  }
  void corrupt_low_lane(std::uint32_t subtrahend, std::uint16_t x, std::uint16_t wrong_result) {
    for (auto& t : tables_)
      if (t.subtrahend() == subtrahend) t.corrupt_low_lane(x, wrong_result);
  }

 private:
  std::vector<dq4_test::sub_f16x2_table> tables_;
};

template <encoding E, order O>
modelled_sub_f16x2 model_for_path() {
  std::vector<std::uint32_t> biases;
  for (int r = 0; r < 4; ++r) biases.push_back(dq4::detail::plan<E, O>(r).bias);
  return modelled_sub_f16x2(biases);
}

struct sweep_outcome {
  std::uint64_t mismatches = 0;
  std::uint64_t first = UINT64_MAX;  // first mismatching word
  std::string description;           // expected and actual bits of the first mismatch
};

// Runs `check(word) -> bool equal` over words [0, count) on every hardware thread.
template <class Check>
sweep_outcome sweep(std::uint64_t count, const Check& check) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<sweep_outcome> outcomes(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      sweep_outcome local;
      const std::uint64_t begin = count * t / threads, end = count * (t + 1) / threads;
      for (std::uint64_t w = begin; w < end; ++w) {
        if (!check(static_cast<std::uint32_t>(w))) {
          ++local.mismatches;
          local.first = std::min(local.first, w);
        }
      }
      outcomes[t] = local;
    });
  }
  for (auto& th : pool) th.join();
  sweep_outcome total;
  for (const auto& o : outcomes) {
    total.mismatches += o.mismatches;
    total.first = std::min(total.first, o.first);
  }
  return total;
}

std::string describe(std::uint32_t word, const dq4::fp16x8& expected, const dq4::fp16x8& actual) {
  std::ostringstream s;
  s << std::hex << std::setfill('0') << "first mismatch: word 0x" << std::setw(8) << word << "\n  expected";
  for (auto p : expected.pairs) s << " 0x" << std::setw(8) << p;
  s << "\n  actual  ";
  for (auto p : actual.pairs) s << " 0x" << std::setw(8) << p;
  return s.str();
}

// The fast algorithm run with `model` against the reference on words [0, count).
template <encoding E, order O>
sweep_outcome compare_with_reference(const modelled_sub_f16x2& model, std::uint64_t count) {
  const auto sub = [&model](std::uint32_t a, std::uint32_t b) { return model(a, b); };  // no table copies
  const auto equal = [&](std::uint32_t w) {
    const dq4::fp16x8 fast = dq4::detail::magic_to_fp16<E, O>(w, sub);
    const dq4::fp16x8 ref = dq4::reference::to_fp16<E, O>(w);
    return std::equal(std::begin(fast.pairs), std::end(fast.pairs), std::begin(ref.pairs));
  };
  sweep_outcome outcome = sweep(count, equal);
  if (outcome.mismatches != 0) {
    const auto first = static_cast<std::uint32_t>(outcome.first);
    outcome.description = describe(first, dq4::reference::to_fp16<E, O>(first), dq4::detail::magic_to_fp16<E, O>(first, sub));
  }
  return outcome;
}

template <encoding E, order O>
void expect_model_matches_reference_exhaustively() {
  const sweep_outcome outcome = compare_with_reference<E, O>(model_for_path<E, O>(), std::uint64_t{1} << 32);
  EXPECT_EQ(outcome.mismatches, 0u) << outcome.description;
}

TEST(HostModelExhaustive, U4Interleaved) { expect_model_matches_reference_exhaustively<encoding::u4, order::interleaved>(); }
TEST(HostModelExhaustive, U4b8Interleaved) { expect_model_matches_reference_exhaustively<encoding::u4b8, order::interleaved>(); }
TEST(HostModelExhaustive, S4Interleaved) { expect_model_matches_reference_exhaustively<encoding::s4, order::interleaved>(); }
TEST(HostModelExhaustive, U4Sequential) { expect_model_matches_reference_exhaustively<encoding::u4, order::sequential>(); }
TEST(HostModelExhaustive, U4b8Sequential) { expect_model_matches_reference_exhaustively<encoding::u4b8, order::sequential>(); }
TEST(HostModelExhaustive, S4Sequential) { expect_model_matches_reference_exhaustively<encoding::s4, order::sequential>(); }

// The harness can fail: one wrong entry in the model (low-lane input 1024 + 5, minus 1024) must show
// up exactly on the words that feed it, those whose nibble 0 or nibble 2 is 5 (registers 0 and 2 both
// subtract 1024 in the low lane): 2 * 2^12 - 2^8 of the first 2^16 words, the first being word 5.
TEST(HostModelCanary, OneWrongModelEntryIsCaught) {
  modelled_sub_f16x2 model = model_for_path<encoding::u4, order::interleaved>();
  model.corrupt_low_lane(dq4::detail::plan<encoding::u4, order::interleaved>(0).bias, 0x6405, 0x4600);  // 6, not 5
  const sweep_outcome outcome = compare_with_reference<encoding::u4, order::interleaved>(model, std::uint64_t{1} << 16);
  EXPECT_EQ(outcome.mismatches, 2 * (std::uint64_t{1} << 12) - (std::uint64_t{1} << 8));
  EXPECT_EQ(outcome.first, 5u);
  EXPECT_NE(outcome.description.find("expected 0x00004500"), std::string::npos) << outcome.description;
  EXPECT_NE(outcome.description.find("actual   0x00004600"), std::string::npos) << outcome.description;
}

}  // namespace
