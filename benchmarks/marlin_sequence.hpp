// SPDX-License-Identifier: Apache-2.0
// Marlin's e2m1 (fp4) bit moves (vLLM csrc/quantization/marlin/dequant.h, dequant<.., kFE2M1f, ..>;
// see benchmarks/marlin_probes.cu for the facts and their sources), restated for dq4's benchmarks:
// counted by marlin_probes.cu, timed by alu_bound.cu. Host and device.
#pragma once

#include <dq4/dq4.cuh>

#include <cstdint>

#if defined(__CUDACC__)
#define DQ4_MARLIN_HD __host__ __device__ __forceinline__
#else
#define DQ4_MARLIN_HD inline
#endif

namespace marlin_probes {

using dq4::format;

// ---- The Marlin sequence (integer part), also compiled for the host so that it can be checked. ----

/// Marlin's right shift of the e2m1 bits into the 16-bit format: exponent bits of the format minus
/// e2m1's 2 (dequant.h: FP16_EXPONENT - FP4_EXPONENT = 3, BF16_EXPONENT - FP4_EXPONENT = 6).
template <format F>
constexpr unsigned marlin_shift = F == format::fp16 ? 3u : 6u;

/// The bias Marlin multiplies by when skip_flop is false, in both halves: fp16 2^14 (exponent field
/// 14 + 15 = 29), bf16 2^126 (exponent field 126 + 127 = 253). dequant.h builds the same values with
/// __float2half2_rn / __float2bfloat162_rn; here they are written as bit patterns.
template <format F>
constexpr std::uint32_t marlin_bias = F == format::fp16 ? 0x74007400u : 0x7E807E80u;

/// One call of Marlin's dequant<.., kFE2M1f, true> on q: out[0] = nibbles 2 and 6 of q, out[1] =
/// nibbles 3 and 7, as the format's bits of e2m1 * 2^-14 (fp16) or e2m1 * 2^-126 (bf16).
template <format F>
DQ4_MARLIN_HD void marlin_dequant_call(std::uint32_t q, std::uint32_t* out) {
  constexpr unsigned shift = marlin_shift<F>;
  const std::uint32_t top = (q & 0x80008000u) | ((q & 0x70007000u) >> shift);  // nibbles 3, 7
  q <<= 4;
  const std::uint32_t next = (q & 0x80008000u) | ((q & 0x70007000u) >> shift);  // nibbles 2, 6
  out[1] = top;
  out[0] = next;
}

/// Marlin's two calls per word (b_quant_0 = word << 8 for frag_b0, b_quant_1 = word for frag_b1):
/// r[0..1] = frag_b0 (nibbles 0 4, 1 5), r[2..3] = frag_b1 (nibbles 2 6, 3 7), before any multiply.
template <format F>
DQ4_MARLIN_HD void marlin_e2m1_bits(std::uint32_t word, std::uint32_t* r) {
  marlin_dequant_call<F>(word << 8, r);
  marlin_dequant_call<F>(word, r + 2);
}

}  // namespace marlin_probes
