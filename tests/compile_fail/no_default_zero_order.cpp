// SPDX-License-Identifier: Apache-2.0
// prepare_zeros has no default order.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::prepare_zeros<dq4::format::fp16, dq4::zeros::awq>(0u).regs[0]);
#else
  return static_cast<int>(dq4::prepare_zeros<dq4::format::fp16, dq4::zeros::awq, dq4::interleaved>(0u).regs[0]);
#endif
}
