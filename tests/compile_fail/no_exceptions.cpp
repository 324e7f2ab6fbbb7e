// SPDX-License-Identifier: Apache-2.0
// Compiled with -fno-exceptions: the device-side header is usable; the packers, which report bad
// input by throwing, say so when used.
#include <dq4/dq4.cuh>

int main() {
  const auto values = dq4::dequantize<dq4::format::bf16, dq4::s4, dq4::interleaved>(0x12345678u);
#if defined(DQ4_EXPECT_ERROR)
  dq4::pack<dq4::u4, dq4::sequential>(static_cast<const int*>(nullptr), 0, static_cast<std::uint32_t*>(nullptr));
#endif
  return static_cast<int>(values.regs[0] + dq4::reorder<dq4::sequential, dq4::interleaved>(values.regs[1]));
}
