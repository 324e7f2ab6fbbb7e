// SPDX-License-Identifier: Apache-2.0
// zeros::gptq_v1 adds 0x11111111 to the word as GPTQ stores it (sequential): no interleaved form.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::prepare_zeros<dq4::format::fp16, dq4::zeros::gptq_v1, dq4::interleaved>(0u).regs[0]);
#else
  return static_cast<int>(dq4::prepare_zeros<dq4::format::fp16, dq4::zeros::gptq_v1, dq4::sequential>(0u).regs[0]);
#endif
}
