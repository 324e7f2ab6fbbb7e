// SPDX-License-Identifier: Apache-2.0
// Kernels whose SASS check_sass.py counts. A probe loads `Words` packed words (one thread's slice,
// addressed the same way for every size) and the per-group registers it needs (scales, zero points),
// converts the words and stores each result register on its own (32-bit stores need no consecutive
// registers, so the compiler adds no moves for them). The difference between the n2 and n1 probes,
// without memory and control instructions and constant moves, is the cost of the extra words with
// the constants and the per-group registers already in registers: what a conversion costs in a
// kernel's inner loop. The per-group preparations (prepare_zeros, prepare_block_scale) have probes of
// their own, *_prepare and *_block_prepare: their cost per zeros word or scale byte, once per group.
#include <dq4/dq4.cuh>

#include <cstdint>
#include <cstring>

namespace {

using dq4::format;

template <format F, int Words>
struct alignas(16) probe_input {
  std::uint32_t w[Words];
  std::uint32_t zeros;
  dq4::fragment<F, 8> scales;
  std::uint32_t prepared[8];  ///< a zero_point's or block_scale's registers
};

template <int Registers>
struct result_registers {
  std::uint32_t r[Registers];
};

// How a probe converts one word: Kind 0 = unscaled, 1 = scaled (symmetric), 2 = zero point, 3 = q - z
// unscaled, 4 = e8m0 block scale, 5 = codebook, 6 = codebook times scales.
template <format F, dq4::encoding E, dq4::zeros Z, dq4::order O, int Kind>
__device__ dq4::fragment<F, 8> convert(std::uint32_t word, const probe_input<F, 1>& group, const dq4::zero_point<F, O>& zero,
                                       const dq4::block_scale<F>& block, const void* book) {
  if constexpr (Kind == 0) return dq4::dequantize<F, E, O>(word);
  if constexpr (Kind == 1) return dq4::dequantize<F, E, O>(word, group.scales);
  if constexpr (Kind == 2) return dq4::dequantize<F, O>(word, zero, group.scales);
  if constexpr (Kind == 3) return dq4::dequantize<F, O>(word, zero);
  if constexpr (Kind == 4) return dq4::dequantize<F, E, O>(word, block);
  if constexpr (Kind == 5) return dq4::dequantize<F, O>(word, *static_cast<const dq4::codebook<F>*>(book));
  if constexpr (Kind == 6) return dq4::dequantize<F, O>(word, *static_cast<const dq4::codebook<F>*>(book), group.scales);
}

// The registers of a probe's codebook (Kinds 5 and 6), from the prepared registers.
struct probe_codebook {
  std::uint32_t regs[8];
};

template <format F, dq4::encoding E, dq4::zeros Z, dq4::order O, int Kind, int Words>
__device__ void convert_words(const void* in, void* out) {
  constexpr int per_word = dq4::fragment<F, 8>::registers;
  const probe_input<F, Words> p = static_cast<const probe_input<F, Words>*>(in)[threadIdx.x];
  const probe_input<F, 1> group{{0}, p.zeros, p.scales, {0}};
  // The per-group registers come prepared from memory, as a kernel's loop sees them: values in
  // registers, not expressions ptxas could fold into the first word's arithmetic (which would make the
  // n1 probe cheaper). prepare_zeros and prepare_block_scale are counted once per group, not here.
  dq4::zero_point<F, O> zero{};
  static_assert(sizeof zero <= sizeof p.prepared);
  std::memcpy(&zero, p.prepared, sizeof zero);
  dq4::block_scale<F> block{};
  std::memcpy(&block.table, p.prepared, sizeof block.table);
  probe_codebook book{};
  std::memcpy(&book.regs, p.prepared, sizeof book.regs);
  result_registers<per_word * Words> results;
#pragma unroll
  for (int i = 0; i < Words; ++i) {
    const dq4::fragment<F, 8> r = convert<F, E, Z, O, Kind>(p.w[i], group, zero, block, &book);
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

// What a preparation probe prepares per group: the zero points of a zeros word, the block_scale of an
// e8m0 byte, the NVFP4 scale of an e4m3 byte (the tensor scale from the zeros field), or the
// bitsandbytes NF4 codebook of an absmax (the float bits of the word).
enum class preparation { zeros, block_scale, nvfp4_scale, bitsandbytes };

template <format F, preparation P>
__host__ __device__ constexpr int prepared_registers() {
  if constexpr (P == preparation::block_scale) return dq4::detail::block_scale_registers(F);
  if constexpr (P == preparation::nvfp4_scale) return 1;  // eight copies of one value
  if constexpr (P == preparation::bitsandbytes) return 8;
  return dq4::detail::zero_point_registers(F);
}

// The per-group preparation of `Words` groups, each stored.
template <format F, dq4::zeros Z, dq4::order O, preparation P, int Words>
__device__ void prepare_groups(const void* in, void* out) {
  const probe_input<F, Words> p = static_cast<const probe_input<F, Words>*>(in)[threadIdx.x];
  constexpr int per_group = prepared_registers<F, P>();
  result_registers<per_group * Words> results;
#pragma unroll
  for (int i = 0; i < Words; ++i) {
    if constexpr (P == preparation::block_scale) {
      const auto b = dq4::prepare_block_scale<F>(dq4::e8m0{static_cast<std::uint8_t>(p.w[i])});
      for (int k = 0; k < per_group; ++k) results.r[per_group * i + k] = b.table[k];
    } else if constexpr (P == preparation::nvfp4_scale) {
      results.r[i] = dq4::prepare_nvfp4_scale<F>(static_cast<std::uint8_t>(p.w[i]), __uint_as_float(p.zeros)).regs[0];
    } else if constexpr (P == preparation::bitsandbytes) {
      const auto book = dq4::bitsandbytes_codebook<F>(dq4::nf4_values().value, __uint_as_float(p.w[i]));
      for (int k = 0; k < 4; ++k) results.r[8 * i + k] = book.low[k];
      for (int k = 0; k < 4; ++k) results.r[8 * i + 4 + k] = book.high[k];
    } else {
      const auto z = dq4::prepare_zeros<F, Z, O>(p.w[i]);
      for (int k = 0; k < per_group; ++k) results.r[per_group * i + k] = z.regs[k];
    }
  }
  static_cast<result_registers<per_group * Words>*>(out)[threadIdx.x] = results;
}

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

#define DQ4_DIFFERENCE(fmt, zp, ord)                                                                          \
  DQ4_PROBE_PAIR(fmt##_##zp##_difference, ord, w32,                                                            \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::zp, dq4::order::ord, 3, 1>(in, out)), \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::zp, dq4::order::ord, 3, 2>(in, out)))

#define DQ4_BLOCK_SCALED(fmt, ord)                                                                            \
  DQ4_PROBE_PAIR(fmt##_e2m1_block_scaled, ord, w32,                                                           \
                 (convert_words<format::fmt, dq4::encoding::e2m1, dq4::zeros::awq, dq4::order::ord, 4, 1>(in, out)), \
                 (convert_words<format::fmt, dq4::encoding::e2m1, dq4::zeros::awq, dq4::order::ord, 4, 2>(in, out)))

#define DQ4_CODEBOOK(fmt, ord)                                                                                  \
  DQ4_PROBE_PAIR(fmt##_codebook, ord, w32,                                                                      \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::awq, dq4::order::ord, 5, 1>(in, out)), \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::awq, dq4::order::ord, 5, 2>(in, out))) \
  DQ4_PROBE_PAIR(fmt##_codebook_scaled, ord, w32,                                                               \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::awq, dq4::order::ord, 6, 1>(in, out)), \
                 (convert_words<format::fmt, dq4::encoding::u4, dq4::zeros::awq, dq4::order::ord, 6, 2>(in, out)))

#define DQ4_PREPARE_KIND(fmt, name, zp, ord, kind)                                                           \
  DQ4_PROBE_PAIR(fmt##_##name##_prepare, ord, w32,                                                           \
                 (prepare_groups<format::fmt, dq4::zeros::zp, dq4::order::ord, preparation::kind, 1>(in, out)), \
                 (prepare_groups<format::fmt, dq4::zeros::zp, dq4::order::ord, preparation::kind, 2>(in, out)))
#define DQ4_PREPARE(fmt, zp, ord) DQ4_PREPARE_KIND(fmt, zp, zp, ord, zeros)
#define DQ4_BLOCK_PREPARE(fmt) DQ4_PREPARE_KIND(fmt, e2m1_block, awq, sequential, block_scale)

#define DQ4_INTEGER_PATHS(fmt, ord) \
  DQ4_UNSCALED(fmt, u4, ord)        \
  DQ4_UNSCALED(fmt, u4b8, ord)      \
  DQ4_UNSCALED(fmt, s4, ord)        \
  DQ4_SCALED(fmt, u4b8, ord)        \
  DQ4_SCALED(fmt, s4, ord)          \
  DQ4_ZERO_POINT(fmt, awq, ord)           \
  DQ4_ZERO_POINT(fmt, gptq_v1_wrap, ord)  \
  DQ4_ZERO_POINT(fmt, gptq_v1_no_wrap, ord) \
  DQ4_ZERO_POINT(fmt, gptq_v2, ord)        \
  DQ4_DIFFERENCE(fmt, awq, ord)            \
  DQ4_DIFFERENCE(fmt, gptq_v2, ord)

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
DQ4_E2M1_PATHS(fp32, interleaved)
DQ4_E2M1_PATHS(fp32, sequential)
// MXFP4 (e8m0 block scales) and codebooks.
DQ4_BLOCK_SCALED(fp16, interleaved)
DQ4_BLOCK_SCALED(fp16, sequential)
DQ4_BLOCK_SCALED(bf16, interleaved)
DQ4_BLOCK_SCALED(bf16, sequential)
DQ4_BLOCK_SCALED(fp32, interleaved)
DQ4_BLOCK_SCALED(fp32, sequential)
DQ4_CODEBOOK(fp16, interleaved)
DQ4_CODEBOOK(fp16, sequential)
DQ4_CODEBOOK(bf16, interleaved)
DQ4_CODEBOOK(bf16, sequential)
// The 8-bit outputs, and q - z unscaled in GPTQ's word-add reading.
#define DQ4_EIGHT_BIT_INTEGERS(fmt, ord) \
  DQ4_UNSCALED(fmt, u4, ord)             \
  DQ4_UNSCALED(fmt, u4b8, ord)           \
  DQ4_UNSCALED(fmt, s4, ord)             \
  DQ4_DIFFERENCE(fmt, awq, ord)          \
  DQ4_DIFFERENCE(fmt, gptq_v1_wrap, ord) \
  DQ4_DIFFERENCE(fmt, gptq_v1_no_wrap, ord)

DQ4_EIGHT_BIT_INTEGERS(int8, interleaved)
DQ4_EIGHT_BIT_INTEGERS(int8, sequential)
DQ4_EIGHT_BIT_INTEGERS(e4m3, interleaved)
DQ4_EIGHT_BIT_INTEGERS(e4m3, sequential)
DQ4_DIFFERENCE(fp16, gptq_v1, sequential)
DQ4_DIFFERENCE(bf16, gptq_v1, sequential)
DQ4_DIFFERENCE(fp32, gptq_v1, sequential)
DQ4_DIFFERENCE(int8, gptq_v1, sequential)
DQ4_DIFFERENCE(e4m3, gptq_v1, sequential)
DQ4_UNSCALED(e4m3, e2m1, interleaved)
DQ4_UNSCALED(e4m3, e2m1, sequential)
DQ4_UNSCALED(e5m2, e2m1, interleaved)
DQ4_UNSCALED(e5m2, e2m1, sequential)
DQ4_BLOCK_SCALED(e4m3, interleaved)
DQ4_BLOCK_SCALED(e4m3, sequential)

// The per-group preparations (reported, no budget).
#define DQ4_PREPARATIONS(fmt, ord)    \
  DQ4_PREPARE(fmt, awq, ord)          \
  DQ4_PREPARE(fmt, gptq_v1_wrap, ord) \
  DQ4_PREPARE(fmt, gptq_v1_no_wrap, ord)
DQ4_PREPARATIONS(fp16, interleaved)
DQ4_PREPARATIONS(bf16, interleaved)
DQ4_PREPARATIONS(fp32, interleaved)
DQ4_PREPARATIONS(int8, interleaved)
DQ4_PREPARATIONS(int8, sequential)
DQ4_PREPARATIONS(e4m3, sequential)
DQ4_PREPARE(fp16, gptq_v1, sequential)
DQ4_PREPARE(int8, gptq_v1, sequential)
DQ4_BLOCK_PREPARE(e4m3)
DQ4_BLOCK_PREPARE(fp16)
DQ4_BLOCK_PREPARE(bf16)
DQ4_BLOCK_PREPARE(fp32)
// The conversions of these preparations are their point (the conversion check skips them).
DQ4_PREPARE_KIND(fp16, nvfp4, awq, sequential, nvfp4_scale)
DQ4_PREPARE_KIND(bf16, nvfp4, awq, sequential, nvfp4_scale)
DQ4_PREPARE_KIND(fp32, nvfp4, awq, sequential, nvfp4_scale)
DQ4_PREPARE_KIND(fp16, bitsandbytes, awq, sequential, bitsandbytes)
DQ4_PREPARE_KIND(bf16, bitsandbytes, awq, sequential, bitsandbytes)
