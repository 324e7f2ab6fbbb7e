// SPDX-License-Identifier: Apache-2.0
// Block-scaled fp4 (MXFP4, NVFP4) and 16-entry codebooks, on the host:
//   - the references against oracles written independently of them: e2m1 values typed from the OCP MX
//     specification, e4m3 and fp32 fields parsed from their layouts, rounding by tests/float_model.hpp
//     (fp16, bf16) or by the host's float (fp32);
//   - the fast algorithms (the same detail:: functions the GPU runs, PRMT and LOP3 by their portable
//     definitions) against the references: every e8m0 scale byte with every nibble value in every
//     position among varied neighbours, in both orders, to fp16, bf16 and fp32; codebook look-ups of
//     varied tables in every position; and canaries that show each comparison can fail;
//   - NVFP4's two roundings against the correctly rounded product, counted.
#if defined(__CUDACC__)
#error "test_block_fp4.cpp must be compiled by the host C++ compiler, without nvcc"
#endif

#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "float_model.hpp"

namespace {

using dq4::encoding;
using dq4::format;
using dq4::order;
namespace reference = dq4::reference;

// ---- Oracles ----------------------------------------------------------------------------------

// Twice the e2m1 magnitudes of nibbles 0..7 (OCP MX v1.0, section 5.3.3: 0, 0.5, 1, 1.5, 2, 3, 4, 6).
constexpr std::int64_t twice_e2m1_value[8] = {0, 1, 2, 3, 4, 6, 8, 12};

// A number significand * 2^exponent with a sign, or a NaN / infinity.
struct value {
  bool negative, nan, infinite;
  std::int64_t significand;
  int exponent;
};

value e2m1_oracle(unsigned n) { return {(n & 8u) != 0, false, false, twice_e2m1_value[n & 7u], -1}; }

// e4m3 (OCP FP8 E4M3, bias 7, S.1111.111 NaN) and fp32 fields by their layouts.
value e4m3_oracle(unsigned bits) {
  const unsigned e = (bits >> 3) & 0xFu, m = bits & 7u;
  const bool negative = (bits & 0x80u) != 0;
  if (e == 15 && m == 7) return {negative, true, false, 0, 0};
  if (e == 0) return {negative, false, false, m, -9};
  return {negative, false, false, 8 + m, static_cast<int>(e) - 10};
}
value fp32_oracle(std::uint32_t bits) {
  const unsigned e = (bits >> 23) & 0xFFu, m = bits & 0x7FFFFFu;
  const bool negative = (bits >> 31) != 0;
  if (e == 255) return {negative, m != 0, m == 0, 0, 0};
  if (e == 0) return {negative, false, false, m, -149};
  return {negative, false, false, std::int64_t{m} | (1 << 23), static_cast<int>(e) - 150};
}

value multiplied(const value& a, const value& b) {
  if (a.nan || b.nan || (a.infinite && b.significand == 0 && !b.infinite) || (b.infinite && a.significand == 0 && !a.infinite)) {
    return {false, true, false, 0, 0};
  }
  return {a.negative != b.negative, false, a.infinite || b.infinite, a.significand * b.significand, a.exponent + b.exponent};
}

// v rounded to nearest even in f: float_model's rounding for fp16 and bf16, the host's float for fp32
// (v's significand has at most 28 bits, so the double is exact and the float conversion rounds once).
std::uint32_t rounded_oracle(format f, const value& v) {
  if (f == format::fp32) {
    if (v.nan) return 0x7FFFFFFFu;
    const float x = v.infinite ? std::numeric_limits<float>::infinity()
                               : static_cast<float>(std::ldexp(static_cast<double>(v.significand), v.exponent));
    std::uint32_t bits;
    std::memcpy(&bits, &x, 4);
    return bits | (v.negative ? 0x80000000u : 0u);
  }
  if (v.nan) return 0x7FFFu;
  const dq4_test::half_format layout = f == format::fp16 ? dq4_test::fp16_layout : dq4_test::bf16_layout;
  if (v.infinite) return (v.negative ? 0x8000u : 0u) | (f == format::fp16 ? 0x7C00u : 0x7F80u);
  return dq4_test::round_half(layout, v.negative, v.significand, v.exponent);
}

// One word per (position, value, background): nibble `position` holds `value`, every other nibble
// `background`.
std::uint32_t probe_word(int position, unsigned value, unsigned background) {
  const std::uint32_t filled = background * 0x11111111u;
  return (filled & ~(0xFu << (4 * position))) | (value << (4 * position));
}

constexpr format sixteen_and_32_bit[] = {format::fp16, format::bf16, format::fp32};

// ---- MXFP4: the reference ----------------------------------------------------------------------

// Every scale byte times every nibble, rounded once: subnormals, overflow to infinity, E = 0xFF NaN.
TEST(Mxfp4Reference, EveryScaleByteTimesEveryNibbleRoundsOnce) {
  for (format f : sixteen_and_32_bit) {
    for (unsigned e = 0; e < 256; ++e) {
      for (unsigned n = 0; n < 16; ++n) {
        const std::uint32_t word = n;  // element 0 in both orders
        const std::uint32_t got = f == format::fp16   ? reference::dequantize<format::fp16, encoding::e2m1, order::sequential>(word, dq4::e8m0{static_cast<std::uint8_t>(e)}).bits(0)
                                  : f == format::bf16 ? reference::dequantize<format::bf16, encoding::e2m1, order::sequential>(word, dq4::e8m0{static_cast<std::uint8_t>(e)}).bits(0)
                                                      : reference::dequantize<format::fp32, encoding::e2m1, order::sequential>(word, dq4::e8m0{static_cast<std::uint8_t>(e)}).bits(0);
        std::uint32_t want = 0;
        if (e == 255) {
          const std::uint32_t sign = (n & 8u) != 0 ? 1u << (dq4::value_bits(f) - 1) : 0u;
          want = (f == format::fp32 ? 0x7FFF0000u : 0x7FFFu) | sign;
        } else {
          value v = e2m1_oracle(n);
          v.exponent += static_cast<int>(e) - 127;
          want = rounded_oracle(f, v);
        }
        ASSERT_EQ(got, want) << dq4::detail::format_name(f) << " scale byte " << e << " nibble " << n;
      }
    }
  }
}

// Spot values a reader can check by hand.
TEST(Mxfp4Reference, KnownValues) {
  const auto fp16 = [](unsigned e, std::uint32_t word) {
    return reference::dequantize<format::fp16, encoding::e2m1, order::sequential>(word, dq4::e8m0{static_cast<std::uint8_t>(e)});
  };
  EXPECT_EQ(fp16(127, 0x7).bits(0), 0x4600u);   // 6
  EXPECT_EQ(fp16(140, 0x7).bits(0), 0x7A00u);   // 6 * 2^13 = 49152 = 1.5 * 2^15
  EXPECT_EQ(fp16(141, 0x7).bits(0), 0x7C00u);   // 98304: infinity
  EXPECT_EQ(fp16(141, 0xF).bits(0), 0xFC00u);   // -infinity
  EXPECT_EQ(fp16(104, 0x1).bits(0), 0x0001u);   // 0.5 * 2^-23 = 2^-24: the smallest subnormal
  EXPECT_EQ(fp16(103, 0x1).bits(0), 0x0000u);   // 2^-25: a tie, to the even 0
  EXPECT_EQ(fp16(102, 0x3).bits(0), 0x0001u);   // 1.5 * 2^-25 = 0.75 * 2^-24 rounds up to 2^-24
  EXPECT_EQ(fp16(101, 0x3).bits(0), 0x0000u);   // 0.375 * 2^-24 rounds down to 0
  EXPECT_EQ(fp16(102, 0x5).bits(0), 0x0002u);   // 3 * 2^-25 = 1.5 * 2^-24: a tie, to the even 2 * 2^-24
  EXPECT_EQ(fp16(0, 0x8).bits(0), 0x8000u);     // -0 stays -0
}

// ---- MXFP4: the fast algorithm on the host ---------------------------------------------------

template <format F, order O>
dq4::fragment<F, 8> fast_block_scaled(std::uint32_t word, const dq4::block_scale<F>& b) {
  constexpr format T = dq4::detail::e2m1_table_format(F);
  const dq4::detail::plane_tables t{{b.table[0], b.table[1]}, {b.table[2], b.table[3]}};
  const dq4::fragment<T, 8> v = dq4::detail::sign_magnitude_lookup<T, O, false>(word, t);
  if constexpr (F == format::fp32) {
    return dq4::detail::widened_to_fp32(v);
  } else {
    return v;
  }
}

template <format F, order O>
void expect_block_scaled_fast_path_exact() {
  for (unsigned s = 0; s < 256; ++s) {
    const dq4::e8m0 scale{static_cast<std::uint8_t>(s)};
    const dq4::block_scale<F> block = dq4::prepare_block_scale<F>(scale);
    for (int position = 0; position < 8; ++position) {
      for (unsigned v = 0; v < 16; ++v) {
        for (unsigned background = 0; background < 16; ++background) {
          const std::uint32_t word = probe_word(position, v, background);
          const auto fast = fast_block_scaled<F, O>(word, block);
          const auto expected = reference::dequantize<F, encoding::e2m1, O>(word, scale);
          const auto host = dq4::dequantize<F, encoding::e2m1, O>(word, block);
          for (int r = 0; r < dq4::fragment<F, 8>::registers; ++r) {
            ASSERT_EQ(fast.regs[r], expected.regs[r]) << "scale " << s << " word 0x" << std::hex << word << " register " << r;
            ASSERT_EQ(host.regs[r], expected.regs[r]);
          }
        }
      }
    }
  }
}

TEST(Mxfp4HostModel, Fp16InterleavedEveryScaleNibblePosition) { expect_block_scaled_fast_path_exact<format::fp16, order::interleaved>(); }
TEST(Mxfp4HostModel, Fp16SequentialEveryScaleNibblePosition) { expect_block_scaled_fast_path_exact<format::fp16, order::sequential>(); }
TEST(Mxfp4HostModel, Bf16InterleavedEveryScaleNibblePosition) { expect_block_scaled_fast_path_exact<format::bf16, order::interleaved>(); }
TEST(Mxfp4HostModel, Bf16SequentialEveryScaleNibblePosition) { expect_block_scaled_fast_path_exact<format::bf16, order::sequential>(); }
TEST(Mxfp4HostModel, Fp32InterleavedEveryScaleNibblePosition) { expect_block_scaled_fast_path_exact<format::fp32, order::interleaved>(); }
TEST(Mxfp4HostModel, Fp32SequentialEveryScaleNibblePosition) { expect_block_scaled_fast_path_exact<format::fp32, order::sequential>(); }

// The in-range shortcut (an add to the exponent fields) gives what rounding each entry gives.
TEST(Mxfp4HostModel, ShortcutTablesEqualPerEntryRounding) {
  for (unsigned s = 0; s < 255; ++s) {
    const dq4::e8m0 scale{static_cast<std::uint8_t>(s)};
    const auto fp16 = dq4::prepare_block_scale<format::fp16>(scale);
    const auto bf16 = dq4::prepare_block_scale<format::bf16>(scale);
    for (unsigned i = 0; i < 8; ++i) {
      reference::exact_number x = reference::number_of_nibble<encoding::e2m1>(i);
      x.exponent += static_cast<int>(s) - 127;
      const unsigned shift = 8 * (i % 4);
      const auto entry = [&](const std::uint32_t(&t)[4]) {
        return ((t[i / 4] >> shift) & 0xFFu) | (((t[2 + i / 4] >> shift) & 0xFFu) << 8);
      };
      EXPECT_EQ(entry(fp16.table), reference::round_to(format::fp16, x)) << "scale " << s << " entry " << i;
      EXPECT_EQ(entry(bf16.table), reference::round_to(format::bf16, x)) << "scale " << s << " entry " << i;
    }
  }
}

// A canary: one wrong table byte is caught by the comparison the sweeps make.
TEST(Mxfp4HostModel, WrongTableByteIsCaught) {
  dq4::block_scale<format::fp16> block = dq4::prepare_block_scale<format::fp16>(dq4::e8m0{127});
  block.table[3] ^= 0x00040000u;  // entry 6's high byte (4.0) one exponent step off
  int mismatches = 0;
  for (unsigned n = 0; n < 16; ++n) {
    const auto fast = fast_block_scaled<format::fp16, order::sequential>(n, block);
    if (fast.regs[0] != reference::dequantize<format::fp16, encoding::e2m1, order::sequential>(n, dq4::e8m0{127}).regs[0]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 2);  // +4 and -4
}

// Unscaled e2m1 to fp32 (the bf16 look-up widened) against the oracle.
TEST(Mxfp4HostModel, UnscaledFp32IsTheBf16LookupWidened) {
  for (unsigned background = 0; background < 16; ++background) {
    for (int position = 0; position < 8; ++position) {
      for (unsigned n = 0; n < 16; ++n) {
        const std::uint32_t word = probe_word(position, n, background);
        const auto fast = dq4::detail::e2m1_dequantize<format::fp32, order::interleaved>(word);
        const auto expected = reference::dequantize<format::fp32, encoding::e2m1, order::interleaved>(word);
        for (int j = 0; j < 8; ++j) {
          ASSERT_EQ(fast.regs[j], expected.regs[j]);
          const unsigned nibble = reference::nibble(word, dq4::source_nibble(order::interleaved, j));
          ASSERT_EQ(expected.regs[j], rounded_oracle(format::fp32, e2m1_oracle(nibble)));
        }
      }
    }
  }
}

// ---- NVFP4 -------------------------------------------------------------------------------------

// The tensor scales g of the NVFP4 tests: every power of two of fp32 (subnormals included), the
// values exporters write (amax / (6 * 448) for a spread of amax), and the special values.
std::vector<std::uint32_t> global_scales() {
  std::vector<std::uint32_t> g;
  for (int e = -149; e <= 127; ++e) {
    const float x = std::ldexp(1.0f, e);
    std::uint32_t bits;
    std::memcpy(&bits, &x, 4);
    g.push_back(bits);
  }
  for (int i = 1; i <= 200; ++i) {
    const float amax = std::ldexp(1.0f + static_cast<float>(i) / 201.0f, (i % 40) - 20);
    const float x = amax / (6.0f * 448.0f);
    std::uint32_t bits;
    std::memcpy(&bits, &x, 4);
    g.push_back(bits);
  }
  for (std::uint32_t bits : {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F7FFFFFu, 0x00000001u,
                             0x007FFFFFu, 0x3F800001u, 0x3FFFFFFFu}) {
    g.push_back(bits);
  }
  return g;
}

TEST(Nvfp4Reference, ScaleIsTheProductRoundedOnce) {
  for (format f : sixteen_and_32_bit) {
    for (unsigned s = 0; s < 256; ++s) {
      for (std::uint32_t g : global_scales()) {
        const std::uint32_t want = rounded_oracle(f, multiplied(e4m3_oracle(s), fp32_oracle(g)));
        ASSERT_EQ(reference::nvfp4_scale(f, static_cast<std::uint8_t>(s), g), want)
            << dq4::detail::format_name(f) << " s 0x" << std::hex << s << " g 0x" << g;
      }
    }
  }
}

// How often q * s_F, rounded (two roundings: s_F = round(s * g), then q * s_F), differs from
// round(q * s * g), over every e2m1 q and every finite e4m3 s, for two sets of g: the exporters' own
// (amax / (6 * 448) for amax from 2^-20 to 2^20, where s * g is a normal number of F) and every power of
// two and special value of fp32 (most of whose products are subnormal in fp16, or zero). The README
// quotes these counts. q with one significant bit (0.5, 1, 2, 4) is exact either way where s_F is
// normal; the differences come from a rounding of s * g followed by one of q * s_F.
struct rounding_count {
  long long differ = 0, total = 0;
};

rounding_count count_double_roundings(format f, const std::vector<std::uint32_t>& scales) {
  rounding_count c;
  for (unsigned s = 0; s < 256; ++s) {
    if ((s & 0x7Fu) == 0x7Fu) continue;
    for (std::uint32_t g : scales) {
      const value product = multiplied(e4m3_oracle(s), fp32_oracle(g));
      if (product.nan || product.infinite) continue;
      const std::uint32_t s_f = reference::nvfp4_scale(f, static_cast<std::uint8_t>(s), g);
      for (unsigned n = 0; n < 16; ++n) {
        const std::uint32_t twice =
            f == format::fp16
                ? reference::dequantize<format::fp16, encoding::e2m1, order::sequential>(n, dq4::splat<format::fp16>(s_f)).bits(0)
                : reference::dequantize<format::bf16, encoding::e2m1, order::sequential>(n, dq4::splat<format::bf16>(s_f)).bits(0);
        ++c.total;
        if (twice != rounded_oracle(f, multiplied(e2m1_oracle(n), product))) ++c.differ;
      }
    }
  }
  return c;
}

TEST(Nvfp4Reference, TwoRoundingsDifferFromTheCorrectlyRoundedProductThisOften) {
  const std::vector<std::uint32_t> all = global_scales();
  const std::vector<std::uint32_t> exporters(all.begin() + 277, all.begin() + 477);
  for (format f : {format::fp16, format::bf16}) {
    const rounding_count typical = count_double_roundings(f, exporters), every = count_double_roundings(f, all);
    std::printf("[ dq4      ] NVFP4 %s: exporters' g %lld of %lld products differ; all g %lld of %lld\n",
                dq4::detail::format_name(f).c_str(), typical.differ, typical.total, every.differ, every.total);
    EXPECT_EQ(typical.differ, f == format::fp16 ? 165332 : 91968) << "the README quotes this count";
    EXPECT_EQ(every.differ, f == format::fp16 ? 233016 : 103968) << "the README quotes this count";
  }
}

// ---- Codebooks ---------------------------------------------------------------------------------

// Sixteen distinct bit patterns per table, from a seed, with the low and high bytes of every entry
// different from each other's (so that a look-up from the wrong plane or entry shows).
dq4::codebook<format::fp16> varied_codebook(unsigned seed) {
  std::uint32_t bits[16] = {};
  for (unsigned n = 0; n < 16; ++n) bits[n] = ((n * 0x1Bu + seed * 0x3Du) & 0xFFu) | (((n * 0x35u + seed * 7u + 0x81u) & 0xFFu) << 8);
  return dq4::make_codebook<format::fp16>(bits);
}

template <order O>
void expect_codebook_lookup_exact() {
  for (unsigned seed = 0; seed < 8; ++seed) {
    const auto book = varied_codebook(seed);
    for (int position = 0; position < 8; ++position) {
      for (unsigned v = 0; v < 16; ++v) {
        for (unsigned background = 0; background < 16; ++background) {
          const std::uint32_t word = probe_word(position, v, background);
          const auto fast = dq4::detail::sixteen_entry_lookup<format::fp16, O>(word, book.low, book.high);
          const auto expected = reference::dequantize<format::fp16, O>(word, book);
          for (int r = 0; r < 4; ++r) ASSERT_EQ(fast.regs[r], expected.regs[r]) << "word 0x" << std::hex << word;
          for (int j = 0; j < 8; ++j) {
            const unsigned nibble = (word >> (4 * dq4::source_nibble(O, j))) & 0xFu;
            ASSERT_EQ(expected.bits(j), book.entry(nibble));
          }
        }
      }
    }
  }
}

TEST(CodebookHostModel, InterleavedLookupGivesEveryEntryInEveryPosition) { expect_codebook_lookup_exact<order::interleaved>(); }
TEST(CodebookHostModel, SequentialLookupGivesEveryEntryInEveryPosition) { expect_codebook_lookup_exact<order::sequential>(); }

TEST(CodebookHostModel, WrongEntryIsCaught) {
  auto book = varied_codebook(3);
  const auto good = book;
  book.high[3] ^= 0x01000000u;  // entry 15's high byte
  int mismatches = 0;
  for (unsigned n = 0; n < 16; ++n) {
    const auto fast = dq4::detail::sixteen_entry_lookup<format::fp16, order::sequential>(n, book.low, book.high);
    if (fast.regs[0] != reference::dequantize<format::fp16, order::sequential>(n, good).regs[0]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 1);
}

TEST(CodebookReference, MakeCodebookKeepsEveryBitPattern) {
  std::uint32_t bits[16] = {};
  for (unsigned n = 0; n < 16; ++n) bits[n] = 0x8001u * n ^ 0x5A3Cu;
  const auto book = dq4::make_codebook<format::bf16>(bits);
  for (unsigned n = 0; n < 16; ++n) EXPECT_EQ(book.entry(n), bits[n] & 0xFFFFu);
}

// A codebook entry times a scale rounds once; bitsandbytes' mode rounds to fp32 first, then to F.
TEST(CodebookReference, ScaledEntryRoundsOnceAndBitsandbytesTwice) {
  const float table[16] = {-1.0f, -0.75f, 0.3f, 1.0f / 3, 0.1f, 1e-30f, 6e4f, -2.5e-8f,
                           0.0f, -0.0f, 0.7f, 0.9999999f, 123.456f, 1e-5f, 0.5f, 1.0f};
  for (float absmax : {1.0f, 0.0123f, 3.3e-5f, 65504.0f, 1e-38f, 7.7e10f}) {
    std::uint32_t absmax_bits;
    std::memcpy(&absmax_bits, &absmax, 4);
    for (format f : {format::fp16, format::bf16}) {
      const auto fp16_book = dq4::bitsandbytes_codebook<format::fp16>(table, absmax);
      const auto bf16_book = dq4::bitsandbytes_codebook<format::bf16>(table, absmax);
      for (unsigned n = 0; n < 16; ++n) {
        const float product = table[n] * absmax;  // the host's fp32 multiply, as bitsandbytes' kernel
        std::uint32_t product_bits;
        std::memcpy(&product_bits, &product, 4);
        const std::uint32_t want = rounded_oracle(f, fp32_oracle(product_bits));
        std::uint32_t table_bits;
        std::memcpy(&table_bits, &table[n], 4);
        ASSERT_EQ(reference::bitsandbytes_value(f, table_bits, absmax_bits), want) << "entry " << n << " absmax " << absmax;
        ASSERT_EQ(f == format::fp16 ? fp16_book.entry(n) : bf16_book.entry(n), want) << "entry " << n;
      }
    }
  }
}

}  // namespace
