// SPDX-License-Identifier: Apache-2.0
// The 8-bit formats have no per-element scale (no 8-bit multiply): the scale goes after the MMA.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  const dq4::fragment<dq4::format::int8, 8> scales{};
  return static_cast<int>(dq4::dequantize<dq4::format::int8, dq4::s4, dq4::sequential>(0u, scales).regs[0]);
#else
  const dq4::fragment<dq4::format::fp16, 8> scales{};
  return static_cast<int>(dq4::dequantize<dq4::format::fp16, dq4::s4, dq4::sequential>(0u, scales).regs[0]);
#endif
}
