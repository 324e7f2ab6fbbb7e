// SPDX-License-Identifier: Apache-2.0
// q - z (-16..15) is not always an e5m2 value, so there are no e5m2 zero points.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::prepare_zeros<dq4::format::e5m2, dq4::zeros::awq, dq4::interleaved>(0u).regs[0]);
#else
  return static_cast<int>(dq4::prepare_zeros<dq4::format::e4m3, dq4::zeros::awq, dq4::interleaved>(0u).regs[0]);
#endif
}
