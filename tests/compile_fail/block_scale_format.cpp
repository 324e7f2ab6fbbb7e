// SPDX-License-Identifier: Apache-2.0
// e8m0 block scales give fp16, bf16, fp32 or e4m3 outputs (MXFP4); int8 and e5m2 are a compile error.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::prepare_block_scale<dq4::format::e5m2>(dq4::e8m0{127}).table[0]);
#else
  return static_cast<int>(dq4::prepare_block_scale<dq4::format::fp16>(dq4::e8m0{127}).table[0]);
#endif
}
