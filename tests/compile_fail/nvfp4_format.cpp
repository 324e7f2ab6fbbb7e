// SPDX-License-Identifier: Apache-2.0
// NVFP4 block scales give fp16, bf16 or fp32 outputs; an 8-bit format is a compile error.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::prepare_nvfp4_scale<dq4::format::e4m3>(0x38, 1.0f).regs[0]);
#else
  return static_cast<int>(dq4::prepare_nvfp4_scale<dq4::format::fp16>(0x38, 1.0f).regs[0]);
#endif
}
