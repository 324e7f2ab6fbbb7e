// SPDX-License-Identifier: Apache-2.0
// Zero points prepared on the host: prepare_zeros runs the same integer instructions as on the
// device, and dequantize's portable path (host code, bf16 on sm_75) reads the zeros back from the
// prepared registers. Held to the reference for every zero path, every stored nibble in every
// position next to every neighbour, every weight nibble, and scales of every kind.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cstdint>

#include "paths.hpp"
#include "support/cuda_support.cuh"

namespace {

template <class P>
class PreparedOnTheHost : public ::testing::Test {};
TYPED_TEST_SUITE(PreparedOnTheHost, dq4_test::all_zero_paths);

TYPED_TEST(PreparedOnTheHost, GiveTheReferencesBits) {
  constexpr dq4::format F = TypeParam::format;
  constexpr dq4::zeros Z = TypeParam::zeros;
  constexpr dq4::order O = TypeParam::order;
  const dq4::fragment<F, 8> scale_sets[] = {dq4_support::eight_scales<F>(), dq4::splat<F>(F == dq4::format::fp32 ? 0x3F800000u : F == dq4::format::fp16 ? 0x3C00u : 0x3F80u)};
  for (int position = 0; position < 8; ++position) {
    for (std::uint32_t value = 0; value < 16; ++value) {
      for (std::uint32_t neighbour = 0; neighbour < 16; ++neighbour) {
        const std::uint32_t zeros_word = (neighbour * 0x11111111u & ~(0xFu << (4 * position))) | value << (4 * position);
        const dq4::zero_point<F, O> zero = dq4::prepare_zeros<F, Z, O>(zeros_word);
        for (std::uint32_t q = 0; q < 16; ++q) {
          const std::uint32_t word = q * 0x11111111u ^ 0x01234567u * (q & 1);  // uniform and mixed weights
          for (const auto& scales : scale_sets) {
            const auto host = dq4::dequantize<F, O>(word, zero, scales);
            const auto expected = dq4::reference::dequantize<F, Z, O>(word, zeros_word, scales);
            for (int r = 0; r < dq4::fragment<F, 8>::registers; ++r)
              ASSERT_EQ(host.regs[r], expected.regs[r]) << std::hex << "zeros 0x" << zeros_word << " word 0x" << word;
          }
        }
      }
    }
  }
}

}  // namespace
