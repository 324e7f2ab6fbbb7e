// SPDX-License-Identifier: Apache-2.0
// The A-fragment recipe of the tensor-core GEMV (examples/awq_gemv/gemv_kernel.cuh), in one place for
// the kernel and for its host test (tests/test_gemv_recipe.cpp): how the AWQ words of two rows, a
// zeros word and the scales of eight columns become dq4::dequantize operands whose results are the A
// registers of mma.sync.m16n8k16 -- scaled ((q - z) * s, the GEMV that multiplies before the MMA)
// or unscaled (q - z, the GEMV that applies the group's scales to the MMA's fp32 sums).
//
// The A fragment wants, in each register, two consecutive k of one column; a packed word holds one
// k of eight columns. PRMT(a, b, 0x5410) puts the low halves of words a (row k) and b (row k + 1)
// side by side. In the interleaved order nibbles p and p + 4 of a word make one output register, so
// this merged word dequantizes to registers {W[k][c], W[k+1][c]} for the columns c at nibbles 0..3
// of a (the even columns 0, 2, 4, 6); PRMT(a, b, 0x7632) gives the odd columns. The zeros word is
// merged with itself the same way (both halves of a register belong to one column) and each
// column's scale fills both halves of its register, so dq4::dequantize still computes (q - z) * s
// with one rounding; unscaled, dq4::dequantize(word, zero) gives q - z exactly. Host and device code;
// PRMT is dq4's own (prmt.b32 on the device).
#pragma once

#include <dq4/dq4.cuh>

#include <cstdint>

namespace awq_gemv {

/// Which columns of a pair of rows a merged word holds: Half 0 the even ones, Half 1 the odd ones.
template <int Half>
inline constexpr unsigned merge_selector = Half == 0 ? 0x5410u : 0x7632u;

/// The word whose interleaved registers are {W[k][c], W[k+1][c]} for the columns of Half.
template <int Half>
DQ4_HD std::uint32_t merged_rows(std::uint32_t row_k, std::uint32_t row_k1) noexcept {
  return dq4::detail::prmt(row_k, row_k1, merge_selector<Half>);
}

/// The zero points of the columns of Half, prepared for merged words (AWQ zeros: z = n).
template <dq4::format F, int Half>
DQ4_HD dq4::zero_point<F, dq4::order::interleaved> merged_zeros(std::uint32_t zeros_word) noexcept {
  return dq4::prepare_zeros<F, dq4::zeros::awq, dq4::order::interleaved>(
      dq4::detail::prmt(zeros_word, zeros_word, merge_selector<Half>));
}

/// The scales of the columns of Half, each in both halves of its register (register j of `scales`
/// holds columns 2j, low, and 2j + 1, high).
template <dq4::format F, int Half>
DQ4_HD dq4::fragment<F, 8> doubled_scales(const dq4::fragment<F, 8>& scales) noexcept {
  constexpr unsigned selector = Half == 0 ? 0x1010u : 0x3232u;
  dq4::fragment<F, 8> out{};
  for (int j = 0; j < 4; ++j) out.regs[j] = dq4::detail::prmt(scales.regs[j], scales.regs[j], selector);
  return out;
}

/// Register j = {W[k][c], W[k+1][c]}, c the j-th column of Half, dequantized exactly:
/// 1 PRMT + 13 (fp16) or 15 (bf16) instructions for eight weights.
template <dq4::format F, int Half>
DQ4_HD dq4::fragment<F, 8> column_pairs(std::uint32_t row_k, std::uint32_t row_k1,
                                        const dq4::zero_point<F, dq4::order::interleaved>& zero,
                                        const dq4::fragment<F, 8>& doubled) noexcept {
  return dq4::dequantize<F, dq4::order::interleaved>(merged_rows<Half>(row_k, row_k1), zero, doubled);
}

/// Register j = {q - z of W[k][c], of W[k+1][c]}, c the j-th column of Half, exactly (every value in
/// -15..15 is an fp16 and a bf16 value): 1 PRMT + 9 (fp16) or 11 (bf16) instructions for eight.
template <dq4::format F, int Half>
DQ4_HD dq4::fragment<F, 8> column_pair_differences(std::uint32_t row_k, std::uint32_t row_k1,
                                                   const dq4::zero_point<F, dq4::order::interleaved>& zero) noexcept {
  return dq4::dequantize<F, dq4::order::interleaved>(merged_rows<Half>(row_k, row_k1), zero);
}

}  // namespace awq_gemv
