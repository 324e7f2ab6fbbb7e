// SPDX-License-Identifier: Apache-2.0
// Device use of dq4 from a consumer project: compiles the fast paths into kernels, including the
// README's zero-point example.
#include <dq4/dq4.cuh>

#include <cstring>

__global__ void dequantize(const uint4* packed, uint4* out) {
  const dq4::fp16x32 v = dq4::to_fp16<dq4::u4, dq4::interleaved>(packed[threadIdx.x]);
  for (int i = 0; i < 4; ++i) {
    out[4 * threadIdx.x + i] = make_uint4(v.regs[4 * i], v.regs[4 * i + 1], v.regs[4 * i + 2], v.regs[4 * i + 3]);
  }
}

__global__ void awq_group(const uint32_t* qweight, uint32_t qzeros, const uint4* scales8, int rows,
                          __nv_bfloat162* out) {
  using dq4::format;
  const auto zero = dq4::prepare_zeros<format::bf16, dq4::zeros::awq, dq4::interleaved>(qzeros);
  dq4::bf16x8 s;
  memcpy(&s, scales8, sizeof s);  // the scales of the 8 columns, in output order
  for (int k = 0; k < rows; ++k) {
    const dq4::bf16x8 w = dq4::dequantize<format::bf16, dq4::interleaved>(qweight[k], zero, s);
    for (int i = 0; i < 4; ++i) out[4 * k + i] = w.bfloat162(i);
  }
}

int main() { return 0; }
