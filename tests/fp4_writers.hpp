// SPDX-License-Identifier: Apache-2.0
// Block-scaled fp4 checkpoint writers and readers as their upstream source states their arithmetic,
// so that dq4's fp4 readers are held to other people's code rather than to dq4's own reading of the
// formats. Each function cites the file and function it reproduces and the lines that decide the
// bits. Python's float arithmetic on torch fp32 tensors is fp32 arithmetic here (one IEEE operation,
// rounded to nearest even); the gpt-oss readers' ldexp is done in double, where it is exact.
#pragma once

#include <dq4/dq4.cuh>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace dq4_test {

inline std::uint32_t bits_of(float x) {
  std::uint32_t b = 0;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
inline std::uint64_t bits_of(double x) {
  std::uint64_t b = 0;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
inline float float_of(std::uint32_t bits) {
  float x = 0;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

/// The 4 little-endian bytes safetensors stores for an fp32.
inline std::array<std::uint8_t, 4> le_bytes(float x) {
  const std::uint32_t b = bits_of(x);
  return {static_cast<std::uint8_t>(b), static_cast<std::uint8_t>(b >> 8), static_cast<std::uint8_t>(b >> 16),
          static_cast<std::uint8_t>(b >> 24)};
}

/// An OCP E4M3 ("float8_e4m3fn") byte as an fp32, exactly (every e4m3 value is an fp32); 0x7F and
/// 0xFF are NaN (with the byte's sign), as torch's float8_e4m3fn -> float32 conversion gives.
inline float e4m3_to_float(std::uint8_t byte) {
  const dq4::reference::exact_number x = dq4::reference::number_of(dq4::format::e4m3, byte);
  if (x.nan) return std::copysign(std::numeric_limits<float>::quiet_NaN(), (byte & 0x80u) != 0 ? -1.0f : 1.0f);
  const float magnitude = std::ldexp(static_cast<float>(x.magnitude), x.exponent);
  return x.negative ? -magnitude : magnitude;
}

/// fp32 -> e4m3 byte, to nearest even (torch's .to(torch.float8_e4m3fn); the callers clamp to
/// [2^-9, 448] first, so nothing saturates).
inline std::uint8_t float_to_e4m3(float x) {
  const dq4::reference::exact_number v = dq4::reference::number_of(dq4::format::fp32, bits_of(x));
  return static_cast<std::uint8_t>(dq4::reference::round_to(dq4::format::e4m3, v));
}

// ---- gpt-oss MXFP4 ---------------------------------------------------------------------------

/// blocks [E, N, K/32, 16] and scales [E, N, K/32] bytes, flattened.
struct mxfp4_tensors {
  std::vector<std::uint8_t> blocks, scales;
};

/// ModelOpt's MXFP4 quantizer of one [rows, cols] matrix, quantized along cols in blocks of 32
/// (NVIDIA/Model-Optimizer modelopt/torch/quantization/qtensor/mxfp4_tensor.py, commit a2fbac7,
/// MXFP4QTensor.quantize, lines 38-81):
///   input_amax = input.float().abs().max(dim=-1); descale = input_amax / E2M1_max (6.0)
///   e8m0_scale = torch.ceil(torch.maximum(torch.log2(descale), min_value = -127.0))
///   input = input / torch.exp2(e8m0_scale)
///   cast_fp4: sign = torch.sign(x); sign_bit = (2 - sign) // 2;
///             ord_ = sum((x.abs() - E2M1_bounds) > 0) with bounds 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5
///             fp4_val = sign_bit * 0b1000 + ord_
///   fuse_uint4_to_uint8: odd elements << 4, plus the even elements (low nibble)
///   e8m0_scale = (e8m0_scale + 127).to(torch.uint8)
/// Note what this gives for zeros: torch.sign(0) = 0 makes sign_bit (2 - 0) // 2 = 1, so every
/// zero is written as nibble 8 (-0), and an all-zero block gets the scale byte 0 (log2(0) = -inf,
/// clamped to -127). exp2 of the integer e8m0_scale is the exact power of two (std::ldexp here).
inline void modelopt_mxfp4_quantize(const float* input, std::size_t rows, std::size_t cols, std::uint8_t* blocks,
                                    std::uint8_t* scales) {
  constexpr std::array<float, 7> bounds = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t g = 0; g < cols / 32; ++g) {
      const float* x = input + r * cols + 32 * g;
      float amax = 0;
      for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float descale = amax / 6.0f;
      const float e = std::ceil(std::max(std::log2(descale), -127.0f));
      std::array<unsigned, 32> q{};
      for (std::size_t i = 0; i < 32; ++i) {
        const float v = x[i] / std::ldexp(1.0f, static_cast<int>(e));
        const float sign = v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f;
        const auto sign_bit = static_cast<unsigned>(std::floor((2.0f - sign) / 2.0f));
        unsigned ord = 0;
        for (const float b : bounds) ord += std::fabs(v) - b > 0 ? 1u : 0u;
        q[i] = sign_bit * 8u + ord;
      }
      for (std::size_t b = 0; b < 16; ++b) {
        blocks[(r * (cols / 32) + g) * 16 + b] = static_cast<std::uint8_t>((q[2 * b + 1] << 4) + q[2 * b]);
      }
      scales[r * (cols / 32) + g] = static_cast<std::uint8_t>(static_cast<int>(e) + 127);
    }
  }
}

/// ModelOpt's gpt-oss exporter (NVIDIA/Model-Optimizer examples/gpt-oss/convert_oai_mxfp4_weight_only.py,
/// commit a2fbac7, _to_oai_mxfp4_weight_only, lines 34-51): transformers' expert parameter
/// [E, K, N] (y = x W) is transposed to [E, N, K] (`param.transpose(-1, -2)`), each expert is
/// quantized by MXFP4QTensor.quantize, and the bytes are stored as `_blocks` [E, N, K/32, 16] and
/// `_scales` [E, N, K/32]. `param` is [E][K][N] here.
inline mxfp4_tensors modelopt_gpt_oss_export(const std::vector<float>& param, std::size_t experts, std::size_t k_dim,
                                             std::size_t n_dim) {
  mxfp4_tensors t;
  t.blocks.resize(experts * n_dim * k_dim / 2);
  t.scales.resize(experts * n_dim * k_dim / 32);
  std::vector<float> transposed(n_dim * k_dim);
  for (std::size_t e = 0; e < experts; ++e) {
    for (std::size_t n = 0; n < n_dim; ++n)
      for (std::size_t k = 0; k < k_dim; ++k) transposed[n * k_dim + k] = param[(e * k_dim + k) * n_dim + n];
    modelopt_mxfp4_quantize(transposed.data(), n_dim, k_dim, t.blocks.data() + e * n_dim * k_dim / 2,
                            t.scales.data() + e * n_dim * k_dim / 32);
  }
  return t;
}

/// triton_kernels' MXFP4 packing of e2m1 codes along the quantized axis (triton-lang/triton
/// python/triton_kernels/triton_kernels/numerics_details/mxfp.py, commit 018a674,
/// downcast_to_mxfp_torch: `evens = e2m1_value[..., 0]; odds = e2m1_value[..., 1];
/// out_weight = evens | (odds << 4)`), the quantizer transformers' quantize_to_mxfp4 calls.
inline std::vector<std::uint8_t> triton_mxfp4_pack(const std::vector<unsigned>& codes) {
  std::vector<std::uint8_t> out(codes.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(codes[2 * i] | (codes[2 * i + 1] << 4));
  }
  return out;
}

/// gpt-oss's reader, as transformers copies it (huggingface/transformers
/// src/transformers/integrations/mxfp4.py, commit 0189b1d, convert_moe_packed_tensors; openai/gpt-oss
/// gpt_oss/torch/weights.py, commit 7b58334, Checkpoint._get_mxfp4_tensor, lines 84-117):
///   scales = scales.to(torch.int32) - 127; lut = FP4_VALUES (+0, .5, ..., 6, -0, -.5, ..., -6)
///   sub[:, 0::2] = lut[blk & 0x0F]; sub[:, 1::2] = lut[blk >> 4]; torch.ldexp(sub, exp)
///   out.reshape(*prefix, G, 32).view(*prefix, G * 32) ... .transpose(1, 2)
/// Returns transformers' [E][K][N] values (after its transpose), as exact doubles: torch does the
/// ldexp in the lut's dtype (bf16), where large exponents overflow and 0xFF (2^128) gives +-inf or,
/// in torch versions that compute 2^128 first, NaN for a zero; the exact product is what each of
/// those roundings starts from.
inline std::vector<double> transformers_convert_moe_packed_tensors(const mxfp4_tensors& t, std::size_t experts,
                                                                   std::size_t n_dim, std::size_t groups) {
  constexpr std::array<double, 16> lut = {+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
                                          -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0};
  const std::size_t k_dim = groups * 32;
  std::vector<double> out(experts * k_dim * n_dim);
  for (std::size_t e = 0; e < experts; ++e)
    for (std::size_t n = 0; n < n_dim; ++n)
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t row = (e * n_dim + n) * groups + g;  // rows_total = prod(prefix) * G
        const int exp = static_cast<int>(t.scales[row]) - 127;
        for (std::size_t b = 0; b < 16; ++b) {
          const std::uint8_t blk = t.blocks[row * 16 + b];
          const std::size_t k_lo = 32 * g + 2 * b, k_hi = k_lo + 1;  // sub[:, 0::2], sub[:, 1::2]
          out[(e * k_dim + k_lo) * n_dim + n] = std::ldexp(lut[blk & 0x0Fu], exp);
          out[(e * k_dim + k_hi) * n_dim + n] = std::ldexp(lut[blk >> 4], exp);
        }
      }
  return out;
}

/// triton_kernels' torch reference dequantizer's scale (mxfp.py, upcast_from_mxfp_torch:
/// `dq_scale = (scale.to(torch.int32) << 23).view(torch.float32)`): the byte in the fp32 exponent
/// field, so 0 is +0 (not 2^-127) and 0xFF is +inf.
inline float triton_upcast_scale(std::uint8_t e) { return float_of(static_cast<std::uint32_t>(e) << 23); }

// ---- NVFP4 -----------------------------------------------------------------------------------

/// weight [N, K/2], weight_scale [N, K/16] (e4m3 bytes) and the per-tensor fp32.
struct nvfp4_tensors {
  std::vector<std::uint8_t> weight, weight_scale;
  float global_scale = 0;
};

/// ModelOpt's e2m1 cast (modelopt/torch/quantization/qtensor/nvfp4_tensor.py, commit a2fbac7,
/// NVFP4QTensor._cast_fp4, lines 230-250): sign_bit = (weight < 0) (so -0.0 gets 0, but a small
/// negative that rounds to 0 gets 1: nibble 8); ord = torch.searchsorted(e2m1_bounds, |w|) (the
/// number of bounds below |w|), plus 1 where |w| is one of the odd bounds 0.75, 1.75, 3.5;
/// (sign_bit << 3) + ord + equals_odd_bounds.
inline unsigned modelopt_cast_fp4(float w) {
  constexpr std::array<float, 7> bounds = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  const unsigned sign_bit = w < 0 ? 1u : 0u;
  const float a = std::fabs(w);
  unsigned ord = 0;
  for (const float b : bounds) ord += b < a ? 1u : 0u;
  const unsigned odd = a == 0.75f || a == 1.75f || a == 3.5f ? 1u : 0u;
  return (sign_bit << 3) + ord + odd;
}

/// ModelOpt's NVFP4 export of one [rows, cols] weight (nvfp4_tensor.py): get_weights_scaling_factor_2
/// = amax / (E2M1_MAX * E4M3_MAX) = amax / 2688 (line 207); get_weights_scaling_factor:
/// per_block_scale = per_block_amax / (E2M1_MAX * weights_scaling_factor_2), 0 -> 1.0, clamped to
/// [2^-9, 448] and cast to float8_e4m3fn (lines 192-201, 46); quantize: scaled_weight = input /
/// (weights_scaling_factor.to(float32) * weights_scaling_factor_2) (lines 325-327), _cast_fp4, and
/// packed = (q_weight[..., 1::2] << 4) | q_weight[..., 0::2] (line 337).
inline nvfp4_tensors modelopt_nvfp4_export(const std::vector<float>& input, std::size_t rows, std::size_t cols) {
  nvfp4_tensors t;
  float amax = 0;
  for (const float x : input) amax = std::max(amax, std::fabs(x));
  const float wsf2 = amax / 2688.0f;
  t.global_scale = wsf2;
  t.weight.resize(rows * cols / 2);
  t.weight_scale.resize(rows * cols / 16);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t g = 0; g < cols / 16; ++g) {
      const float* x = input.data() + r * cols + 16 * g;
      float block_amax = 0;
      for (std::size_t i = 0; i < 16; ++i) block_amax = std::max(block_amax, std::fabs(x[i]));
      float s = block_amax / (6.0f * wsf2);
      if (s == 0) s = 1.0f;
      const std::uint8_t s8 = float_to_e4m3(std::min(std::max(s, 0x1p-9f), 448.0f));
      t.weight_scale[r * (cols / 16) + g] = s8;
      const float divisor = e4m3_to_float(s8) * wsf2;
      std::array<unsigned, 16> q{};
      for (std::size_t i = 0; i < 16; ++i) q[i] = modelopt_cast_fp4(x[i] / divisor);
      for (std::size_t b = 0; b < 8; ++b) {
        t.weight[r * (cols / 2) + 8 * g + b] = static_cast<std::uint8_t>((q[2 * b + 1] << 4) | q[2 * b]);
      }
    }
  }
  return t;
}

/// ModelOpt's reader (nvfp4_tensor.py, NVFP4QTensor.dequantize, lines 349-361 and 390-406):
/// unpacked[..., 0::2] = byte & 0x0F, unpacked[..., 1::2] = byte >> 4, looked up in e2m1_values =
/// [0, 0.5, ..., 6, 0, -0.5, ..., -6] (line 27: index 8 is +0, not -0); per_block_scale =
/// q_per_block_scale.to(float32) * double_scale; value * per_block_scale. [rows][cols] fp32.
inline std::vector<float> modelopt_nvfp4_dequantize(const nvfp4_tensors& t, std::size_t rows, std::size_t cols) {
  constexpr std::array<float, 16> e2m1_values = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<float> out(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < cols; ++k) {
      const std::uint8_t byte = t.weight[r * (cols / 2) + k / 2];
      const unsigned n = k % 2 == 0 ? byte & 0x0Fu : byte >> 4u;
      const float per_block_scale = e4m3_to_float(t.weight_scale[r * (cols / 16) + k / 16]) * t.global_scale;
      out[r * cols + k] = e2m1_values[n] * per_block_scale;
    }
  return out;
}

/// compressed-tensors' packer (vllm-project/compressed-tensors, commit ac8e2ba,
/// src/compressed_tensors/compressors/nvfp4/helpers.py, pack_fp4_to_uint8, lines 108-156, the torch
/// path): sign = torch.signbit(x); x = (x * 2).to(torch.int8).abs_(); indices 1, 2, 3, 4, 5, 6, 7
/// for 1, 2, 3, 4, 6, 8 and >= 12; indices | (sign << 3); packed = indices[:, 0] |
/// (indices[:, 1] << 4) over consecutive pairs. `values` are e2m1 values (already quantized).
inline std::vector<std::uint8_t> ct_pack_fp4_to_uint8(const std::vector<float>& values) {
  std::vector<unsigned> indices(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const unsigned sign = std::signbit(values[i]) ? 1u : 0u;
    const int x = std::abs(static_cast<int>(static_cast<std::int8_t>(values[i] * 2)));
    unsigned index = 0;
    if (x == 1) index = 1;
    if (x == 2) index = 2;
    if (x == 3) index = 3;
    if (x == 4) index = 4;
    if (x == 6) index = 5;
    if (x == 8) index = 6;
    if (x >= 12) index = 7;
    indices[i] = index | (sign << 3);
  }
  std::vector<std::uint8_t> packed(values.size() / 2);
  for (std::size_t i = 0; i < packed.size(); ++i) {
    packed[i] = static_cast<std::uint8_t>(indices[2 * i] | (indices[2 * i + 1] << 4));
  }
  return packed;
}

/// compressed-tensors' global scale (src/compressed_tensors/quantization/utils/helpers.py,
/// generate_gparam, lines 324-337): max_val_pos = clamp(amax, min=finfo(float32).tiny);
/// global_scale = scale_data.max * quant_data.max / max_val_pos = 448.0 * 6.0 / max_val_pos in fp32;
/// NaN and infinities replaced by 1.0.
inline float ct_generate_gparam(float amax) {
  const float max_val_pos = std::max(amax, std::numeric_limits<float>::min());
  const float g = 2688.0f / max_val_pos;
  return std::isfinite(g) ? g : 1.0f;
}

/// compressed-tensors' reader (nvfp4/base.py, NVFP4PackedCompressor.decompress, lines 108-123, and
/// quantization/lifecycle/forward_helpers.py, _dequantize): unpack_fp4_from_uint8 (helpers.py lines
/// 160-193: low nibble first, kE2M1[abs] * where(sign, -1.0, 1.0), so nibble 8 is -0.0); weight_scale
/// to the unpacked dtype (e4m3 -> bf16, exact); `scale = scale / global_scale` (a bf16 [N, G]
/// tensor by an fp32 [1] tensor: fp32); `x_q.to(scale.dtype) * scale`. [rows][cols] fp32 (the final
/// .to(bf16) rounds these values).
inline std::vector<float> ct_decompress(const nvfp4_tensors& t, std::size_t rows, std::size_t cols) {
  constexpr std::array<float, 8> kE2M1 = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  std::vector<float> out(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < cols; ++k) {
      const std::uint8_t byte = t.weight[r * (cols / 2) + k / 2];
      const unsigned n = k % 2 == 0 ? byte & 0x0Fu : (byte & 0xF0u) >> 4u;
      const float value = kE2M1[n & 7u] * ((n & 8u) != 0 ? -1.0f : 1.0f);
      const float scale = e4m3_to_float(t.weight_scale[r * (cols / 16) + k / 16]) / t.global_scale;
      out[r * cols + k] = value * scale;
    }
  return out;
}

/// vLLM's multiplier from a compressed-tensors global scale (vllm/model_executor/layers/quantization/
/// compressed_tensors/schemes/compressed_tensors_w4a4_nvfp4.py and compressed_tensors_w4a16_nvfp4.py,
/// process_weights_after_loading: `1.0 / layer.weight_global_scale.max().to(torch.float32)`, which
/// torch evaluates as reciprocal(x) * 1.0, an fp32 IEEE division).
inline float vllm_ct_weight_global_scale(float stored) { return 1.0f / stored; }

}  // namespace dq4_test
