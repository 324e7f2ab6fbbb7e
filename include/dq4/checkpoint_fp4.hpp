// SPDX-License-Identifier: Apache-2.0
//
// dq4 block-scaled fp4 checkpoint layouts (host only): gpt-oss MXFP4 (Hugging Face safetensors
// `*_blocks` / `*_scales`) and NVFP4 as NVIDIA ModelOpt and compressed-tensors export it, turned into
// the layout dq4's e2m1 paths read: words of eight consecutive input features (order::sequential,
// encoding::e2m1), one row per output feature, and the block scales next to them.
//
// Every tensor is passed as the bytes safetensors stores (little-endian) with its shape, so that a
// loader hands over what it read without converting anything; words and the fp32 global scale are
// composed from those bytes with shifts, whatever the host's byte order. Every layout rule below
// names the upstream file and function it comes from (the commits read are given with each).
//
// Like <dq4/checkpoint.hpp>, every function here reports bad input (null tensors, shapes that are
// empty, do not match or do not fit in memory, input widths that are not a whole number of blocks,
// global scales no writer produces, enum values that name no enumerator) by throwing
// dq4::layout_error with the numbers.
#pragma once

#include <dq4/checkpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace dq4 {

/// Which program wrote an NVFP4 checkpoint: it decides the tensor names and what the stored global
/// scale means.
enum class nvfp4_checkpoint {
  /// NVIDIA ModelOpt (hf_quant_config.json quant_algo "NVFP4" / "W4A16_NVFP4"): `weight`,
  /// `weight_scale`, `weight_scale_2`; weight_scale_2 = amax / (6 * 448) multiplies (amax / (6 *
  /// 256) under ModelOpt's four_over_six recipe: still the multiplier).
  modelopt,
  /// compressed-tensors, format "nvfp4-pack-quantized": `weight_packed`, `weight_scale`,
  /// `weight_global_scale`; weight_global_scale = 6 * 448 / amax divides.
  compressed_tensors,
};

/// How nvfp4_matrix::global_scale (the multiplier g in w = e2m1 * s * g) was obtained from the stored
/// per-tensor scale.
enum class nvfp4_global_scale {
  /// g is the stored fp32, bit for bit (ModelOpt's weight_scale_2).
  stored_multiplier,
  /// g = 1 / stored, rounded once to fp32 (to nearest, ties to even), as vLLM's compressed-tensors
  /// NVFP4 schemes compute it when loading (`1.0 / layer.weight_global_scale.max().to(torch.float32)`:
  /// torch's reciprocal of an fp32 tensor, one IEEE division).
  fp32_reciprocal_of_stored,
};

namespace detail {

[[nodiscard]] inline std::string nvfp4_checkpoint_name(nvfp4_checkpoint c) {
  switch (c) {
    case nvfp4_checkpoint::modelopt: return "modelopt";
    case nvfp4_checkpoint::compressed_tensors: return "compressed_tensors";
  }
  return "nvfp4_checkpoint(" + std::to_string(static_cast<int>(c)) + ")";
}

/// "[a, b, c]" for messages.
[[nodiscard]] inline std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  return text + "]";
}

/// "1.5 (0x3FC00000)" for messages: an fp32 bit pattern as a number and as bits.
[[nodiscard]] inline std::string fp32_bits_text(std::uint32_t bits) {
  float value = 0;
  std::memcpy(&value, &bits, sizeof value);
  char text[64];
  std::snprintf(text, sizeof text, "%.9g (0x%08lX)", static_cast<double>(value), static_cast<unsigned long>(bits));
  return text;
}

/// The number of elements of a tensor of `shape`, checked: the product must fit in size_t and in a
/// std::vector<std::uint8_t> (detail::element_count). A dimension of 0 is an error (no checkpoint
/// tensor of these layouts is empty), reported with the whole shape.
[[nodiscard]] inline std::size_t tensor_elements(const std::vector<std::size_t>& shape, const char* name,
                                                 const std::string& who) {
  for (const std::size_t d : shape) {
    if (d == 0) throw layout_error(who + ": " + name + " has shape " + shape_text(shape) + ", which is empty");
  }
  const std::string what = std::string(name) + " " + shape_text(shape);
  std::size_t count = 1;
  for (const std::size_t d : shape) count = element_count<std::uint8_t>(count, d, what.c_str(), who);
  return count;
}

inline void check_fp4_tensor(const void* tensor, const char* name, const std::string& who) {
  if (tensor == nullptr) throw layout_error(who + ": null " + name + " tensor");
}

/// The 32-bit words of `count` * 4 bytes, byte 4i + b at bits 8b..8b+7 of word i: two e2m1 values
/// per byte with the first in the low nibble (see the callers for the upstream sources) make nibble
/// j of word i the element 8i + j, dq4's order::sequential.
[[nodiscard]] inline std::vector<std::uint32_t> words_of_bytes(const std::uint8_t* bytes, std::size_t count) {
  std::vector<std::uint32_t> words(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint8_t* b = bytes + 4 * i;
    words[i] = static_cast<std::uint32_t>(b[0]) | static_cast<std::uint32_t>(b[1]) << 8 |
               static_cast<std::uint32_t>(b[2]) << 16 | static_cast<std::uint32_t>(b[3]) << 24;
  }
  return words;
}

/// The fp32 bit pattern of 4 little-endian bytes (safetensors stores F32 little-endian).
[[nodiscard]] inline std::uint32_t fp32_bits_of_bytes(const std::uint8_t* b) noexcept {
  return static_cast<std::uint32_t>(b[0]) | static_cast<std::uint32_t>(b[1]) << 8 |
         static_cast<std::uint32_t>(b[2]) << 16 | static_cast<std::uint32_t>(b[3]) << 24;
}

[[nodiscard]] constexpr bool fp32_is_finite(std::uint32_t bits) noexcept { return (bits & 0x7F800000u) != 0x7F800000u; }

/// 1 / x rounded once to fp32 (to nearest, ties to even, with subnormal results and overflow to
/// infinity), for the bit pattern of a positive finite nonzero fp32 x, with integer arithmetic only:
/// the same bits as an IEEE division 1.0f / x, whatever the compiler's floating-point flags.
/// x = M * 2^e (M < 2^24), so 1 / x = (2^62 / M) * 2^(-62-e): the quotient q = floor(2^62 / M) has
/// at least 39 significant bits and the remainder only says whether it is exact, which a sticky bit
/// below q keeps. round_to drops at least 15 of those bits, so the sticky bit never sits at a
/// rounding boundary and decides ties exactly as the infinitely precise quotient would.
[[nodiscard]] constexpr std::uint32_t fp32_reciprocal_bits(std::uint32_t positive_finite_bits) noexcept {
  const reference::exact_number x = reference::number_of(format::fp32, positive_finite_bits);
  const std::uint64_t numerator = std::uint64_t{1} << 62;
  const std::uint64_t q = numerator / x.magnitude, r = numerator % x.magnitude;
  const reference::exact_number y{false, (q << 1) | (r != 0 ? 1u : 0u), -62 - x.exponent - 1, false, false};
  return reference::round_to(format::fp32, y);
}

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// gpt-oss MXFP4
// ------------------------------------------------------------------------------------------------

/// MXFP4 expert weights in the layout dq4's e2m1 paths read. For expert e, the weight of output
/// feature n (row) and input feature k (column) is e2m1 nibble k % 8 of words[(e * N + n) * K/8 + k/8]
/// (order::sequential, encoding::e2m1) times 2^(scales[(e * N + n) * K/32 + k/32].bits - 127). The
/// rows are in the checkpoint's order: for gpt-oss's gate_up_proj (mlp1) that is gate and up
/// interleaved (gate in the even rows, up in the odd ones; openai/gpt-oss gpt_oss/torch/model.py,
/// swiglu: x[..., ::2], x[..., 1::2]). The accessors check their indices (std::out_of_range).
struct mxfp4_matrix {
  static constexpr std::size_t block_size = 32;  // e2m1 values per e8m0 scale
  std::size_t experts = 0, rows = 0, cols = 0;   // E (1 for a 3-D tensor), N, K
  std::vector<std::uint32_t> words;              // [E][N][K / 8]
  std::vector<e8m0> scales;                      // [E][N][K / 32]

  [[nodiscard]] std::size_t words_per_row() const noexcept { return cols / 8; }
  [[nodiscard]] std::size_t blocks_per_row() const noexcept { return cols / block_size; }
  /// The e2m1 nibble (0..15) of expert e's W[n][k].
  [[nodiscard]] unsigned nibble(std::size_t e, std::size_t n, std::size_t k) const {
    check_index(e, n, k, "nibble");
    return reference::nibble(words[(e * rows + n) * words_per_row() + k / 8], static_cast<int>(k % 8));
  }
  /// The e8m0 scale of the block holding expert e's W[n][k].
  [[nodiscard]] e8m0 scale(std::size_t e, std::size_t n, std::size_t k) const {
    check_index(e, n, k, "scale");
    return scales[(e * rows + n) * blocks_per_row() + k / block_size];
  }

 private:
  void check_index(std::size_t e, std::size_t n, std::size_t k, const char* what) const {
    if (e >= experts || n >= rows || k >= cols) {
      throw std::out_of_range("dq4::mxfp4_matrix::" + std::string(what) + "(" + std::to_string(e) + ", " +
                              std::to_string(n) + ", " + std::to_string(k) + "): the matrix has " +
                              std::to_string(experts) + " experts of " + std::to_string(rows) + " rows of " +
                              std::to_string(cols) + " columns");
    }
  }
};

/// A gpt-oss MXFP4 tensor pair as stored in the Hugging Face checkpoint (e.g.
/// model.layers.L.mlp.experts.gate_up_proj_blocks / _scales, and down_proj_*; openai's original
/// checkpoint names them block.L.mlp.mlp1_weight.blocks / .scales, with the same layout):
///
///   blocks  uint8 [E, N, K/32, 16]: byte b of block g of row n holds input features 32g + 2b (low
///           nibble) and 32g + 2b + 1 (high nibble), as e2m1 (nibble 8 is -0).
///   scales  uint8 [E, N, K/32]: e8m0, the block's values are multiplied by 2^(byte - 127).
///
/// N is the output feature count and K the input feature count (the last dimensions are along K).
/// A 3-D pair ([N, K/32, 16] and [N, K/32]) is read as one matrix (experts = 1). Sources:
/// - openai/gpt-oss gpt_oss/torch/weights.py (commit 7b58334), Checkpoint._get_mxfp4_tensor: the
///   table FP4_VALUES = +0, .5, 1, 1.5, 2, 3, 4, 6, -0, -.5, ..., -6 (lines 11-14), `scales - 127`
///   (line 84), `assert blocks.shape[:-1] == scales.shape` (86), `idx_lo = blk & 0x0F` into the
///   even outputs `sub[:, 0::2]` and `idx_hi = blk >> 4` into the odd ones (107-112),
///   `torch.ldexp(sub, exp)` (114), and the reshape of [..., G, 16] to [..., G * 32] (117): no
///   special case for any scale byte (0 is 2^-127, 0xFF is 2^128 there; OCP MX and dq4 read 0xFF as
///   NaN). gpt_oss/torch/model.py, MLPBlock: mlp1_weight is [experts, 2 * intermediate, hidden] and
///   is used as einsum("beck,bk->bec"), so its last dimension is the input (lines 275-285, 322).
/// - huggingface/transformers src/transformers/integrations/mxfp4.py (commit 0189b1d),
///   convert_moe_packed_tensors: the same table, nibble order and ldexp (a copy of the gpt-oss
///   code), then `out.transpose(1, 2)` to transformers' [E, K, N] parameter: the transpose happens
///   after dequantization; the stored tensors are [E, N, K/32, 16] (Mxfp4GptOssExperts declares
///   gate_up_proj_blocks as [E, 2 * intermediate, hidden / 32, 16]).
/// - Writers: NVIDIA/Model-Optimizer examples/gpt-oss/convert_oai_mxfp4_weight_only.py (commit
///   a2fbac7), _to_oai_mxfp4_weight_only, transposes transformers' [E, K, N] to [E, N, K] and stores
///   MXFP4QTensor.quantize's bytes as [E, N, K/32, 16] (lines 35-50); its fuse_uint4_to_uint8 puts
///   even elements in the low nibble (modelopt/torch/quantization/qtensor/mxfp4_tensor.py lines
///   55-62). triton-lang/triton python/triton_kernels/triton_kernels/numerics_details/mxfp.py
///   (commit 018a674), downcast_to_mxfp_torch: `evens | (odds << 4)`.
/// K is 32 times the block count by construction (the blocks tensor cannot hold a partial block),
/// so there is no padding to undo. Throws layout_error for null tensors, shapes of another rank,
/// empty shapes, a last blocks dimension other than 16, scales whose shape is not blocks' without
/// its last dimension, and sizes that do not fit in memory.
[[nodiscard]] inline mxfp4_matrix from_gpt_oss_mxfp4(const std::uint8_t* blocks,
                                                     const std::vector<std::size_t>& blocks_shape,
                                                     const std::uint8_t* scales,
                                                     const std::vector<std::size_t>& scales_shape) {
  const std::string who = "dq4::from_gpt_oss_mxfp4";
  detail::check_fp4_tensor(blocks, "blocks", who);
  detail::check_fp4_tensor(scales, "scales", who);
  if (blocks_shape.size() != 4 && blocks_shape.size() != 3) {
    throw layout_error(who + ": blocks has shape " + detail::shape_text(blocks_shape) + " (rank " +
                       std::to_string(blocks_shape.size()) +
                       "): gpt-oss MXFP4 blocks are [E, N, K/32, 16] or [N, K/32, 16]");
  }
  const std::size_t byte_count = detail::tensor_elements(blocks_shape, "blocks", who);
  if (blocks_shape.back() != 16) {
    throw layout_error(who + ": blocks has shape " + detail::shape_text(blocks_shape) + ": its last dimension is " +
                       std::to_string(blocks_shape.back()) + ", not 16 (32 e2m1 values, two per byte, per block)");
  }
  const std::vector<std::size_t> expected(blocks_shape.begin(), blocks_shape.end() - 1);
  if (scales_shape != expected) {
    throw layout_error(who + ": scales has shape " + detail::shape_text(scales_shape) + ", but blocks of shape " +
                       detail::shape_text(blocks_shape) + " need scales of shape " + detail::shape_text(expected) +
                       " (one e8m0 byte per 16-byte block)");
  }
  const std::size_t scale_count = detail::tensor_elements(scales_shape, "scales", who);
  mxfp4_matrix m;
  m.experts = blocks_shape.size() == 4 ? blocks_shape[0] : 1;
  m.rows = blocks_shape[blocks_shape.size() - 3];
  m.cols = detail::element_count<std::uint8_t>(blocks_shape[blocks_shape.size() - 2], 32, "a row of blocks", who);
  const std::size_t word_count = detail::element_count<std::uint32_t>(byte_count / 4, 1, "words", who);
  (void)detail::element_count<e8m0>(scale_count, 1, "scales", who);
  // Each row is K/2 consecutive bytes (G blocks of 16), a multiple of 4: the word composition runs
  // over the whole tensor, and nibble j of word w of a row is element 8w + j along K.
  m.words = detail::words_of_bytes(blocks, word_count);
  m.scales.resize(scale_count);
  for (std::size_t i = 0; i < scale_count; ++i) m.scales[i] = e8m0{scales[i]};
  return m;
}

// ------------------------------------------------------------------------------------------------
// NVFP4 (ModelOpt, compressed-tensors)
// ------------------------------------------------------------------------------------------------

/// An NVFP4 linear weight in the layout dq4's e2m1 paths read. W[n][k] (n: output feature, k: input
/// feature) = e2m1 nibble k % 8 of words[n * K/8 + k/8] (order::sequential, encoding::e2m1) times
/// the e4m3 (OCP E4M3, "e4m3fn") scale byte scales[n * K/16 + k/16] times global_scale. Nothing is
/// rounded or checked in the scale bytes: NaN bytes (0x7F, 0xFF) and -0 (0x80) are kept as stored.
///
/// `global_scale` is always the multiplier g. Where it comes from (`global_scale_from`):
/// - ModelOpt stores g itself (weight_scale_2), and its own dequantization and vLLM multiply by it.
/// - compressed-tensors stores the divisor D = 6 * 448 / amax (weight_global_scale), and
///   g = 1 / D rounded once to fp32, which is what vLLM's compressed-tensors NVFP4 schemes multiply
///   by (so the bits match vLLM's). compressed-tensors' own decompression divides instead
///   (compressed_tensors/quantization/lifecycle/forward_helpers.py, _dequantize:
///   `scale = scale / global_scale`, in fp32, then `x_q * scale`): s / D and s * g can differ in the
///   last bit, so `stored_global_scale` keeps D for code that reproduces that division.
/// For ModelOpt, stored_global_scale == global_scale. The accessors check their indices.
struct nvfp4_matrix {
  static constexpr std::size_t block_size = 16;  // e2m1 values per e4m3 scale
  std::size_t rows = 0, cols = 0;                // N, K
  nvfp4_checkpoint checkpoint = nvfp4_checkpoint::modelopt;
  nvfp4_global_scale global_scale_from = nvfp4_global_scale::stored_multiplier;
  std::vector<std::uint32_t> words;  // [N][K / 8]
  std::vector<std::uint8_t> scales;  // [N][K / 16], e4m3 bit patterns
  float global_scale = 0;            // g in w = e2m1 * s * g
  float stored_global_scale = 0;     // the checkpoint's fp32 (ModelOpt: g; compressed-tensors: D = 1 / g)

  [[nodiscard]] std::size_t words_per_row() const noexcept { return cols / 8; }
  [[nodiscard]] std::size_t blocks_per_row() const noexcept { return cols / block_size; }
  /// The e2m1 nibble (0..15) of W[n][k].
  [[nodiscard]] unsigned nibble(std::size_t n, std::size_t k) const {
    check_index(n, k, "nibble");
    return reference::nibble(words[n * words_per_row() + k / 8], static_cast<int>(k % 8));
  }
  /// The e4m3 scale byte of the block holding W[n][k].
  [[nodiscard]] std::uint8_t scale(std::size_t n, std::size_t k) const {
    check_index(n, k, "scale");
    return scales[n * blocks_per_row() + k / block_size];
  }

 private:
  void check_index(std::size_t n, std::size_t k, const char* what) const {
    if (n >= rows || k >= cols) {
      throw std::out_of_range("dq4::nvfp4_matrix::" + std::string(what) + "(" + std::to_string(n) + ", " +
                              std::to_string(k) + "): the matrix has " + std::to_string(rows) + " rows of " +
                              std::to_string(cols) + " columns");
    }
  }
};

/// An NVFP4 linear layer as `checkpoint` exports it (no default: the checkpoint says which). The
/// tensors, in safetensors order and bytes:
///
///                     ModelOpt         compressed-tensors    dtype, shape
///   weight            weight           weight_packed         uint8 [N, K/2]: byte b of row n holds
///                                                            k = 2b (low nibble), 2b + 1 (high)
///   weight_scale      weight_scale     weight_scale          float8_e4m3fn [N, K/16], raw bytes
///   global_scale      weight_scale_2   weight_global_scale   float32, shape [] or [1]
///
/// Sources (the same packing for both; compressed-tensors' ModelOpt converter copies weight and
/// weight_scale unchanged and stores 1 / weight_scale_2 as weight_global_scale,
/// src/compressed_tensors/entrypoints/convert/converters/modelopt_nvfp4.py lines 44-46, 60-74):
/// - NVIDIA/Model-Optimizer (formerly TensorRT-Model-Optimizer)
///   modelopt/torch/quantization/qtensor/nvfp4_tensor.py (commit a2fbac7):
///   NVFP4QTensor.quantize packs `(q_weight[..., 1::2] << 4) | q_weight[..., 0::2]` (line 337:
///   the even element in the low nibble) of the values divided by weight_scale * weight_scale_2
///   (lines 325-327); get_weights_scaling_factor_2 = amax / (6 * 448) (line 207);
///   get_weights_scaling_factor asserts `input.shape[-1] % block_size == 0` (lines 187-189), and
///   the exporter (modelopt/torch/export/unified_export_hf.py, _export_quantized_weight, line 760)
///   computes weight_scale with it, so K is a multiple of 16; dequantize multiplies
///   `q_per_block_scale * per_block_quant_scale` (lines 390-406). The per-block scales are stored
///   unswizzled: _compressed_per_block_scale (unified_export_hf.py line 545) converts TensorRT-LLM's
///   swizzled 1-D scales back before export. ModelOpt's bmm-style expert tensors (Llama4TextExperts,
///   GptOssExperts) are stored transposed, [E, K/2, N] (maybe_transpose_expert_weight_dimensions,
///   modelopt/torch/export/quant_utils.py line 105): 3-D tensors are refused.
/// - vllm-project/vllm vllm/model_executor/layers/quantization/modelopt.py (commit 00155cd),
///   ModelOptNvFp4LinearMethod.create_weights: "Unsupported model when in features size is not
///   multiple of 16", weight [N, K/2] uint8 "2 fp4 items are packed in the input dimension",
///   weight_scale [N, K/group_size] float8_e4m3fn; process_weights_after_loading multiplies
///   weight_scale_2 into alpha; the W4A16 method keeps weight_scale_2 "without reciprocation".
/// - vllm-project/compressed-tensors (commit ac8e2ba) src/compressed_tensors/compressors/nvfp4/
///   helpers.py, pack_fp4_to_uint8: `indices[:, 0] | (indices[:, 1] << 4)` (line 154), sign from
///   torch.signbit (line 134, so -0.0 is nibble 8), odd widths refused (lines 127-130);
///   unpack_fp4_from_uint8 puts the low nibble first (line 182). nvfp4/base.py, compress: scales
///   cast to `scale_dtype or torch.float8_e4m3fn` (line 52). quantization/utils/helpers.py,
///   generate_gparam: global_scale = 448 * 6 / amax in fp32, amax clamped to the smallest normal
///   and NaN or infinity replaced by 1 (lines 326-337): always positive and finite.
///   quantization/lifecycle/forward_helpers.py, _process_group: a width of at least 16 that is not
///   a multiple of 16 raises (lines 141-145), and a narrower one cannot be unflattened into a group
///   of 16 (line 155), so K is a multiple of 16.
/// - vllm-project/vllm .../compressed_tensors/schemes/compressed_tensors_w4a4_nvfp4.py (commit
///   0094cb9) and compressed_tensors_w4a16_nvfp4.py (commit 17b6501),
///   process_weights_after_loading: "CT stores as divisors", `1.0 /
///   layer.weight_global_scale.max().to(torch.float32)`; create_weights: weight_packed [N, K/2]
///   uint8, weight_scale [N, K/16] float8_e4m3fn. (For fused layers, q/k/v, vLLM takes the max of
///   the parts' stored scales without re-scaling the others' fp8 scales; one layer at a time, as
///   read here, has one.)
/// The weight_scale bytes must be the checkpoint's F8_E4M3 tensor (a compressed-tensors scheme
/// with another scale_dtype is not this layout; asymmetric schemes, with a weight_zero_point, are
/// not either). Throws layout_error for null tensors, an enum value that names no enumerator,
/// shapes of another rank, empty, mismatched or too large, K not a multiple of 16, and a global
/// scale no writer of `checkpoint` produces (ModelOpt: not finite or negative; compressed-tensors:
/// not finite or not positive, or whose reciprocal overflows fp32).
[[nodiscard]] inline nvfp4_matrix from_nvfp4(nvfp4_checkpoint checkpoint, const std::uint8_t* weight,
                                             const std::vector<std::size_t>& weight_shape,
                                             const std::uint8_t* weight_scale,
                                             const std::vector<std::size_t>& weight_scale_shape,
                                             const std::uint8_t* global_scale,
                                             const std::vector<std::size_t>& global_scale_shape) {
  std::string who = "dq4::from_nvfp4";
  if (checkpoint != nvfp4_checkpoint::modelopt && checkpoint != nvfp4_checkpoint::compressed_tensors) {
    throw layout_error(who + ": checkpoint " + detail::nvfp4_checkpoint_name(checkpoint) +
                       " names no dq4::nvfp4_checkpoint enumerator");
  }
  const bool modelopt = checkpoint == nvfp4_checkpoint::modelopt;
  who += std::string(" (") + detail::nvfp4_checkpoint_name(checkpoint) + ")";
  const char* weight_name = modelopt ? "weight" : "weight_packed";
  const char* global_name = modelopt ? "weight_scale_2" : "weight_global_scale";
  detail::check_fp4_tensor(weight, weight_name, who);
  detail::check_fp4_tensor(weight_scale, "weight_scale", who);
  detail::check_fp4_tensor(global_scale, global_name, who);
  if (weight_shape.size() != 2) {
    throw layout_error(
        who + ": " + weight_name + " has shape " + detail::shape_text(weight_shape) + " (rank " +
        std::to_string(weight_shape.size()) + "): NVFP4 weights are [N, K/2], one linear layer" +
        (modelopt ? " (ModelOpt's bmm-style expert weights, stored transposed as [E, K/2, N], are not read)" : ""));
  }
  const std::size_t byte_count = detail::tensor_elements(weight_shape, weight_name, who);
  const std::size_t rows = weight_shape[0];
  const std::size_t cols = detail::element_count<std::uint8_t>(weight_shape[1], 2, "a row of e2m1 values", who);
  if (cols % 16 != 0) {
    throw layout_error(
        who + ": " + weight_name + " has shape " + detail::shape_text(weight_shape) + ", so K = " +
        std::to_string(cols) + " input features, which is not a multiple of the block size 16: " +
        (modelopt ? "ModelOpt's exporter asserts it and vLLM refuses such a layer"
                  : "compressed-tensors refuses to quantize such a layer and vLLM sizes the scales K / 16"));
  }
  const std::vector<std::size_t> expected = {rows, cols / 16};
  if (weight_scale_shape != expected) {
    throw layout_error(who + ": weight_scale has shape " + detail::shape_text(weight_scale_shape) + ", but " +
                       weight_name + " of shape " + detail::shape_text(weight_shape) + " (K = " + std::to_string(cols) +
                       ") needs " + detail::shape_text(expected) + " (one e4m3 byte per 16 values)");
  }
  if (!(global_scale_shape.empty() || (global_scale_shape.size() == 1 && global_scale_shape[0] == 1))) {
    throw layout_error(who + ": " + global_name + " has shape " + detail::shape_text(global_scale_shape) +
                       ": the per-tensor global scale is one fp32, of shape [] or [1]");
  }
  const std::size_t scale_count = detail::tensor_elements(weight_scale_shape, "weight_scale", who);
  const std::size_t word_count = detail::element_count<std::uint32_t>(byte_count / 4, 1, "words", who);
  const std::uint32_t stored = detail::fp32_bits_of_bytes(global_scale);
  const bool negative = (stored & 0x80000000u) != 0;
  std::uint32_t multiplier = stored;
  if (modelopt) {
    // weight_scale_2 = amax / (6 * 448) with amax >= 0: 0 for an all-zero weight, never negative.
    if (!detail::fp32_is_finite(stored) || negative) {
      throw layout_error(who + ": weight_scale_2 = " + detail::fp32_bits_text(stored) +
                         " is not a finite number >= 0: ModelOpt writes amax / (6 * 448)");
    }
  } else {
    if (!detail::fp32_is_finite(stored) || negative || (stored & 0x7FFFFFFFu) == 0) {
      throw layout_error(who + ": weight_global_scale = " + detail::fp32_bits_text(stored) +
                         " is not a finite number > 0: compressed-tensors writes 6 * 448 / amax, positive and finite");
    }
    multiplier = detail::fp32_reciprocal_bits(stored);
    if (!detail::fp32_is_finite(multiplier)) {
      throw layout_error(who + ": weight_global_scale = " + detail::fp32_bits_text(stored) +
                         " has no finite fp32 reciprocal (the multiplier 1 / weight_global_scale overflows)");
    }
  }
  nvfp4_matrix m;
  m.rows = rows;
  m.cols = cols;
  m.checkpoint = checkpoint;
  m.global_scale_from =
      modelopt ? nvfp4_global_scale::stored_multiplier : nvfp4_global_scale::fp32_reciprocal_of_stored;
  // Each row is K/2 bytes, a multiple of 8: the word composition runs over the whole tensor, and
  // nibble j of word w of a row is element 8w + j along K.
  m.words = detail::words_of_bytes(weight, word_count);
  m.scales.assign(weight_scale, weight_scale + scale_count);
  std::memcpy(&m.global_scale, &multiplier, sizeof m.global_scale);
  std::memcpy(&m.stored_global_scale, &stored, sizeof m.stored_global_scale);
  return m;
}

}  // namespace dq4
