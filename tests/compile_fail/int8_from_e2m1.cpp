// SPDX-License-Identifier: Apache-2.0
// e2m1 values are not integers: there is no e2m1 to int8 path.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::dequantize<dq4::format::int8, dq4::e2m1, dq4::sequential>(0u).regs[0]);
#else
  return static_cast<int>(dq4::dequantize<dq4::format::e4m3, dq4::e2m1, dq4::sequential>(0u).regs[0]);
#endif
}
