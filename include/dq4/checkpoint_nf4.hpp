// SPDX-License-Identifier: Apache-2.0
//
// dq4 checkpoint layouts (host only): bitsandbytes 4-bit weights (NF4 and bitsandbytes' own FP4, as
// Linear4bit / Params4bit save them and transformers loads them) turned into dq4's sequential word
// order, with the absmax per block resolved to fp32 by bitsandbytes' own arithmetic (including the
// double-quantized "compress_statistics" form). Plain C++17: no CUDA compiler needed.
//
// Upstream facts are cited as repository, file and function; the repository is
// bitsandbytes-foundation/bitsandbytes (formerly TimDettmers/bitsandbytes), read at commit 95f9af30
// (2026-08-19); the serialized format is unchanged since release 0.42.0.
//
// Like <dq4/checkpoint.hpp>, every function here reports bad input (null tensors, sizes that do not
// match the quant_state, values bitsandbytes does not write, JSON it cannot read) by throwing
// dq4::layout_error with the numbers.
#pragma once

#include <dq4/checkpoint.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <locale>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace dq4 {

namespace detail {
/// A codebook's sixteen values as a std::array (the tables themselves live in <dq4/dq4.cuh>, where
/// device code can read them).
[[nodiscard]] constexpr std::array<float, 16> bnb_array(const codebook_values& v) noexcept {
  std::array<float, 16> a{};
  for (std::size_t n = 0; n < 16; ++n) a[n] = v.value[n];
  return a;
}
}  // namespace detail

/// The 16 NF4 values by 4-bit index, as bitsandbytes' CUDA kernels hold them
/// (csrc/kernels.cu nf4_dequantization_lut, read by dDequantizeNF4; the same decimals in
/// csrc/gemm_4bit_common.cuh NF4_LUT_F32 and csrc/cpu_ops.cpp nf4_lut). Each decimal there is the
/// shortest repr of an fp32 value, so decimal -> fp32 and decimal -> double -> fp32 agree, and
/// bitsandbytes/functional.py get_4bit_type("nf4") (the saved quant_map) has the same bits.
/// Sorted ascending, -1 at index 0, exactly +0 at index 7, 1 at index 15; not symmetric.
inline constexpr std::array<float, 16> bnb_nf4_table = detail::bnb_array(nf4_values());

/// bitsandbytes' FP4 (not OCP e2m1): bit 3 is the sign, bits 0..2 index the magnitudes
/// {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 (csrc/kernels.cu fp4_dequantization_lut and
/// dDequantizeFP4Tree: lut[val & 7] * (1 - 2 * bit3); csrc/gemm_4bit_common.cuh FP4_LUT_F32).
/// Index 8 is -0.0f as the kernels compute it (0 * -1); the quant_map bitsandbytes saves has +0.0f
/// there (see bnb_fp4_saved_quant_map).
inline constexpr std::array<float, 16> bnb_fp4_table = detail::bnb_array(bnb_fp4_values());

/// The `quant_map` tensor bitsandbytes saves for FP4: get_4bit_type("fp4") in
/// bitsandbytes/functional.py divides [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0, -0.0625, ...]
/// by its absolute maximum 12 in fp32. Python's `-0` is the integer 0, so index 8 is +0.0f; every
/// other entry has the bits of bnb_fp4_table.
inline constexpr std::array<float, 16> bnb_fp4_saved_quant_map = {
    0x0p+0f, 0x1.555556p-8f,  0x1.555556p-1f,  0x1p+0f,  0x1.555556p-2f,  0x1p-1f,  0x1.555556p-3f,  0x1p-2f,
    0x0p+0f, -0x1.555556p-8f, -0x1.555556p-1f, -0x1p+0f, -0x1.555556p-2f, -0x1p-1f, -0x1.555556p-3f, -0x1p-2f,
};

/// bitsandbytes' two 4-bit types (QuantState.valid_quant_types in bitsandbytes/functional.py).
enum class bnb_quant_type { nf4, fp4 };

/// How a double-quantized checkpoint's fp32 absmax is recovered from its uint8 code c, the nested
/// absmax m of its group of 256 blocks and the offset o. No default: bitsandbytes' readers differ.
enum class bnb_nested_absmax {
  /// functional.py dequantize_4bit (and dequantize_blockwise, gemv_4bit, and the unfused fallback of
  /// backends/cuda/ops.py gemm_4bit): dequantize_blockwise gives fl32(nested_quant_map[c] * m)
  /// (csrc/kernels.cu kDequantizeBlockwise, General8bit), then `absmax += offset` is a separate
  /// torch add: absmax = fl32(fl32(map[c] * m) + o), two roundings.
  dequantize_4bit,
  /// The fused 4-bit GEMM kernels (csrc/gemm_4bit_simt.cu, gemm_4bit_sm80.cu, gemm_4bit_sm75.cu, used
  /// by backends/cuda/ops.py gemm_4bit for 4 <= M <= 1536): `absmax_code[c] * absmax[blk >> 8] +
  /// absmax_offset_f` in one expression, built with --use_fast_math (fmad on), which nvcc compiles
  /// to fma.rn.ftz.f32: absmax = fl32(map[c] * m + o), one rounding.
  fused_gemm,
};

/// The quant_state JSON blob (the uint8 tensor `<name>.weight.quant_state.bitsandbytes__nf4` or
/// `__fp4`), parsed: the non-tensor items of QuantState.as_dict(packed=True), written by
/// bitsandbytes/utils.py pack_dict_to_tensor as json.dumps(...) in UTF-8.
struct bnb_quant_state {
  bnb_quant_type quant_type = bnb_quant_type::nf4;  // "quant_type"
  std::size_t blocksize = 0;                        // "blocksize": elements per absmax
  format dtype = format::fp16;  // "dtype": the weight's dtype, which dequantize_4bit returns (fp16, bf16, fp32)
  std::vector<std::size_t> shape;  // "shape": the original weight shape ([out_features, in_features] for Linear)
  std::size_t elements = 0;        // the product of shape
  bool nested = false;             // "nested_blocksize", "nested_dtype", "nested_offset" present
  std::size_t nested_blocksize = 0;  // 256: absmax blocks per nested absmax
  /// QuantState.from_dict: torch.tensor(float(nested_offset)), the JSON decimal read as a double and
  /// rounded to fp32.
  float nested_offset = 0.0f;
};

/// Views of one weight's tensors as a safetensors file stores them (keys `<name>.weight` and
/// `<name>.weight.<item>`, written by bitsandbytes/nn/modules.py Linear4bit._save_to_state_dict).
/// The pointers are not owned; a tensor that is absent is nullptr with count 0.
struct bnb_4bit_tensors {
  /// `weight`: the packed bytes, stored as [(n + 1) / 2, 1] uint8 (or viewed as the quant_storage
  /// dtype: pass its bytes). Byte i holds element 2i in its HIGH nibble and element 2i + 1 in its
  /// low nibble; elements in row-major (flat) order of `shape`.
  const std::uint8_t* weight = nullptr;
  std::size_t weight_bytes = 0;
  /// `absmax` when not double-quantized: fp32 [ceil(n / blocksize)].
  const float* absmax = nullptr;
  std::size_t absmax_count = 0;
  /// `absmax` when double-quantized: uint8 codes [ceil(n / blocksize)] into nested_quant_map.
  const std::uint8_t* absmax_codes = nullptr;
  std::size_t absmax_codes_count = 0;
  /// `quant_map`: fp32 [16], get_4bit_type(quant_type). bitsandbytes' dequantization kernels do not
  /// read it (gemv_4bit does); when given it must have the bits bitsandbytes writes.
  const float* quant_map = nullptr;
  std::size_t quant_map_count = 0;
  /// `nested_absmax`: fp32 [ceil(blocks / 256)], double-quantized only.
  const float* nested_absmax = nullptr;
  std::size_t nested_absmax_count = 0;
  /// `nested_quant_map`: fp32 [256] (create_dynamic_map()), double-quantized only; used as stored.
  const float* nested_quant_map = nullptr;
  std::size_t nested_quant_map_count = 0;
};

/// A bitsandbytes 4-bit weight in dq4's layout: element i (flat order of `shape`) is nibble i % 8
/// (bits 4(i % 8)..4(i % 8) + 3) of words[i / 8], dq4's order::sequential; nibbles past `elements`
/// are 0. Dequantized, element i is table[q] * absmax[i / blocksize], one fp32 multiply, then one
/// rounding to `dtype` (csrc/kernels.cu kDequantizeBlockwise, and the CPU backends; the fused GEMM
/// kernels likewise). Two upstream paths differ from that: CUDA's multiply is mul.ftz.f32
/// (--use_fast_math), which flushes a product below FLT_MIN (|absmax| < 2^-126 / |table[q]|) to 0,
/// and gemv_4bit (batch-1 inference, kgemm_4bit_inference_naive) rounds quant_map[q] and absmax to
/// the 16-bit dtype first and multiplies there. Every word lies in one block (blocksize is a
/// multiple of 8).
struct bnb_4bit_matrix {
  bnb_quant_type quant_type = bnb_quant_type::nf4;
  format dtype = format::fp16;
  std::vector<std::size_t> shape;
  std::size_t elements = 0, blocksize = 0;
  bool double_quantized = false;
  std::array<float, 16> table{};       // bnb_nf4_table or bnb_fp4_table
  std::vector<std::uint32_t> words;    // [ceil(elements / 8)]
  std::vector<float> absmax;           // [ceil(elements / blocksize)], resolved to fp32

  [[nodiscard]] std::size_t blocks() const noexcept { return absmax.size(); }
  /// The 4-bit index q (0..15) of element i. Throws std::out_of_range past `elements`.
  [[nodiscard]] int code(std::size_t i) const {
    if (i >= elements) {
      throw std::out_of_range("dq4::bnb_4bit_matrix::code(" + std::to_string(i) + "): the weight has " +
                              std::to_string(elements) + " elements");
    }
    return static_cast<int>((words[i / 8] >> (4 * (i % 8))) & 0xFu);
  }
};

namespace detail {

[[nodiscard]] inline std::uint32_t bnb_fp32_bits(float f) noexcept {
  std::uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

[[nodiscard]] inline std::string bnb_fp32_text(float f) {
  std::ostringstream s;
  s.imbue(std::locale::classic());
  s << std::hexfloat << f;
  char bits[11];
  std::snprintf(bits, sizeof bits, "0x%08X", static_cast<unsigned>(bnb_fp32_bits(f)));
  return s.str() + " (" + bits + ")";
}

[[nodiscard]] inline const char* bnb_type_name(bnb_quant_type t) noexcept {
  return t == bnb_quant_type::nf4 ? "nf4" : "fp4";
}

/// Blocksizes quantize_4bit / dequantize_4bit accept (bitsandbytes/functional.py, and the
/// torch._check in bitsandbytes/_ops.py): 32, 64, ..., 4096.
[[nodiscard]] inline bool is_bnb_blocksize(std::size_t b) noexcept {
  return b == 32 || b == 64 || b == 128 || b == 256 || b == 512 || b == 1024 || b == 2048 || b == 4096;
}

/// quantize_4bit(compress_statistics=True) quantizes the absmax with quantize_blockwise(...,
/// blocksize=256), and the fused GEMM kernels index the nested absmax by blk >> 8.
inline constexpr std::size_t bnb_nested_blocksize = 256;

/// fp32 of a double as static_cast does under IEEE 754 round-to-nearest-even, overflowing to
/// infinity without the undefined behavior of an out-of-range conversion: FLT_MAX has an odd
/// significand, so the halfway point 2^128 - 2^103 and everything above it rounds to infinity.
[[nodiscard]] inline float bnb_fp32_of(double d) noexcept {
  if (std::isfinite(d) && std::fabs(d) >= 0x1.ffffffp127) {
    return d > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  }
  return static_cast<float>(d);
}

/// fl32(a * b): the product of two floats is exact in a double, so fp32_of rounds it once. Computed
/// apart from any add, so that no compiler can fuse it into one (-ffp-contract).
[[nodiscard]] inline float bnb_mul(float a, float b) noexcept {
  return bnb_fp32_of(static_cast<double>(a) * static_cast<double>(b));
}

/// fl32(a + b): a double sum of two floats rounded to fp32 is the fp32 sum (53 >= 2 * 24 + 2: the
/// double rounding is innocuous).
[[nodiscard]] inline float bnb_add(float a, float b) noexcept {
  return bnb_fp32_of(static_cast<double>(a) + static_cast<double>(b));
}

[[nodiscard]] inline bool bnb_is_subnormal(float f) noexcept { return std::fpclassify(f) == FP_SUBNORMAL; }

/// What flush-to-zero makes of an operand: a subnormal becomes a zero of its sign.
[[nodiscard]] inline float bnb_flushed(float f) noexcept { return bnb_is_subnormal(f) ? std::copysign(0.0f, f) : f; }

/// The results a flush-to-zero instruction (mul.ftz.f32, fma.rn.ftz.f32) can give for the rounded
/// result r of its flushed operands: r, or a zero of its sign where r is subnormal; for |r| = FLT_MIN
/// both (the exact result may have been below it). Returns how many of out[0..1] are set.
[[nodiscard]] inline int bnb_ftz_results(float r, float (&out)[2]) noexcept {
  const float zero = std::copysign(0.0f, r);
  if (bnb_is_subnormal(r)) {
    out[0] = zero;
    return 1;
  }
  out[0] = r;
  if (std::fabs(r) == std::numeric_limits<float>::min()) {
    out[1] = zero;
    return 2;
  }
  return 1;
}

[[nodiscard]] inline bool bnb_same_fp32(float a, float b) noexcept {
  return bnb_fp32_bits(a) == bnb_fp32_bits(b) || (std::isnan(a) && std::isnan(b));
}

/// Reads the quant_state JSON: exactly what json.dumps writes for QuantState.as_dict's non-tensor
/// items (an object of strings, integers, a list of integers and one float, which Python may write
/// as NaN, Infinity or -Infinity); anything else is a layout_error naming the byte offset.
class bnb_json_reader {
 public:
  bnb_json_reader(const std::uint8_t* text, std::size_t size, const std::string& who)
      : text_(text), size_(size), who_(who) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw layout_error(who_ + ": quant_state JSON at byte " + std::to_string(pos_) + " of " + std::to_string(size_) +
                       ": " + what);
  }
  void skip_space() noexcept {
    while (pos_ < size_ && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  [[nodiscard]] bool at_end() noexcept {
    skip_space();
    return pos_ == size_;
  }
  /// Consumes c (after white space) if it is next.
  [[nodiscard]] bool take(char c) noexcept {
    skip_space();
    if (pos_ < size_ && text_[pos_] == static_cast<std::uint8_t>(c)) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c, const char* context) {
    if (!take(c)) fail(std::string("expected '") + c + "' " + context + ", found " + next_text());
  }
  /// Consumes the bare word `word` (after white space) if it is next.
  [[nodiscard]] bool literal(const char* word) noexcept {
    skip_space();
    const std::size_t n = std::strlen(word);
    if (size_ - pos_ >= n && std::memcmp(text_ + pos_, word, n) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }
  /// A string without escapes (bitsandbytes' keys and values are plain ASCII identifiers).
  [[nodiscard]] std::string string(const char* context) {
    skip_space();
    if (pos_ >= size_ || text_[pos_] != '"') fail(std::string("expected a string ") + context + ", found " + next_text());
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= size_) fail("unterminated string");
      const std::uint8_t c = text_[pos_];
      if (c == '"') break;
      if (c == '\\') fail("escape sequence in a string (bitsandbytes writes none)");
      if (c < 0x20 || c > 0x7E) fail("byte " + std::to_string(c) + " in a string (bitsandbytes writes printable ASCII)");
      out += static_cast<char>(c);
      ++pos_;
    }
    ++pos_;
    return out;
  }
  /// The next JSON number token (RFC 8259 grammar), or Python's NaN / Infinity / -Infinity.
  [[nodiscard]] std::string number(const char* context) {
    skip_space();
    const std::size_t start = pos_;
    for (const char* word : {"NaN", "Infinity", "-Infinity"}) {
      if (literal(word)) return word;
    }
    if (pos_ < size_ && text_[pos_] == '-') ++pos_;
    if (pos_ < size_ && text_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      pos_ = start;
      fail(std::string("expected a number for ") + context + ", found " + next_text());
    }
    if (pos_ < size_ && text_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) fail("expected a digit after the decimal point");
    }
    if (pos_ < size_ && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < size_ && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    return std::string(reinterpret_cast<const char*>(text_ + start), pos_ - start);
  }
  /// A non-negative integer as Python writes an int: digits only, at most SIZE_MAX.
  [[nodiscard]] std::size_t integer(const char* key) {
    const std::size_t start = pos_;
    const std::string token = number(key);
    if (token.find_first_not_of("0123456789-") != std::string::npos) {
      pos_ = start;
      fail(std::string(key) + " = " + token + " is not an integer (bitsandbytes writes a Python int)");
    }
    if (token[0] == '-') {
      pos_ = start;
      fail(std::string(key) + " = " + token + " is negative");
    }
    std::size_t value = 0;
    for (char c : token) {
      const auto d = static_cast<std::size_t>(c - '0');
      if (value > (std::numeric_limits<std::size_t>::max() - d) / 10) {
        pos_ = start;
        fail(std::string(key) + " = " + token + " is larger than SIZE_MAX = " +
             std::to_string(std::numeric_limits<std::size_t>::max()));
      }
      value = value * 10 + d;
    }
    return value;
  }
  /// A JSON float read as Python's float() reads it (correctly rounded to a double), then rounded
  /// to fp32 as torch.tensor(float) does (QuantState.from_dict).
  [[nodiscard]] float fp32_number(const char* key) {
    const std::size_t start = pos_;
    const std::string token = number(key);
    if (token == "NaN") return std::numeric_limits<float>::quiet_NaN();
    if (token == "Infinity") return std::numeric_limits<float>::infinity();
    if (token == "-Infinity") return -std::numeric_limits<float>::infinity();
    std::istringstream in(token);
    in.imbue(std::locale::classic());  // strtod in the "C" locale: correctly rounded, '.' as the point
    double d = 0.0;
    in >> d;
    if (in.fail() || in.peek() != std::char_traits<char>::eof()) {
      pos_ = start;
      fail(std::string(key) + " = " + token +
           " is outside the range of a double (bitsandbytes writes an fp32 value's repr, or NaN / Infinity)");
    }
    return bnb_fp32_of(d);
  }
 private:
  std::size_t digits() noexcept {
    const std::size_t start = pos_;
    while (pos_ < size_ && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ - start;
  }
  [[nodiscard]] std::string next_text() const {
    if (pos_ >= size_) return "the end of the blob";
    const std::uint8_t c = text_[pos_];
    if (c >= 0x20 && c <= 0x7E) return std::string("'") + static_cast<char>(c) + "'";
    return "byte " + std::to_string(c);
  }

  const std::uint8_t* text_;
  std::size_t size_;
  std::size_t pos_ = 0;
  const std::string& who_;
};

[[nodiscard]] inline std::string bnb_shape_text(const std::vector<std::size_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// The number of elements of a weight of shape `shape`: at least one dimension, none 0, and a
/// product that fits in memory (element_count).
[[nodiscard]] inline std::size_t bnb_shape_elements(const std::vector<std::size_t>& shape, const std::string& who) {
  if (shape.empty()) throw layout_error(who + ": shape [] has no dimensions (bitsandbytes writes the weight's shape)");
  const std::string text = "the weight of shape " + bnb_shape_text(shape);
  std::size_t n = 1;
  for (const std::size_t d : shape) {
    if (d == 0) throw layout_error(who + ": " + text + " has no elements");
    n = element_count<std::uint8_t>(n, d, text.c_str(), who);
  }
  return n;
}

/// Checks a bnb_quant_state (parsed or built by hand): the values bitsandbytes writes and reads,
/// and elements == the product of shape.
inline void check_bnb_state(const bnb_quant_state& s, const std::string& who) {
  if (s.quant_type != bnb_quant_type::nf4 && s.quant_type != bnb_quant_type::fp4) {
    throw layout_error(who + ": quant_type " + std::to_string(static_cast<int>(s.quant_type)) +
                       " names no dq4::bnb_quant_type enumerator");
  }
  if (!is_bnb_blocksize(s.blocksize)) {
    throw layout_error(who + ": blocksize " + std::to_string(s.blocksize) +
                       " is not one bitsandbytes writes (32, 64, 128, 256, 512, 1024, 2048 or 4096)");
  }
  if (s.dtype != format::fp16 && s.dtype != format::bf16 && s.dtype != format::fp32) {
    throw layout_error(who + ": dtype " + format_name(s.dtype) +
                       ": dequantize_4bit returns float16, bfloat16 or float32 only");
  }
  const std::size_t n = bnb_shape_elements(s.shape, who);
  if (s.elements != n) {
    throw layout_error(who + ": elements = " + std::to_string(s.elements) + " is not the product " + std::to_string(n) +
                       " of shape " + bnb_shape_text(s.shape));
  }
  if (s.nested && s.nested_blocksize != bnb_nested_blocksize) {
    throw layout_error(who + ": nested_blocksize " + std::to_string(s.nested_blocksize) +
                       " is not the 256 bitsandbytes writes (quantize_4bit: quantize_blockwise(absmax - offset, "
                       "blocksize=256))");
  }
}

}  // namespace detail

/// The 16-entry table bitsandbytes' dequantization kernels use for `t`.
[[nodiscard]] inline const std::array<float, 16>& bnb_table(bnb_quant_type t) {
  switch (t) {
    case bnb_quant_type::nf4: return bnb_nf4_table;
    case bnb_quant_type::fp4: return bnb_fp4_table;
  }
  throw layout_error("dq4::bnb_table: quant_type " + std::to_string(static_cast<int>(t)) +
                     " names no dq4::bnb_quant_type enumerator");
}

/// The `quant_map` tensor bitsandbytes saves for `t` (get_4bit_type(t)): bnb_nf4_table, or
/// bnb_fp4_saved_quant_map (+0.0f at index 8).
[[nodiscard]] inline const std::array<float, 16>& bnb_saved_quant_map(bnb_quant_type t) {
  switch (t) {
    case bnb_quant_type::nf4: return bnb_nf4_table;
    case bnb_quant_type::fp4: return bnb_fp4_saved_quant_map;
  }
  throw layout_error("dq4::bnb_saved_quant_map: quant_type " + std::to_string(static_cast<int>(t)) +
                     " names no dq4::bnb_quant_type enumerator");
}

/// Parses the quant_state blob of `bytes` bytes stored under the safetensors key `key`, whose last
/// dot-separated part must be bitsandbytes__nf4 or bitsandbytes__fp4 (QuantState.from_dict) and
/// agree with the blob's quant_type. Reads only the keys QuantState.as_dict writes: quant_type,
/// blocksize, dtype, shape, and for double quantization nested_blocksize, nested_dtype and
/// nested_offset (all three or none). Throws layout_error for a null or empty blob, malformed or
/// truncated JSON, an unknown or repeated key, a missing one, a value of the wrong type, and
/// values bitsandbytes does not write (see check_bnb_state), with the byte offset and the numbers.
[[nodiscard]] inline bnb_quant_state parse_bnb_quant_state(const std::uint8_t* blob, std::size_t bytes,
                                                           const std::string& key) {
  const std::string who = "dq4::parse_bnb_quant_state";
  if (blob == nullptr) throw layout_error(who + ": null quant_state tensor (key '" + key + "')");
  if (bytes == 0) throw layout_error(who + ": empty quant_state tensor (key '" + key + "')");
  const std::size_t dot = key.rfind('.');
  const std::string last = dot == std::string::npos ? key : key.substr(dot + 1);
  if (last != "bitsandbytes__nf4" && last != "bitsandbytes__fp4") {
    throw layout_error(who + ": key '" + key +
                       "' does not end in bitsandbytes__nf4 or bitsandbytes__fp4 (QuantState.valid_qs_type_keys)");
  }
  const bnb_quant_type key_type = last == "bitsandbytes__nf4" ? bnb_quant_type::nf4 : bnb_quant_type::fp4;

  detail::bnb_json_reader json(blob, bytes, who);
  bnb_quant_state s;
  bool seen[7] = {};
  const char* const names[7] = {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype",
                                "nested_offset"};
  json.expect('{', "at the start of the quant_state");
  if (!json.take('}')) {
    do {
      const std::string name = json.string("as a key");
      int k = 0;
      while (k < 7 && name != names[k]) ++k;
      if (k == 7) {
        json.fail("key \"" + name + "\" is not one bitsandbytes writes (quant_type, blocksize, dtype, shape, "
                  "nested_blocksize, nested_dtype, nested_offset)");
      }
      if (seen[k]) json.fail("key \"" + name + "\" appears twice");
      seen[k] = true;
      json.expect(':', ("after the key \"" + name + "\"").c_str());
      switch (k) {
        case 0: {
          const std::string t = json.string("for quant_type");
          if (t == "nf4") {
            s.quant_type = bnb_quant_type::nf4;
          } else if (t == "fp4") {
            s.quant_type = bnb_quant_type::fp4;
          } else {
            json.fail("quant_type \"" + t + "\" is not \"nf4\" or \"fp4\"");
          }
          break;
        }
        case 1: s.blocksize = json.integer("blocksize"); break;
        case 2: {
          // as_dict writes str(dtype).strip("torch."): "float16", "bfloat16" or "float32".
          const std::string t = json.string("for dtype");
          if (t == "float16") {
            s.dtype = format::fp16;
          } else if (t == "bfloat16") {
            s.dtype = format::bf16;
          } else if (t == "float32") {
            s.dtype = format::fp32;
          } else {
            json.fail("dtype \"" + t + "\" is not float16, bfloat16 or float32 (the dtypes dequantize_4bit returns)");
          }
          break;
        }
        case 3: {
          if (json.literal("null")) json.fail("shape is null: without the weight's shape bitsandbytes cannot dequantize it");
          json.expect('[', "to start the shape list");
          if (!json.take(']')) {
            do {
              s.shape.push_back(json.integer("a shape dimension"));
            } while (json.take(','));
            json.expect(']', "to end the shape list");
          }
          break;
        }
        case 4: s.nested_blocksize = json.integer("nested_blocksize"); break;
        case 5: {
          const std::string t = json.string("for nested_dtype");
          if (t != "float32") {
            json.fail("nested_dtype \"" + t +
                      "\" is not the float32 quantize_4bit writes (a 16-bit nested_dtype comes from "
                      "_convert_weight_packed_for_cpu_inverse, whose absmax arithmetic rounds to 16 bits: not supported)");
          }
          break;
        }
        case 6: s.nested_offset = json.fp32_number("nested_offset"); break;
        default: break;
      }
    } while (json.take(','));
    json.expect('}', "after a value (or ',' before the next key)");
  }
  if (!json.at_end()) json.fail("text after the end of the quant_state object");
  for (int k = 0; k < 4; ++k) {
    if (!seen[k]) json.fail(std::string("the key \"") + names[k] + "\" is missing");
  }
  const int nested_seen = static_cast<int>(seen[4]) + static_cast<int>(seen[5]) + static_cast<int>(seen[6]);
  if (nested_seen != 0 && nested_seen != 3) {
    std::string missing;
    for (int k = 4; k < 7; ++k) {
      if (!seen[k]) missing += std::string(missing.empty() ? "" : ", ") + names[k];
    }
    json.fail("double quantization needs nested_blocksize, nested_dtype and nested_offset; missing " + missing);
  }
  s.nested = nested_seen == 3;
  if (s.quant_type != key_type) {
    throw layout_error(who + ": key '" + key + "' says " + detail::bnb_type_name(key_type) +
                       " but the quant_state's quant_type is " + detail::bnb_type_name(s.quant_type));
  }
  s.elements = detail::bnb_shape_elements(s.shape, who);
  detail::check_bnb_state(s, who);
  return s;
}

/// A bitsandbytes 4-bit weight in dq4's layout (see bnb_4bit_matrix), from its parsed quant_state
/// and its tensors. Not double-quantized (state.nested false): `absmax` fp32, copied bit for bit
/// (NaN, infinities and negative values included: bitsandbytes reads them as stored). Double
/// quantized: `absmax_codes`, `nested_absmax` and `nested_quant_map`, resolved per block b by
/// `nested` (no default; see bnb_nested_absmax) with m = nested_absmax[b / 256]. The weight's
/// nibbles are swapped into sequential order (bitsandbytes stores the first element of each byte
/// high). Throws layout_error for a state check_bnb_state rejects, null or extra tensors, sizes
/// that do not match the state ((n + 1) / 2 weight bytes, ceil(n / blocksize) absmax, ceil(blocks
/// / 256) nested absmax, 256 nested_quant_map and 16 quant_map entries), a quant_map whose bits
/// differ from bnb_saved_quant_map (with the index and both values), and a double-quantized
/// absmax that a flush of subnormals to zero changes (bitsandbytes' CUDA build, --use_fast_math:
/// mul.ftz / fma.rn.ftz; its CPU backend keeps subnormals), where bitsandbytes' backends disagree.
[[nodiscard]] inline bnb_4bit_matrix from_bnb_4bit(const bnb_quant_state& state, const bnb_4bit_tensors& t,
                                                   bnb_nested_absmax nested) {
  const std::string who = "dq4::from_bnb_4bit";
  detail::check_bnb_state(state, who);
  if (nested != bnb_nested_absmax::dequantize_4bit && nested != bnb_nested_absmax::fused_gemm) {
    throw layout_error(who + ": nested absmax arithmetic " + std::to_string(static_cast<int>(nested)) +
                       " names no dq4::bnb_nested_absmax enumerator");
  }
  const std::size_t n = state.elements;
  const std::size_t blocks = n / state.blocksize + (n % state.blocksize != 0 ? 1 : 0);
  const std::size_t packed_bytes = n / 2 + n % 2;

  if (t.weight == nullptr) throw layout_error(who + ": null weight tensor");
  if (t.weight_bytes != packed_bytes) {
    throw layout_error(who + ": the weight has " + std::to_string(t.weight_bytes) + " bytes; bitsandbytes packs " +
                       std::to_string(n) + " elements two per byte into (n + 1) / 2 = " + std::to_string(packed_bytes));
  }
  auto check_count = [&](const void* p, std::size_t count, std::size_t want, const char* name, const char* why) {
    if (p == nullptr) throw layout_error(who + ": null " + name + " tensor (" + why + ")");
    if (count != want) {
      throw layout_error(who + ": " + name + " has " + std::to_string(count) + " entries, expected " +
                         std::to_string(want) + " (" + why + ")");
    }
  };
  auto check_absent = [&](const void* p, std::size_t count, const char* name, const char* why) {
    if (p != nullptr || count != 0) {
      throw layout_error(who + ": " + name + " tensor given (" + std::to_string(count) + " entries) but " + why);
    }
  };
  const std::string blocks_why = "ceil(" + std::to_string(n) + " / blocksize " + std::to_string(state.blocksize) +
                                 ") = " + std::to_string(blocks) + " blocks";
  const std::size_t groups =
      blocks / detail::bnb_nested_blocksize + (blocks % detail::bnb_nested_blocksize != 0 ? 1 : 0);
  const std::string groups_why = "ceil(" + std::to_string(blocks) + " blocks / 256) = " + std::to_string(groups);
  if (state.nested) {
    check_absent(t.absmax, t.absmax_count, "fp32 absmax",
                 "the quant_state is double-quantized (nested_offset): absmax is stored as uint8 codes");
    check_count(t.absmax_codes, t.absmax_codes_count, blocks, "absmax (uint8 codes)", blocks_why.c_str());
    check_count(t.nested_absmax, t.nested_absmax_count, groups, "nested_absmax", groups_why.c_str());
    check_count(t.nested_quant_map, t.nested_quant_map_count, 256, "nested_quant_map", "the 256-entry dynamic map");
  } else {
    check_absent(t.absmax_codes, t.absmax_codes_count, "uint8 absmax",
                 "the quant_state is not double-quantized (no nested_offset): absmax is stored as fp32");
    check_absent(t.nested_absmax, t.nested_absmax_count, "nested_absmax", "the quant_state is not double-quantized");
    check_absent(t.nested_quant_map, t.nested_quant_map_count, "nested_quant_map",
                 "the quant_state is not double-quantized");
    check_count(t.absmax, t.absmax_count, blocks, "absmax", blocks_why.c_str());
  }
  const std::array<float, 16>& saved = bnb_saved_quant_map(state.quant_type);
  if (t.quant_map != nullptr || t.quant_map_count != 0) {
    check_count(t.quant_map, t.quant_map_count, 16, "quant_map", "get_4bit_type: 16 entries");
    for (std::size_t i = 0; i < 16; ++i) {
      if (detail::bnb_fp32_bits(t.quant_map[i]) != detail::bnb_fp32_bits(saved[i])) {
        throw layout_error(who + ": quant_map[" + std::to_string(i) + "] = " + detail::bnb_fp32_text(t.quant_map[i]) +
                           ", but bitsandbytes' get_4bit_type(\"" + detail::bnb_type_name(state.quant_type) +
                           "\") writes " + detail::bnb_fp32_text(saved[i]));
      }
    }
  }

  bnb_4bit_matrix m;
  m.quant_type = state.quant_type;
  m.dtype = state.dtype;
  m.shape = state.shape;
  m.elements = n;
  m.blocksize = state.blocksize;
  m.double_quantized = state.nested;
  m.table = bnb_table(state.quant_type);
  m.words.assign(detail::element_count<std::uint32_t>(n / 8 + (n % 8 != 0 ? 1 : 0), 1, "words", who), 0u);
  // Byte i = element 2i in bits 4..7, element 2i + 1 in bits 0..3 (kQuantizeBlockwise:
  // qvals[j] = dQuantize(vals[2j]) << 4 | dQuantize(vals[2j + 1])). Sequential order wants element
  // 2i in the lower nibble: swap, then byte i is byte i % 4 of word i / 4.
  for (std::size_t i = 0; i < packed_bytes; ++i) {
    const std::uint32_t byte = t.weight[i];
    std::uint32_t swapped = (byte >> 4) | ((byte & 0xFu) << 4);
    if (2 * i + 1 == n) swapped &= 0xFu;  // odd n: the low nibble of the last byte is padding
    m.words[i / 4] |= swapped << (8 * (i % 4));
  }
  m.absmax.resize(detail::element_count<float>(blocks, 1, "absmax", who));
  if (!state.nested) {
    for (std::size_t b = 0; b < blocks; ++b) m.absmax[b] = t.absmax[b];
    return m;
  }
  // bitsandbytes' CUDA build (CMakeLists.txt: --use_fast_math) makes kDequantizeBlockwise's multiply
  // mul.ftz.f32 and the fused kernels' a * b + c fma.rn.ftz.f32, which flush subnormal operands and
  // results to zero; its CPU and torch backends, and torch's `absmax += offset`, keep them. The
  // reader returns the IEEE value where the flush cannot change it, and rejects the block otherwise.
  const float offset = state.nested_offset;
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::uint8_t c = t.absmax_codes[b];
    const float code = t.nested_quant_map[c];
    const float scale = t.nested_absmax[b / detail::bnb_nested_blocksize];
    float ieee = 0.0f;
    float ftz[2] = {0.0f, 0.0f};
    int count = 0;
    if (nested == bnb_nested_absmax::dequantize_4bit) {
      ieee = detail::bnb_add(detail::bnb_mul(code, scale), offset);
      count = detail::bnb_ftz_results(detail::bnb_mul(detail::bnb_flushed(code), detail::bnb_flushed(scale)), ftz);
      for (int k = 0; k < count; ++k) ftz[k] = detail::bnb_add(ftz[k], offset);
    } else {
      ieee = std::fma(code, scale, offset);  // fmaf: one rounding
      const float flushed =
          std::fma(detail::bnb_flushed(code), detail::bnb_flushed(scale), detail::bnb_flushed(offset));
      count = detail::bnb_ftz_results(flushed, ftz);
    }
    for (int k = 0; k < count; ++k) {
      if (!detail::bnb_same_fp32(ftz[k], ieee)) {
        throw layout_error(who + ": absmax of block " + std::to_string(b) + " (code " + std::to_string(c) +
                           ", nested_quant_map[" + std::to_string(c) + "] = " + detail::bnb_fp32_text(code) +
                           ", nested_absmax[" + std::to_string(b / detail::bnb_nested_blocksize) + "] = " +
                           detail::bnb_fp32_text(scale) + ", offset = " + detail::bnb_fp32_text(offset) + ") is " +
                           detail::bnb_fp32_text(ieee) + " with subnormals but " + detail::bnb_fp32_text(ftz[k]) +
                           " with them flushed to zero, as bitsandbytes' CUDA build (--use_fast_math) does: "
                           "its backends disagree");
      }
    }
    m.absmax[b] = ieee;
  }
  return m;
}

}  // namespace dq4
