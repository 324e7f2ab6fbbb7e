// SPDX-License-Identifier: Apache-2.0
// An exact software model of the GPU's 16-bit float arithmetic (add.rn and mul.rn on fp16x2 and
// bf16x2, per 16-bit lane), used to run dq4's fast algorithms on the host. Written independently of
// dq4's reference: values are integers times powers of two; a sum or product is formed exactly (a
// tiny addend far below the larger one's last bit is replaced by a sticky bit, which rounds the same)
// and rounded once to nearest, ties to even, as IEEE 754 requires, keeping subnormals. NaN results
// are the canonical NaN 0x7FFF that NVIDIA GPUs produce. fp32 arithmetic is modelled by the host's
// own IEEE float operations (see host_fp32 below).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace dq4_test {

struct half_format {
  int mantissa_bits;  // 10 for fp16, 7 for bf16
  int exponent_bias;  // 15 for fp16, 127 for bf16
};
inline constexpr half_format fp16_layout{10, 15};
inline constexpr half_format bf16_layout{7, 127};

struct parts {
  bool negative, infinite, nan;
  std::int64_t significand;  // value = significand * 2^exponent (finite only)
  int exponent;
};

inline parts split(half_format f, std::uint16_t bits) {
  const int m = f.mantissa_bits;
  const bool negative = (bits & 0x8000u) != 0;
  const unsigned field = (bits & 0x7FFFu) >> m;
  const unsigned fraction = bits & ((1u << m) - 1u);
  const unsigned max_field = (1u << (15 - m)) - 1u;
  if (field == max_field) return {negative, fraction == 0, fraction != 0, 0, 0};
  if (field == 0) return {negative, false, false, fraction, 1 - f.exponent_bias - m};
  return {negative, false, false, std::int64_t{fraction} | (std::int64_t{1} << m),
          static_cast<int>(field) - f.exponent_bias - m};
}

// Bits of (negative ? -1 : 1) * significand * 2^exponent, rounded to nearest even (significand >= 0).
inline std::uint16_t round_half(half_format f, bool negative, std::int64_t significand, int exponent) {
  const std::uint16_t sign = negative ? 0x8000 : 0;
  const int m = f.mantissa_bits;
  const unsigned max_field = (1u << (15 - m)) - 1u;
  if (significand == 0) return sign;
  // Normalize to exactly m + 1 significant bits plus guard information.
  int top = 0;
  while ((significand >> (top + 1)) != 0) ++top;
  int field = top + exponent + f.exponent_bias;  // biased exponent if normal
  int drop = top - m;                            // bits below the last kept one
  if (field < 1) {                               // subnormal: the quantum is fixed at 2^(1 - bias - m)
    drop += 1 - field;
    field = 0;
  }
  std::int64_t kept = significand;
  if (drop > 0) {
    if (drop > 62) {
      kept = 0;  // far below half a quantum
    } else {
      kept = significand >> drop;
      const std::int64_t rest = significand - (kept << drop);
      const std::int64_t half = std::int64_t{1} << (drop - 1);
      if (rest > half || (rest == half && (kept & 1) != 0)) ++kept;
    }
  } else {
    kept = significand << -drop;
  }
  // kept is in [2^m, 2^(m+1)] for normals (2^(m+1) after a carry), [0, 2^m] for subnormals.
  std::int64_t bits = field == 0 ? kept : (std::int64_t{field} << m) + (kept - (std::int64_t{1} << m));
  if (bits >= static_cast<std::int64_t>(max_field) << m) bits = static_cast<std::int64_t>(max_field) << m;
  return static_cast<std::uint16_t>(sign | bits);
}

inline std::uint16_t add_half(half_format f, std::uint16_t a_bits, std::uint16_t b_bits) {
  parts a = split(f, a_bits), b = split(f, b_bits);
  if (a.nan || b.nan) return 0x7FFF;
  if (a.infinite || b.infinite) {
    if (a.infinite && b.infinite && a.negative != b.negative) return 0x7FFF;
    return a.infinite ? a_bits : b_bits;
  }
  if (a.significand == 0 && b.significand == 0) return (a.negative && b.negative) ? 0x8000 : 0x0000;
  if (a.significand == 0) return b_bits;
  if (b.significand == 0) return a_bits;
  if (a.exponent < b.exponent) std::swap(a, b);  // a has the larger exponent
  // Align b to a's exponent. If b sits more than 40 bits below, only its sign and "nonzero" matter:
  // replace it by one unit 40 bits below a's quantum (both round identically).
  const int gap = a.exponent - b.exponent;
  constexpr int room = 40;
  std::int64_t sa = a.significand << room, sb;
  if (gap > room) {
    sb = 1;
  } else {
    sb = b.significand << (room - gap);
  }
  const std::int64_t sum = (a.negative ? -sa : sa) + (b.negative ? -sb : sb);
  if (sum == 0) return 0x0000;  // exact cancellation: +0 in round to nearest
  return round_half(f, sum < 0, sum < 0 ? -sum : sum, a.exponent - room);
}

inline std::uint16_t mul_half(half_format f, std::uint16_t a_bits, std::uint16_t b_bits) {
  const parts a = split(f, a_bits), b = split(f, b_bits);
  const bool negative = a.negative != b.negative;
  if (a.nan || b.nan) return 0x7FFF;
  if (a.infinite || b.infinite) {
    if ((a.infinite ? b : a).significand == 0 && !(a.infinite && b.infinite)) return 0x7FFF;  // inf * 0
    return static_cast<std::uint16_t>((negative ? 0x8000u : 0u) | (((1u << (15 - f.mantissa_bits)) - 1u) << f.mantissa_bits));
  }
  return round_half(f, negative, a.significand * b.significand, a.exponent + b.exponent);
}

// Lane-wise on a 32-bit register of two values.
inline std::uint32_t add_half2(half_format f, std::uint32_t a, std::uint32_t b) {
  return add_half(f, static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)) |
         (std::uint32_t{add_half(f, static_cast<std::uint16_t>(a >> 16), static_cast<std::uint16_t>(b >> 16))} << 16);
}
inline std::uint32_t mul_half2(half_format f, std::uint32_t a, std::uint32_t b) {
  return mul_half(f, static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)) |
         (std::uint32_t{mul_half(f, static_cast<std::uint16_t>(a >> 16), static_cast<std::uint16_t>(b >> 16))} << 16);
}

// fp32 by the host's IEEE 754 binary32 arithmetic (round to nearest even; x86-64 SSE and AArch64
// keep subnormals by default). NaN results are made canonical (0x7FFFFFFF), as on the GPU.
inline std::uint32_t host_fp32(std::uint32_t a, std::uint32_t b, bool multiply) {
  float x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  const float r = multiply ? x * y : x + y;
  if (r != r) return 0x7FFFFFFFu;
  std::uint32_t out;
  std::memcpy(&out, &r, 4);
  return out;
}

// add(a, addend) for one fixed addend register, tabulated over all 2^16 inputs per lane so that the
// exhaustive host runs cost two table look-ups per register.
class add_table {
 public:
  add_table(half_format f, std::uint32_t addend) : addend_(addend), low_(1u << 16), high_(1u << 16) {
    for (std::uint32_t x = 0; x < (1u << 16); ++x) {
      low_[x] = add_half(f, static_cast<std::uint16_t>(x), static_cast<std::uint16_t>(addend));
      high_[x] = add_half(f, static_cast<std::uint16_t>(x), static_cast<std::uint16_t>(addend >> 16));
    }
  }
  std::uint32_t addend() const { return addend_; }
  // Makes the low lane's result for input x wrong on purpose: the canary that shows a sweep can fail.
  void corrupt_low_lane(std::uint16_t x, std::uint16_t wrong_result) { low_[x] = wrong_result; }
  std::uint32_t operator()(std::uint32_t a) const {
    return low_[a & 0xFFFFu] | (std::uint32_t{high_[a >> 16]} << 16);
  }

 private:
  std::uint32_t addend_;
  std::vector<std::uint16_t> low_, high_;
};

}  // namespace dq4_test
