// SPDX-License-Identifier: Apache-2.0
//
// dq4: bit-exact dequantization of packed 4-bit weights to fp16, bf16 and fp32, and to the 8-bit
// tensor-core operands of W4A8 kernels (int8, fp8 e4m3 and e5m2).
//
// One 32-bit word holds eight 4-bit values ("nibbles"); nibble k sits at bits [4k, 4k+3].
// A call turns the word into eight values of the output format, returned as registers: four
// 32-bit registers of two 16-bit values for fp16 and bf16 (half2 / bfloat162 layout), eight for fp32,
// two of four bytes for the 8-bit formats (see fragment_nibble for their byte layouts).
//
// Three things must match between the code that packed the weights and the code that reads them:
//
// 1. The encoding: what a nibble n (0..15) stands for.
//      encoding::u4    n        (0..15)   AWQ / GPTQ weights and zero points
//      encoding::u4b8  n - 8    (-8..7)   GPTQ symmetric, Marlin "uint4b8" (offset binary)
//      encoding::s4    n as two's complement (-8..7)   CUTLASS int4b_t
//      encoding::e2m1  fp4 (sign, 2 exponent bits, 1 mantissa bit): 0, 0.5, 1, 1.5, 2, 3, 4, 6 and
//                      their negatives (MXFP4 / NVFP4 elements; nibble 8 is -0)
//
// 2. The order: which nibble output element j (0..7) comes from.
//
//      order::interleaved (FasterTransformer / AWQ; AWQ checkpoints are packed this way)
//        word bits:    31..28 27..24 23..20 19..16 15..12 11..8  7..4   3..0
//        nibble:         7      6      5      4      3      2      1      0
//        holds output:   7      5      3      1      6      4      2      0
//        output j comes from nibble [0,4,1,5,2,6,3,7][j]; nibble k holds output [0,2,4,6,1,3,5,7][k]
//
//      order::sequential (plain packing: value j in nibble j, as GPTQ and MXFP4 store them)
//        word bits:    31..28 27..24 23..20 19..16 15..12 11..8  7..4   3..0
//        nibble:         7      6      5      4      3      2      1      0
//        holds output:   7      6      5      4      3      2      1      0
//
// 3. The output format: fp16, bf16 or fp32. Output element j sits in register j / 2 (low 16 bits for
//    even j) for fp16 and bf16, in register j for fp32. The 8-bit formats put element p in byte p % 4
//    of register p / 4, with the nibble order fragment_nibble gives (sequential words: nibble p).
//
//    dq4::pack<E, O> writes exactly the layout that dq4::dequantize<F, E, O> reads. No template
//    parameter has a default: every call site names the layout it expects.
//
// Why the integer paths are exact. A float with mantissa field m, M mantissa bits and the exponent of
// 2^(M-o) is 2^(M-o) * (1 + m / 2^M) = 2^(M-o) + m * 2^-o. With m = q << o (a nibble q at mantissa
// bits [o, o+3]) that is the number 2^(M-o) + q, exactly. One bitwise LOP3 masks the nibble and ORs in
// the exponent (XOR also flips bit 3 for s4, turning two's complement into offset binary), and one
// add of -(2^(M-o) + offset) leaves the decoded value. The difference is a small integer, so the add
// is exact: no rounding anywhere. With a zero point the add subtracts 2^(M-o) + z (still exact: q - z
// is a small integer) and one multiply by the scale rounds once, which is the correctly rounded
// (q - z) * s. The placement o differs per format (fp16: o = 0 or 4; bf16: o = 0, since bf16 has only
// 7 mantissa bits and bit 7 is an exponent bit; fp32: o = 0..16).
//
// e2m1 is not linear in its bits, so it is a table look-up: one PRMT picks four magnitude bytes from
// an 8-byte table indexed by the exponent and mantissa bits, a second PRMT (sign-replicate mode)
// turns the four sign bits into bytes, and one more PRMT per register moves the bytes into place.
// An MXFP4 block scale (e8m0) is folded into those tables once per block (prepare_block_scale), so
// every scaled value is rounded once and the inner loop has no multiply; a 16-entry codebook (NF4) is
// the same look-up with two 8-entry halves per byte plane, chosen by the nibble's bit 3.
//
// The reference namespace states every result with integer arithmetic alone (constexpr, plain C++17);
// the tests hold each fast path to it over all 2^32 words and, for scales, over every scale value.
// The header compiles with a plain host C++17 compiler; host code, and device targets without the
// arithmetic a fast path needs (see dequantize below), run the reference, giving the same bits.
// Checkpoint readers (AWQ, GPTQ) are host code with their own header, <dq4/checkpoint.hpp>.
#pragma once

#if defined(_MSVC_LANG)
#define DQ4_DETAIL_CPLUSPLUS _MSVC_LANG
#else  // !defined(_MSVC_LANG)
#define DQ4_DETAIL_CPLUSPLUS __cplusplus
#endif  // defined(_MSVC_LANG)
#if DQ4_DETAIL_CPLUSPLUS < 201703L
#error "dq4 needs C++17 or newer: compile with -std=c++17 (nvcc: -std=c++17, also with -ccbin clang++)"
#endif  // DQ4_DETAIL_CPLUSPLUS < 201703L
#undef DQ4_DETAIL_CPLUSPLUS

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define DQ4_HD __host__ __device__ __forceinline__
#else  // !defined(__CUDACC__)
#define DQ4_HD inline
#endif  // defined(__CUDACC__)

namespace dq4 {

/// What a nibble n (0..15) stands for.
enum class encoding {
  u4,    ///< unsigned: n, in 0..15
  u4b8,  ///< offset binary: n - 8, in -8..7
  s4,    ///< two's complement: n - 16 if n >= 8 else n, in -8..7
  e2m1,  ///< fp4 (1 sign, 2 exponent, 1 mantissa bit): +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}
};

/// Which nibble each output element comes from (see the diagram at the top of this file).
enum class order {
  interleaved,  ///< output j from nibble [0,4,1,5,2,6,3,7][j] (FasterTransformer / AWQ)
  sequential,   ///< output j from nibble j
};

/// The output number format. The 8-bit formats are for W4A8 tensor cores: int8 (two's complement),
/// e4m3 (OCP FP8 E4M3, "e4m3fn": no infinities, 0x7F / 0xFF are NaN, largest finite 448) and e5m2
/// (OCP FP8 E5M2, IEEE-like, the top byte of an fp16).
enum class format { fp16, bf16, fp32, int8, e4m3, e5m2 };

/// How the stored 4-bit zero points of a zeros word give the zeros z in w = (q - z) * s. GPTQ v1
/// checkpoints store z - 1, and their writers and readers disagree on how (see the README's table):
/// the three gptq_v1 readings differ only where a stored nibble is 15.
enum class zeros {
  awq,      ///< z = n (AutoAWQ: zeros packed like the weights, interleaved order)
  gptq_v2,  ///< z = n (GPTQ v2, GPTQModel's internal format)
  /// GPTQ v1 as its word-level writers wrote it (GPTQModel's v2-to-v1 export, AutoAWQ's conversion):
  /// z = nibble of (word + 0x11111111) mod 2^32, the exact inverse of their word subtraction, with
  /// its borrows. The word is read as GPTQ stores it, in sequential order (the carries run from
  /// column j to column j + 1), so it has no interleaved form.
  gptq_v1,
  gptq_v1_wrap,     ///< GPTQ v1 per nibble, z = (n + 1) mod 16 (AutoGPTQ's CUDA and exllama kernels)
  gptq_v1_no_wrap,  ///< GPTQ v1 per nibble, z = n + 1 in 1..16 (vLLM's GPTQ kernel, AutoGPTQ's triton)
};

inline constexpr encoding u4 = encoding::u4;
inline constexpr encoding u4b8 = encoding::u4b8;
inline constexpr encoding s4 = encoding::s4;
inline constexpr encoding e2m1 = encoding::e2m1;
inline constexpr order interleaved = order::interleaved;
inline constexpr order sequential = order::sequential;

namespace detail {

// Whether a value of an enum names one of its enumerators (a static_cast can make others).
[[nodiscard]] DQ4_HD constexpr bool is_valid(encoding e) noexcept {
  return e == encoding::u4 || e == encoding::u4b8 || e == encoding::s4 || e == encoding::e2m1;
}
[[nodiscard]] DQ4_HD constexpr bool is_valid(order o) noexcept { return o == order::interleaved || o == order::sequential; }
[[nodiscard]] DQ4_HD constexpr bool is_valid(format f) noexcept {
  return f == format::fp16 || f == format::bf16 || f == format::fp32 || f == format::int8 || f == format::e4m3 ||
         f == format::e5m2;
}
[[nodiscard]] DQ4_HD constexpr bool is_valid(zeros z) noexcept {
  return z == zeros::awq || z == zeros::gptq_v2 || z == zeros::gptq_v1 || z == zeros::gptq_v1_wrap ||
         z == zeros::gptq_v1_no_wrap;
}

// The range of an integer encoding (e2m1 is none: callers check that first).
[[nodiscard]] DQ4_HD constexpr int lowest_integer(encoding e) noexcept { return e == encoding::u4 ? 0 : -8; }
[[nodiscard]] DQ4_HD constexpr int highest_integer(encoding e) noexcept { return e == encoding::u4 ? 15 : 7; }

/// Compile-time checks of the template arguments of a path: each names an enumerator.
template <format F, encoding E, order O>
struct valid_path {
  static_assert(is_valid(F), "dq4: the format argument names no dq4::format enumerator");
  static_assert(is_valid(E), "dq4: the encoding argument names no dq4::encoding enumerator");
  static_assert(is_valid(O), "dq4: the order argument names no dq4::order enumerator");
  static constexpr bool value = true;
};

/// The same for a zero-point path; gptq_v1's word add exists in GPTQ's stored (sequential) order only.
template <format F, zeros Z, order O>
struct valid_zero_path {
  static_assert(is_valid(F), "dq4: the format argument names no dq4::format enumerator");
  static_assert(is_valid(Z), "dq4: the zeros argument names no dq4::zeros enumerator");
  static_assert(is_valid(O), "dq4: the order argument names no dq4::order enumerator");
  static_assert(!(Z == zeros::gptq_v1 && O == order::interleaved),
                "dq4: zeros::gptq_v1 adds 0x11111111 to the zeros word as GPTQ stores it, in sequential order "
                "(carries run from column j to j + 1); for interleaved weights let dq4::from_gptq convert the zeros "
                "(it stores them as z), or add 0x11111111 before reordering the word and read it as zeros::gptq_v2");
  static constexpr bool value = true;
};

/// Which encodings an output format takes, unscaled: int8 takes the integer encodings, e5m2 only e2m1
/// (integers above 8 need three mantissa bits, e5m2 has two: 9 is not an e5m2 value), the others every
/// encoding.
template <format F, encoding E>
struct valid_output {
  static_assert(!(F == format::int8 && E == encoding::e2m1), "dq4: e2m1 values (0.5, 1.5, ...) are not integers: "
                                                             "dequantize e2m1 to e4m3, e5m2, fp16 or bf16");
  static_assert(!(F == format::e5m2 && E != encoding::e2m1),
                "dq4: e5m2 has two mantissa bits, so integers such as 9 are not e5m2 values: dequantize integer "
                "encodings to e4m3 (every integer in -16..16 is an e4m3 value), int8 or a 16-bit format");
  static constexpr bool value = true;
};

/// Scales as fragments (one multiply per register) exist for the 16- and 32-bit formats only.
template <format F>
struct valid_scaled_output {
  static_assert(F == format::fp16 || F == format::bf16 || F == format::fp32, "dq4: the 8-bit formats have no per-element scale path (there is no 8-bit "
                                    "multiply): take q - z or the values unscaled and apply the scale after the MMA, "
                                    "or an e8m0 block scale (prepare_block_scale) for e2m1 to e4m3");
  static constexpr bool value = true;
};

/// The range of an integer encoding E, a compile error for e2m1 (which is not an integer encoding).
template <encoding E>
struct integer_range {
  static_assert(is_valid(E), "dq4: the encoding argument names no dq4::encoding enumerator");
  static_assert(E != encoding::e2m1, "dq4: e2m1 is not an integer encoding (its values are 0, 0.5, ..., 6 and "
                                     "their negatives: see reference::element)");
  static constexpr int min = lowest_integer(E);
  static constexpr int max = highest_integer(E);
};

}  // namespace detail

/// Smallest and largest value of an integer encoding (u4: 0..15; u4b8, s4: -8..7). e2m1: a compile error.
template <encoding E>
inline constexpr int min_value = detail::integer_range<E>::min;
template <encoding E>
inline constexpr int max_value = detail::integer_range<E>::max;

/// The nibble (0..7) of a packed word that output element j (0..7) comes from.
[[nodiscard]] DQ4_HD constexpr int source_nibble(order o, int j) noexcept {
  // interleaved: j = 2r + h reads nibble r + 4h
  return o == order::sequential ? j : (j >> 1) + ((j & 1) << 2);
}

/// Bits of one value of a format, and how many values share a 32-bit register.
[[nodiscard]] DQ4_HD constexpr int value_bits(format f) noexcept {
  return f == format::fp32 ? 32 : f == format::fp16 || f == format::bf16 ? 16 : 8;
}
[[nodiscard]] DQ4_HD constexpr int values_per_register(format f) noexcept { return 32 / value_bits(f); }
/// Whether a format is a floating-point format (all but int8), and its fields.
[[nodiscard]] DQ4_HD constexpr bool is_float(format f) noexcept { return f != format::int8; }
[[nodiscard]] DQ4_HD constexpr int mantissa_bits(format f) noexcept {
  switch (f) {
    case format::fp16: return 10;
    case format::bf16: return 7;
    case format::e4m3: return 3;
    case format::e5m2: return 2;
    default: return 23;  // fp32 (int8 has none: callers check is_float)
  }
}
[[nodiscard]] DQ4_HD constexpr int exponent_bias(format f) noexcept {
  return f == format::fp16 || f == format::e5m2 ? 15 : f == format::e4m3 ? 7 : 127;
}
[[nodiscard]] DQ4_HD constexpr int exponent_bits(format f) noexcept { return value_bits(f) - 1 - mantissa_bits(f); }

/// The nibble (0..7) that element p (0..7) of a fragment of format F holds, for words packed in order
/// o. The 16- and 32-bit formats hold element p = source_nibble(o, p), in output order. The 8-bit
/// formats hold, in sequential order, nibble p in byte p (what int8 and fp8 MMA fragments want:
/// consecutive k in consecutive bytes). For interleaved words each 8-bit format keeps the layout that
/// costs least (see the README's diagrams): int8 puts the even nibbles in register 0 and the odd
/// ones in register 1 (one mask, one shift), e4m3 and e5m2 keep the nibbles in the word's own
/// order (their table look-ups index with the nibbles as they lie).
[[nodiscard]] DQ4_HD constexpr int fragment_nibble(format f, order o, int p) noexcept {
  if (value_bits(f) != 8) return source_nibble(o, p);
  if (o == order::interleaved && f == format::int8) return p < 4 ? 2 * p : 2 * (p - 4) + 1;
  return p;
}

/// N values of format F in registers: element j in register j / values_per_register(F), at bit
/// value_bits(F) * (j % values_per_register(F)). The registers can be used directly as half2 /
/// bfloat162 / float operands or MMA fragments (8-bit formats: four values per register, element j
/// holding nibble fragment_nibble(F, O, j) of word j / 8).
template <format F, int N>
struct alignas(16) fragment {
  static_assert(detail::is_valid(F), "dq4: the format argument names no dq4::format enumerator");
  static_assert(N % 8 == 0, "dq4 produces values in groups of eight");
  static constexpr int registers = N / values_per_register(F);
  std::uint32_t regs[registers];

  /// Bit pattern of element j (16 significant bits for fp16 and bf16, 8 for the 8-bit formats).
  [[nodiscard]] DQ4_HD constexpr std::uint32_t bits(int j) const noexcept {
    if constexpr (F == format::fp32) {
      return regs[j];
    } else {
      constexpr int per = values_per_register(F), width = value_bits(F);
      return (regs[j / per] >> (width * (j % per))) & ((1u << width) - 1u);
    }
  }
#if defined(__CUDACC__)
  /// Register i as a __half2 (elements 2i and 2i+1).
  [[nodiscard]] DQ4_HD __half2 half2(int i) const noexcept {
    static_assert(F == format::fp16, "half2() reads fp16 fragments; use bfloat162() or value()");
    __half2 h;
    std::memcpy(&h, &regs[i], sizeof h);
    return h;
  }
  /// Register i as a __nv_bfloat162 (elements 2i and 2i+1).
  [[nodiscard]] DQ4_HD __nv_bfloat162 bfloat162(int i) const noexcept {
    static_assert(F == format::bf16, "bfloat162() reads bf16 fragments; use half2() or value()");
    __nv_bfloat162 h;
    std::memcpy(&h, &regs[i], sizeof h);
    return h;
  }
#endif  // defined(__CUDACC__)
  /// Element j of an fp32 fragment as a float.
  [[nodiscard]] DQ4_HD float value(int j) const noexcept {
    static_assert(F == format::fp32, "value() reads fp32 fragments; use half2() or bfloat162()");
    float f;
    std::memcpy(&f, &regs[j], sizeof f);
    return f;
  }
};

using fp16x8 = fragment<format::fp16, 8>;    ///< eight fp16 values from one 32-bit word
using fp16x32 = fragment<format::fp16, 32>;  ///< 32 fp16 values from four words (one 128-bit load)
using bf16x8 = fragment<format::bf16, 8>;
using bf16x32 = fragment<format::bf16, 32>;
using fp32x8 = fragment<format::fp32, 8>;
using fp32x32 = fragment<format::fp32, 32>;
using int8x8 = fragment<format::int8, 8>;  ///< eight int8 values (two registers, four bytes each)
using e4m3x8 = fragment<format::e4m3, 8>;
using e5m2x8 = fragment<format::e5m2, 8>;

/// A fragment of eight copies of one value (bit pattern `bits` of format F), e.g. a block scale.
template <format F>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> splat(std::uint32_t bits) noexcept {
  fragment<F, 8> out{};
  const std::uint32_t reg = F == format::fp32     ? bits
                            : value_bits(F) == 16 ? (bits & 0xFFFFu) * 0x00010001u
                                                  : (bits & 0xFFu) * 0x01010101u;
  for (int r = 0; r < fragment<F, 8>::registers; ++r) out.regs[r] = reg;
  return out;
}

/// An OCP MX block scale (E8M0): the number 2^(bits - 127); bits = 0xFF is NaN. MXFP4 stores one per
/// 32 e2m1 values.
struct e8m0 {
  std::uint8_t bits;
};

/// A 16-entry codebook of format F (fp16 or bf16): entry n is the value nibble n stands for
/// (bitsandbytes' NF4 and FP4 tables, or any table of 16 values). Held in registers as two planes,
/// the entries' low bytes and their high bytes: byte b of register r of a plane is that byte of entry
/// 4r + b. Build one with make_codebook (bit patterns), codebook_of (floats, each rounded once to F) or
/// bitsandbytes_codebook (a table times a block's absmax, as bitsandbytes rounds it).
template <format F>
struct codebook {
  std::uint32_t low[4], high[4];

  /// The bit pattern of entry n (0..15).
  [[nodiscard]] DQ4_HD constexpr std::uint32_t entry(unsigned n) const noexcept {
    const unsigned shift = 8 * (n % 4);
    return ((low[n / 4 % 4] >> shift) & 0xFFu) | (((high[n / 4 % 4] >> shift) & 0xFFu) << 8);
  }
};

namespace detail {
/// Codebooks hold fp16 or bf16 entries (16 entries of 16 bits in eight registers).
template <format F>
struct valid_codebook {
  static_assert(F == format::fp16 || F == format::bf16,
                "dq4: codebooks hold fp16 or bf16 values (16 entries of 16 bits in eight registers); for fp32 "
                "outputs convert the fp16/bf16 results, for 8-bit outputs quantize the table to e4m3 yourself");
  static constexpr bool value = true;
};
}  // namespace detail

/// Sixteen floats: a codebook's values before they are rounded to its format.
struct codebook_values {
  float value[16];
};

/// bitsandbytes' NF4 table (QLoRA's 4-bit NormalFloat), entry n for nibble n: the fp32 constants its
/// CUDA kernel dequantizes with (bitsandbytes csrc/kernels.cu, dDequantizeNF4), which are also what
/// functional.py's get_4bit_type("nf4") saves as quant_map (tests/test_nf4_checkpoints.cpp checks both).
/// A function, not a variable, so that device code can use it too.
[[nodiscard]] DQ4_HD constexpr codebook_values nf4_values() noexcept {
  return codebook_values{{-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                          -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                          0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                          0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f}};
}

/// bitsandbytes' FP4 table (not OCP e2m1): bit 3 is the sign, bits 0..2 index the magnitudes
/// {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12, as its kernels compute them (bitsandbytes csrc/kernels.cu,
/// fp4_dequantization_lut and dDequantizeFP4Tree: lut[n & 7] * (1 - 2 * bit 3), so entry 8 is -0).
[[nodiscard]] DQ4_HD constexpr codebook_values bnb_fp4_values() noexcept {
  return codebook_values{{0x0p+0f, 0x1.555556p-8f, 0x1.555556p-1f, 0x1p+0f, 0x1.555556p-2f, 0x1p-1f, 0x1.555556p-3f,
                          0x1p-2f, -0x0p+0f, -0x1.555556p-8f, -0x1.555556p-1f, -0x1p+0f, -0x1.555556p-2f, -0x1p-1f,
                          -0x1.555556p-3f, -0x1p-2f}};
}

/// The codebook whose entry n is the bit pattern bits[n] of F (the low 16 bits).
template <format F>
[[nodiscard]] DQ4_HD constexpr codebook<F> make_codebook(const std::uint32_t (&bits)[16]) noexcept {
  static_assert(detail::valid_codebook<F>::value);
  codebook<F> book{};
  for (unsigned n = 0; n < 16; ++n) {
    book.low[n / 4] |= (bits[n] & 0xFFu) << (8 * (n % 4));
    book.high[n / 4] |= ((bits[n] >> 8) & 0xFFu) << (8 * (n % 4));
  }
  return book;
}

namespace detail {
/// e8m0 block scales multiply e2m1 values (MXFP4) into fp16, bf16, fp32 or e4m3.
template <format F, encoding E>
struct valid_block_scale {
  static_assert(F == format::fp16 || F == format::bf16 || F == format::fp32 || F == format::e4m3,
                "dq4: e8m0 block scales give fp16, bf16, fp32 or e4m3 outputs (e2m1 * 2^(E-127) rounded once; "
                "e5m2 and int8 are not provided)");
  static_assert(E == encoding::e2m1, "dq4: e8m0 block scales apply to e2m1 (MXFP4) values");
  static constexpr bool value = true;
};
}  // namespace detail

// ------------------------------------------------------------------------------------------------
// The reference: what every fast path must return, stated with integer arithmetic only.
// ------------------------------------------------------------------------------------------------
namespace reference {

/// Nibble k of a packed word: bits [4k, 4k+3] of the number, so 0 for k outside 0..7.
[[nodiscard]] DQ4_HD constexpr unsigned nibble(std::uint32_t word, int k) noexcept {
  return k >= 0 && k < 8 ? (word >> (4 * k)) & 0xFu : 0u;
}

/// The integer a nibble (0..15) stands for under an integer encoding E (e2m1: a compile error).
template <encoding E>
[[nodiscard]] DQ4_HD constexpr int decode(unsigned n) noexcept {
  static_assert(detail::integer_range<E>::max > 0);  // E is an integer encoding
  const int v = static_cast<int>(n & 0xFu);
  if constexpr (E == encoding::u4) {
    return v;
  } else if constexpr (E == encoding::u4b8) {
    return v - 8;
  } else {
    return v >= 8 ? v - 16 : v;
  }
}

/// Twice the magnitude of an e2m1 nibble (sign ignored): 2 * {0, 0.5, 1, 1.5, 2, 3, 4, 6}.
[[nodiscard]] DQ4_HD constexpr unsigned twice_e2m1(unsigned n) noexcept {
  const unsigned exponent = (n >> 1) & 3u, mantissa = n & 1u;
  // exponent 0 is subnormal: mantissa * 0.5; otherwise 2^(exponent-1) * (1 + mantissa / 2)
  return exponent == 0 ? mantissa : (2u + mantissa) << (exponent - 1);
}

/// A number sign * magnitude * 2^exponent (magnitude an integer), or an infinity or a NaN.
struct exact_number {
  bool negative;
  std::uint64_t magnitude;
  int exponent;
  bool infinite;
  bool nan;
};

/// Bit pattern of the canonical NaN a GPU returns for f (0x7FFF, 0x7FFF, 0x7FFFFFFF; 0x7F for the
/// fp8 formats). int8 has none.
[[nodiscard]] DQ4_HD constexpr std::uint32_t canonical_nan(format f) noexcept {
  return f == format::fp32 ? 0x7FFFFFFFu : value_bits(f) == 16 ? 0x7FFFu : 0x7Fu;
}

/// The lowest bit pattern above the largest finite value of f: the infinity of the IEEE-like
/// formats; e4m3 has no infinity, its exponent field 15 holds finite values up to 448 (0x7E), and
/// 0x7F is NaN.
[[nodiscard]] DQ4_HD constexpr std::uint32_t beyond_finite(format f) noexcept {
  return f == format::e4m3 ? 0x7Fu : ((1u << exponent_bits(f)) - 1u) << mantissa_bits(f);
}

/// The largest binade of f's finite values (2^bias; e4m3: 2^8, since its top exponent is finite).
[[nodiscard]] DQ4_HD constexpr int largest_binade(format f) noexcept {
  return f == format::e4m3 ? 8 : exponent_bias(f);
}

/// x rounded to an int8 byte: to the nearest integer, ties to even, saturating at -128 and 127
/// (as cvt.rni.sat.s8 does); NaN gives 0.
[[nodiscard]] DQ4_HD constexpr std::uint32_t round_to_int8(const exact_number& x) noexcept {
  if (x.nan) return 0;
  const std::uint64_t limit = x.negative ? 128 : 127;
  std::uint64_t m = 0;  // |x| rounded, or anything above limit where |x| >= 256
  if (x.infinite) {
    m = 256;
  } else if (x.exponent >= 0) {
    if (x.magnitude != 0) {  // (0 times any power of two is 0)
      const bool huge = x.exponent > 8 || (x.magnitude >> (8 - x.exponent)) != 0;
      m = huge ? 256 : x.magnitude << x.exponent;
    }
  } else {
    const long long shift = -static_cast<long long>(x.exponent);
    if (shift == 64) {
      m = x.magnitude > (std::uint64_t{1} << 63) ? 1 : 0;  // above a half rounds up; the tie goes to 0
    } else if (shift < 64) {
      const std::uint64_t remainder = x.magnitude & ((std::uint64_t{1} << shift) - 1);
      const std::uint64_t half = std::uint64_t{1} << (shift - 1);
      m = x.magnitude >> shift;
      if (remainder > half || (remainder == half && (m & 1) != 0)) ++m;
    }  // shift > 64: below a half
  }
  const std::uint64_t clamped = m > limit ? limit : m;
  return static_cast<std::uint32_t>(x.negative ? 0u - clamped : clamped) & 0xFFu;
}

/// x rounded to format f: to nearest, ties to even, with subnormals. Beyond the largest finite value
/// the IEEE-like formats give infinity; e4m3 saturates to +-448, as cvt.rn.satfinite does and as the
/// OCP MX reference code quantizes MX elements (microsoft/microxcaling, mx/mx_ops.py, _quantize_mx:
/// saturate_normals=True; an infinity gives +-448 too); int8 rounds to an integer
/// (round_to_int8). Defined for every exact_number (any magnitude and exponent).
[[nodiscard]] DQ4_HD constexpr std::uint32_t round_to(format f, const exact_number& x) noexcept {
  if (f == format::int8) return round_to_int8(x);
  const std::uint32_t sign = x.negative ? 1u << (value_bits(f) - 1) : 0u;
  const std::uint32_t overflow = f == format::e4m3 ? beyond_finite(f) - 1u : beyond_finite(f);
  if (x.nan) return canonical_nan(f);
  if (x.infinite) return sign | overflow;
  if (x.magnitude == 0) return sign;  // a signed zero
  int top = 63;  // position of the magnitude's leading 1
  while ((x.magnitude >> top) == 0) --top;
  // Exponents in 64 bits: x.exponent may be anything an int holds.
  const long long min_exponent = 1 - exponent_bias(f);  // subnormals share the lowest binade's quantum
  const long long leading = top + static_cast<long long>(x.exponent);
  if (leading > largest_binade(f)) return sign | overflow;  // beyond every finite value
  const long long binade = leading > min_exponent ? leading : min_exponent;
  // The result is a multiple of 2^(binade - M); count it in those units (`significand`).
  const long long shift = binade - mantissa_bits(f) - x.exponent;
  std::uint64_t significand = 0;
  if (shift <= 0) {
    significand = x.magnitude << -shift;  // exact: -shift <= M - top
  } else if (shift < 64) {
    significand = x.magnitude >> shift;
    const std::uint64_t remainder = x.magnitude & ((std::uint64_t{1} << shift) - 1);
    const std::uint64_t half = std::uint64_t{1} << (shift - 1);
    if (remainder > half || (remainder == half && (significand & 1) != 0)) ++significand;
  }  // shift >= 64: below half of the smallest subnormal, rounds to zero
  // With the implicit 1 inside `significand`, the fields are the sum below; a significand that
  // rounded up to 2^(M+1), or a subnormal that rounded up to 2^M, carries into the exponent.
  const std::uint64_t bits = (static_cast<std::uint64_t>(binade - min_exponent) << mantissa_bits(f)) + significand;
  return sign | (bits >= beyond_finite(f) ? overflow : static_cast<std::uint32_t>(bits));
}

/// |v| as an unsigned number, for every int (INT_MIN included).
[[nodiscard]] DQ4_HD constexpr std::uint64_t magnitude_of(int v) noexcept {
  return v < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(static_cast<std::int64_t>(v)) : static_cast<std::uint64_t>(v);
}

/// Bit pattern of the integer v in format f, correctly rounded (exact for |v| < 2^(M+1)); any int.
[[nodiscard]] DQ4_HD constexpr std::uint32_t bits_of(format f, int v) noexcept {
  return round_to(f, exact_number{v < 0, magnitude_of(v), 0, false, false});
}

/// The exact number a bit pattern of format f holds (int8: the low byte, two's complement).
[[nodiscard]] DQ4_HD constexpr exact_number number_of(format f, std::uint32_t bits) noexcept {
  if (f == format::int8) {
    const int v = (bits & 0x80u) != 0 ? static_cast<int>(bits & 0xFFu) - 256 : static_cast<int>(bits & 0xFFu);
    return exact_number{v < 0, magnitude_of(v), 0, false, false};
  }
  const int m = mantissa_bits(f);
  const bool negative = ((bits >> (value_bits(f) - 1)) & 1u) != 0;
  const std::uint32_t field = (bits >> m) & ((1u << exponent_bits(f)) - 1u);
  const std::uint64_t fraction = bits & ((1u << m) - 1u);
  if (f == format::e4m3 && (bits & 0x7Fu) == 0x7Fu) return exact_number{negative, 0, 0, false, true};
  if (f != format::e4m3 && field == (1u << exponent_bits(f)) - 1u) {
    return exact_number{negative, 0, 0, fraction == 0, fraction != 0};
  }
  const int min_exponent = 1 - exponent_bias(f);
  if (field == 0) return exact_number{negative, fraction, min_exponent - m, false, false};
  return exact_number{negative, fraction | (std::uint64_t{1} << m),
                      static_cast<int>(field) - exponent_bias(f) - m, false, false};
}

/// The exact product of an integer k (any int) and a number (IEEE rules for zeros, infinities and
/// NaN). Exact while |k| * x.magnitude < 2^64, which holds for every x from number_of (magnitude < 2^24).
[[nodiscard]] DQ4_HD constexpr exact_number times(int k, const exact_number& x) noexcept {
  const bool negative = (k < 0) != x.negative;
  if (x.nan || (x.infinite && k == 0)) return exact_number{false, 0, 0, false, true};
  return exact_number{negative, magnitude_of(k) * x.magnitude, x.exponent, x.infinite, false};
}

/// The exact product of two numbers (IEEE rules: NaN if either is NaN or for zero times infinity).
/// Exact while the magnitudes' product is below 2^64, which holds for any two from number_of (< 2^24).
[[nodiscard]] DQ4_HD constexpr exact_number product(const exact_number& a, const exact_number& b) noexcept {
  const bool zero_times_infinity = (a.infinite && !b.infinite && b.magnitude == 0) ||
                                   (b.infinite && !a.infinite && a.magnitude == 0);
  if (a.nan || b.nan || zero_times_infinity) return exact_number{false, 0, 0, false, true};
  return exact_number{a.negative != b.negative, a.magnitude * b.magnitude, a.exponent + b.exponent,
                      a.infinite || b.infinite, false};
}

/// The bits of an NVFP4 block's scale in format F: s_F = round_F(s * g), the e4m3 block scale s (bits
/// s_bits; 0x7F and 0xFF are NaN) times the tensor's fp32 scale g (bits g_bits), rounded once.
[[nodiscard]] DQ4_HD constexpr std::uint32_t nvfp4_scale(format f, std::uint8_t s_bits, std::uint32_t g_bits) noexcept {
  return round_to(f, product(number_of(format::e4m3, s_bits), number_of(format::fp32, g_bits)));
}

/// bitsandbytes' dequantized value in format F: the fp32 product of a table entry and the block's
/// absmax (bits), rounded to fp32, then rounded again to F (two roundings; see bitsandbytes_codebook).
[[nodiscard]] DQ4_HD constexpr std::uint32_t bitsandbytes_value(format f, std::uint32_t entry_bits,
                                                                std::uint32_t absmax_bits) noexcept {
  const std::uint32_t fp32 = round_to(format::fp32, product(number_of(format::fp32, entry_bits),
                                                             number_of(format::fp32, absmax_bits)));
  return f == format::fp32 ? fp32 : round_to(f, number_of(format::fp32, fp32));
}

/// Output element j (0..7) of a word under an integer encoding, as an integer.
template <encoding E, order O>
[[nodiscard]] DQ4_HD constexpr int value(std::uint32_t word, int j) noexcept {
  return decode<E>(nibble(word, source_nibble(O, j)));
}

/// The exact number a nibble stands for under encoding E.
template <encoding E>
[[nodiscard]] DQ4_HD constexpr exact_number number_of_nibble(unsigned n) noexcept {
  if constexpr (E == encoding::e2m1) {
    return exact_number{(n & 8u) != 0, twice_e2m1(n), -1, false, false};
  } else {
    const int v = decode<E>(n);
    return exact_number{v < 0, magnitude_of(v), 0, false, false};
  }
}

/// The exact number output element j (0..7) of a word stands for.
template <encoding E, order O>
[[nodiscard]] DQ4_HD constexpr exact_number element(std::uint32_t word, int j) noexcept {
  return number_of_nibble<E>(nibble(word, source_nibble(O, j)));
}

/// The bit pattern of the exact integer v in format f: an int8 byte (two's complement, v in
/// -128..127) or v rounded to a float format.
[[nodiscard]] DQ4_HD constexpr std::uint32_t integer_bits(format f, int v) noexcept {
  return f == format::int8 ? static_cast<std::uint32_t>(v) & 0xFFu : bits_of(f, v);
}

/// Packs eight bit patterns, element j at register j / per-register, like the fast paths.
template <format F>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> assemble(const std::uint32_t (&bits)[8]) noexcept {
  fragment<F, 8> out{};
  for (int j = 0; j < 8; ++j) {
    out.regs[j / values_per_register(F)] |= bits[j] << (value_bits(F) * (j % values_per_register(F)));
  }
  return out;
}

/// The eight values of one word in format F: element j = the value of nibble fragment_nibble(F, O, j),
/// exactly (every value dq4 produces unscaled is a value of F: see detail::valid_output).
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize(std::uint32_t word) noexcept {
  static_assert(detail::valid_path<F, E, O>::value && detail::valid_output<F, E>::value);
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const unsigned n = nibble(word, fragment_nibble(F, O, j));
    if constexpr (F == format::int8) {
      bits[j] = integer_bits(F, decode<E>(n));
    } else {
      bits[j] = round_to(F, number_of_nibble<E>(n));
    }
  }
  return assemble<F>(bits);
}

/// Element j = value * scales element j, rounded once to F (the product is exact before rounding).
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize(std::uint32_t word, const fragment<F, 8>& scales) noexcept {
  static_assert(detail::valid_path<F, E, O>::value && detail::valid_output<F, E>::value &&
                detail::valid_scaled_output<F>::value);
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const exact_number v = element<E, O>(word, j);
    const exact_number s = number_of(F, scales.bits(j));
    exact_number product = times(static_cast<int>(v.magnitude), s);
    product.negative = product.negative != v.negative;
    product.exponent += v.exponent;
    bits[j] = round_to(F, product);
  }
  return assemble<F>(bits);
}

/// The zero z of nibble k (0..7) of a zeros word under convention Z (0..15; gptq_v1_no_wrap: 1..16).
template <zeros Z>
[[nodiscard]] DQ4_HD constexpr int zero_of(std::uint32_t zeros_word, int k) noexcept {
  static_assert(detail::is_valid(Z), "dq4: the zeros argument names no dq4::zeros enumerator");
  const int n = static_cast<int>(nibble(zeros_word, k));
  if constexpr (Z == zeros::gptq_v1) {
    // The writers subtracted 0x11111111 from the word of z's (with borrows); add it back, mod 2^32.
    return static_cast<int>(nibble(zeros_word + 0x11111111u, k));
  } else if constexpr (Z == zeros::gptq_v1_wrap) {
    return (n + 1) % 16;
  } else if constexpr (Z == zeros::gptq_v1_no_wrap) {
    return n + 1;
  } else {
    return n;  // awq, gptq_v2
  }
}

/// Element j = (q - z) * s rounded once to F, with q the u4 weight, z from the zeros word (packed in
/// the same order as the weights) under convention Z, s the scales element j.
template <format F, zeros Z, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize(std::uint32_t word, std::uint32_t zeros_word,
                                                         const fragment<F, 8>& scales) noexcept {
  static_assert(detail::valid_zero_path<F, Z, O>::value && detail::valid_scaled_output<F>::value);
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const int q = value<encoding::u4, O>(word, j);
    const int z = zero_of<Z>(zeros_word, source_nibble(O, j));
    bits[j] = round_to(F, times(q - z, number_of(F, scales.bits(j))));
  }
  return assemble<F>(bits);
}

/// Element j = q - z exactly, unscaled (in -16..15: a value of every format but e5m2), with q the u4
/// weight of nibble k = fragment_nibble(F, O, j) and z nibble k's zero under convention Z.
template <format F, zeros Z, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize(std::uint32_t word, std::uint32_t zeros_word) noexcept {
  static_assert(detail::valid_zero_path<F, Z, O>::value && detail::valid_output<F, encoding::u4>::value);
  static_assert(F != format::e5m2, "dq4: q - z (-16..15) is not always an e5m2 value (9 needs three mantissa bits)");
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const int k = fragment_nibble(F, O, j);
    bits[j] = integer_bits(F, static_cast<int>(nibble(word, k)) - zero_of<Z>(zeros_word, k));
  }
  return assemble<F>(bits);
}

/// The NaN of an element whose block scale is NaN (e8m0 0xFF), without its sign: the canonical NaN
/// of fp16, bf16 and e4m3; for fp32 the bf16 one widened, 0x7FFF0000 (dq4's fp32 results of e2m1 are
/// bf16 results widened).
[[nodiscard]] DQ4_HD constexpr std::uint32_t block_nan(format f) noexcept {
  return f == format::fp32 ? canonical_nan(format::bf16) << 16 : canonical_nan(f);
}

/// Element j = e2m1 value * 2^(s.bits - 127) rounded once to F (fp16, bf16, fp32: to nearest even
/// with subnormals, overflowing to infinity; e4m3: saturating at +-448, see round_to). s.bits = 0xFF is
/// NaN and makes every element NaN (block_nan(F) with the nibble's sign), as a NaN shared exponent does
/// to its whole block in the OCP MX reference code.
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize(std::uint32_t word, e8m0 s) noexcept {
  static_assert(detail::valid_path<F, E, O>::value && detail::valid_block_scale<F, E>::value);
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const unsigned n = nibble(word, fragment_nibble(F, O, j));
    if (s.bits == 0xFFu) {
      bits[j] = block_nan(F) | ((n & 8u) != 0 ? 1u << (value_bits(F) - 1) : 0u);
    } else {
      exact_number x = number_of_nibble<E>(n);
      x.exponent += static_cast<int>(s.bits) - 127;
      bits[j] = round_to(F, x);
    }
  }
  return assemble<F>(bits);
}

/// Element j = entry n of the codebook, n the nibble source_nibble(O, j): the table's bits exactly.
template <format F, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize(std::uint32_t word, const codebook<F>& book) noexcept {
  static_assert(detail::is_valid(O), "dq4: the order argument names no dq4::order enumerator");
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) bits[j] = book.entry(nibble(word, source_nibble(O, j)));
  return assemble<F>(bits);
}

/// Element j = codebook entry times scales element j, rounded once to F.
template <format F, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize(std::uint32_t word, const codebook<F>& book,
                                                         const fragment<F, 8>& scales) noexcept {
  static_assert(detail::is_valid(O), "dq4: the order argument names no dq4::order enumerator");
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const std::uint32_t entry = book.entry(nibble(word, source_nibble(O, j)));
    bits[j] = round_to(F, product(number_of(F, entry), number_of(F, scales.bits(j))));
  }
  return assemble<F>(bits);
}

/// fp16 bit pattern of a small integer (kept for readability of the fp16 tests).
[[nodiscard]] DQ4_HD constexpr std::uint16_t fp16_bits(int v) noexcept {
  return static_cast<std::uint16_t>(bits_of(format::fp16, v));
}

/// The eight fp16 values of one word (reference::dequantize<format::fp16, E, O>).
template <encoding E, order O>
[[nodiscard]] DQ4_HD constexpr fp16x8 to_fp16(std::uint32_t word) noexcept {
  return dequantize<format::fp16, E, O>(word);
}

}  // namespace reference

// ------------------------------------------------------------------------------------------------
// The fast paths, written once for every format, encoding and order.
// ------------------------------------------------------------------------------------------------
namespace detail {

template <class Fn, int... I>
DQ4_HD constexpr void unrolled(Fn&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}

/// Calls f(std::integral_constant<int, i>{}) for i = 0 .. N-1: every register index is a constant
/// expression, so each register's plan (shifts, masks, constants) is fixed at compile time, on the
/// device and on the host alike.
template <int N, class Fn>
DQ4_HD constexpr void unrolled(Fn&& f) {
  unrolled(f, std::make_integer_sequence<int, N>{});
}

/// Bit pattern of 2^(M - o) in format f: the magic number for a nibble at mantissa bits [o, o+3].
/// A mantissa step there is worth 2^-o, so the pattern (magic | q << o) is the number 2^(M-o) + q.
[[nodiscard]] DQ4_HD constexpr std::uint32_t magic(format f, int o) noexcept {
  return static_cast<std::uint32_t>(exponent_bias(f) + mantissa_bits(f) - o) << mantissa_bits(f);
}

/// How output register r is built from the word (integer encodings):
///   source = permute ? PRMT(word, shift ? word >> shift : 0, selector) : word >> shift
///   x      = (source & mask) ^ lop3_constant      -> each value holds 2^(M-o) + q, q offset binary
///   result = x + addend                           -> the decoded value, exactly
struct register_plan {
  bool permute;
  int shift;
  unsigned selector;
  std::uint32_t mask;           ///< the nibble kept per value
  std::uint32_t lop3_constant;  ///< magic per value, plus bit 3 of the nibble for s4 (the flip)
  std::uint32_t magic;          ///< magic per value alone
  std::uint32_t addend;         ///< -(2^(M-o)), minus 8 more for u4b8 and s4
  std::uint32_t unit;           ///< one mantissa step at each value's nibble: 1 << o per value
};

/// Bit offsets o of the nibble inside each value of register r (the high value's in `high`).
struct offsets {
  int low, high;
};

template <format F, order O>
[[nodiscard]] DQ4_HD constexpr offsets nibble_offsets(int r) noexcept {
  if constexpr (F == format::fp16) {
    // interleaved: registers 0,2 at bits 0..3 of each half, 1,3 at bits 4..7;
    // sequential: byte r spread to every byte, low nibble kept low, high nibble kept high.
    return O == order::interleaved ? offsets{4 * (r & 1), 4 * (r & 1)} : offsets{0, 4};
  } else if constexpr (F == format::bf16) {
    return offsets{0, 0};  // bit 7 is an exponent bit: every nibble sits at bits 0..3
  } else {
    // fp32: nibbles 0..4 straight from the word, 5..7 from the word >> 12 (o <= 19)
    const int k = source_nibble(O, r);
    return offsets{k >= 5 ? 4 * k - 12 : 4 * k, 0};
  }
}

template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD constexpr register_plan plan(int r) noexcept {
  const offsets o = nibble_offsets<F, O>(r);
  const int high = value_bits(F) == 16 ? 16 : 0;  // second value's bit position (none for fp32)
  const std::uint32_t m = magic(F, o.low) | (high ? magic(F, o.high) << high : 0u);
  const std::uint32_t mask = (0xFu << o.low) | (high ? 0xFu << (high + o.high) : 0u);
  const std::uint32_t bit3 = (0x8u << o.low) | (high ? 0x8u << (high + o.high) : 0u);
  const std::uint32_t unit = (0x1u << o.low) | (high ? 0x1u << (high + o.high) : 0u);
  // 2^(M-o) + 8 has mantissa 8 << o: the same bits as the flipped nibble
  const std::uint32_t bias = E == encoding::u4 ? m : m | bit3;
  const std::uint32_t sign = high ? 0x80008000u : 0x80000000u;
  register_plan p{false, 0, 0, mask, E == encoding::s4 ? m | bit3 : m, m, bias ^ sign, unit};
  if constexpr (F == format::fp16) {
    if (O == order::interleaved) {
      p.shift = 8 * (r >> 1);
    } else {
      p.permute = true;
      p.selector = 0x1111u * static_cast<unsigned>(r);
    }
  } else if constexpr (F == format::bf16) {
    if (O == order::interleaved) {
      p.shift = 4 * r;
    } else {
      // byte r of the word to byte 0 (nibble 2r), byte r of word >> 4 to byte 2 (nibble 2r + 1)
      const auto b = static_cast<unsigned>(r);
      p.permute = true;
      p.shift = 4;
      p.selector = b | (b << 4) | ((4 + b) << 8) | ((4 + b) << 12);
    }
  } else {
    p.shift = source_nibble(O, r) >= 5 ? 12 : 0;
  }
  return p;
}

/// PRMT (prmt.b32, default mode): byte i of the result is byte s_i & 7 of {b, a} (a = bytes 0..3),
/// or, when bit 3 of s_i is set, that byte's top bit copied into all eight bits.
[[nodiscard]] DQ4_HD std::uint32_t prmt(std::uint32_t a, std::uint32_t b, std::uint32_t selector) noexcept {
#if defined(__CUDA_ARCH__)
  std::uint32_t out;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(out) : "r"(a), "r"(b), "r"(selector));
  return out;
#else   // !defined(__CUDA_ARCH__)
  const std::uint64_t bytes = a | (std::uint64_t{b} << 32);
  std::uint32_t out = 0;
  for (int i = 0; i < 4; ++i) {
    const unsigned s = (selector >> (4 * i)) & 0xFu;
    std::uint32_t byte = (bytes >> (8 * (s & 7u))) & 0xFFu;
    if ((s & 8u) != 0) byte = (byte & 0x80u) != 0 ? 0xFFu : 0x00u;
    out |= byte << (8 * i);
  }
  return out;
#endif  // defined(__CUDA_ARCH__)
}

/// Any bitwise function of three registers as one LOP3: bit i of the result is bit
/// (4 a_i + 2 b_i + c_i) of Lut (so Lut = f(0xF0, 0xCC, 0xAA)). Written as plain C++, a function of two
/// constants and a register becomes two LOP3s (a SASS LOP3 takes one immediate); the PTX form lets
/// ptxas keep the second constant in a register. Not volatile: the result depends on the operands only.
template <unsigned Lut>
[[nodiscard]] DQ4_HD std::uint32_t lop3(std::uint32_t a, std::uint32_t b, std::uint32_t c) noexcept {
  static_assert(Lut <= 0xFFu, "a LOP3 table has 8 bits");
#if defined(__CUDA_ARCH__)
  std::uint32_t out;
  asm("lop3.b32 %0, %1, %2, %3, %4;" : "=r"(out) : "r"(a), "r"(b), "r"(c), "n"(Lut));
  return out;
#else   // !defined(__CUDA_ARCH__)
  std::uint32_t out = 0;
  for (unsigned m = 0; m < 8; ++m) {  // the OR of the minterms the table selects
    if ((Lut >> m) & 1u) out |= ((m & 4u) ? a : ~a) & ((m & 2u) ? b : ~b) & ((m & 1u) ? c : ~c);
  }
  return out;
#endif  // defined(__CUDA_ARCH__)
}

/// (a & b) ^ c as one instruction (LUT 0x6A = (0xF0 & 0xCC) ^ 0xAA).
[[nodiscard]] DQ4_HD std::uint32_t and_xor(std::uint32_t a, std::uint32_t b, std::uint32_t c) noexcept {
  return lop3<0x6Au>(a, b, c);
}

/// The word register r's nibbles are masked from.
[[nodiscard]] DQ4_HD std::uint32_t source_word(std::uint32_t word, const register_plan& p) noexcept {
  return p.permute ? prmt(word, p.shift != 0 ? word >> p.shift : 0u, p.selector) : word >> p.shift;
}

/// Register r with every value at 2^(M-o) + q (q the offset-binary nibble): one LOP3.
template <format F, encoding E, order O, int R>
[[nodiscard]] DQ4_HD std::uint32_t biased_register(std::uint32_t word) noexcept {
  constexpr register_plan p = plan<F, E, O>(R);
  return and_xor(source_word(word, p), p.mask, p.lop3_constant);
}

/// Registers x + addend for every register (integer encodings): the unscaled fast path.
/// `Arithmetic` supplies add(a, b) and mul(a, b) on whole registers of format F: the device passes
/// the hardware instructions, the tests an exact software model of them.
template <format F, encoding E, order O, class Arithmetic>
[[nodiscard]] DQ4_HD fragment<F, 8> magic_dequantize(std::uint32_t word, const Arithmetic& arithmetic) noexcept {
  fragment<F, 8> out{};
  unrolled<fragment<F, 8>::registers>([&](auto r) {
    constexpr int R = decltype(r)::value;
    out.regs[R] = arithmetic.add(biased_register<F, E, O, R>(word), plan<F, E, O>(R).addend);
  });
  return out;
}

/// The same, then each register times the scales register: one rounding, in the multiply.
template <format F, encoding E, order O, class Arithmetic>
[[nodiscard]] DQ4_HD fragment<F, 8> magic_dequantize(std::uint32_t word, const fragment<F, 8>& scales,
                                                     const Arithmetic& arithmetic) noexcept {
  fragment<F, 8> out = magic_dequantize<F, E, O>(word, arithmetic);
  unrolled<fragment<F, 8>::registers>([&](auto r) {
    constexpr int R = decltype(r)::value;
    out.regs[R] = arithmetic.mul(out.regs[R], scales.regs[R]);
  });
  return out;
}

}  // namespace detail

namespace detail {

/// Registers of a zero_point<F, O>: those of the output for fp16, bf16, fp32 and int8; e4m3 computes
/// q - z in fp16 first (see fp8_difference), so its zero points are four fp16x2 registers.
[[nodiscard]] DQ4_HD constexpr int zero_point_registers(format f) noexcept {
  return f == format::e4m3 ? 4 : 8 / values_per_register(f);
}

/// The plan of register r of e4m3's q - z route: fp16 with the nibbles in the word's own order
/// (register r holds nibbles 2r and 2r + 1, the sequential plan), every magic eight binades lower, so
/// that the values are (q - z) * 2^-8, whose fp16 bits hold the e4m3 bits (see fp8_difference).
[[nodiscard]] DQ4_HD constexpr register_plan e4m3_route_plan(int r) noexcept {
  register_plan p = plan<format::fp16, encoding::u4, order::sequential>(r);
  constexpr std::uint32_t eight_binades = 0x20002000u;  // 8 << 10 in each lane; every magic field is >= 21
  p.lop3_constant -= eight_binades;
  p.magic -= eight_binades;
  p.addend -= eight_binades;
  return p;
}

}  // namespace detail

/// The per-group registers of a zero-point dequantization, made by prepare_zeros once per group,
/// outside the K loop, and read by dequantize. For fp16, bf16 and fp32 they hold -(2^(M-o) + z) per
/// value, in the output layout (register r's values as in dequantize's result); for int8 the byte
/// 0x80 - z per value, in the int8 layout; for e4m3 -(2^(2-o) + z * 2^-8) in fp16 lanes, nibbles in
/// the word's order. They are the same bits on the host, on every device target and in the
/// reference path: prepared on the host, they may be copied to the device. Every zero-point
/// convention gives this one representation, so the type does not name it.
template <format F, order O>
struct zero_point {
  std::uint32_t regs[detail::zero_point_registers(F)];
};

namespace detail {

/// A zeros word whose nibbles are the zeros z themselves (integer instructions only), for every
/// convention but gptq_v1_no_wrap, whose z = 16 is no nibble (its +1 comes after the magic).
template <zeros Z>
[[nodiscard]] DQ4_HD constexpr std::uint32_t zeros_as_nibbles(std::uint32_t stored) noexcept {
  if constexpr (Z == zeros::gptq_v1) {
    return stored + 0x11111111u;  // the writers' word subtraction undone, borrows included (mod 2^32)
  } else if constexpr (Z == zeros::gptq_v1_wrap) {
    // (n + 1) mod 16 in every nibble, no carry between nibbles: the low three bits plus one is at most
    // 8, which stays inside the nibble; XOR with the old bit 3 then adds it mod 16 (8 + 8 = 16 = 0).
    return ((stored & 0x77777777u) + 0x11111111u) ^ (stored & 0x88888888u);
  } else {
    return stored;  // awq, gptq_v2: z = n; gptq_v1_no_wrap: see magic_prepare_zeros
  }
}

/// The plan whose magic zero point register r holds: the output's own, or e4m3's fp16 route.
template <format F, order O>
[[nodiscard]] DQ4_HD constexpr register_plan zero_plan(int r) noexcept {
  if constexpr (F == format::e4m3) {
    return e4m3_route_plan(r);
  } else {
    return plan<F, encoding::u4, O>(r);
  }
}

/// -(2^(M-o) + z) per value from a zeros word, by integer instructions: one LOP3 per register puts
/// each nibble z into the mantissa of -2^(M-o) (sign flip and magic in the LOP3 constant); that is
/// -(2^(M-o) + z) exactly, as in the weights' path. gptq_v1 adds one IADD per word, gptq_v1_wrap
/// three instructions per word, and gptq_v1_no_wrap one IADD per register: z = n + 1 is one more
/// mantissa step (1 << o); at most 16 << o, it stays below the exponent (o <= 16, M - o >= 6).
template <format F, zeros Z, order O>
[[nodiscard]] DQ4_HD zero_point<F, O> magic_prepare_zeros(std::uint32_t zeros_word) noexcept {
  const std::uint32_t z = zeros_as_nibbles<Z>(zeros_word);
  zero_point<F, O> out{};
  unrolled<zero_point_registers(F)>([&](auto r) {
    constexpr int R = decltype(r)::value;
    constexpr register_plan p = zero_plan<F, O>(R);
    constexpr std::uint32_t sign = value_bits(F) == 32 ? 0x80000000u : 0x80008000u;
    const std::uint32_t negated = and_xor(source_word(z, p), p.mask, p.magic | sign);  // -(2^(M-o) + n)
    out.regs[R] = Z == zeros::gptq_v1_no_wrap ? negated + p.unit : negated;
  });
  return out;
}

/// x + z_r then times the scale: (q - z) * s with a single rounding.
template <format F, order O, class Arithmetic>
[[nodiscard]] DQ4_HD fragment<F, 8> magic_dequantize(std::uint32_t word, const zero_point<F, O>& zero,
                                                     const fragment<F, 8>& scales, const Arithmetic& arithmetic) noexcept {
  fragment<F, 8> out{};
  unrolled<fragment<F, 8>::registers>([&](auto r) {
    constexpr int R = decltype(r)::value;
    const std::uint32_t difference = arithmetic.add(biased_register<F, encoding::u4, O, R>(word), zero.regs[R]);
    out.regs[R] = arithmetic.mul(difference, scales.regs[R]);
  });
  return out;
}

/// The zero z of element j (0..7) that prepared registers hold: for the float formats the mantissa
/// field of its value is z << o, under the exponent of the magic (e4m3: the fp16 lanes of its route,
/// element j in register j / 2); for int8 its byte is 0x80 - z.
template <format F, order O>
[[nodiscard]] DQ4_HD constexpr int prepared_zero(const zero_point<F, O>& zero, int j) noexcept {
  if constexpr (F == format::int8) {
    return 0x80 - static_cast<int>((zero.regs[j / 4] >> (8 * (j % 4))) & 0xFFu);
  } else {
    constexpr format lanes = F == format::e4m3 ? format::fp16 : F;
    constexpr int per_register = values_per_register(lanes);
    const int r = j / per_register, lane = j % per_register;
    const offsets o = nibble_offsets<lanes, F == format::e4m3 ? order::sequential : O>(r);
    const std::uint32_t mantissa = (zero.regs[r] >> (16 * lane)) & ((1u << mantissa_bits(lanes)) - 1u);
    return static_cast<int>(mantissa >> (lane == 0 ? o.low : o.high));
  }
}

/// The portable zero-point path (host code, and device targets without F's arithmetic): the
/// reference's (q - z) * s, rounded once, with z read back from the prepared registers.
template <format F, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize_prepared(std::uint32_t word, const zero_point<F, O>& zero,
                                                                  const fragment<F, 8>& scales) noexcept {
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const int difference = reference::value<encoding::u4, O>(word, j) - prepared_zero<F, O>(zero, j);
    bits[j] = reference::round_to(F, reference::times(difference, reference::number_of(F, scales.bits(j))));
  }
  return reference::assemble<F>(bits);
}

/// The same without scales: q - z exactly, in any format but e5m2.
template <format F, order O>
[[nodiscard]] DQ4_HD constexpr fragment<F, 8> dequantize_prepared(std::uint32_t word, const zero_point<F, O>& zero) noexcept {
  std::uint32_t bits[8] = {};
  for (int j = 0; j < 8; ++j) {
    const int q = static_cast<int>(reference::nibble(word, fragment_nibble(F, O, j)));
    bits[j] = reference::integer_bits(F, q - prepared_zero<F, O>(zero, j));
  }
  return reference::assemble<F>(bits);
}

/// x + z_r without the scale: q - z exactly (fp16, bf16, fp32), the unscaled path's count.
template <format F, order O, class Arithmetic>
[[nodiscard]] DQ4_HD fragment<F, 8> magic_dequantize(std::uint32_t word, const zero_point<F, O>& zero,
                                                     const Arithmetic& arithmetic) noexcept {
  fragment<F, 8> out{};
  unrolled<fragment<F, 8>::registers>([&](auto r) {
    constexpr int R = decltype(r)::value;
    out.regs[R] = arithmetic.add(biased_register<F, encoding::u4, O, R>(word), zero.regs[R]);
  });
  return out;
}

/// An 8-entry byte table in two registers (entries 0..3 in lo, 4..7 in hi), indexed by PRMT.
struct byte_table {
  std::uint32_t lo, hi;
};

/// Table look-ups, for e2m1 and for 16-entry codebooks. A nibble's bits 0..2 index 8-entry byte
/// tables held in two registers, one table per byte ("plane") of the output values; bit 3 is e2m1's
/// sign, or a codebook's choice between its entries 0..7 and 8..15. Step 1 looks up, per half
/// ("group") of the outputs, four bytes of each plane; step 2 moves them into place. The e2m1
/// magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6 unscaled:
///   fp16 high bytes: 00 38 3C 3E 40 42 44 46 (low bytes all 00)
///   bf16 high bytes: 00 3F 3F 3F 40 40 40 40, low bytes 00 00 80 C0 00 40 80 C0
/// An fp32 result is a bf16 widened (see widened_to_fp32) wherever every value has at most eight
/// significant bits, as every e2m1 value times a power of two does.
struct plane_tables {
  byte_table low, high;  ///< the low and the high byte of each 16-bit entry
};

/// The planes of sixteen-bit patterns entries[0..7].
[[nodiscard]] DQ4_HD constexpr plane_tables planes_of(const std::uint32_t (&entries)[8]) noexcept {
  plane_tables t{};
  for (int i = 0; i < 8; ++i) {
    std::uint32_t& low = i < 4 ? t.low.lo : t.low.hi;
    std::uint32_t& high = i < 4 ? t.high.lo : t.high.hi;
    low |= (entries[i] & 0xFFu) << (8 * (i % 4));
    high |= ((entries[i] >> 8) & 0xFFu) << (8 * (i % 4));
  }
  return t;
}

/// Which nibbles make up each half ("group") of the step-1 bytes, and the selectors that read them.
/// Group g's byte i holds nibble group_nibble(g, i); register r reads two bytes of one group.
///   sequential:  group 0 = nibbles 0 1 2 3, group 1 = 4 5 6 7; register r = group r / 2, bytes
///                2(r%2), 2(r%2)+1.
///   interleaved: group 0 = nibbles 0 1 4 5, group 1 = 2 3 6 7; register r = group r / 2, bytes
///                r%2, r%2 + 2 (nibbles r and r + 4).
template <order O>
[[nodiscard]] DQ4_HD constexpr int group_nibble(int g, int i) noexcept {
  return O == order::sequential ? 4 * g + i : 2 * g + (i & 1) + 4 * (i >> 1);
}

/// PRMT selector (sign-replicate mode) whose byte i is bit 3 of nibble group_nibble(g, i):
/// bit 3 of nibble 2b is the top bit of byte b of (word << 4) (operand a, bytes 0..3),
/// bit 3 of nibble 2b + 1 is the top bit of byte b of word (operand b, bytes 4..7).
template <order O>
[[nodiscard]] DQ4_HD constexpr std::uint32_t sign_selector(int g) noexcept {
  std::uint32_t s = 0;
  for (int i = 0; i < 4; ++i) {
    const int k = group_nibble<O>(g, i);
    s |= (8u | static_cast<std::uint32_t>(k & 1 ? 4 + k / 2 : k / 2)) << (4 * i);
  }
  return s;
}

/// The selectors of one word's look-ups, per group g: index[g] holds bits 0..2 of nibble
/// group_nibble(g, i) at bits 4i..4i+2 (the PRMT selector of byte i), top[g] is 0xFF in byte i
/// where that nibble's bit 3 is set, else 0.
struct lookup_selectors {
  std::uint32_t index[2], top[2];
};

template <order O>
[[nodiscard]] DQ4_HD lookup_selectors selectors_of(std::uint32_t word) noexcept {
  const std::uint32_t low_bits = word & 0x77777777u;
  const std::uint32_t shifted = word << 4;  // bit 3 of the even nibbles as byte top bits
  lookup_selectors s{};
  unrolled<2>([&](auto g) {
    constexpr int G = decltype(g)::value;
    // sequential: nibbles 4g..4g+3 = the masked word >> 16g; interleaved: its bytes {0,2} / {1,3}.
    s.index[G] = O == order::sequential ? low_bits >> (16 * G) : prmt(low_bits, 0u, G == 0 ? 0x20u : 0x31u);
    s.top[G] = prmt(shifted, word, sign_selector<O>(G));
  });
  return s;
}

/// Selector of register r's two 16-bit values from its group's bytes: {low, high} per value, the low
/// plane's bytes in operand a and the high plane's in b; where the low plane is known to be zero,
/// {zero, high}, the high plane in operand a and the zero byte from operand b = 0.
template <order O, bool ZeroLow>
[[nodiscard]] DQ4_HD constexpr std::uint32_t placement_selector(int r) noexcept {
  const unsigned first = O == order::sequential ? 2u * (r % 2) : static_cast<unsigned>(r % 2);
  const unsigned second = O == order::sequential ? first + 1 : first + 2;
  if constexpr (ZeroLow) {
    return 4u | (first << 4) | (4u << 8) | (second << 12);
  } else {
    return first | ((4u + first) << 4) | (second << 8) | ((4u + second) << 12);
  }
}

/// Step 2: the four 16-bit registers of eight values from the group bytes of their two planes.
template <format F, order O, bool ZeroLow>
[[nodiscard]] DQ4_HD fragment<F, 8> placed(const std::uint32_t (&low)[2], const std::uint32_t (&high)[2]) noexcept {
  static_assert(value_bits(F) == 16);
  fragment<F, 8> out{};
  unrolled<4>([&](auto r) {
    constexpr int R = decltype(r)::value;
    constexpr std::uint32_t placement = placement_selector<O, ZeroLow>(R);
    out.regs[R] = ZeroLow ? prmt(high[R / 2], 0u, placement) : prmt(low[R / 2], high[R / 2], placement);
  });
  return out;
}

/// Eight 16-bit values of a sign-magnitude encoding (e2m1) by look-up: the tables hold the bit patterns
/// of magnitudes 0..7 (sign bit 0), and the nibble's bit 3 sets the sign (one LOP3 per group). ZeroLow:
/// the low plane is zero for every entry (unscaled fp16), so it is not looked up.
template <format F, order O, bool ZeroLow>
[[nodiscard]] DQ4_HD fragment<F, 8> sign_magnitude_lookup(std::uint32_t word, const plane_tables& t) noexcept {
  const lookup_selectors s = selectors_of<O>(word);
  std::uint32_t low[2] = {}, high[2] = {};
  unrolled<2>([&](auto g) {
    constexpr int G = decltype(g)::value;
    high[G] = (s.top[G] & 0x80808080u) | prmt(t.high.lo, t.high.hi, s.index[G]);
    if constexpr (!ZeroLow) low[G] = prmt(t.low.lo, t.low.hi, s.index[G]);
  });
  return placed<F, O, ZeroLow>(low, high);
}

/// Eight 16-bit values of a 16-entry table by look-up: each plane is two 8-entry tables (entries 0..7
/// in registers 0, 1; 8..15 in 2, 3), and a LOP3 per plane and group picks the second where the
/// nibble's bit 3 is set.
template <format F, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> sixteen_entry_lookup(std::uint32_t word, const std::uint32_t (&low)[4],
                                                        const std::uint32_t (&high)[4]) noexcept {
  const lookup_selectors s = selectors_of<O>(word);
  std::uint32_t l[2] = {}, h[2] = {};
  unrolled<2>([&](auto g) {
    constexpr int G = decltype(g)::value;
    // (0xF0 & 0xAA) | (0xCC & ~0xAA) = 0xE4: the second table's byte where the top byte is set
    l[G] = lop3<0xE4u>(prmt(low[2], low[3], s.index[G]), prmt(low[0], low[1], s.index[G]), s.top[G]);
    h[G] = lop3<0xE4u>(prmt(high[2], high[3], s.index[G]), prmt(high[0], high[1], s.index[G]), s.top[G]);
  });
  return placed<F, O, false>(l, h);
}

/// fp32 registers from bf16 ones whose values have at most eight significant bits: a bf16 is the top
/// half of the fp32 of the same value (one SHF or LOP3 per fp32 register).
[[nodiscard]] DQ4_HD fragment<format::fp32, 8> widened_to_fp32(const fragment<format::bf16, 8>& b) noexcept {
  fragment<format::fp32, 8> out{};
  for (int r = 0; r < 4; ++r) {
    out.regs[2 * r] = b.regs[r] << 16;
    out.regs[2 * r + 1] = b.regs[r] & 0xFFFF0000u;
  }
  return out;
}

/// The table format of e2m1 to F: F's own, bf16 for fp32 (widened afterwards).
[[nodiscard]] DQ4_HD constexpr format e2m1_table_format(format f) noexcept { return f == format::fp32 ? format::bf16 : f; }

/// The planes of the e2m1 magnitudes 0..7 (nibbles 0..7) in 16-bit format F, unscaled.
template <format F>
[[nodiscard]] DQ4_HD constexpr plane_tables e2m1_planes() noexcept {
  std::uint32_t entries[8] = {};
  for (unsigned i = 0; i < 8; ++i) entries[i] = reference::round_to(F, reference::number_of_nibble<encoding::e2m1>(i));
  return planes_of(entries);
}

/// Whether the hardware fp4 conversion is used: only when the user defines DQ4_FP4_HARDWARE_CONVERSION
/// (it has not run on the GPUs dq4's exhaustive tests ran on) and the code is compiled for an arch-
/// or family-specific target that has cvt.rn.f16x2.e2m1x2 (sm_100a/f, sm_103a, sm_110a, sm_120a/f,
/// sm_121a). There it takes 3 SHF + 4 F2FP per 8 values in sequential order (13 with the tables);
/// bf16 and the interleaved order keep the tables.
#if defined(DQ4_FP4_HARDWARE_CONVERSION) && defined(__CUDA_ARCH_FAMILY_SPECIFIC__) && __CUDA_ARCH__ >= 1000
#define DQ4_DETAIL_FP4_CONVERSION 1
#else
#define DQ4_DETAIL_FP4_CONVERSION 0
#endif
[[nodiscard]] DQ4_HD constexpr bool fp4_hardware_conversion() noexcept { return DQ4_DETAIL_FP4_CONVERSION != 0; }

/// e2m1 to fp16, sequential order, by the hardware: register r converts byte r (low nibble to the
/// low half).
[[nodiscard]] DQ4_HD fragment<format::fp16, 8> e2m1_hardware_sequential(std::uint32_t word) noexcept {
  fragment<format::fp16, 8> out{};
#if DQ4_DETAIL_FP4_CONVERSION
  unrolled<4>([&](auto r) {
    constexpr int R = decltype(r)::value;
    asm("{\n .reg .b8 b0, b1, b2, b3;\n mov.b32 {b0, b1, b2, b3}, %1;\n cvt.rn.f16x2.e2m1x2 %0, b0;\n}"
        : "=r"(out.regs[R])
        : "r"(word >> (8 * R)));
  });
#else   // never called: fp4_hardware_conversion() is false
  (void)word;
#endif  // DQ4_DETAIL_FP4_CONVERSION
  return out;
}
#undef DQ4_DETAIL_FP4_CONVERSION

/// e2m1 to fp16, bf16 (tables of the exact values) or fp32 (bf16 widened), integer instructions only.
template <format F, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> e2m1_dequantize(std::uint32_t word) noexcept {
  if constexpr (F == format::fp32) {
    return widened_to_fp32(e2m1_dequantize<format::bf16, O>(word));
  } else if constexpr (F == format::fp16 && O == order::sequential && fp4_hardware_conversion()) {
    return e2m1_hardware_sequential(word);
  } else {
    constexpr plane_tables table = e2m1_planes<F>();
    constexpr bool zero_low = table.low.lo == 0 && table.low.hi == 0;  // fp16: every value's low byte is 0
    return sign_magnitude_lookup<F, O, zero_low>(word, table);
  }
}

/// e2m1 times a scale per element: the table values are exact, so the multiply is the one rounding.
template <format F, order O, class Arithmetic>
[[nodiscard]] DQ4_HD fragment<F, 8> e2m1_dequantize(std::uint32_t word, const fragment<F, 8>& scales,
                                                    const Arithmetic& arithmetic) noexcept {
  fragment<F, 8> out = e2m1_dequantize<F, O>(word);
  unrolled<fragment<F, 8>::registers>([&](auto r) {
    constexpr int R = decltype(r)::value;
    out.regs[R] = arithmetic.mul(out.regs[R], scales.regs[R]);
  });
  return out;
}

#if defined(__CUDACC__)
// One member function `name` that runs a two-operand PTX instruction on 32-bit registers.
#define DQ4_PTX_BINARY(name, instruction)                                        \
  __device__ std::uint32_t name(std::uint32_t a, std::uint32_t b) const noexcept { \
    std::uint32_t out;                                                           \
    asm(instruction " %0, %1, %2;" : "=r"(out) : "r"(a), "r"(b));                \
    return out;                                                                  \
  }

/// The device's register arithmetic for format F: add and multiply, round to nearest even (.rn also
/// keeps ptxas from fusing them), no flush of subnormals (none of these instructions flushes, and
/// the fp32 ones are written without .ftz, so --use_fast_math does not change them).
template <format F>
struct device_arithmetic;

template <>
struct device_arithmetic<format::fp16> {
  DQ4_PTX_BINARY(add, "add.rn.f16x2")
  DQ4_PTX_BINARY(mul, "mul.rn.f16x2")
};

template <>
struct device_arithmetic<format::fp32> {
  DQ4_PTX_BINARY(add, "add.rn.f32")
  DQ4_PTX_BINARY(mul, "mul.rn.f32")
};

#if __CUDA_ARCH__ >= 900 || !defined(__CUDA_ARCH__)
template <>
struct device_arithmetic<format::bf16> {
  DQ4_PTX_BINARY(add, "add.rn.bf16x2")
  DQ4_PTX_BINARY(mul, "mul.rn.bf16x2")
};
#else   // sm_80..89: only fma.bf16x2
template <>
struct device_arithmetic<format::bf16> {
  // a * 1 + b and a * b + (-0) round the same exact sum or product once and give the same bits
  // (adding -0 keeps the product's zero sign).
  __device__ std::uint32_t add(std::uint32_t a, std::uint32_t b) const noexcept { return fma(a, 0x3F803F80u, b); }
  __device__ std::uint32_t mul(std::uint32_t a, std::uint32_t b) const noexcept { return fma(a, b, 0x80008000u); }

 private:
  __device__ static std::uint32_t fma(std::uint32_t a, std::uint32_t b, std::uint32_t c) noexcept {
    std::uint32_t out;
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(out) : "r"(a), "r"(b), "r"(c));
    return out;
  }
};
#endif  // __CUDA_ARCH__ >= 900 || !defined(__CUDA_ARCH__)
#undef DQ4_PTX_BINARY

/// bf16x2 addition for results that are bf16 values exactly (small integers), on targets without bf16
/// arithmetic (sm_75): each lane widened to fp32 (a bf16 is the top half of an fp32), one exact
/// FADD per lane, the top halves gathered by a PRMT.
struct exact_bf16_through_fp32 {
  __device__ std::uint32_t add(std::uint32_t a, std::uint32_t b) const noexcept {
    const device_arithmetic<format::fp32> fp32{};
    const std::uint32_t low = fp32.add(a << 16, b << 16);
    const std::uint32_t high = fp32.add(a & 0xFFFF0000u, b & 0xFFFF0000u);
    return prmt(low, high, 0x7632u);
  }
};
#endif  // defined(__CUDACC__)

/// Whether device code being compiled has add and multiply for format F (f16x2 from sm_53, bf16x2
/// from sm_80, fp32 always). Host code has none: it runs the reference.
template <format F>
[[nodiscard]] DQ4_HD constexpr bool has_arithmetic() noexcept {
#if defined(__CUDA_ARCH__)
  return F == format::fp32 || (F == format::fp16 && __CUDA_ARCH__ >= 530) || (F == format::bf16 && __CUDA_ARCH__ >= 800);
#else   // !defined(__CUDA_ARCH__)
  return false;
#endif  // defined(__CUDA_ARCH__)
}

/// bf16 registers from fp32 results that are small integers (at most 8 significant bits, so the low
/// 16 bits of each float are zero and its high half is the bf16 value): one PRMT per bf16 register.
[[nodiscard]] DQ4_HD fragment<format::bf16, 8> bf16_from_small_fp32(const fragment<format::fp32, 8>& f) noexcept {
  fragment<format::bf16, 8> out{};
  for (int r = 0; r < 4; ++r) out.regs[r] = prmt(f.regs[2 * r], f.regs[2 * r + 1], 0x7632u);
  return out;
}

// ------------------------------------------------------------------------------------------------
// The 8-bit outputs (int8, e4m3, e5m2): integer instructions only, except e4m3's q - z (fp16 adds).
// ------------------------------------------------------------------------------------------------

/// The word rotated left by 4 bits (one SHF): byte b holds nibble 2b - 1 (nibble 7 for b = 0) in its
/// low half and nibble 2b in its high half, so its byte tops are the signs of the even nibbles.
[[nodiscard]] DQ4_HD constexpr std::uint32_t rotated_nibble(std::uint32_t word) noexcept {
  return (word << 4) | (word >> 28);
}

/// Two registers whose byte i has, in its low four bits, the nibble of element 4g + i (g = register)
/// of the 8-bit layout of F for order O (the high four bits are whatever lies there). int8 in
/// interleaved order takes the even nibbles as they lie and the odd ones shifted down (1 SHF);
/// nibble order takes each byte from the word or its rotated copy (1 SHF + 2 PRMT).
template <format F, order O>
struct byte_nibbles {
  static constexpr bool split = F == format::int8 && O == order::interleaved;
  static DQ4_HD std::uint32_t low(std::uint32_t word, std::uint32_t rotated, int g) noexcept {
    if (split) return g == 0 ? word : word >> 4;
    // byte i: nibble 4g + i is the low half of byte 2g + i/2 of the word (i even) or of the rotated word (i odd)
    return prmt(word, rotated, g == 0 ? 0x6150u : 0x4372u);
  }
  /// 0xFF in byte i where the nibble of element 4g + i has bit 3 set, else 0 (one PRMT in
  /// sign-replicate mode: an odd nibble's bit 3 is a byte top of the word, an even one's of the
  /// rotated word, whose byte tops are those of the word << 4 that e2m1's sign_selector reads).
  static DQ4_HD std::uint32_t signs(std::uint32_t word, std::uint32_t rotated, int g) noexcept {
    if (split) return prmt(g == 0 ? rotated : word, 0u, 0xBA98u);
    return prmt(rotated, word, sign_selector<order::sequential>(g));
  }
};

/// Bytes (x & 0x07) | (s & 0xF8) (one LOP3): the sign extension of a nibble whose bit 3, replicated,
/// is s; with Complement, (x & 0x07) | (~s & 0xF8).
template <bool Complement>
[[nodiscard]] DQ4_HD std::uint32_t sign_extended(std::uint32_t x, std::uint32_t s) noexcept {
  // (0xF0 & 0xAA) | (0xCC & ~0xAA) = 0xE4; (0xF0 & 0xAA) | (~0xCC & ~0xAA) = 0xB1
  return lop3<Complement ? 0xB1u : 0xE4u>(x, s, 0x07070707u);
}

/// int8 from an integer encoding. u4: the nibbles masked. s4: the nibble's low three bits under its
/// replicated sign (one LOP3). u4b8: n - 8 is s4 of n ^ 8, whose sign is bit 3 inverted: the same
/// LOP3 with the sign bytes complemented.
template <encoding E, order O>
[[nodiscard]] DQ4_HD fragment<format::int8, 8> int8_dequantize(std::uint32_t word) noexcept {
  using layout = byte_nibbles<format::int8, O>;
  const std::uint32_t rotated = rotated_nibble(word);
  fragment<format::int8, 8> out{};
  unrolled<2>([&](auto g) {
    constexpr int G = decltype(g)::value;
    const std::uint32_t x = layout::low(word, rotated, G);
    if constexpr (E == encoding::u4) {
      out.regs[G] = x & 0x0F0F0F0Fu;
    } else {
      const std::uint32_t s = layout::signs(word, rotated, G);
      out.regs[G] = sign_extended<E == encoding::u4b8>(x, s);
    }
  });
  return out;
}

/// int8 zero points: 0x80 - z per byte, in the int8 layout (z <= 16, so no byte borrows).
template <zeros Z, order O>
[[nodiscard]] DQ4_HD zero_point<format::int8, O> int8_prepare_zeros(std::uint32_t zeros_word) noexcept {
  const fragment<format::int8, 8> z = int8_dequantize<encoding::u4, O>(zeros_as_nibbles<Z>(zeros_word));
  // gptq_v1_no_wrap: z = n + 1, so 0x80 - z = 0x7F - n
  constexpr std::uint32_t base = Z == zeros::gptq_v1_no_wrap ? 0x7F7F7F7Fu : 0x80808080u;
  return zero_point<format::int8, O>{{base - z.regs[0], base - z.regs[1]}};
}

/// int8 q - z: q + (0x80 - z) is 0x80 + (q - z), in 0x70..0x8F, so no byte carries into the next
/// (one IADD for four bytes); flipping bit 7 leaves q - z in two's complement (one LOP3).
template <order O>
[[nodiscard]] DQ4_HD fragment<format::int8, 8> int8_difference(std::uint32_t word,
                                                             const zero_point<format::int8, O>& zero) noexcept {
  fragment<format::int8, 8> out = int8_dequantize<encoding::u4, O>(word);
  for (int g = 0; g < 2; ++g) out.regs[g] = (out.regs[g] + zero.regs[g]) ^ 0x80808080u;
  return out;
}

/// Register r (bytes 4r..4r+3) of a table of F's bit patterns, entry i = the value of nibble i under E.
template <format F, encoding E>
[[nodiscard]] DQ4_HD constexpr std::uint32_t table_register(int r) noexcept {
  std::uint32_t reg = 0;
  for (int b = 0; b < 4; ++b) {
    const auto n = static_cast<unsigned>(4 * r + b);
    reg |= reference::round_to(F, reference::number_of_nibble<E>(n)) << (8 * b);
  }
  return reg;
}

/// fp8 from an integer encoding by table (nibble order: register g holds nibbles 4g..4g+3, so the
/// selector of register g is a word shifted by 16g; PRMT reads its low 16 bits). The 16 entries are
/// two 8-entry tables, entries 0..7 and 8..15.
///   u4 (9 per 8 values): PRMT with the nibble as selector gives entry n for n < 8, and with bit 3
///   flipped entry n for n >= 8 from the high table; where the selector's bit 3 is set PRMT instead
///   copies a byte's top bit (sign-replicate mode), which is 0 in u4's all-positive tables, so an OR
///   merges the two look-ups.
///   s4, u4b8 (11): the tables mix signs, and a look-up's top bit depends on the selector's low three
///   bits only, so no function of the two look-ups gives the sign: both read the masked nibble
///   (one LOP3 for both registers, one shift for the second), and a LOP3 picks per byte by the
///   nibble's bit 3, replicated by a PRMT.
template <format F, encoding E>
[[nodiscard]] DQ4_HD fragment<F, 8> fp8_from_integers(std::uint32_t word) noexcept {
  using layout = byte_nibbles<F, order::sequential>;
  constexpr std::uint32_t t0 = table_register<F, E>(0), t1 = table_register<F, E>(1);
  constexpr std::uint32_t t2 = table_register<F, E>(2), t3 = table_register<F, E>(3);
  fragment<F, 8> out{};
  if constexpr (E == encoding::u4) {
    const std::uint32_t flipped = word ^ 0x88888888u;
    unrolled<2>([&](auto g) {
      constexpr int G = decltype(g)::value;
      out.regs[G] = prmt(t0, t1, word >> (16 * G)) | prmt(t2, t3, flipped >> (16 * G));
    });
  } else {
    const std::uint32_t indices = word & 0x77777777u;
    const std::uint32_t rotated = rotated_nibble(word);
    unrolled<2>([&](auto g) {
      constexpr int G = decltype(g)::value;
      const std::uint32_t index = indices >> (16 * G);
      // (0xF0 & 0xAA) | (0xCC & ~0xAA) = 0xE4: the high look-up where the sign byte is set
      out.regs[G] = lop3<0xE4u>(prmt(t2, t3, index), prmt(t0, t1, index), layout::signs(word, rotated, G));
    });
  }
  return out;
}

/// The 8-entry table of F's bit patterns of the e2m1 magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6.
template <format F>
[[nodiscard]] DQ4_HD constexpr byte_table e2m1_magnitudes() noexcept {
  return byte_table{table_register<F, encoding::e2m1>(0), table_register<F, encoding::e2m1>(1)};
}

/// fp8 from e2m1 (both fp8 formats are sign-magnitude, like e2m1): the magnitude bits index the
/// table (one LOP3 masks the signs off for every nibble), and the nibble's sign bit, replicated by a
/// PRMT, gives bit 7 (one LOP3). The table may hold scaled values (prepare_block_scale).
template <format F>
[[nodiscard]] DQ4_HD fragment<F, 8> fp8_from_e2m1(std::uint32_t word, const byte_table& table) noexcept {
  using layout = byte_nibbles<F, order::sequential>;
  const std::uint32_t magnitudes = word & 0x77777777u;
  const std::uint32_t rotated = rotated_nibble(word);
  fragment<F, 8> out{};
  unrolled<2>([&](auto g) {
    constexpr int G = decltype(g)::value;
    const std::uint32_t magnitude = prmt(table.lo, table.hi, magnitudes >> (16 * G));
    out.regs[G] = magnitude | (layout::signs(word, rotated, G) & 0x80808080u);
  });
  return out;
}

/// e4m3 q - z through fp16: with the route's magic the fp16 add gives v * 2^-8 exactly (v = q - z,
/// |v| <= 16), a normal fp16 (or 0) whose exponent field is v's e4m3 exponent field (at most 11, so
/// bit 14 is 0) and whose top three mantissa bits are v's e4m3 mantissa (v has at most four
/// significant bits). The e4m3 byte is then bit 15 and bits 13..7: h + (h & 0x3FFF) moves bits 13..0
/// up by one without touching bit 15 (no carry leaves the lane), and a PRMT gathers the top bytes
/// of two registers.
template <order O, class Arithmetic>
[[nodiscard]] DQ4_HD fragment<format::e4m3, 8> fp8_difference(std::uint32_t word, const zero_point<format::e4m3, O>& zero,
                                                             const Arithmetic& arithmetic) noexcept {
  std::uint32_t packed[4] = {};
  unrolled<4>([&](auto r) {
    constexpr int R = decltype(r)::value;
    constexpr register_plan p = e4m3_route_plan(R);
    const std::uint32_t h = arithmetic.add(and_xor(source_word(word, p), p.mask, p.lop3_constant), zero.regs[R]);
    packed[R] = h + (h & 0x3FFF3FFFu);
  });
  fragment<format::e4m3, 8> out{};
  out.regs[0] = prmt(packed[0], packed[1], 0x7531u);
  out.regs[1] = prmt(packed[2], packed[3], 0x7531u);
  return out;
}

/// The e4m3 bits of m * 2^x (m = 1 or 3), rounded to nearest even, saturating at 448: normal from
/// 2^-6 (exponent field x + 7, or x + 8 with mantissa 4 for 1.5 * 2^(x+1)), subnormal below (a
/// multiple of 2^-9: m * 2^(x+9), halves rounded to even).
[[nodiscard]] DQ4_HD constexpr std::uint32_t e4m3_of_power(unsigned m, int x) noexcept {
  if (m == 1) {
    if (x > 8) return 0x7Eu;
    if (x >= -6) return static_cast<std::uint32_t>(x + 7) << 3;
    if (x >= -9) return 1u << (x + 9);
    return 0;  // 2^-10 is half of the smallest subnormal: a tie, to the even 0
  }
  if (x >= 8) return 0x7Eu;  // 3 * 2^8 = 768 > 448
  if (x >= -7) return (static_cast<std::uint32_t>(x + 8) << 3) | 4u;
  if (x == -8) return 6;
  if (x == -9) return 3;
  if (x == -10) return 2;  // 1.5 * 2^-9: a tie, to the even 2
  if (x == -11) return 1;  // 0.75 * 2^-9
  return 0;
}

/// The scaled e2m1 magnitudes for a block scale 2^k: entry i = e4m3 of twice_e2m1(i) * 2^(k-1).
/// Where every entry stays normal and finite (k in -5..6, so 0.5 * 2^k >= 2^-6 and 6 * 2^k <= 384)
/// scaling is adding k to the exponent field of the nonzero entries: one IADD per table register
/// (no byte leaves 0..0x7F). Elsewhere each entry is rounded by e4m3_of_power.
[[nodiscard]] DQ4_HD constexpr byte_table e4m3_scaled_magnitudes(e8m0 s) noexcept {
  if (s.bits == 0xFFu) return byte_table{0x7F7F7F7Fu, 0x7F7F7F7Fu};  // NaN scale: NaN everywhere
  const int k = static_cast<int>(s.bits) - 127;
  constexpr byte_table unscaled = e2m1_magnitudes<format::e4m3>();
  if (k >= -5 && k <= 6) {
    const auto step = static_cast<std::uint32_t>(8 * k);  // k in the exponent field, mod 2^32
    return byte_table{unscaled.lo + step * 0x01010100u, unscaled.hi + step * 0x01010101u};
  }
  std::uint32_t regs[2] = {0, 0};
  for (unsigned i = 1; i < 8; ++i) {
    const unsigned twice = reference::twice_e2m1(i);  // 1, 2, 3, 4, 6, 8, 12 = m * 2^p, m in {1, 3}
    const unsigned m = twice % 3 == 0 ? 3u : 1u;
    int p = 0;
    while ((m << p) != twice) ++p;
    regs[i / 4] |= e4m3_of_power(m, p + k - 1) << (8 * (i % 4));
  }
  return byte_table{regs[0], regs[1]};
}

/// The e2m1 magnitudes times a block scale 2^k in 16-bit format F (fp16, bf16): entry i =
/// round_F(twice_e2m1(i) * 2^(k-1)). Where every nonzero entry stays normal and finite (fp16: k in
/// -13..13, so 0.5 * 2^k >= 2^-14 and 6 * 2^k <= 49152; bf16: k in -125..125) scaling adds k to the
/// exponent field of entries 1..7, which leaves every 16-bit lane (fp16: every byte) in range, so no
/// carry or borrow crosses lanes: fp16's low bytes stay 0 and its high bytes (4 per exponent step) take
/// one IADD per table register; bf16's exponent field straddles its bytes, so its entries take the add
/// in pairs (4 IADD) and are split into planes (4 PRMT). Elsewhere (subnormals, overflow to infinity)
/// each entry is rounded by the reference; a NaN scale makes every entry NaN.
template <format F>
[[nodiscard]] DQ4_HD plane_tables scaled_e2m1_planes(e8m0 s) noexcept {
  static_assert(F == format::fp16 || F == format::bf16);
  std::uint32_t entries[8] = {};
  if (s.bits == 0xFFu) {
    for (std::uint32_t& e : entries) e = reference::block_nan(F);
    return planes_of(entries);
  }
  const int k = static_cast<int>(s.bits) - 127;
  constexpr int reach = F == format::fp16 ? 13 : 125;
  if (k >= -reach && k <= reach) {
    constexpr plane_tables unscaled = e2m1_planes<F>();
    if constexpr (F == format::fp16) {
      const auto step = static_cast<std::uint32_t>(4 * k);  // mod 2^32, like the e4m3 tables
      return plane_tables{unscaled.low, byte_table{unscaled.high.lo + step * 0x01010100u, unscaled.high.hi + step * 0x01010101u}};
    } else {
      const auto step = static_cast<std::uint32_t>(k) << mantissa_bits(F);
      std::uint32_t pairs[4] = {};
      for (unsigned p = 0; p < 4; ++p) {
        const std::uint32_t low = reference::round_to(F, reference::number_of_nibble<encoding::e2m1>(2 * p));
        const std::uint32_t high = reference::round_to(F, reference::number_of_nibble<encoding::e2m1>(2 * p + 1));
        pairs[p] = (low | high << 16) + step * (p == 0 ? 0x00010000u : 0x00010001u);  // entry 0 (zero) stays 0
      }
      return plane_tables{byte_table{prmt(pairs[0], pairs[1], 0x6420u), prmt(pairs[2], pairs[3], 0x6420u)},
                          byte_table{prmt(pairs[0], pairs[1], 0x7531u), prmt(pairs[2], pairs[3], 0x7531u)}};
    }
  }
  for (unsigned i = 0; i < 8; ++i) {
    reference::exact_number x = reference::number_of_nibble<encoding::e2m1>(i);
    x.exponent += k;
    entries[i] = reference::round_to(F, x);
  }
  return planes_of(entries);
}

/// The nibble that encodes value v (already range-checked) under an integer encoding E.
template <encoding E>
[[nodiscard]] constexpr std::uint32_t encode_nibble(int v) noexcept {
  return static_cast<std::uint32_t>(E == encoding::u4b8 ? v + 8 : v) & 0xFu;
}

// Names for messages: the enumerator's, or "type(number)" for a value that names none.
[[nodiscard]] inline std::string encoding_name(encoding e) {
  switch (e) {
    case encoding::u4: return "u4";
    case encoding::u4b8: return "u4b8";
    case encoding::s4: return "s4";
    case encoding::e2m1: return "e2m1";
  }
  return "encoding(" + std::to_string(static_cast<int>(e)) + ")";
}
[[nodiscard]] inline std::string format_name(format f) {
  switch (f) {
    case format::fp16: return "fp16";
    case format::bf16: return "bf16";
    case format::fp32: return "fp32";
    case format::int8: return "int8";
    case format::e4m3: return "e4m3";
    case format::e5m2: return "e5m2";
  }
  return "format(" + std::to_string(static_cast<int>(f)) + ")";
}
[[nodiscard]] inline std::string order_name(order o) {
  switch (o) {
    case order::interleaved: return "interleaved";
    case order::sequential: return "sequential";
  }
  return "order(" + std::to_string(static_cast<int>(o)) + ")";
}
[[nodiscard]] inline std::string zeros_name(zeros z) {
  switch (z) {
    case zeros::awq: return "awq";
    case zeros::gptq_v2: return "gptq_v2";
    case zeros::gptq_v1: return "gptq_v1";
    case zeros::gptq_v1_wrap: return "gptq_v1_wrap";
    case zeros::gptq_v1_no_wrap: return "gptq_v1_no_wrap";
  }
  return "zeros(" + std::to_string(static_cast<int>(z)) + ")";
}

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/// Eight values of format F from one packed word: element j = the value of nibble
/// source_nibble(O, j) under encoding E, exactly. Bit-exact to reference::dequantize<F, E, O>.
/// On the device: the magic-number path where F has arithmetic, e2m1's table path everywhere, and
/// bf16 on sm_75 through the fp32 path (exact: the values are small integers). Host code runs the
/// reference. Instruction counts per 8 values: see the README's API table (checked in CI).
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> dequantize(std::uint32_t word) noexcept {
  static_assert(detail::valid_path<F, E, O>::value && detail::valid_output<F, E>::value);
#if defined(__CUDA_ARCH__)
  if constexpr (F == format::int8) {
    return detail::int8_dequantize<E, O>(word);
  } else if constexpr (value_bits(F) == 8 && E == encoding::e2m1) {
    return detail::fp8_from_e2m1<F>(word, detail::e2m1_magnitudes<F>());
  } else if constexpr (value_bits(F) == 8) {
    return detail::fp8_from_integers<F, E>(word);
  } else if constexpr (E == encoding::e2m1) {
    return detail::e2m1_dequantize<F, O>(word);  // integer instructions only
  } else if constexpr (detail::has_arithmetic<F>()) {
    return detail::magic_dequantize<F, E, O>(word, detail::device_arithmetic<F>{});
  } else if constexpr (F == format::bf16) {
    const detail::device_arithmetic<format::fp32> fp32{};
    return detail::bf16_from_small_fp32(detail::magic_dequantize<format::fp32, E, O>(word, fp32));
  }
#endif  // defined(__CUDA_ARCH__)
  return reference::dequantize<F, E, O>(word);
}

/// Eight values times a scale per element (`scales` in the output layout; splat<F>(s) for one
/// block scale), each rounded once: bit-exact to reference::dequantize<F, E, O>(word, scales).
/// u4b8 with scales is GPTQ's symmetric format (z = 8). Where F has no device arithmetic (bf16 on
/// sm_75) the reference runs.
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> dequantize(std::uint32_t word, const fragment<F, 8>& scales) noexcept {
  static_assert(detail::valid_path<F, E, O>::value && detail::valid_output<F, E>::value &&
                detail::valid_scaled_output<F>::value);
#if defined(__CUDA_ARCH__)
  if constexpr (detail::has_arithmetic<F>()) {
    const detail::device_arithmetic<F> arithmetic{};
    if constexpr (E == encoding::e2m1) {
      return detail::e2m1_dequantize<F, O>(word, scales, arithmetic);
    } else {
      return detail::magic_dequantize<F, E, O>(word, scales, arithmetic);
    }
  }
#endif  // defined(__CUDA_ARCH__)
  return reference::dequantize<F, E, O>(word, scales);
}

/// The per-group registers for zero-point dequantization from a word of eight stored zero points
/// (u4, packed in the same order as the weights) read under convention Z. Call once per group,
/// outside the K loop. The same integer instructions everywhere (host, every device target), so the
/// result may be prepared on the host and copied to the device. Cost per zeros word: one LOP3 per
/// register, plus 1 (gptq_v1), 3 (gptq_v1_wrap) or one per register (gptq_v1_no_wrap).
template <format F, zeros Z, order O>
[[nodiscard]] DQ4_HD zero_point<F, O> prepare_zeros(std::uint32_t zeros_word) noexcept {
  static_assert(detail::valid_zero_path<F, Z, O>::value);
  static_assert(F != format::e5m2, "dq4: q - z (-16..15) is not always an e5m2 value (9 needs three mantissa bits): "
                                   "use e4m3, int8 or a 16-bit format");
  if constexpr (F == format::int8) {
    return detail::int8_prepare_zeros<Z, O>(zeros_word);
  } else {
    return detail::magic_prepare_zeros<F, Z, O>(zeros_word);
  }
}

/// Eight values (q - z) * s from u4 weights, each rounded once: bit-exact to
/// reference::dequantize<F, Z, O>(word, zeros_word, scales) for the zeros word and convention `zero`
/// was prepared from. Where F has no device arithmetic (host code, bf16 on sm_75) the reference's
/// arithmetic runs on the zeros read back from `zero`.
template <format F, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> dequantize(std::uint32_t word, const zero_point<F, O>& zero,
                                               const fragment<F, 8>& scales) noexcept {
  static_assert(detail::valid_path<F, encoding::u4, O>::value && detail::valid_scaled_output<F>::value);
#if defined(__CUDA_ARCH__)
  if constexpr (detail::has_arithmetic<F>()) {
    return detail::magic_dequantize<F, O>(word, zero, scales, detail::device_arithmetic<F>{});
  }
#endif  // defined(__CUDA_ARCH__)
  return detail::dequantize_prepared<F, O>(word, zero, scales);
}

/// Eight values q - z from u4 weights, exactly and unscaled, for kernels that apply the group scale
/// after the MMA: bit-exact to reference::dequantize<F, Z, O>(word, zeros_word) for the zeros word and
/// convention `zero` was prepared from. Every format but e5m2 (q - z is in -16..15). fp16, bf16,
/// fp32: the unscaled path's instructions (the add subtracts 2^(M-o) + z instead of 2^(M-o)); int8:
/// one IADD and one LOP3 per register after the nibbles; e4m3: the fp16 add, then the e4m3 bits
/// moved into bytes. Host code runs the reference's arithmetic on the zeros read back from `zero`.
template <format F, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> dequantize(std::uint32_t word, const zero_point<F, O>& zero) noexcept {
  static_assert(detail::valid_path<F, encoding::u4, O>::value);
#if defined(__CUDA_ARCH__)
  if constexpr (F == format::int8) {
    return detail::int8_difference<O>(word, zero);
  } else if constexpr (F == format::e4m3) {
    return detail::fp8_difference<O>(word, zero, detail::device_arithmetic<format::fp16>{});
  } else if constexpr (detail::has_arithmetic<F>()) {
    return detail::magic_dequantize<F, O>(word, zero, detail::device_arithmetic<F>{});
  } else if constexpr (F == format::bf16) {
    return detail::magic_dequantize<F, O>(word, zero, detail::exact_bf16_through_fp32{});
  }
#endif  // defined(__CUDA_ARCH__)
  return detail::dequantize_prepared<F, O>(word, zero);
}

namespace detail {
/// Registers of a block_scale<F>: e4m3's one byte table, or the two planes of 16-bit entries (fp32
/// reads bf16 tables and widens the results).
[[nodiscard]] DQ4_HD constexpr int block_scale_registers(format f) noexcept { return value_bits(f) == 8 ? 2 : 4; }
}  // namespace detail

/// The per-block registers of an e8m0 block scale for output format F (fp16, bf16, fp32, e4m3): the
/// eight e2m1 magnitudes times the scale, each rounded once, as the tables dequantize looks up (e4m3:
/// one 8-byte table; the others: the low bytes' table, then the high bytes', of fp16 or bf16 entries,
/// bf16 for fp32), and the scale itself (which the host's reference path reads). Made by
/// prepare_block_scale once per block, outside the inner loop; the same bits on the host and the
/// device, so it may be prepared on the host and copied.
template <format F>
struct block_scale {
  std::uint32_t table[detail::block_scale_registers(F)];
  e8m0 scale;
};

/// The block_scale of an e8m0 scale s for e2m1 to F, integer instructions only. Where every scaled
/// value stays normal (e4m3: s.bits in 122..133; fp16: 114..140; bf16 and fp32: 2..252) 2 (e4m3,
/// fp16) or 8 (bf16, fp32) instructions; elsewhere (subnormals, saturation or overflow, NaN) each
/// table entry is rounded on its own, about 60 instructions or more.
template <format F>
[[nodiscard]] DQ4_HD block_scale<F> prepare_block_scale(e8m0 s) noexcept {
  static_assert(detail::valid_block_scale<F, encoding::e2m1>::value);
  if constexpr (F == format::e4m3) {
    const detail::byte_table t = detail::e4m3_scaled_magnitudes(s);
    return block_scale<F>{{t.lo, t.hi}, s};
  } else {
    const detail::plane_tables t = detail::scaled_e2m1_planes<detail::e2m1_table_format(F)>(s);
    return block_scale<F>{{t.low.lo, t.low.hi, t.high.lo, t.high.hi}, s};
  }
}

/// Eight e2m1 values times the block scale (MXFP4), each rounded once to F: bit-exact to
/// reference::dequantize<F, E, O>(word, scale.scale). Table look-ups only, no multiply (the scale
/// lives in the tables): fp16 and bf16 the unscaled bf16 path's instructions, fp32 eight more (the
/// bf16 results widened), e4m3 the unscaled e4m3 path's. fp16, bf16 and fp32 give subnormals and
/// infinities where the product needs them; e4m3 saturates at +-448; a NaN scale (0xFF) gives NaN
/// everywhere.
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> dequantize(std::uint32_t word, const block_scale<F>& scale) noexcept {
  static_assert(detail::valid_path<F, E, O>::value && detail::valid_block_scale<F, E>::value);
#if defined(__CUDA_ARCH__)
  if constexpr (F == format::e4m3) {
    return detail::fp8_from_e2m1<F>(word, detail::byte_table{scale.table[0], scale.table[1]});
  } else {
    constexpr format T = detail::e2m1_table_format(F);
    const detail::plane_tables t{{scale.table[0], scale.table[1]}, {scale.table[2], scale.table[3]}};
    const fragment<T, 8> values = detail::sign_magnitude_lookup<T, O, false>(word, t);
    if constexpr (F == format::fp32) {
      return detail::widened_to_fp32(values);
    } else {
      return values;
    }
  }
#else   // !defined(__CUDA_ARCH__)
  return reference::dequantize<F, E, O>(word, scale.scale);
#endif  // defined(__CUDA_ARCH__)
}

namespace detail {

/// The bits of a float (memcpy: a bit_cast in C++17, on the host and the device).
[[nodiscard]] DQ4_HD std::uint32_t float_bits(float f) noexcept {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

/// Whether device code being compiled converts fp32 to F by one instruction (cvt.rn.f16.f32 always,
/// cvt.rn.bf16.f32 from sm_80). Host code has none: it runs the reference.
template <format F>
[[nodiscard]] DQ4_HD constexpr bool has_conversion() noexcept {
#if defined(__CUDA_ARCH__)
  return F == format::fp32 || F == format::fp16 || (F == format::bf16 && __CUDA_ARCH__ >= 800);
#else   // !defined(__CUDA_ARCH__)
  return false;
#endif  // defined(__CUDA_ARCH__)
}

#if defined(__CUDA_ARCH__)
/// x rounded to nearest even in F (fp16, bf16, fp32): one cvt (no .ftz: subnormals are kept).
template <format F>
__device__ std::uint32_t rounded_from_fp32(std::uint32_t x) noexcept {
  if constexpr (F == format::fp32) {
    return x;
  } else {
    unsigned short out;
    if constexpr (F == format::fp16) {
      asm("cvt.rn.f16.f32 %0, %1;" : "=h"(out) : "r"(x));
    } else {
      asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(out) : "r"(x));
    }
    return out;
  }
}

/// round_F(s * g) for an e4m3 s and an fp32 g on the device. The product has at most 4 + 24
/// significant bits, so the fp64 multiply is exact; rounding it toward zero to fp32 and setting the
/// lowest bit where that was inexact (round to odd) keeps every bit the final rounding needs, since
/// fp32 has at least two more bits than fp16 or bf16 at every magnitude (also at their subnormals),
/// so the one rounding to nearest that follows gives round_F of the exact product. An overflow
/// truncates to FLT_MAX (odd, and above every fp16 / bf16 rounding boundary: infinity follows).
template <format F>
__device__ std::uint32_t nvfp4_scale_on_device(std::uint8_t s_bits, float g) noexcept {
  if ((s_bits & 0x7Fu) == 0x7Fu) return reference::canonical_nan(F);  // e4m3 NaN
  // The e4m3 fields in the low exponent and top mantissa bits of a double: the double's value is s's
  // times 2^-1016 (subnormals included, as for e2m1 in fp16), so one exact multiply rescales it.
  const auto high = static_cast<std::uint32_t>(s_bits & 0x80u) << 24 | static_cast<std::uint32_t>(s_bits & 0x7Fu) << 17;
  double s, exact;
  asm("mov.b64 %0, {%1, %2};" : "=d"(s) : "r"(0u), "r"(high));
  asm("mul.rn.f64 %0, %1, 0d7F70000000000000;" : "=d"(s) : "d"(s));  // 2^1016
  asm("{\n .reg .f64 g;\n cvt.f64.f32 g, %2;\n mul.rn.f64 %0, %1, g;\n}" : "=d"(exact) : "d"(s), "f"(g));
  if constexpr (F == format::fp32) {
    std::uint32_t out;
    asm("cvt.rn.f32.f64 %0, %1;" : "=r"(out) : "d"(exact));
    // A NaN g keeps its payload through the fp64 route; the reference's NaN is the canonical one.
    return (out & 0x7FFFFFFFu) > 0x7F800000u ? reference::canonical_nan(F) : out;
  } else {
    std::uint32_t truncated;
    double back;
    asm("cvt.rz.f32.f64 %0, %1;" : "=r"(truncated) : "d"(exact));
    asm("{\n .reg .f32 t;\n mov.b32 t, %1;\n cvt.f64.f32 %0, t;\n}" : "=d"(back) : "r"(truncated));
    const bool finite = (truncated & 0x7F800000u) != 0x7F800000u;
    const std::uint32_t odd = finite && back != exact ? truncated | 1u : truncated;
    return rounded_from_fp32<F>(odd);
  }
}
#endif  // defined(__CUDA_ARCH__)

}  // namespace detail

/// The per-block scale of NVFP4 for dequantize<F, e2m1, O>(word, scales): s_F = round_F(s * g), with s
/// the block's e4m3 scale (bits; one per 16 e2m1 values) and g the tensor's fp32 scale (the
/// multiplier: see checkpoint_fp4.hpp for how each exporter stores it), rounded once, as eight copies.
/// The dequantized value is then round_F(q * s_F): two roundings, as serving kernels compute it
/// (the README says how often that differs from round_F(q * s * g)). F: fp16, bf16, fp32. A NaN
/// scale byte (0x7F, 0xFF) gives F's canonical NaN. Host code (and bf16 before sm_80) runs the
/// reference's integer arithmetic; the device takes one fp64 multiply and a round-to-odd step.
template <format F>
[[nodiscard]] DQ4_HD fragment<F, 8> prepare_nvfp4_scale(std::uint8_t scale_bits, float global_scale) noexcept {
  static_assert(F == format::fp16 || F == format::bf16 || F == format::fp32,
                "dq4: NVFP4 block scales give fp16, bf16 or fp32 outputs");
#if defined(__CUDA_ARCH__)
  if constexpr (detail::has_conversion<F>()) return splat<F>(detail::nvfp4_scale_on_device<F>(scale_bits, global_scale));
#endif  // defined(__CUDA_ARCH__)
  return splat<F>(reference::nvfp4_scale(F, scale_bits, detail::float_bits(global_scale)));
}

/// The codebook of sixteen floats, each rounded once to F (to nearest even; integer instructions,
/// the same bits everywhere). codebook_of<F>(nf4_values().value) is bitsandbytes' NF4 table in F.
template <format F>
[[nodiscard]] DQ4_HD codebook<F> codebook_of(const float (&values)[16]) noexcept {
  std::uint32_t bits[16] = {};
  for (int n = 0; n < 16; ++n) bits[n] = reference::round_to(F, reference::number_of(format::fp32, detail::float_bits(values[n])));
  return make_codebook<F>(bits);
}

/// The codebook of one bitsandbytes block: entry n = round_F(round_fp32(table[n] * absmax)), the
/// fp32 multiply and the conversion to the output dtype that bitsandbytes' dequantize_4bit performs
/// (two roundings), so that dequantize(word, book) reproduces bitsandbytes' bits. Made once per block
/// (16 FMUL and 16 conversions on the device; host code and bf16 before sm_80 run the reference).
template <format F>
[[nodiscard]] DQ4_HD codebook<F> bitsandbytes_codebook(const float (&table)[16], float absmax) noexcept {
  std::uint32_t bits[16] = {};
  for (int n = 0; n < 16; ++n) {
#if defined(__CUDA_ARCH__)
    if constexpr (detail::has_conversion<F>()) {
      std::uint32_t product;
      asm("mul.rn.f32 %0, %1, %2;" : "=r"(product) : "f"(table[n]), "f"(absmax));
      bits[n] = detail::rounded_from_fp32<F>(product);
      continue;
    }
#endif  // defined(__CUDA_ARCH__)
    bits[n] = reference::bitsandbytes_value(F, detail::float_bits(table[n]), detail::float_bits(absmax));
  }
  return make_codebook<F>(bits);
}

/// Eight values of a codebook, entry n for nibble n (element j from nibble source_nibble(O, j)): the
/// table's bits exactly, bit-exact to reference::dequantize<F, O>(word, book). A register look-up
/// (PRMT), no shared memory; host code runs the reference.
template <format F, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> dequantize(std::uint32_t word, const codebook<F>& book) noexcept {
  static_assert(detail::valid_codebook<F>::value && detail::is_valid(O), "dq4: the order argument names no dq4::order enumerator");
#if defined(__CUDA_ARCH__)
  return detail::sixteen_entry_lookup<F, O>(word, book.low, book.high);
#else   // !defined(__CUDA_ARCH__)
  return reference::dequantize<F, O>(word, book);
#endif  // defined(__CUDA_ARCH__)
}

/// Eight codebook values times a scale per element (e.g. splat<F>(absmax) of the block), each rounded
/// once: bit-exact to reference::dequantize<F, O>(word, book, scales). Where F has no device
/// arithmetic (bf16 on sm_75) the reference runs.
template <format F, order O>
[[nodiscard]] DQ4_HD fragment<F, 8> dequantize(std::uint32_t word, const codebook<F>& book,
                                               const fragment<F, 8>& scales) noexcept {
  static_assert(detail::valid_codebook<F>::value && detail::is_valid(O), "dq4: the order argument names no dq4::order enumerator");
#if defined(__CUDA_ARCH__)
  if constexpr (detail::has_arithmetic<F>()) {
    const detail::device_arithmetic<F> arithmetic{};
    fragment<F, 8> out = detail::sixteen_entry_lookup<F, O>(word, book.low, book.high);
    for (int r = 0; r < 4; ++r) out.regs[r] = arithmetic.mul(out.regs[r], scales.regs[r]);
    return out;
  }
#endif  // defined(__CUDA_ARCH__)
  return reference::dequantize<F, O>(word, book, scales);
}

/// 32 values from four packed words (the width of one 128-bit load): elements 8i..8i+7 come from
/// words[i], each as dequantize<F, E, O>(words[i]).
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD fragment<F, 32> dequantize(const std::uint32_t (&words)[4]) noexcept {
  fragment<F, 32> out{};
  constexpr int per_word = fragment<F, 8>::registers;
  for (int i = 0; i < 4; ++i) {
    const fragment<F, 8> part = dequantize<F, E, O>(words[i]);
    for (int r = 0; r < per_word; ++r) out.regs[per_word * i + r] = part.regs[r];
  }
  return out;
}

/// Shorthands for the unscaled paths: to_fp16 / to_bf16 / to_fp32<E, O>(word or 4 words).
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp16x8 to_fp16(std::uint32_t word) noexcept { return dequantize<format::fp16, E, O>(word); }
template <encoding E, order O>
[[nodiscard]] DQ4_HD bf16x8 to_bf16(std::uint32_t word) noexcept { return dequantize<format::bf16, E, O>(word); }
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp32x8 to_fp32(std::uint32_t word) noexcept { return dequantize<format::fp32, E, O>(word); }
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp16x32 to_fp16(const std::uint32_t (&words)[4]) noexcept { return dequantize<format::fp16, E, O>(words); }
template <encoding E, order O>
[[nodiscard]] DQ4_HD bf16x32 to_bf16(const std::uint32_t (&words)[4]) noexcept { return dequantize<format::bf16, E, O>(words); }
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp32x32 to_fp32(const std::uint32_t (&words)[4]) noexcept { return dequantize<format::fp32, E, O>(words); }

#if defined(__CUDACC__)
/// 32 values from one uint4 (x, y, z, w give elements 0-7, 8-15, 16-23, 24-31).
template <format F, encoding E, order O>
[[nodiscard]] DQ4_HD fragment<F, 32> dequantize(uint4 v) noexcept {
  const std::uint32_t words[4] = {v.x, v.y, v.z, v.w};
  return dequantize<F, E, O>(words);
}
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp16x32 to_fp16(uint4 v) noexcept { return dequantize<format::fp16, E, O>(v); }
template <encoding E, order O>
[[nodiscard]] DQ4_HD bf16x32 to_bf16(uint4 v) noexcept { return dequantize<format::bf16, E, O>(v); }
template <encoding E, order O>
[[nodiscard]] DQ4_HD fp32x32 to_fp32(uint4 v) noexcept { return dequantize<format::fp32, E, O>(v); }
#endif  // defined(__CUDACC__)

/// The same eight values re-packed from order From to order To (any encoding: nibbles move whole).
template <order From, order To>
[[nodiscard]] DQ4_HD constexpr std::uint32_t reorder(std::uint32_t word) noexcept {
  static_assert(detail::is_valid(From) && detail::is_valid(To), "dq4: an order argument names no dq4::order enumerator");
  std::uint32_t out = 0;
  for (int j = 0; j < 8; ++j) {
    out |= reference::nibble(word, source_nibble(From, j)) << (4 * source_nibble(To, j));
  }
  return out;
}

/// The eight values a word holds, in output order (the inverse of pack<E, O>; integer encodings).
template <encoding E, order O>
[[nodiscard]] constexpr std::array<int, 8> unpack(std::uint32_t word) noexcept {
  static_assert(detail::valid_path<format::fp32, E, O>::value);
  static_assert(E != encoding::e2m1, "dq4::unpack returns integers; e2m1 has reference::element");
  std::array<int, 8> values{};
  for (int j = 0; j < 8; ++j) values[static_cast<std::size_t>(j)] = reference::value<E, O>(word, j);
  return values;
}

// ------------------------------------------------------------------------------------------------
// Host packers (no CUDA needed). They write exactly the layout that dequantize<F, E, O> reads, and
// report bad input by throwing, so they need exceptions; the rest of this header does not.
// ------------------------------------------------------------------------------------------------

/// A value that encoding E cannot represent was given to a packer.
class pack_error : public std::out_of_range {
 public:
  pack_error(encoding e, std::size_t index, long long value)
      : std::out_of_range("dq4::pack<" + detail::encoding_name(e) + ">: value " + std::to_string(value) + " at index " +
                          std::to_string(index) + " is outside [" + std::to_string(detail::lowest_integer(e)) + ", " +
                          std::to_string(detail::highest_integer(e)) + "]"),
        index_(index),
        value_(value) {}
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] long long value() const noexcept { return value_; }

 private:
  std::size_t index_;
  long long value_;
};

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)

namespace detail {

/// Index of the first of `count` values outside E's range, or `count` when all are in range.
template <encoding E>
[[nodiscard]] constexpr std::size_t first_out_of_range(const int* values, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    if (values[i] < integer_range<E>::min || values[i] > integer_range<E>::max) return i;
  }
  return count;
}

/// The word of eight values already known to be in range.
template <encoding E, order O>
[[nodiscard]] constexpr std::uint32_t pack_checked(const int* values) noexcept {
  std::uint32_t word = 0;
  for (int j = 0; j < 8; ++j) word |= encode_nibble<E>(values[j]) << (4 * source_nibble(O, j));
  return word;
}

}  // namespace detail

/// One word holding eight values in the layout dequantize<F, E, O> reads back as values[0..7].
/// Throws pack_error for a value outside [min_value<E>, max_value<E>] (a compile error in a
/// constant expression).
template <encoding E, order O>
[[nodiscard]] constexpr std::uint32_t pack(const std::array<int, 8>& values) {
  static_assert(detail::valid_path<format::fp32, E, O>::value);
  static_assert(E != encoding::e2m1, "dq4::pack takes integers; pack e2m1 codes with reorder<From, To>");
  const std::size_t bad = detail::first_out_of_range<E>(values.data(), 8);
  if (bad != 8) throw pack_error(E, bad, values[bad]);
  return detail::pack_checked<E, O>(values.data());
}

/// The same from a braced list, which must hold exactly eight values: pack<E, O>({v0, ..., v7}).
template <encoding E, order O, std::size_t N>
[[nodiscard]] constexpr std::uint32_t pack(const int (&values)[N]) {
  static_assert(N == 8, "dq4::pack takes exactly eight values (one word): a shorter list would be padded with zeros");
  std::array<int, 8> copy{};
  for (std::size_t j = 0; j < 8; ++j) copy[j] = values[j];
  return pack<E, O>(copy);
}

/// Packs count values (a multiple of 8) into count / 8 words. Throws std::invalid_argument for a
/// null pointer or a count that is not a multiple of 8, and pack_error (with the value's index in
/// the whole buffer) for a value out of range; every value is checked before the first word is
/// written, so on an error `words` is untouched.
template <encoding E, order O>
void pack(const int* values, std::size_t count, std::uint32_t* words) {
  static_assert(detail::valid_path<format::fp32, E, O>::value);
  static_assert(E != encoding::e2m1, "dq4::pack takes integers; pack e2m1 codes with reorder<From, To>");
  if (count % 8 != 0) {
    throw std::invalid_argument("dq4::pack: count " + std::to_string(count) +
                                " is not a multiple of 8 (eight values fill one word)");
  }
  if (count != 0 && values == nullptr) throw std::invalid_argument("dq4::pack: null values pointer");
  if (count != 0 && words == nullptr) throw std::invalid_argument("dq4::pack: null words pointer");
  const std::size_t bad = detail::first_out_of_range<E>(values, count);
  if (bad != count) throw pack_error(E, bad, values[bad]);
  for (std::size_t w = 0; w < count / 8; ++w) words[w] = detail::pack_checked<E, O>(values + 8 * w);
}

/// Re-packs count words from order From to order To; in and out may be the same buffer.
/// Throws std::invalid_argument for a null pointer.
template <order From, order To>
void reorder(const std::uint32_t* in, std::size_t count, std::uint32_t* out) {
  if (count != 0 && in == nullptr) throw std::invalid_argument("dq4::reorder: null input pointer");
  if (count != 0 && out == nullptr) throw std::invalid_argument("dq4::reorder: null output pointer");
  for (std::size_t i = 0; i < count; ++i) out[i] = reorder<From, To>(in[i]);
}

#else  // !(defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND))

// Without exceptions the packers cannot report bad input: using one is a compile error that says so.
template <encoding E, order O, class... Arguments>
void pack(Arguments&&...) {
  static_assert(sizeof...(Arguments) == 0 && sizeof...(Arguments) != 0,
                "dq4::pack reports bad input by throwing: compile with exceptions enabled (no -fno-exceptions)");
}
template <order From, order To, class... Arguments>
void reorder(const std::uint32_t*, Arguments&&...) {
  static_assert(sizeof...(Arguments) == 0 && sizeof...(Arguments) != 0,
                "dq4::reorder of a buffer reports bad input by throwing: compile with exceptions enabled "
                "(no -fno-exceptions), or reorder word by word");
}

#endif  // defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)

}  // namespace dq4
