// SPDX-License-Identifier: Apache-2.0
// e2m1 dequantizes to fp16 or bf16 only.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::dequantize<dq4::format::fp32, dq4::e2m1, dq4::sequential>(0u).regs[0]);
#else
  return static_cast<int>(dq4::dequantize<dq4::format::bf16, dq4::e2m1, dq4::sequential>(0u).regs[0]);
#endif
}
