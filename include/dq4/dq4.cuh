// SPDX-License-Identifier: Apache-2.0
//
// dq4: bit-exact dequantization of packed 4-bit weights to fp16.
//
// One 32-bit word holds eight 4-bit values ("nibbles"); nibble k sits at bits [4k, 4k+3].
// A call turns the word into eight fp16 values, returned as four half2 registers.
//
// Two things must match between the code that packed the weights and the code that reads them:
//
// 1. The encoding: what integer a nibble n (0..15) stands for.
//      encoding::u4    n        (0..15)   AWQ weights and zero points
//      encoding::u4b8  n - 8    (-8..7)   GPTQ symmetric, Marlin "uint4b8" (offset binary)
//      encoding::s4    n as two's complement (-8..7)   CUTLASS int4b_t
//
// 2. The order: which nibble output element j (0..7) comes from.
//
//      order::interleaved (FasterTransformer / AWQ; AWQ checkpoints are packed this way)
//        word bits:    31..28 27..24 23..20 19..16 15..12 11..8  7..4   3..0
//        nibble:         7      6      5      4      3      2      1      0
//        holds output:   7      5      3      1      6      4      2      0
//        registers out:  pairs[0] = {out0, out1} = {nibble 0, nibble 4}
//                        pairs[1] = {out2, out3} = {nibble 1, nibble 5}
//                        pairs[2] = {out4, out5} = {nibble 2, nibble 6}
//                        pairs[3] = {out6, out7} = {nibble 3, nibble 7}
//        output j comes from nibble [0,4,1,5,2,6,3,7][j]; nibble k holds output [0,2,4,6,1,3,5,7][k]
//
//      order::sequential (plain packing: value j in nibble j, no repacking needed)
//        word bits:    31..28 27..24 23..20 19..16 15..12 11..8  7..4   3..0
//        nibble:         7      6      5      4      3      2      1      0
//        holds output:   7      6      5      4      3      2      1      0
//
//    dq4::pack<E, O> writes exactly the layout that dq4::to_fp16<E, O> reads, so values packed with
//    one (E, O) pair come back in their original order from the same pair. Neither parameter has a
//    default: every call site names the order it expects.
//
// Why the fast path is exact. The fp16 with biased exponent 25 - o and mantissa field m is
// 2^(10-o) * (1 + m / 1024) = 2^(10-o) + m * 2^-o. With m = q << o (a nibble q at mantissa bits
// [o, o+3], o = 0..6) that is the number 2^(10-o) + q, exactly:
//   o = 0: magic 0x6400 (1024), lane = 1024 + q        o = 4: magic 0x5400 (64), lane = 64 + q
// One bitwise LOP3 masks the nibble and ORs in the magic (XOR also flips bit 3 of the nibble for s4,
// turning two's complement into offset binary), and one HADD2 subtracts 2^(10-o) (+8 for u4b8 and
// s4). The difference is a small integer, so the IEEE subtraction is exact: no rounding occurs
// anywhere. The reference below computes the same value by integer arithmetic alone, and the tests
// hold the fast path to it over all 2^32 words.
//
// Where the nibbles come from: interleaved registers 0,1 mask the word itself and registers 2,3 the
// word shifted right by 8 (nibbles at lane bits 0..3 for registers 0,2 and 4..7 for 1,3); sequential
// register r spreads byte r to every byte with one PRMT and keeps its low nibble in the low lane and
// its high nibble in the high lane.
//
// Cost per 8 values (SASS, checked in CI on every default target): interleaved 1 SHF + 4 LOP3 +
// 4 HADD2 = 9; sequential 4 PRMT + 4 LOP3 + 4 HADD2 = 12. No conversion instructions (I2F/F2F).
//
// The header compiles with a plain host C++17 compiler; the device fast path is used where f16x2
// arithmetic exists (sm_53 and newer), and everywhere else (host code, older GPUs) the reference
// runs, giving the same bits.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define DQ4_HD __host__ __device__ __forceinline__
#else  // !defined(__CUDACC__)
#define DQ4_HD inline
#endif  // defined(__CUDACC__)

namespace dq4 {

/// What integer a nibble n (0..15) stands for.
enum class encoding {
  u4,    ///< unsigned: n, in 0..15
  u4b8,  ///< offset binary: n - 8, in -8..7
  s4,    ///< two's complement: n - 16 if n >= 8 else n, in -8..7
};

/// Which nibble each output element comes from (see the diagram at the top of this file).
enum class order {
  interleaved,  ///< output j from nibble [0,4,1,5,2,6,3,7][j] (FasterTransformer / AWQ)
  sequential,   ///< output j from nibble j
};

inline constexpr encoding u4 = encoding::u4;
inline constexpr encoding u4b8 = encoding::u4b8;
inline constexpr encoding s4 = encoding::s4;
inline constexpr order interleaved = order::interleaved;
inline constexpr order sequential = order::sequential;

/// Smallest and largest value an encoding represents.
[[nodiscard]] DQ4_HD constexpr int min_value_of(encoding e) noexcept { return e == encoding::u4 ? 0 : -8; }
[[nodiscard]] DQ4_HD constexpr int max_value_of(encoding e) noexcept { return e == encoding::u4 ? 15 : 7; }
template <encoding E>
inline constexpr int min_value = min_value_of(E);
template <encoding E>
inline constexpr int max_value = max_value_of(E);

/// The nibble (0..7) of a packed word that output element j (0..7) comes from.
[[nodiscard]] DQ4_HD constexpr int source_nibble(order o, int j) noexcept {
  // interleaved: j = 2r + h reads nibble r + 4h, so register r holds {nibble r, nibble r + 4}
  return o == order::sequential ? j : (j >> 1) + ((j & 1) << 2);
}

/// N fp16 values in half2 layout: element 2i in the low 16 bits of pairs[i], element 2i+1 in the
/// high 16 bits. The registers can be used directly as half2 operands or MMA fragments.
template <int N>
struct alignas(16) fp16_array {
  static_assert(N % 8 == 0, "dq4 produces fp16 values in groups of eight");
  std::uint32_t pairs[N / 2];

  /// fp16 bit pattern of element j.
  [[nodiscard]] DQ4_HD constexpr std::uint16_t bits(int j) const noexcept {
    return static_cast<std::uint16_t>(pairs[j / 2] >> (16 * (j % 2)));
  }
#if defined(__CUDACC__)
  /// Register i as a __half2 (elements 2i and 2i+1).
  [[nodiscard]] DQ4_HD __half2 half2(int i) const noexcept {
    __half2 h;
    std::memcpy(&h, &pairs[i], sizeof h);
    return h;
  }
#endif  // defined(__CUDACC__)
};

using fp16x8 = fp16_array<8>;    ///< eight values from one 32-bit word
using fp16x32 = fp16_array<32>;  ///< 32 values from four words (one 128-bit load)

// ------------------------------------------------------------------------------------------------
// The reference: what every fast path must return, stated with integer arithmetic only.
// ------------------------------------------------------------------------------------------------
namespace reference {

/// Nibble k (0..7) of a packed word.
[[nodiscard]] DQ4_HD constexpr unsigned nibble(std::uint32_t word, int k) noexcept {
  return (word >> (4 * k)) & 0xFu;
}

/// The integer a nibble (0..15) stands for under encoding e.
[[nodiscard]] DQ4_HD constexpr int decode(encoding e, unsigned n) noexcept {
  const int v = static_cast<int>(n);
  switch (e) {
    case encoding::u4: return v;
    case encoding::u4b8: return v - 8;
    case encoding::s4: return v >= 8 ? v - 16 : v;
  }
  return v;  // unreachable for a valid enumerator; keeps every path returning
}

/// fp16 bit pattern of an integer with |v| < 2048 (every such integer is exactly representable).
[[nodiscard]] DQ4_HD constexpr std::uint16_t fp16_bits(int v) noexcept {
  const unsigned sign = v < 0 ? 0x8000u : 0u;
  const unsigned magnitude = static_cast<unsigned>(v < 0 ? -v : v);
  if (magnitude == 0) return 0;  // +0: integers carry no sign of zero
  // floor(log2(magnitude)) by binary search over 8, 4, 2, 1 bit steps
  unsigned exponent = 0;
  for (unsigned step = 8; step != 0; step /= 2) {
    if ((magnitude >> (exponent + step)) != 0) exponent += step;
  }
  const unsigned fraction = (magnitude << (10 - exponent)) & 0x3FFu;  // drop the implicit 1
  return static_cast<std::uint16_t>(sign | ((exponent + 15) << 10) | fraction);
}

/// Output element j of a word, as an integer.
template <encoding E, order O>
[[nodiscard]] DQ4_HD constexpr int value(std::uint32_t word, int j) noexcept {
  return decode(E, nibble(word, source_nibble(O, j)));
}

/// The eight fp16 values of one word, element j = fp16(value<E, O>(word, j)).
template <encoding E, order O>
[[nodiscard]] DQ4_HD constexpr fp16x8 to_fp16(std::uint32_t word) noexcept {
  fp16x8 out{};
  for (int r = 0; r < 4; ++r) {
    out.pairs[r] = fp16_bits(value<E, O>(word, 2 * r)) |
                   (std::uint32_t{fp16_bits(value<E, O>(word, 2 * r + 1))} << 16);
  }
  return out;
}

}  // namespace reference

// ------------------------------------------------------------------------------------------------
// The fast path, written once for every encoding and order.
// ------------------------------------------------------------------------------------------------
namespace detail {

/// fp16 bits of 2^(10 - o): the magic number for a nibble placed at mantissa bits [o, o+3].
/// Its exponent field is 15 + 10 - o and a mantissa step there is worth 2^-o, so the bit pattern
/// (magic | q << o) is the number 2^(10-o) + q.
[[nodiscard]] DQ4_HD constexpr std::uint32_t magic_lane(int o) noexcept {
  return static_cast<std::uint32_t>(25 - o) << 10;
}

/// How output register r (elements 2r, 2r+1) is built from the word:
///   x = (source & mask) ^ lop3_constant     -> lanes hold 2^(10-o) + q   (q = offset-binary nibble)
///   result = x - bias                       -> lanes hold the decoded value, exactly
struct register_plan {
  int source;                  ///< interleaved: 0 = word, 1 = word >> 8; sequential: byte to spread
  std::uint32_t mask;          ///< the two nibbles kept, one per 16-bit lane
  std::uint32_t lop3_constant; ///< magic per lane, plus bit 3 of the nibble for s4 (the flip)
  std::uint32_t bias;          ///< fp16x2 subtracted: 2^(10-o), plus 8 for u4b8 and s4
};

template <encoding E, order O>
[[nodiscard]] DQ4_HD constexpr register_plan plan(int r) noexcept {
  // Nibble offsets inside the low (o0) and high (o1) 16-bit lanes.
  //  interleaved: registers 0,2 take nibbles at lane bits 0..3, registers 1,3 at lane bits 4..7;
  //               registers 2,3 read the word shifted right by 8 (nibbles 2,3,6,7).
  //  sequential:  byte r is spread to every byte; the low lane keeps its low nibble (bits 0..3),
  //               the high lane its high nibble (bits 20..23, lane bits 4..7).
  const bool seq = O == order::sequential;
  const int o0 = seq ? 0 : 4 * (r & 1);
  const int o1 = seq ? 4 : 4 * (r & 1);
  const std::uint32_t magic = magic_lane(o0) | (magic_lane(o1) << 16);
  const std::uint32_t nibble_bit3 = (0x8u << o0) | (0x8u << (16 + o1));
  return register_plan{
      seq ? r : (r >> 1),
      (0xFu << o0) | (0xFu << (16 + o1)),
      E == encoding::s4 ? magic | nibble_bit3 : magic,
      // 2^(10-o) + 8 has mantissa 8 << o, the same bits as the flipped nibble
      E == encoding::u4 ? magic : magic | nibble_bit3,
  };
}

/// The word that register r's nibbles are masked from.
template <order O>
[[nodiscard]] DQ4_HD std::uint32_t source_word(std::uint32_t word, std::uint32_t word_shr8,
                                               int source) noexcept {
  if constexpr (O == order::interleaved) {
    return source == 0 ? word : word_shr8;
  } else {
#if defined(__CUDA_ARCH__)
    return __byte_perm(word, 0u, 0x1111u * static_cast<unsigned>(source));  // one PRMT
#else   // !defined(__CUDA_ARCH__)
    return ((word >> (8 * source)) & 0xFFu) * 0x01010101u;
#endif  // defined(__CUDA_ARCH__)
  }
}

/// (a & b) ^ c as one instruction. Written as plain C++ the compiler emits two LOP3s when both b and
/// c are constants (a SASS LOP3 takes one immediate); the PTX form lets ptxas keep c in a register.
[[nodiscard]] DQ4_HD std::uint32_t and_xor(std::uint32_t a, std::uint32_t b, std::uint32_t c) noexcept {
#if defined(__CUDA_ARCH__)
  std::uint32_t out;
  // LUT 0x6A = (0xF0 & 0xCC) ^ 0xAA. Not volatile: the result depends on the operands only.
  asm("lop3.b32 %0, %1, %2, %3, 0x6a;" : "=r"(out) : "r"(a), "r"(b), "r"(c));
  return out;
#else   // !defined(__CUDA_ARCH__)
  return (a & b) ^ c;
#endif  // defined(__CUDA_ARCH__)
}

/// The fast algorithm with the f16x2 subtraction supplied by the caller: the device passes the
/// hardware instruction, the tests pass an exact software model of it.
template <encoding E, order O, class SubF16x2>
[[nodiscard]] DQ4_HD fp16x8 magic_to_fp16(std::uint32_t word, SubF16x2 sub_f16x2) noexcept {
  const std::uint32_t word_shr8 = word >> 8;  // used by the interleaved order only
  fp16x8 out{};
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif  // defined(__CUDA_ARCH__)
  for (int r = 0; r < 4; ++r) {
    const register_plan p = plan<E, O>(r);
    const std::uint32_t x = and_xor(source_word<O>(word, word_shr8, p.source), p.mask, p.lop3_constant);
    out.pairs[r] = sub_f16x2(x, p.bias);
  }
  return out;
}

#if defined(__CUDACC__)
/// sub.rn.f16x2 through the CUDA intrinsic (HADD2 with an immediate operand in SASS).
struct device_sub_f16x2 {
  __device__ std::uint32_t operator()(std::uint32_t a, std::uint32_t b) const noexcept {
    __half2 ha, hb;
    std::memcpy(&ha, &a, sizeof ha);
    std::memcpy(&hb, &b, sizeof hb);
    const __half2 difference = __hsub2(ha, hb);
    std::uint32_t out;
    std::memcpy(&out, &difference, sizeof out);
    return out;
  }
};
#endif  // defined(__CUDACC__)

/// The nibble that encodes value v (already range-checked) under encoding E.
template <encoding E>
[[nodiscard]] constexpr std::uint32_t encode_nibble(int v) noexcept {
  return static_cast<std::uint32_t>(E == encoding::u4b8 ? v + 8 : v) & 0xFu;
}

[[nodiscard]] inline std::string encoding_name(encoding e) {
  switch (e) {
    case encoding::u4: return "u4";
    case encoding::u4b8: return "u4b8";
    case encoding::s4: return "s4";
  }
  return "?";
}

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/// Eight fp16 values from one packed word: element j = value of nibble source_nibble(O, j) under
/// encoding E. Bit-exact to reference::to_fp16<E, O>. On sm_53+ devices: 9 instructions
/// (interleaved) or 12 (sequential), no conversions; elsewhere the reference runs.
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp16x8 to_fp16(std::uint32_t word) noexcept {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 530
  return detail::magic_to_fp16<E, O>(word, detail::device_sub_f16x2{});
#else   // !(defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 530): host code, or no f16x2 arithmetic
  return reference::to_fp16<E, O>(word);
#endif  // defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 530
}

/// 32 fp16 values from four packed words (the width of one 128-bit load): elements 8i..8i+7 come
/// from words[i], each as to_fp16<E, O>(words[i]).
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp16x32 to_fp16(const std::uint32_t (&words)[4]) noexcept {
  fp16x32 out{};
  for (int i = 0; i < 4; ++i) {
    const fp16x8 part = to_fp16<E, O>(words[i]);
    for (int r = 0; r < 4; ++r) out.pairs[4 * i + r] = part.pairs[r];
  }
  return out;
}

#if defined(__CUDACC__)
/// 32 fp16 values from one uint4 (x, y, z, w give elements 0-7, 8-15, 16-23, 24-31).
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp16x32 to_fp16(uint4 v) noexcept {
  const std::uint32_t words[4] = {v.x, v.y, v.z, v.w};
  return to_fp16<E, O>(words);
}
#endif  // defined(__CUDACC__)

// ------------------------------------------------------------------------------------------------
// Host packers (no CUDA needed). They write exactly the layout that to_fp16<E, O> reads.
// ------------------------------------------------------------------------------------------------

/// A value that encoding E cannot represent was given to a packer.
class pack_error : public std::out_of_range {
 public:
  pack_error(encoding e, std::size_t index, long long value)
      : std::out_of_range("dq4::pack<" + detail::encoding_name(e) + ">: value " +
                          std::to_string(value) + " at index " + std::to_string(index) +
                          " is outside [" + std::to_string(min_value_of(e)) + ", " +
                          std::to_string(max_value_of(e)) + "]"),
        index_(index),
        value_(value) {}
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] long long value() const noexcept { return value_; }

 private:
  std::size_t index_;
  long long value_;
};

/// One word holding eight values in the layout to_fp16<E, O> reads back as values[0..7].
/// Throws pack_error for a value outside [min_value<E>, max_value<E>] (a compile error in a
/// constant expression).
template <encoding E, order O>
[[nodiscard]] constexpr std::uint32_t pack(const std::array<int, 8>& values) {
  std::uint32_t word = 0;
  for (int j = 0; j < 8; ++j) {
    const int v = values[static_cast<std::size_t>(j)];
    if (v < min_value<E> || v > max_value<E>) throw pack_error(E, static_cast<std::size_t>(j), v);
    word |= detail::encode_nibble<E>(v) << (4 * source_nibble(O, j));
  }
  return word;
}

/// The eight values a word holds, in output order (the inverse of pack<E, O>).
template <encoding E, order O>
[[nodiscard]] constexpr std::array<int, 8> unpack(std::uint32_t word) noexcept {
  std::array<int, 8> values{};
  for (int j = 0; j < 8; ++j) values[static_cast<std::size_t>(j)] = reference::value<E, O>(word, j);
  return values;
}

/// Packs count values (a multiple of 8) into count / 8 words. Throws std::invalid_argument for a
/// null pointer or a count that is not a multiple of 8, and pack_error (with the value's index in
/// the whole buffer) for a value out of range.
template <encoding E, order O>
void pack(const int* values, std::size_t count, std::uint32_t* words) {
  if (count % 8 != 0) {
    throw std::invalid_argument("dq4::pack: count " + std::to_string(count) +
                                " is not a multiple of 8 (eight values fill one word)");
  }
  if (count != 0 && (values == nullptr || words == nullptr)) {
    throw std::invalid_argument("dq4::pack: null buffer");
  }
  for (std::size_t w = 0; w < count / 8; ++w) {
    std::array<int, 8> group{};
    for (std::size_t j = 0; j < 8; ++j) group[j] = values[8 * w + j];
    try {
      words[w] = pack<E, O>(group);
    } catch (const pack_error& e) {
      throw pack_error(E, 8 * w + e.index(), e.value());
    }
  }
}

/// The same eight values re-packed from order From to order To (any encoding: nibbles move whole).
template <order From, order To>
[[nodiscard]] constexpr std::uint32_t reorder(std::uint32_t word) noexcept {
  std::uint32_t out = 0;
  for (int j = 0; j < 8; ++j) {
    out |= reference::nibble(word, source_nibble(From, j)) << (4 * source_nibble(To, j));
  }
  return out;
}

/// Re-packs count words from order From to order To; in and out may be the same buffer.
/// Throws std::invalid_argument for a null pointer.
template <order From, order To>
void reorder(const std::uint32_t* in, std::size_t count, std::uint32_t* out) {
  if (count != 0 && (in == nullptr || out == nullptr)) {
    throw std::invalid_argument("dq4::reorder: null buffer");
  }
  for (std::size_t i = 0; i < count; ++i) out[i] = reorder<From, To>(in[i]);
}

}  // namespace dq4
