// SPDX-License-Identifier: Apache-2.0
// Marlin's e2m1 (fp4) dequantization, as vLLM runs it, counted the way tests/sass counts dq4's paths,
// with dq4's e2m1 paths for the same outputs beside it in the same harness. A probe loads `Words`
// packed words (one thread's slice) and the per-group registers it needs, converts each word and
// stores each result register on its own; the difference between the n2 and n1 probes, without
// memory and control instructions and constant moves, is what one more word costs with the constants
// and the per-group registers already in registers. benchmarks/count_marlin.py reads the SASS (kernel
// names as tests/sass/check_sass.py parses them: probe_<impl>_<format>_<path>_<order>_w32_<n1|n2>).
//
// The Marlin sequence below is a re-statement written for dq4 from these facts (vllm-project/vllm at
// 579602aa, where the files are csrc/quantization/marlin/...; before the rename of #32952 they were
// csrc/quantization/gptq_marlin/..., with the same fp4 code):
//
//   dequant.h, dequant<half2 / nv_bfloat162, kFE2M1f.id(), skip_flop> (lines 397-471): one call turns
//     an int q into two registers. With shift = 5 - 2 = 3 (fp16) or 8 - 2 = 6 (bf16):
//       Out1 = (q & 0x80008000) | ((q & 0x70007000) >> shift);   q <<= 4;
//       Out2 = (q & 0x80008000) | ((q & 0x70007000) >> shift);
//       frag_b[1] = Out1; frag_b[0] = Out2                         ("reverse indexing", weights permuted)
//     Out1 holds nibbles 3 and 7 of q, Out2 nibbles 2 and 6, each as fp16 / bf16 bits of the e2m1 value
//     times 2^-14 / 2^-126 (the e2m1 exponent and mantissa land in the low exponent bits and the top
//     mantissa bit). skip_flop = false then multiplies both registers by the bias, __hmul2 with
//     __float2half2_rn(2^14) (fp16: 2^(5-1) - 2^(2-1) = 14) or __float2bfloat162_rn of the float
//     (126 + 127) << 23 = 2^126 (bf16).
//   marlin_template.h, Marlin<...>, matmul lambda (lines 1227-1277): per 32-bit word,
//       b_quant_1 = word; b_quant_0 = b_quant_1 << 8;
//       dequant(b_quant_0) -> frag_b0; dequant(b_quant_1) -> frag_b1;      (two calls per word)
//       scale(frag_b0, frag_s[k2][j], 0); scale(frag_b1, frag_s[k2][j], 1);
//     scale() (lines 104-116) broadcasts 16-bit element i of the scale register (num2num2) and does
//     one __hmul2 per register: one register holds the two group scales of a word, frag_b0's (columns
//     n) in the low half, frag_b1's (columns n + 8) in the high half.
//     So register r of the word is: r0 = nibbles (0, 4), r1 = (1, 5), r2 = (2, 6), r3 = (3, 7), low
//     half first. With gptq_marlin_repack.cu's 4-bit packing (pack_idx {0, 2, 4, 6, 1, 3, 5, 7}, lines
//     193-199) output j comes from nibble [0,4,1,5,2,6,3,7][j]: dq4's order::interleaved. The probes
//     below are named "interleaved" for that reason.
//   marlin_template.h lines 349-353: dequant_skip_flop is true for kFE2M1f with kFE4M3fn scales
//     (NVFP4): no bias multiply; false for kFE2M1f with kFE8M0fnu scales (MXFP4): the bias multiply
//     runs, then the scale multiply (two multiplies per register).
//   NVFP4 scales: vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py,
//     nvfp4_marlin_process_scales stores scale * 2^7 as the "S0E5M3" byte (bits 14..7 of its fp16),
//     and nvfp4_marlin_process_global_scale multiplies the global scale by 2^(14 - 7) / 2^(126 - 7),
//     applied to the fp32 accumulators in the epilogue (marlin_template.h lines 1654-1658): the bias is
//     folded into the group scale (2^7) and the global scale. dequant_fp8_scales (dequant.h lines
//     517-562) turns four scale bytes into two registers once per matmul call (8 bytes per 4 words,
//     marlin_template.h lines 1213-1221): fp16 Out = (q & 0xFF00FF00) >> 1, q <<= 8, Out = (q &
//     0xFF00FF00) >> 1; bf16 from S0E5M3 ((q & 0x80008000) >> 1) | ((q & 0x7F007F00) >> 4); bf16
//     from e8m0 Out1 = (q & 0xFF00FF00) >> 1, q <<= 7, Out2 = q & 0x7F807F80.
//   MXFP4 (e8m0 scales) only with bf16 activations (generate_kernels.py, "MXFP4" entry with a_type
//     kBFloat16, lines 102-110; dequant_fp8_scales has no half2 / kFE8M0fnu form): 2^(E-127) is not an
//     fp16 value for most E, and folded with the bias, 2^(E-127) * 2^126 overflows bf16 for E > 128.
#include <dq4/dq4.cuh>

#include "marlin_sequence.hpp"
#include "probe_words.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

namespace marlin_probes {

using dq4::format;

// ---- Device side: the multiplies, with the CUDA types Marlin uses. ----

#if defined(__CUDACC__)

template <format F>
struct marlin_type;
template <>
struct marlin_type<format::fp16> {
  using pair = __half2;
  /// scale(): the 16-bit element i of the scale register in both halves (num2num2).
  __device__ static pair element(pair s, int i) { return __half2half2(i == 0 ? __low2half(s) : __high2half(s)); }
};
template <>
struct marlin_type<format::bf16> {
  using pair = __nv_bfloat162;
  __device__ static pair element(pair s, int i) {
    return __bfloat162bfloat162(i == 0 ? __low2bfloat16(s) : __high2bfloat16(s));
  }
};

template <format F>
__device__ __forceinline__ typename marlin_type<F>::pair as_pair(std::uint32_t bits) {
  typename marlin_type<F>::pair p;
  static_assert(sizeof p == sizeof bits, "two 16-bit values");
  std::memcpy(&p, &bits, sizeof p);
  return p;
}

template <format F>
__device__ __forceinline__ std::uint32_t as_bits(typename marlin_type<F>::pair p) {
  std::uint32_t bits;
  std::memcpy(&bits, &p, sizeof bits);
  return bits;
}

using dq4_probes::result_registers;

/// What one probe word needs besides the word: Marlin's group-scale register (two 16-bit scales,
/// frag_b0's low, frag_b1's high, the bias already folded in), dq4's fragment<F, 8> of scales.
struct group_registers {
  std::uint32_t marlin_scale;
  std::uint32_t scales[4];
};

/// Marlin on one word. SkipFlop = false: the bias multiply (dequant<.., false>); Scaled: scale() on
/// both fragments with the group-scale register.
template <format F, bool SkipFlop, bool Scaled>
struct marlin_conversion {
  static constexpr int registers = 4;
  __device__ result_registers<4> operator()(std::uint32_t word, const group_registers& group) const {
    using type = marlin_type<F>;
    result_registers<4> out;
    marlin_e2m1_bits<F>(word, out.r);
    if constexpr (!SkipFlop) {
      const typename type::pair bias = as_pair<F>(marlin_bias<F>);
      for (int k = 0; k < 4; ++k) out.r[k] = as_bits<F>(__hmul2(as_pair<F>(out.r[k]), bias));
    }
    if constexpr (Scaled) {
      const typename type::pair s = as_pair<F>(group.marlin_scale);
      for (int k = 0; k < 4; ++k) {
        out.r[k] = as_bits<F>(__hmul2(as_pair<F>(out.r[k]), type::element(s, k / 2)));  // frag_b0: 0, frag_b1: 1
      }
    }
    return out;
  }
};

/// Marlin's dequant_fp8_scales on one 32-bit word of four scale bytes (dequant.h lines 517-562):
/// Kind 0: fp16 from the S0E5M3 byte (NVFP4), 1: bf16 from the S0E5M3 byte (NVFP4), 2: bf16 from e8m0
/// (MXFP4). frag_b[1] from bytes 1 and 3, frag_b[0] from bytes 0 and 2 (the scales are stored
/// permuted [0, 2, 1, 3], so that register r holds scales 2r and 2r + 1).
template <int Kind>
struct marlin_scale_conversion {
  static constexpr int registers = 2;
  __device__ result_registers<2> operator()(std::uint32_t q, const group_registers&) const {
    result_registers<2> out;
    if constexpr (Kind == 0) {
      out.r[1] = (q & 0xFF00FF00u) >> 1;
      q <<= 8;
      out.r[0] = (q & 0xFF00FF00u) >> 1;
    } else if constexpr (Kind == 1) {
      out.r[1] = ((q & 0x80008000u) >> 1) | ((q & 0x7F007F00u) >> 4);
      q <<= 8;
      out.r[0] = ((q & 0x80008000u) >> 1) | ((q & 0x7F007F00u) >> 4);
    } else {
      out.r[1] = (q & 0xFF00FF00u) >> 1;
      q <<= 7;
      out.r[0] = q & 0x7F807F80u;
    }
    return out;
  }
};

/// dq4::dequantize<F, e2m1, O> on one word, unscaled or with a scale per element.
template <format F, dq4::order O, bool Scaled>
struct dq4_conversion {
  static constexpr int registers = dq4::fragment<F, 8>::registers;
  __device__ result_registers<registers> operator()(std::uint32_t word, const group_registers& group) const {
    dq4::fragment<F, 8> f{};
    if constexpr (Scaled) {
      dq4::fragment<F, 8> scales{};
      static_assert(sizeof scales.regs == sizeof group.scales, "four scale registers");
      std::memcpy(scales.regs, group.scales, sizeof scales.regs);
      f = dq4::dequantize<F, dq4::encoding::e2m1, O>(word, scales);
    } else {
      f = dq4::dequantize<F, dq4::encoding::e2m1, O>(word);
    }
    result_registers<registers> out;
    for (int k = 0; k < registers; ++k) out.r[k] = f.regs[k];
    return out;
  }
};

#endif  // defined(__CUDACC__)

}  // namespace marlin_probes

#if defined(__CUDACC__)

// Names: probe_<impl>_<format>_<path>_<order>_w32_<n1|n2>. Marlin's paths:
//   e2m1             dequant<.., false>: the bits, then the bias multiply (unscaled values)
//   e2m1_bits        dequant<.., true>: the bits only (e2m1 * 2^-14 / 2^-126, not yet values)
//   e2m1_scaled      dequant<.., true> and scale(): NVFP4 as Marlin runs it (bias in the scales)
//   e2m1_mx_scaled   dequant<.., false> and scale(): MXFP4 as Marlin runs it (bf16 only)
//   <s>_scales       dequant_fp8_scales on a word of four scale bytes (per 4 scales, not 8 values)
// dq4's: e2m1 (unscaled) and e2m1_scaled (a fragment<F, 8> of scales), both orders.
#define MARLIN_PROBE_PAIR(name, ord, ...)                                                                  \
  extern "C" __global__ void probe_##name##_##ord##_w32_n1(const void* in, void* out) {                   \
    dq4_probes::convert_words<__VA_ARGS__, marlin_probes::group_registers, 1>(in, out);                  \
  }                                                                                                        \
  extern "C" __global__ void probe_##name##_##ord##_w32_n2(const void* in, void* out) {                   \
    dq4_probes::convert_words<__VA_ARGS__, marlin_probes::group_registers, 2>(in, out);                  \
  }

#define MARLIN_FORMAT_PROBES(fmt)                                                                          \
  MARLIN_PROBE_PAIR(marlin_##fmt##_e2m1, interleaved, marlin_probes::marlin_conversion<dq4::format::fmt, false, false>) \
  MARLIN_PROBE_PAIR(marlin_##fmt##_e2m1_bits, interleaved,                                                 \
                    marlin_probes::marlin_conversion<dq4::format::fmt, true, false>)                       \
  MARLIN_PROBE_PAIR(marlin_##fmt##_e2m1_scaled, interleaved,                                               \
                    marlin_probes::marlin_conversion<dq4::format::fmt, true, true>)                        \
  MARLIN_PROBE_PAIR(dq4_##fmt##_e2m1, interleaved,                                                         \
                    marlin_probes::dq4_conversion<dq4::format::fmt, dq4::order::interleaved, false>)       \
  MARLIN_PROBE_PAIR(dq4_##fmt##_e2m1, sequential,                                                          \
                    marlin_probes::dq4_conversion<dq4::format::fmt, dq4::order::sequential, false>)        \
  MARLIN_PROBE_PAIR(dq4_##fmt##_e2m1_scaled, interleaved,                                                  \
                    marlin_probes::dq4_conversion<dq4::format::fmt, dq4::order::interleaved, true>)        \
  MARLIN_PROBE_PAIR(dq4_##fmt##_e2m1_scaled, sequential,                                                   \
                    marlin_probes::dq4_conversion<dq4::format::fmt, dq4::order::sequential, true>)

MARLIN_FORMAT_PROBES(fp16)
MARLIN_FORMAT_PROBES(bf16)
MARLIN_PROBE_PAIR(marlin_bf16_e2m1_mx_scaled, interleaved, marlin_probes::marlin_conversion<dq4::format::bf16, false, true>)
MARLIN_PROBE_PAIR(marlin_fp16_e4m3_scales, interleaved, marlin_probes::marlin_scale_conversion<0>)
MARLIN_PROBE_PAIR(marlin_bf16_e4m3_scales, interleaved, marlin_probes::marlin_scale_conversion<1>)
MARLIN_PROBE_PAIR(marlin_bf16_e8m0_scales, interleaved, marlin_probes::marlin_scale_conversion<2>)

#undef MARLIN_FORMAT_PROBES
#undef MARLIN_PROBE_PAIR

#endif  // defined(__CUDACC__)
