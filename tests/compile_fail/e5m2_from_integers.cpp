// SPDX-License-Identifier: Apache-2.0
// Integers are not all e5m2 values (9 needs three mantissa bits): only e2m1 goes to e5m2.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::dequantize<dq4::format::e5m2, dq4::u4, dq4::sequential>(0u).regs[0]);
#else
  return static_cast<int>(dq4::dequantize<dq4::format::e5m2, dq4::e2m1, dq4::sequential>(0u).regs[0]);
#endif
}
