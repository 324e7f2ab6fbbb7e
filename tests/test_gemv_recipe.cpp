// SPDX-License-Identifier: Apache-2.0
// The A-fragment recipe of the tensor-core GEMV, from the header the kernel itself includes
// (examples/awq_gemv/mma_fragments.hpp): the AWQ words of rows k and k + 1 merged by one byte
// permute, dequantized with the zeros merged the same way and each column's scale doubled up, give
// registers {W[k][c], W[k + 1][c]} -- the even columns from merge 0, the odd ones from merge 1 --
// exactly as the plain per-row reference dequantizes them; unscaled, the same registers hold q - z.
// dequantize itself is bit-exact to the reference on the device (the GPU tests), so this proves the
// kernel's recipe too.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cstdint>

#include "awq_gemv/mma_fragments.hpp"
#include "support/cuda_support.cuh"

namespace {

using dq4::format;
using dq4::order;

template <format F>
void expect_merged_rows_give_column_pairs(std::uint32_t row0, std::uint32_t row1, std::uint32_t zeros) {
  const dq4::fragment<F, 8> scales = dq4_support::eight_scales<F>();
  const auto w0 = dq4::reference::dequantize<F, dq4::zeros::awq, order::interleaved>(row0, zeros, scales);
  const auto w1 = dq4::reference::dequantize<F, dq4::zeros::awq, order::interleaved>(row1, zeros, scales);
  const auto even = awq_gemv::column_pairs<F, 0>(row0, row1, awq_gemv::merged_zeros<F, 0>(zeros),
                                                 awq_gemv::doubled_scales<F, 0>(scales));
  const auto odd = awq_gemv::column_pairs<F, 1>(row0, row1, awq_gemv::merged_zeros<F, 1>(zeros),
                                                awq_gemv::doubled_scales<F, 1>(scales));
  for (int j = 0; j < 4; ++j) {
    ASSERT_EQ(even.bits(2 * j), w0.bits(2 * j)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j;
    ASSERT_EQ(even.bits(2 * j + 1), w1.bits(2 * j)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j;
    ASSERT_EQ(odd.bits(2 * j), w0.bits(2 * j + 1)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j + 1;
    ASSERT_EQ(odd.bits(2 * j + 1), w1.bits(2 * j + 1)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j + 1;
  }
}

// Unscaled (the GEMV that scales after the MMA): the same registers hold q - z of the two rows.
template <format F>
void expect_merged_rows_give_column_pair_differences(std::uint32_t row0, std::uint32_t row1, std::uint32_t zeros) {
  const auto d0 = dq4::reference::dequantize<F, dq4::zeros::awq, order::interleaved>(row0, zeros);
  const auto d1 = dq4::reference::dequantize<F, dq4::zeros::awq, order::interleaved>(row1, zeros);
  const auto even = awq_gemv::column_pair_differences<F, 0>(row0, row1, awq_gemv::merged_zeros<F, 0>(zeros));
  const auto odd = awq_gemv::column_pair_differences<F, 1>(row0, row1, awq_gemv::merged_zeros<F, 1>(zeros));
  for (int j = 0; j < 4; ++j) {
    ASSERT_EQ(even.bits(2 * j), d0.bits(2 * j)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j;
    ASSERT_EQ(even.bits(2 * j + 1), d1.bits(2 * j)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j;
    ASSERT_EQ(odd.bits(2 * j), d0.bits(2 * j + 1)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j + 1;
    ASSERT_EQ(odd.bits(2 * j + 1), d1.bits(2 * j + 1)) << std::hex << row0 << " " << row1 << " " << zeros << " column " << 2 * j + 1;
  }
}

template <format F>
void expect_mma_fragment_recipe() {
  for (std::uint32_t q0 = 0; q0 < 16; ++q0)  // every (q0, q1, z) in every column
    for (std::uint32_t q1 = 0; q1 < 16; ++q1)
      for (std::uint32_t z = 0; z < 16; ++z) {
        expect_merged_rows_give_column_pairs<F>(q0 * 0x11111111u, q1 * 0x11111111u, z * 0x11111111u);
        expect_merged_rows_give_column_pair_differences<F>(q0 * 0x11111111u, q1 * 0x11111111u, z * 0x11111111u);
      }
  std::uint32_t state = 12345;  // and mixed words, so that a column reading another column's nibble shows
  const auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  for (int i = 0; i < 20000; ++i) {
    const std::uint32_t row0 = next(), row1 = next(), zeros = next();
    expect_merged_rows_give_column_pairs<F>(row0, row1, zeros);
    expect_merged_rows_give_column_pair_differences<F>(row0, row1, zeros);
  }
}

TEST(GemvFragmentRecipe, MergedRowsGiveColumnPairsFp16) { expect_mma_fragment_recipe<format::fp16>(); }
TEST(GemvFragmentRecipe, MergedRowsGiveColumnPairsBf16) { expect_mma_fragment_recipe<format::bf16>(); }

}  // namespace
