// SPDX-License-Identifier: Apache-2.0
// The exact software model of the GPU's 16-bit float arithmetic (float_model.hpp), which the host
// proofs of the fast paths run on, against hand-worked cases of IEEE 754 rounding.
#include <gtest/gtest.h>

#include "float_model.hpp"

namespace {

using dq4_test::add_half;
using dq4_test::bf16_layout;
using dq4_test::fp16_layout;
using dq4_test::mul_half;

TEST(FloatModel, AddsRoundToNearestEven) {
  EXPECT_EQ(add_half(fp16_layout, 0x6400 | 5, 0xE400), 0x4500);     // (1024 + 5) - 1024 = 5
  EXPECT_EQ(add_half(fp16_layout, 0x5400 | 0x80, 0xD480), 0x0000);  // 72 - 72 = +0
  EXPECT_EQ(add_half(fp16_layout, 0x6800, 0x3C00), 0x6800);         // 2048 + 1 = 2049: tie to even 2048
  EXPECT_EQ(add_half(fp16_layout, 0x6801, 0x3C00), 0x6802);         // 2050 + 1 = 2051: tie to even 2052
  EXPECT_EQ(add_half(fp16_layout, 0x7BFF, 0x7BFF), 0x7C00);         // 65504 + 65504 overflows
  EXPECT_EQ(add_half(fp16_layout, 0x0001, 0x0001), 0x0002);         // subnormals add exactly
  EXPECT_EQ(add_half(fp16_layout, 0x8000, 0x8000), 0x8000);         // -0 + -0 = -0
  EXPECT_EQ(add_half(fp16_layout, 0x7C00, 0xFC00), 0x7FFF);         // inf - inf = NaN
  EXPECT_EQ(add_half(fp16_layout, 0x7BFF, 0x0001), 0x7BFF);         // a far smaller addend rounds away
  EXPECT_EQ(add_half(bf16_layout, 0x4300 | 5, 0xC300), 0x40A0);      // (128 + 5) - 128 = 5
  EXPECT_EQ(add_half(bf16_layout, 0x4380, 0x3F80), 0x4380);         // 256 + 1 = 257: tie to even 256
}

TEST(FloatModel, MultipliesRoundToNearestEven) {
  EXPECT_EQ(mul_half(fp16_layout, 0x0001, 0x3800), 0x0000);  // 2^-24 * 0.5: tie to even 0
  EXPECT_EQ(mul_half(fp16_layout, 0x0003, 0x3800), 0x0002);  // 1.5 * 2^-24: tie to even 2
  EXPECT_EQ(mul_half(fp16_layout, 0x4B80, 0x7BFF), 0x7C00);  // 15 * 65504 overflows
  EXPECT_EQ(mul_half(fp16_layout, 0x0000, 0xFC00), 0x7FFF);  // 0 * -inf = NaN
  EXPECT_EQ(mul_half(fp16_layout, 0x0000, 0xBC00), 0x8000);  // 0 * -1 = -0
  EXPECT_EQ(mul_half(bf16_layout, 0x0001, 0x4000), 0x0002);  // bf16 subnormals multiply exactly
  EXPECT_EQ(mul_half(bf16_layout, 0x4170, 0x7F7F), 0x7F80);  // 15 * max overflows
}

}  // namespace
