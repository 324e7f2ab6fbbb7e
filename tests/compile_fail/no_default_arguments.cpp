// SPDX-License-Identifier: Apache-2.0
// dequantize has no default encoding or order: every call site names the layout it reads.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::dequantize<dq4::format::fp16>(0u).regs[0]);
#else
  return static_cast<int>(dq4::dequantize<dq4::format::fp16, dq4::u4, dq4::sequential>(0u).regs[0]);
#endif
}
