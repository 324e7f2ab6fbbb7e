// SPDX-License-Identifier: Apache-2.0
// Device use of dq4 from a consumer project: compiles the fast path into a kernel.
#include <dq4/dq4.cuh>

__global__ void dequantize(const uint4* packed, uint4* out) {
  const dq4::fp16x32 v = dq4::to_fp16<dq4::u4, dq4::interleaved>(packed[threadIdx.x]);
  for (int i = 0; i < 4; ++i) {
    out[4 * threadIdx.x + i] = make_uint4(v.pairs[4 * i], v.pairs[4 * i + 1], v.pairs[4 * i + 2], v.pairs[4 * i + 3]);
  }
}

int main() { return 0; }
