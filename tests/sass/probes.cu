// SPDX-License-Identifier: Apache-2.0
// Kernels whose SASS check_sass.py counts. A probe loads `Words` packed words (one thread's slice,
// addressed the same way for every size) and the per-group registers it needs (scales, zero points),
// converts the words and stores each result register on its own (32-bit stores need no consecutive
// registers, so the compiler adds no moves for them). The difference between the n2 and n1 probes,
// without memory and control instructions and constant moves, is the cost of the extra words with
// the constants and the per-group registers already in registers: what a conversion costs in a
// kernel's inner loop. The zero-point preparation runs once per probe, so it cancels out.
#include <dq4/dq4.cuh>

#include <cstdint>

namespace {

using dq4::format;

template <format F, int Words>
struct alignas(16) probe_input {
  std::uint32_t w[Words];
  std::uint32_t zeros;
  dq4::fragment<F, 8> scales;
};

template <int Registers>
struct result_registers {
  std::uint32_t r[Registers];
};

// How a probe converts one word: Kind 0 = unscaled, 1 = scaled (symmetric), 2 = zero point.
template <format F, dq4::encoding E, dq4::zeros Z, dq4::order O, int Kind>
__device__ dq4::fragment<F, 8> convert(std::uint32_t word, const probe_input<F, 1>& group,
                                       const dq4::zero_point<F, O>& zero) {
  if constexpr (Kind == 0) return dq4::dequantize<F, E, O>(word);
  if constexpr (Kind == 1) return dq4::dequantize<F, E, O>(word, group.scales);
  if constexpr (Kind == 2) return dq4::dequantize<F, O>(word, zero, group.scales);
}

template <format F, dq4::encoding E, dq4::zeros Z, dq4::order O, int Kind, int Words>
__device__ void convert_words(const void* in, void* out) {
  constexpr int per_word = dq4::fragment<F, 8>::registers;
  const probe_input<F, Words> p = static_cast<const probe_input<F, Words>*>(in)[threadIdx.x];
  const probe_input<F, 1> group{{0}, p.zeros, p.scales};
  const dq4::zero_point<F, O> zero = dq4::prepare_zeros<F, Z, O>(p.zeros);
  result_registers<per_word * Words> results;
#pragma unroll
  for (int i = 0; i < Words; ++i) {
    const dq4::fragment<F, 8> r = convert<F, E, Z, O, Kind>(p.w[i], group, zero);
#pragma unroll
    for (int k = 0; k < per_word; ++k) results.r[per_word * i + k] = r.regs[k];
  }
  static_cast<result_registers<per_word * Words>*>(out)[threadIdx.x] = results;
}

// The 128-bit form: Vectors uint4 loads, 32 values each. Each vector's results are stored before the
// next one is converted, so that the n2 probe needs no more live registers than a kernel would.
template <format F, dq4::encoding E, dq4::order O, int Vectors>
__device__ void convert_vectors(const void* in, void* out) {
  constexpr int per_vector = dq4::fragment<F, 32>::registers;
  const probe_input<F, 4 * Vectors> p = static_cast<const probe_input<F, 4 * Vectors>*>(in)[threadIdx.x];
  // Addressed like the 32-bit form (one slice per thread), so the address arithmetic cancels out.
  auto* results = static_cast<result_registers<per_vector * Vectors>*>(out) + threadIdx.x;
#pragma unroll
  for (int i = 0; i < Vectors; ++i) {
    const dq4::fragment<F, 32> r =
        dq4::dequantize<F, E, O>(make_uint4(p.w[4 * i], p.w[4 * i + 1], p.w[4 * i + 2], p.w[4 * i + 3]));
#pragma unroll
    for (int k = 0; k < per_vector; ++k) results->r[per_vector * i + k] = r.regs[k];
  }
}

}  // namespace

// Names: probe_<format>_<path>_<order>_<w32|w128>_<n1|n2>, parsed by check_sass.py. <path> is the
// encoding (unscaled), <encoding>_scaled, or the zero-point convention.
#define DQ4_PROBE_PAIR(name, ord, form, body1, body2)                                           \
  extern "C" __global__ void probe_##name##_##ord##_##form##_n1(const void* in, void* out) { body1; } \
  extern "C" __global__ void probe_##name##_##ord##_##form##_n2(const void* in, void* out) { body2; }

#define DQ4_UNSCALED(fmt, enc, ord)                                                                             \
  DQ4_PROBE_PAIR(fmt##_##enc, ord, w32,                                                                         \
                 (convert_words<format::fmt, dq4::encoding::enc, dq4::zeros::awq, dq4::order::ord, 0, 1>(in, out)), \
                 (convert_words<format::fmt, dq4::encoding::enc, dq4::zeros::awq, dq4::order::ord, 0, 2>(in, out))) \
  DQ4_PROBE_PAIR(fmt##_##enc, ord, w128, (convert_vectors<format::fmt, dq4::encoding::enc, dq4::order::ord, 1>(in, out)), \
                 (convert_vectors<format::fmt, dq4::encoding::enc, dq4::order::ord, 2>(in, out)))

#define DQ4_SCALED(fmt, enc, ord)                                                                                 \
  DQ4_PROBE_PAIR(fmt##_##enc##_scaled, ord, w32,                                                                  \
                 (convert_words<format::fmt, dq4::encoding::enc, dq4::zeros::awq, dq4::order::ord, 1, 1>(in, out)), \
                 (convert_words<format::fmt, dq4::encoding::enc, dq4::zeros::awq, dq4::order::ord, 1, 2>(in, out)))

#define DQ4_ZERO_POINT(fmt, zp, ord)                                                                             \
  DQ4_PROBE_PAIR(fmt##_##zp, ord, w32,                                                                           \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::zp, dq4::order::ord, 2, 1>(in, out)), \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::zp, dq4::order::ord, 2, 2>(in, out)))

#define DQ4_INTEGER_PATHS(fmt, ord) \
  DQ4_UNSCALED(fmt, u4, ord)        \
  DQ4_UNSCALED(fmt, u4b8, ord)      \
  DQ4_UNSCALED(fmt, s4, ord)        \
  DQ4_SCALED(fmt, u4b8, ord)        \
  DQ4_SCALED(fmt, s4, ord)          \
  DQ4_ZERO_POINT(fmt, awq, ord)           \
  DQ4_ZERO_POINT(fmt, gptq_v1_wrap, ord)  \
  DQ4_ZERO_POINT(fmt, gptq_v1_no_wrap, ord) \
  DQ4_ZERO_POINT(fmt, gptq_v2, ord)

#define DQ4_E2M1_PATHS(fmt, ord) \
  DQ4_UNSCALED(fmt, e2m1, ord)   \
  DQ4_SCALED(fmt, e2m1, ord)

DQ4_INTEGER_PATHS(fp16, interleaved)
DQ4_INTEGER_PATHS(fp16, sequential)
DQ4_INTEGER_PATHS(bf16, interleaved)
DQ4_INTEGER_PATHS(bf16, sequential)
DQ4_INTEGER_PATHS(fp32, interleaved)
DQ4_INTEGER_PATHS(fp32, sequential)
// gptq_v1 (the word add) reads GPTQ's stored order only.
DQ4_ZERO_POINT(fp16, gptq_v1, sequential)
DQ4_ZERO_POINT(bf16, gptq_v1, sequential)
DQ4_ZERO_POINT(fp32, gptq_v1, sequential)
DQ4_E2M1_PATHS(fp16, interleaved)
DQ4_E2M1_PATHS(fp16, sequential)
DQ4_E2M1_PATHS(bf16, interleaved)
DQ4_E2M1_PATHS(bf16, sequential)
