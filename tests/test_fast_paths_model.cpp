// SPDX-License-Identifier: Apache-2.0
// The fast algorithms' bit-level steps (the same detail:: functions the GPU runs, with LOP3, PRMT and
// shifts evaluated by their portable definitions) and an exact software model of the float
// arithmetic, held to the reference on the host:
//   - every register of every unscaled path over every value of the nibbles it reads, after proving
//     that it reads no other bit; four paths also by brute force over all 2^32 words;
//   - every scaled and zero-point path (fp16, bf16) for every (q, z) pair or nibble, times every
//     16-bit scale pattern; fp32 for 2^18 scale patterns (the GPU test takes all 2^32);
//   - the per-nibble GPTQ v1 reading (n + 1) mod 16 over all 2^32 zeros words.
// Every typed test runs once per path, and its CTest entry names the path.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "float_model.hpp"
#include "oracle.hpp"
#include "paths.hpp"

namespace {

using dq4::encoding;
using dq4::format;
using dq4::order;

// The GPU's register arithmetic for format F, modelled: adds of the constants a path uses are
// tabulated per 16-bit lane; everything else is computed by the model directly.
template <format F>
class model_arithmetic {
 public:
  explicit model_arithmetic(const std::vector<std::uint32_t>& tabulated_addends = {}) {
    if constexpr (F != format::fp32) {
      for (std::uint32_t a : tabulated_addends) {
        if (std::none_of(tables_.begin(), tables_.end(), [&](const auto& t) { return t.addend() == a; }))
          tables_.emplace_back(layout(), a);
      }
    }
  }
  std::uint32_t add(std::uint32_t a, std::uint32_t b) const {
    if constexpr (F == format::fp32) {
      return dq4_test::host_fp32(a, b, false);
    } else {
      for (const auto& t : tables_)
        if (t.addend() == b) return t(a);
      return dq4_test::add_half2(layout(), a, b);
    }
  }
  std::uint32_t mul(std::uint32_t a, std::uint32_t b) const {
    if constexpr (F == format::fp32) {
      return dq4_test::host_fp32(a, b, true);
    } else {
      return dq4_test::mul_half2(layout(), a, b);
    }
  }
  void corrupt_low_lane(std::uint32_t addend, std::uint16_t x, std::uint16_t wrong_result) {
    for (auto& t : tables_)
      if (t.addend() == addend) t.corrupt_low_lane(x, wrong_result);
  }

 private:
  static constexpr dq4_test::half_format layout() {
    return F == format::fp16 ? dq4_test::fp16_layout : dq4_test::bf16_layout;
  }
  std::vector<dq4_test::add_table> tables_;
};

template <format F, encoding E, order O>
model_arithmetic<F> model_for_path() {
  std::vector<std::uint32_t> addends;
  for (int r = 0; r < dq4::fragment<F, 8>::registers; ++r) addends.push_back(dq4::detail::plan<F, E, O>(r).addend);
  return model_arithmetic<F>(addends);
}

struct sweep_outcome {
  std::uint64_t mismatches = 0;
  std::uint64_t first = UINT64_MAX;  // first mismatching index
  std::string description;           // expected and actual bits of the first mismatch
};

// Runs `check(index) -> bool equal` over indices [0, count) on every hardware thread.
template <class Check>
sweep_outcome sweep(std::uint64_t count, const Check& check) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<sweep_outcome> outcomes(threads);
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      sweep_outcome local;
      const std::uint64_t begin = count * t / threads, end = count * (t + 1) / threads;
      for (std::uint64_t i = begin; i < end; ++i) {
        if (!check(i)) {
          ++local.mismatches;
          local.first = std::min(local.first, i);
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

template <format F>
std::string describe(std::uint64_t index, const dq4::fragment<F, 8>& expected, const dq4::fragment<F, 8>& actual) {
  std::ostringstream s;
  s << std::hex << std::setfill('0') << "first mismatch: index 0x" << index << "\n  expected";
  for (auto r : expected.regs) s << " 0x" << std::setw(8) << r;
  s << "\n  actual  ";
  for (auto r : actual.regs) s << " 0x" << std::setw(8) << r;
  return s.str();
}

template <format F>
bool same(const dq4::fragment<F, 8>& a, const dq4::fragment<F, 8>& b) {
  return std::equal(std::begin(a.regs), std::end(a.regs), std::begin(b.regs));
}

// The expected registers of a word, from the bits each nibble stands for (taken from the reference,
// one nibble at a time) placed by the oracle's order list. Tabulated per byte of the word (the
// registers a byte's two nibbles contribute to), so a word costs four look-ups.
template <format F, encoding E, order O>
class expected_registers {
 public:
  expected_registers() : bytes_(4 * 256) {
    std::uint32_t bits[16];
    for (unsigned n = 0; n < 16; ++n) bits[n] = dq4::reference::dequantize<F, E, O>(n * 0x11111111u).bits(0);
    constexpr int per_register = dq4::values_per_register(F);
    for (int b = 0; b < 4; ++b) {
      for (unsigned v = 0; v < 256; ++v) {
        dq4::fragment<F, 8>& out = bytes_[256 * b + v];
        out = {};
        for (int j = 0; j < 8; ++j) {
          const int k = dq4_test::oracle_source(O, j);  // the nibble element j comes from
          if (k / 2 != b) continue;
          const unsigned n = (v >> (4 * (k % 2))) & 0xFu;
          out.regs[j / per_register] |= bits[n] << (16 * (j % per_register));
        }
      }
    }
  }
  dq4::fragment<F, 8> operator()(std::uint32_t word) const {
    dq4::fragment<F, 8> out = bytes_[word & 0xFFu];
    for (int b = 1; b < 4; ++b) {
      const dq4::fragment<F, 8>& part = bytes_[256 * b + ((word >> (8 * b)) & 0xFFu)];
      for (int r = 0; r < dq4::fragment<F, 8>::registers; ++r) out.regs[r] |= part.regs[r];
    }
    return out;
  }

 private:
  std::vector<dq4::fragment<F, 8>> bytes_;
};

// The unscaled fast algorithm of a path, run with `arithmetic`.
template <format F, encoding E, order O, class Arithmetic>
dq4::fragment<F, 8> fast_unscaled(std::uint32_t word, const Arithmetic& arithmetic) {
  if constexpr (E == encoding::e2m1) {
    return dq4::detail::e2m1_dequantize<F, O>(word);
  } else {
    return dq4::detail::magic_dequantize<F, E, O>(word, arithmetic);
  }
}

template <format F, encoding E, order O, class Fast>
sweep_outcome compare_unscaled(std::uint64_t count, const Fast& fast) {
  const expected_registers<F, E, O> expected;
  sweep_outcome outcome = sweep(count, [&](std::uint64_t i) {
    const auto w = static_cast<std::uint32_t>(i);
    return same<F>(fast(w), expected(w));
  });
  if (outcome.mismatches != 0) {
    const auto w = static_cast<std::uint32_t>(outcome.first);
    outcome.description = describe<F>(w, expected(w), fast(w));
  }
  return outcome;
}

// Every register of every unscaled path, over every value of its inputs. The bit-level steps (shift,
// PRMT, AND/XOR with constants) route each bit of the word to fixed places, so which word bits a
// register reads shows by flipping one bit at a time; the test finds that set, requires it to be
// exactly the register's two nibbles (one for fp32), and then runs the register over all 256 (16)
// values of those nibbles with every other nibble at each of 16 background values.
template <format F, encoding E, order O, class Fast>
void expect_registers_read_only_their_nibbles(const Fast& fast) {
  constexpr int registers = dq4::fragment<F, 8>::registers;
  constexpr int per_register = dq4::values_per_register(F);
  const expected_registers<F, E, O> expected;
  const std::uint32_t bases[] = {0u, ~0u, 0x55555555u, 0xAAAAAAAAu, 0x12345678u, 0x9ABCDEF0u};
  for (int r = 0; r < registers; ++r) {
    std::uint32_t nibble_bits = 0;  // the word bits register r must read
    for (int h = 0; h < per_register; ++h) nibble_bits |= 0xFu << (4 * dq4_test::oracle_source(O, per_register * r + h));
    std::uint32_t read = 0;  // the bits it does read
    for (std::uint32_t base : bases)
      for (int bit = 0; bit < 32; ++bit)
        if (fast(base).regs[r] != fast(base ^ (1u << bit)).regs[r]) read |= 1u << bit;
    ASSERT_EQ(read, nibble_bits) << "register " << r << " reads other bits than its nibbles";
    for (std::uint32_t background = 0; background < 16; ++background) {
      const std::uint32_t rest = (background * 0x11111111u) & ~nibble_bits;
      for (std::uint32_t v = 0; v < (1u << (4 * per_register)); ++v) {
        // spread v's nibbles into the register's nibble positions
        std::uint32_t word = rest;
        for (int h = 0; h < per_register; ++h)
          word |= ((v >> (4 * h)) & 0xFu) << (4 * dq4_test::oracle_source(O, per_register * r + h));
        ASSERT_EQ(fast(word).regs[r], expected(word).regs[r]) << "register " << r << " word 0x" << std::hex << word;
      }
    }
  }
}

template <class P>
class HostModelUnscaled : public ::testing::Test {};
TYPED_TEST_SUITE(HostModelUnscaled, dq4_test::all_paths);

TYPED_TEST(HostModelUnscaled, EveryRegisterReadsOnlyItsNibblesAndGivesTheirValues) {
  constexpr format F = TypeParam::format;
  constexpr encoding E = TypeParam::encoding;
  constexpr order O = TypeParam::order;
  const model_arithmetic<F> arithmetic = model_for_path<F, E, O>();
  expect_registers_read_only_their_nibbles<F, E, O>([&](std::uint32_t w) { return fast_unscaled<F, E, O>(w, arithmetic); });
}

// bf16 on sm_75 (no bf16 arithmetic) runs the fp32 path and keeps the high halves.
template <class P>
class HostModelBf16ThroughFp32 : public ::testing::Test {};
TYPED_TEST_SUITE(HostModelBf16ThroughFp32, dq4_test::integer_paths_fp32);

TYPED_TEST(HostModelBf16ThroughFp32, EveryRegisterReadsOnlyItsNibblesAndGivesTheirValues) {
  constexpr encoding E = TypeParam::encoding;
  constexpr order O = TypeParam::order;
  const model_arithmetic<format::fp32> arithmetic;
  expect_registers_read_only_their_nibbles<format::bf16, E, O>([&](std::uint32_t w) {
    return dq4::detail::bf16_from_small_fp32(dq4::detail::magic_dequantize<format::fp32, E, O>(w, arithmetic));
  });
}

// The brute-force check of the same, over all 2^32 words, for one path of each kind (the GPU test
// runs all of them): fp16 interleaved u4, bf16 sequential s4, fp32 interleaved u4b8, e2m1 to fp16.
template <format F, encoding E, order O>
void expect_path_matches_over_all_words() {
  const model_arithmetic<F> arithmetic = model_for_path<F, E, O>();
  const auto fast = [&](std::uint32_t w) { return fast_unscaled<F, E, O>(w, arithmetic); };
  const sweep_outcome outcome = compare_unscaled<F, E, O>(std::uint64_t{1} << 32, fast);
  EXPECT_EQ(outcome.mismatches, 0u) << outcome.description;
}

TEST(HostModelExhaustive, Fp16U4InterleavedOverAll32BitWords) {
  expect_path_matches_over_all_words<format::fp16, encoding::u4, order::interleaved>();
}
TEST(HostModelExhaustive, Bf16S4SequentialOverAll32BitWords) {
  expect_path_matches_over_all_words<format::bf16, encoding::s4, order::sequential>();
}
TEST(HostModelExhaustive, Fp32U4b8InterleavedOverAll32BitWords) {
  expect_path_matches_over_all_words<format::fp32, encoding::u4b8, order::interleaved>();
}
TEST(HostModelExhaustive, E2m1Fp16SequentialOverAll32BitWords) {
  expect_path_matches_over_all_words<format::fp16, encoding::e2m1, order::sequential>();
}

// The harness can fail: one wrong entry in the model (fp16 low-lane input 1024 + 5, minus 1024) must
// show up exactly on the words that feed it, those whose nibble 0 or nibble 2 is 5 (registers 0 and 2
// both subtract 1024 in the low lane): 2 * 2^12 - 2^8 of the first 2^16 words, the first being word 5.
TEST(HostModelCanary, OneWrongModelEntryIsCaught) {
  constexpr format F = format::fp16;
  model_arithmetic<F> arithmetic = model_for_path<F, encoding::u4, order::interleaved>();
  arithmetic.corrupt_low_lane(dq4::detail::plan<F, encoding::u4, order::interleaved>(0).addend, 0x6405, 0x4600);  // 6, not 5
  const auto fast = [&](std::uint32_t w) { return fast_unscaled<F, encoding::u4, order::interleaved>(w, arithmetic); };
  const sweep_outcome outcome = compare_unscaled<F, encoding::u4, order::interleaved>(std::uint64_t{1} << 16, fast);
  EXPECT_EQ(outcome.mismatches, 2 * (std::uint64_t{1} << 12) - (std::uint64_t{1} << 8));
  EXPECT_EQ(outcome.first, 5u);
  EXPECT_NE(outcome.description.find("expected 0x00004500"), std::string::npos) << outcome.description;
  EXPECT_NE(outcome.description.find("actual   0x00004600"), std::string::npos) << outcome.description;
}

// Scale patterns swept: all 2^16 for fp16 and bf16; for fp32, every high half with four low halves.
template <format F>
constexpr std::uint64_t scale_count() {
  return F == format::fp32 ? std::uint64_t{1} << 18 : std::uint64_t{1} << 16;
}
template <format F>
constexpr std::uint32_t scale_pattern(std::uint64_t i) {
  constexpr std::uint32_t low_halves[4] = {0x0000u, 0x0001u, 0x8000u, 0xFFFFu};
  return F == format::fp32 ? (static_cast<std::uint32_t>(i >> 2) << 16) | low_halves[i & 3] : static_cast<std::uint32_t>(i);
}

// Zero points: per scale, 32 (weights, zeros) word pairs that put every (q, stored zero) pair of
// nibbles in some position: pair index 8k + p sits at nibble p of pair k. prepare_zeros is integer
// instructions only, the same functions on the host as on the device.
template <class P>
class HostModelZeroPoints : public ::testing::Test {};
TYPED_TEST_SUITE(HostModelZeroPoints, dq4_test::all_zero_paths);

TYPED_TEST(HostModelZeroPoints, EveryPairUnderEveryScale) {
  constexpr format F = TypeParam::format;
  constexpr dq4::zeros Z = TypeParam::zeros;
  constexpr order O = TypeParam::order;
  const model_arithmetic<F> arithmetic;
  const auto words = [](std::uint64_t i, std::uint32_t& w, std::uint32_t& z) {
    w = z = 0;
    for (unsigned p = 0; p < 8; ++p) {
      const unsigned pair = 8 * static_cast<unsigned>(i & 31) + p;
      w |= (pair & 0xFu) << (4 * p);
      z |= (pair >> 4) << (4 * p);
    }
  };
  const auto fast = [&](std::uint64_t i) {
    std::uint32_t w, z;
    words(i, w, z);
    const auto zero = dq4::prepare_zeros<F, Z, O>(z);
    return dq4::detail::magic_dequantize<F, O>(w, zero, dq4::splat<F>(scale_pattern<F>(i >> 5)), arithmetic);
  };
  const auto expected = [&](std::uint64_t i) {
    std::uint32_t w, z;
    words(i, w, z);
    return dq4::reference::dequantize<F, Z, O>(w, z, dq4::splat<F>(scale_pattern<F>(i >> 5)));
  };
  const sweep_outcome outcome = sweep(scale_count<F>() * 32, [&](std::uint64_t i) { return same<F>(fast(i), expected(i)); });
  EXPECT_EQ(outcome.mismatches, 0u) << (outcome.mismatches ? describe<F>(outcome.first, expected(outcome.first), fast(outcome.first)) : "");
}

// The per-nibble reading (n + 1) mod 16 is computed for all eight nibbles at once with an add that
// must not carry between them: checked over every zeros word against the reading's definition.
TEST(HostModelZeroWords, WrapReadingOverAll32BitWords) {
  const sweep_outcome outcome = sweep(std::uint64_t{1} << 32, [](std::uint64_t i) {
    const auto stored = static_cast<std::uint32_t>(i);
    const std::uint32_t fast = dq4::detail::zeros_as_nibbles<dq4::zeros::gptq_v1_wrap>(stored);
    std::uint32_t expected = 0;
    for (int k = 0; k < 8; ++k) expected |= ((((stored >> (4 * k)) & 0xFu) + 1u) % 16u) << (4 * k);
    return fast == expected;
  });
  EXPECT_EQ(outcome.mismatches, 0u) << "first mismatch: zeros word 0x" << std::hex << outcome.first;
}

// Symmetric scales (and e2m1 block scales): per scale, the words 0x76543210 and 0xFEDCBA98 hold
// every nibble.
template <class P>
class HostModelScaled : public ::testing::Test {};
TYPED_TEST_SUITE(HostModelScaled, dq4_test::all_paths);

TYPED_TEST(HostModelScaled, EveryNibbleUnderEveryScale) {
  constexpr format F = TypeParam::format;
  constexpr encoding E = TypeParam::encoding;
  constexpr order O = TypeParam::order;
  const model_arithmetic<F> arithmetic = model_for_path<F, E, O>();
  const auto word = [](std::uint64_t i) { return (i & 1) != 0 ? 0xFEDCBA98u : 0x76543210u; };
  const auto fast = [&](std::uint64_t i) {
    const auto scales = dq4::splat<F>(scale_pattern<F>(i >> 1));
    if constexpr (E == encoding::e2m1) {
      return dq4::detail::e2m1_dequantize<F, O>(word(i), scales, arithmetic);
    } else {
      return dq4::detail::magic_dequantize<F, E, O>(word(i), scales, arithmetic);
    }
  };
  const auto expected = [&](std::uint64_t i) {
    return dq4::reference::dequantize<F, E, O>(word(i), dq4::splat<F>(scale_pattern<F>(i >> 1)));
  };
  const sweep_outcome outcome = sweep(scale_count<F>() * 2, [&](std::uint64_t i) { return same<F>(fast(i), expected(i)); });
  EXPECT_EQ(outcome.mismatches, 0u) << (outcome.mismatches ? describe<F>(outcome.first, expected(outcome.first), fast(outcome.first)) : "");
}

}  // namespace
