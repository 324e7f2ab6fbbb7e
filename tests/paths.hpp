// SPDX-License-Identifier: Apache-2.0
// The dequantization paths as GoogleTest type lists, so that every typed test runs once per path and
// its CTest entry (gtest_discover_tests) names the path.
#pragma once

#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <string>

namespace dq4_test {

using dq4::detail::format_name;
using dq4::detail::order_name;
using dq4::detail::zeros_name;

template <dq4::format F, dq4::encoding E, dq4::order O>
struct path {
  static constexpr dq4::format format = F;
  static constexpr dq4::encoding encoding = E;
  static constexpr dq4::order order = O;
  static std::string name() { return format_name(F) + "_" + dq4::detail::encoding_name(E) + "_" + order_name(O); }
};

template <dq4::format F, dq4::zeros Z, dq4::order O>
struct zero_path {
  static constexpr dq4::format format = F;
  static constexpr dq4::zeros zeros = Z;
  static constexpr dq4::order order = O;
  static std::string name() { return format_name(F) + "_" + zeros_name(Z) + "_" + order_name(O); }
};

// Each path is a named type, so that GoogleTest lists it by name and gtest_discover_tests makes
// CTest entries such as GpuPath.UnscaledEveryWord32Bit<dq4_test::fp16_u4_interleaved>.
#define DQ4_TEST_PATH(F, E, O) \
  struct F##_##E##_##O : path<dq4::format::F, dq4::encoding::E, dq4::order::O> {};
#define DQ4_TEST_ZERO_PATH(F, Z, O) \
  struct F##_##Z##_##O : zero_path<dq4::format::F, dq4::zeros::Z, dq4::order::O> {};
#define DQ4_TEST_FORMAT_PATHS(F)                                                                               \
  DQ4_TEST_PATH(F, u4, interleaved) DQ4_TEST_PATH(F, u4b8, interleaved) DQ4_TEST_PATH(F, s4, interleaved)      \
  DQ4_TEST_PATH(F, u4, sequential) DQ4_TEST_PATH(F, u4b8, sequential) DQ4_TEST_PATH(F, s4, sequential)         \
  DQ4_TEST_ZERO_PATH(F, awq, interleaved) DQ4_TEST_ZERO_PATH(F, gptq_v2, interleaved)                          \
  DQ4_TEST_ZERO_PATH(F, gptq_v1_wrap, interleaved) DQ4_TEST_ZERO_PATH(F, gptq_v1_no_wrap, interleaved)         \
  DQ4_TEST_ZERO_PATH(F, awq, sequential) DQ4_TEST_ZERO_PATH(F, gptq_v2, sequential)                            \
  DQ4_TEST_ZERO_PATH(F, gptq_v1, sequential) DQ4_TEST_ZERO_PATH(F, gptq_v1_wrap, sequential)                   \
  DQ4_TEST_ZERO_PATH(F, gptq_v1_no_wrap, sequential)
DQ4_TEST_FORMAT_PATHS(fp16)
DQ4_TEST_FORMAT_PATHS(bf16)
DQ4_TEST_FORMAT_PATHS(fp32)
DQ4_TEST_PATH(fp16, e2m1, interleaved)
DQ4_TEST_PATH(fp16, e2m1, sequential)
DQ4_TEST_PATH(bf16, e2m1, interleaved)
DQ4_TEST_PATH(bf16, e2m1, sequential)
DQ4_TEST_FORMAT_PATHS(int8)
DQ4_TEST_FORMAT_PATHS(e4m3)
DQ4_TEST_PATH(e4m3, e2m1, interleaved)
DQ4_TEST_PATH(e4m3, e2m1, sequential)
DQ4_TEST_PATH(e5m2, e2m1, interleaved)
DQ4_TEST_PATH(e5m2, e2m1, sequential)
#undef DQ4_TEST_FORMAT_PATHS
#undef DQ4_TEST_ZERO_PATH
#undef DQ4_TEST_PATH

/// The integer paths of fp32 (the encodings and orders every format has).
using integer_paths_fp32 = ::testing::Types<fp32_u4_interleaved, fp32_u4b8_interleaved, fp32_s4_interleaved,
                                            fp32_u4_sequential, fp32_u4b8_sequential, fp32_s4_sequential>;

/// Every 16- and 32-bit format, encoding and order dq4 dequantizes, with or without scales (22 paths).
using all_paths = ::testing::Types<
    fp16_u4_interleaved, fp16_u4b8_interleaved, fp16_s4_interleaved, fp16_u4_sequential, fp16_u4b8_sequential,
    fp16_s4_sequential, fp16_e2m1_interleaved, fp16_e2m1_sequential,  //
    bf16_u4_interleaved, bf16_u4b8_interleaved, bf16_s4_interleaved, bf16_u4_sequential, bf16_u4b8_sequential,
    bf16_s4_sequential, bf16_e2m1_interleaved, bf16_e2m1_sequential,  //
    fp32_u4_interleaved, fp32_u4b8_interleaved, fp32_s4_interleaved, fp32_u4_sequential, fp32_u4b8_sequential,
    fp32_s4_sequential>;

/// Every zero-point convention in every order it has (gptq_v1: sequential only), every 16- and 32-bit
/// format: the scaled (q - z) * s paths (27).
using all_zero_paths = ::testing::Types<
    fp16_awq_interleaved, fp16_gptq_v2_interleaved, fp16_gptq_v1_wrap_interleaved, fp16_gptq_v1_no_wrap_interleaved,
    fp16_awq_sequential, fp16_gptq_v2_sequential, fp16_gptq_v1_sequential, fp16_gptq_v1_wrap_sequential,
    fp16_gptq_v1_no_wrap_sequential,  //
    bf16_awq_interleaved, bf16_gptq_v2_interleaved, bf16_gptq_v1_wrap_interleaved, bf16_gptq_v1_no_wrap_interleaved,
    bf16_awq_sequential, bf16_gptq_v2_sequential, bf16_gptq_v1_sequential, bf16_gptq_v1_wrap_sequential,
    bf16_gptq_v1_no_wrap_sequential,  //
    fp32_awq_interleaved, fp32_gptq_v2_interleaved, fp32_gptq_v1_wrap_interleaved, fp32_gptq_v1_no_wrap_interleaved,
    fp32_awq_sequential, fp32_gptq_v2_sequential, fp32_gptq_v1_sequential, fp32_gptq_v1_wrap_sequential,
    fp32_gptq_v1_no_wrap_sequential>;

/// The 8-bit outputs, unscaled (16 paths): int8 of the integer encodings, e4m3 of every encoding, e5m2
/// of e2m1 (the only encoding whose values are all e5m2 values).
using eight_bit_paths = ::testing::Types<
    int8_u4_interleaved, int8_u4b8_interleaved, int8_s4_interleaved, int8_u4_sequential, int8_u4b8_sequential,
    int8_s4_sequential,  //
    e4m3_u4_interleaved, e4m3_u4b8_interleaved, e4m3_s4_interleaved, e4m3_u4_sequential, e4m3_u4b8_sequential,
    e4m3_s4_sequential, e4m3_e2m1_interleaved, e4m3_e2m1_sequential,  //
    e5m2_e2m1_interleaved, e5m2_e2m1_sequential>;

/// q - z without a scale: every zero-point convention in every order it has (gptq_v1: sequential
/// only), every format but e5m2 (45 paths).
using unscaled_zero_paths = ::testing::Types<
    fp16_awq_interleaved, fp16_gptq_v2_interleaved, fp16_gptq_v1_wrap_interleaved, fp16_gptq_v1_no_wrap_interleaved,
    fp16_awq_sequential, fp16_gptq_v2_sequential, fp16_gptq_v1_sequential, fp16_gptq_v1_wrap_sequential,
    fp16_gptq_v1_no_wrap_sequential,  //
    bf16_awq_interleaved, bf16_gptq_v2_interleaved, bf16_gptq_v1_wrap_interleaved, bf16_gptq_v1_no_wrap_interleaved,
    bf16_awq_sequential, bf16_gptq_v2_sequential, bf16_gptq_v1_sequential, bf16_gptq_v1_wrap_sequential,
    bf16_gptq_v1_no_wrap_sequential,  //
    fp32_awq_interleaved, fp32_gptq_v2_interleaved, fp32_gptq_v1_wrap_interleaved, fp32_gptq_v1_no_wrap_interleaved,
    fp32_awq_sequential, fp32_gptq_v2_sequential, fp32_gptq_v1_sequential, fp32_gptq_v1_wrap_sequential,
    fp32_gptq_v1_no_wrap_sequential,  //
    int8_awq_interleaved, int8_gptq_v2_interleaved, int8_gptq_v1_wrap_interleaved, int8_gptq_v1_no_wrap_interleaved,
    int8_awq_sequential, int8_gptq_v2_sequential, int8_gptq_v1_sequential, int8_gptq_v1_wrap_sequential,
    int8_gptq_v1_no_wrap_sequential,  //
    e4m3_awq_interleaved, e4m3_gptq_v2_interleaved, e4m3_gptq_v1_wrap_interleaved, e4m3_gptq_v1_no_wrap_interleaved,
    e4m3_awq_sequential, e4m3_gptq_v2_sequential, e4m3_gptq_v1_sequential, e4m3_gptq_v1_wrap_sequential,
    e4m3_gptq_v1_no_wrap_sequential>;

/// e2m1 with e8m0 block scales, to e4m3 (2 paths).
using block_scale_paths = ::testing::Types<e4m3_e2m1_interleaved, e4m3_e2m1_sequential>;

}  // namespace dq4_test
