// SPDX-License-Identifier: Apache-2.0
// nvcc with an older dialect (the error run adds -std=c++14) gets the same clear #error.
#include <dq4/dq4.cuh>

__global__ void kernel(std::uint32_t word, std::uint32_t* out) { *out = dq4::to_fp16<dq4::u4, dq4::interleaved>(word).regs[0]; }
