// SPDX-License-Identifier: Apache-2.0
// half2() reads fp16 fragments only.
#include <dq4/dq4.cuh>

__global__ void kernel(std::uint32_t word, __half2* out) {
#if defined(DQ4_EXPECT_ERROR)
  *out = dq4::to_bf16<dq4::u4, dq4::interleaved>(word).half2(0);
#else
  *out = dq4::to_fp16<dq4::u4, dq4::interleaved>(word).half2(0);
#endif
}
