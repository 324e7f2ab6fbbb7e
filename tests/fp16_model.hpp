// SPDX-License-Identifier: Apache-2.0
// An exact software model of the GPU's fp16 subtraction (sub.rn.f16x2, per 16-bit lane), used to run
// dq4's fast algorithm on the host. Each fp16 is an integer multiple of 2^-24 below 2^17, so a sum
// is exact in int64 and is then rounded once to nearest, ties to even, as IEEE 754 requires.
// NaN results are the canonical NaN 0x7FFF that NVIDIA GPUs produce.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace dq4_test {

struct fp16_parts {
  bool negative;
  bool special;           // infinity or NaN
  bool nan;
  std::int64_t units;     // |value| in units of 2^-24 (finite values only)
};

inline fp16_parts split_fp16(std::uint16_t bits) {
  const bool negative = (bits & 0x8000u) != 0;
  const unsigned exponent = (bits >> 10) & 0x1Fu;
  const unsigned fraction = bits & 0x3FFu;
  if (exponent == 31) return {negative, true, fraction != 0, 0};
  const std::int64_t units = exponent == 0 ? std::int64_t{fraction}
                                           : std::int64_t{1024 + fraction} << (exponent - 1);
  return {negative, false, false, units};
}

// fp16 bits of sign * units * 2^-24, rounded to nearest, ties to even.
inline std::uint16_t round_to_fp16(bool negative, std::int64_t units) {
  const std::uint16_t sign = negative ? 0x8000 : 0;
  if (units < 1024) return static_cast<std::uint16_t>(sign | units);  // subnormal or zero: exact
  int exponent = 0;  // floor(log2(units)) - 24 is the unbiased exponent; step is 2^(e-10)
  while ((units >> (exponent + 1)) != 0) ++exponent;
  const int shift = exponent - 10;  // units per mantissa step, as a power of two
  std::int64_t significand = units >> shift;
  if (shift > 0) {
    const std::int64_t remainder = units & ((std::int64_t{1} << shift) - 1);
    const std::int64_t half = std::int64_t{1} << (shift - 1);
    if (remainder > half || (remainder == half && (significand & 1) != 0)) ++significand;
  }
  int biased = exponent - 24 + 15;
  if (significand == 2048) {  // rounding carried into the next binade
    significand = 1024;
    ++biased;
  }
  if (biased >= 31) return static_cast<std::uint16_t>(sign | 0x7C00u);  // overflow to infinity
  return static_cast<std::uint16_t>(sign | (biased << 10) | (significand - 1024));
}

inline std::uint16_t add_fp16(std::uint16_t a_bits, std::uint16_t b_bits) {
  const fp16_parts a = split_fp16(a_bits);
  const fp16_parts b = split_fp16(b_bits);
  if (a.nan || b.nan) return 0x7FFF;
  if (a.special || b.special) {
    if (a.special && b.special && a.negative != b.negative) return 0x7FFF;  // inf - inf
    return a.special ? a_bits : b_bits;
  }
  const std::int64_t sum = (a.negative ? -a.units : a.units) + (b.negative ? -b.units : b.units);
  if (sum == 0) {
    // Exact zero: -0 only when both addends are -0 (round to nearest).
    return (a.negative && b.negative) ? 0x8000 : 0x0000;
  }
  return round_to_fp16(sum < 0, sum < 0 ? -sum : sum);
}

inline std::uint16_t sub_fp16(std::uint16_t a, std::uint16_t b) {
  return add_fp16(a, static_cast<std::uint16_t>(b ^ 0x8000u));
}

// sub.rn.f16x2 with a fixed right operand, tabulated over all 2^16 left lanes (the fast algorithm
// subtracts constants only), so the exhaustive host runs cost two table look-ups per register.
class sub_f16x2_table {
 public:
  explicit sub_f16x2_table(std::uint32_t subtrahend)
      : subtrahend_(subtrahend), low_(1u << 16), high_(1u << 16) {
    for (std::uint32_t x = 0; x < (1u << 16); ++x) {
      low_[x] = sub_fp16(static_cast<std::uint16_t>(x), static_cast<std::uint16_t>(subtrahend));
      high_[x] = sub_fp16(static_cast<std::uint16_t>(x), static_cast<std::uint16_t>(subtrahend >> 16));
    }
  }
  std::uint32_t subtrahend() const { return subtrahend_; }
  // Makes the low lane's result for input x wrong on purpose: the canary that shows a sweep can fail.
  void corrupt_low_lane(std::uint16_t x, std::uint16_t wrong_result) { low_[x] = wrong_result; }
  std::uint32_t operator()(std::uint32_t a) const {
    return low_[a & 0xFFFFu] | (std::uint32_t{high_[a >> 16]} << 16);
  }

 private:
  std::uint32_t subtrahend_;
  std::vector<std::uint16_t> low_, high_;
};

}  // namespace dq4_test
