// SPDX-License-Identifier: Apache-2.0
// A template argument that names no enumerator is a compile error, not a silent other path.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::dequantize<static_cast<dq4::format>(7), dq4::u4, dq4::sequential>(0u).regs[0]);
#else
  return static_cast<int>(dq4::dequantize<static_cast<dq4::format>(2), dq4::u4, dq4::sequential>(0u).regs[0]);
#endif
}
