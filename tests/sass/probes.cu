// SPDX-License-Identifier: Apache-2.0
// Kernels whose SASS check_sass.py counts. A probe loads `Words` packed words (one thread's slice,
// addressed the same way for every size), converts them and stores each result register on its own
// (32-bit stores need no consecutive registers, so the compiler adds no moves for them). The
// difference between the n2 and n1 probes, without memory and control instructions, is the cost of
// the extra words with the constants already in registers: what a conversion costs in a kernel's
// inner loop.
#include <dq4/dq4.cuh>

#include <cstdint>

namespace {

template <int Words>
struct alignas(4 * Words) packed_words {
  std::uint32_t w[Words];
};

template <int Registers>
struct result_registers {
  std::uint32_t r[Registers];
};

template <dq4::encoding E, dq4::order O, int Words>
__device__ void convert_words(const void* in, void* out) {
  const packed_words<Words> p = static_cast<const packed_words<Words>*>(in)[threadIdx.x];
  result_registers<4 * Words> results;
#pragma unroll
  for (int i = 0; i < Words; ++i) {
    const dq4::fp16x8 r = dq4::to_fp16<E, O>(p.w[i]);
#pragma unroll
    for (int k = 0; k < 4; ++k) results.r[4 * i + k] = r.pairs[k];
  }
  static_cast<result_registers<4 * Words>*>(out)[threadIdx.x] = results;
}

template <dq4::encoding E, dq4::order O, int Vectors>
__device__ void convert_vectors(const void* in, void* out) {
  const packed_words<4 * Vectors> p = static_cast<const packed_words<4 * Vectors>*>(in)[threadIdx.x];
  result_registers<16 * Vectors> results;
#pragma unroll
  for (int i = 0; i < Vectors; ++i) {
    const dq4::fp16x32 r =
        dq4::to_fp16<E, O>(make_uint4(p.w[4 * i], p.w[4 * i + 1], p.w[4 * i + 2], p.w[4 * i + 3]));
#pragma unroll
    for (int k = 0; k < 16; ++k) results.r[16 * i + k] = r.pairs[k];
  }
  static_cast<result_registers<16 * Vectors>*>(out)[threadIdx.x] = results;
}

}  // namespace

// Names: probe_<encoding>_<order>_<w32|w128>_<n1|n2>, parsed by check_sass.py.
#define DQ4_PROBES(enc, ord)                                                              \
  extern "C" __global__ void probe_##enc##_##ord##_w32_n1(const void* in, void* out) {    \
    convert_words<dq4::encoding::enc, dq4::order::ord, 1>(in, out);                       \
  }                                                                                       \
  extern "C" __global__ void probe_##enc##_##ord##_w32_n2(const void* in, void* out) {    \
    convert_words<dq4::encoding::enc, dq4::order::ord, 2>(in, out);                       \
  }                                                                                       \
  extern "C" __global__ void probe_##enc##_##ord##_w128_n1(const void* in, void* out) {   \
    convert_vectors<dq4::encoding::enc, dq4::order::ord, 1>(in, out);                     \
  }                                                                                       \
  extern "C" __global__ void probe_##enc##_##ord##_w128_n2(const void* in, void* out) {   \
    convert_vectors<dq4::encoding::enc, dq4::order::ord, 2>(in, out);                     \
  }

DQ4_PROBES(u4, interleaved)
DQ4_PROBES(u4b8, interleaved)
DQ4_PROBES(s4, interleaved)
DQ4_PROBES(u4, sequential)
DQ4_PROBES(u4b8, sequential)
DQ4_PROBES(s4, sequential)
