// SPDX-License-Identifier: Apache-2.0
// The bitsandbytes 4-bit reader (checkpoint_nf4.hpp) against bitsandbytes' own arithmetic, written
// here a second time from its source (bitsandbytes-foundation/bitsandbytes): the NF4 and FP4 tables
// from the decimal literals its source publishes, a writer that quantizes and packs as
// csrc/kernels.cu kQuantizeBlockwise and bitsandbytes/functional.py quantize_4bit do (with the
// double quantization of the absmax), and a reader that dequantizes as kDequantizeBlockwise and
// functional.py dequantize_4bit do, compared bit for bit with table[q] * absmax from the reader's
// output. Edge cases first (the zero code, -0, a block of zeros, the last partial block, infinite
// and NaN input, a negative recovered absmax), then every bad input, with the numbers in the error.

// dq4.cuh has array bounds of type int, which g++'s -Wsign-conversion reports; the checkpoint
// headers themselves are checked with every warning on.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
#include <dq4/checkpoint.hpp>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <dq4/checkpoint_nf4.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

namespace {

using dq4::bnb_nested_absmax;
using dq4::bnb_quant_type;

std::uint32_t bits(float f) {
  std::uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float from_bits(std::uint32_t u) {
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---------------------------------------------------------------------------------------------
// The tables as bitsandbytes' source publishes them, as text.

// csrc/kernels.cu nf4_dequantization_lut: f-suffixed C++ literals, decimal -> fp32 directly.
const char* const kernel_nf4_text[16] = {
    "-1.0f",                 "-0.6961928009986877f", "-0.5250730514526367f", "-0.39491748809814453f",
    "-0.28444138169288635f", "-0.18477343022823334f", "-0.09105003625154495f", "0.0f",
    "0.07958029955625534f",  "0.16093020141124725f",  "0.24611230194568634f",  "0.33791524171829224f",
    "0.44070982933044434f",  "0.5626170039176941f",   "0.7229568362236023f",   "1.0f"};

// csrc/kernels.cu fp4_dequantization_lut[8], indexed by bits 0..2; dDequantizeFP4Tree applies bit 3.
const char* const kernel_fp4_text[8] = {"0.0f",       "0.005208333333f", "0.66666667f", "1.0f",
                                        "0.33333333f", "0.5f",            "0.16666667f", "0.25f"};

// bitsandbytes/functional.py get_4bit_type: Python lists, made a float32 tensor and divided by
// their absolute maximum (data.div_(data.abs().max())).
const char* const python_nf4_text =
    "-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, "
    "-0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, "
    "0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0";
const char* const python_fp4_text =
    "0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0";

float kernel_literal(const char* text) {
  std::string s(text);
  if (!s.empty() && s.back() == 'f') s.pop_back();
  return std::strtof(s.c_str(), nullptr);  // a float literal is rounded from its decimal once
}

std::array<float, 16> kernel_nf4() {
  std::array<float, 16> t{};
  for (std::size_t i = 0; i < 16; ++i) t[i] = kernel_literal(kernel_nf4_text[i]);
  return t;
}

std::array<float, 16> kernel_fp4() {
  std::array<float, 16> t{};
  for (std::size_t i = 0; i < 16; ++i) {
    // dDequantizeFP4Tree: float sign = 1.0f - 2 * ((val & 0b1000) >> 3); lut[val & 0b111] * sign
    const float sign = 1.0f - static_cast<float>(2 * ((i & 8u) >> 3));
    t[i] = kernel_literal(kernel_fp4_text[i & 7u]) * sign;
  }
  return t;
}

// torch.tensor(list) of Python numbers: a float token is a double rounded to fp32, an int token
// (no '.', no exponent) an integer (so "-0" is 0); then the fp32 division by the absolute maximum.
std::array<float, 16> python_table(const char* text) {
  std::vector<float> values;
  std::string s(text);
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string token = s.substr(start, end - start);
    token.erase(0, token.find_first_not_of(' '));
    if (token.find_first_of(".eE") == std::string::npos) {
      values.push_back(static_cast<float>(std::strtol(token.c_str(), nullptr, 10)));
    } else {
      values.push_back(static_cast<float>(std::strtod(token.c_str(), nullptr)));
    }
    start = end + 1;
  }
  EXPECT_EQ(values.size(), 16u);
  float max = 0;
  for (float v : values) max = std::max(max, std::fabs(v));
  std::array<float, 16> t{};
  for (std::size_t i = 0; i < 16 && i < values.size(); ++i) t[i] = values[i] / max;
  return t;
}

TEST(BnbTables, Nf4IsTheKernelsLiteralsAndGet4bitType) {
  const std::array<float, 16> kernel = kernel_nf4();
  const std::array<float, 16> python = python_table(python_nf4_text);
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(bits(dq4::bnb_nf4_table[i]), bits(kernel[i])) << "index " << i << ": " << kernel_nf4_text[i];
    EXPECT_EQ(bits(dq4::bnb_nf4_table[i]), bits(python[i])) << "index " << i;
  }
  EXPECT_EQ(&dq4::bnb_table(bnb_quant_type::nf4), &dq4::bnb_nf4_table);
  EXPECT_EQ(&dq4::bnb_saved_quant_map(bnb_quant_type::nf4), &dq4::bnb_nf4_table);
}

// The properties functional.py states for NF4 (create_normal_map, get_4bit_type): 16 values
// normalized to [-1, 1], sorted, exactly one zero at index 7, seven negative and eight positive
// values (use_extra_value: one more positive value, an asymmetric type).
TEST(BnbTables, Nf4DefiningProperties) {
  const std::array<float, 16>& t = dq4::bnb_nf4_table;
  EXPECT_EQ(bits(t[7]), 0u);  // +0, exactly
  EXPECT_EQ(t[0], -1.0f);
  EXPECT_EQ(t[15], 1.0f);
  for (std::size_t i = 1; i < 16; ++i) EXPECT_LT(t[i - 1], t[i]) << i;
  EXPECT_EQ(std::count_if(t.begin(), t.end(), [](float v) { return v < 0; }), 7);
  EXPECT_EQ(std::count_if(t.begin(), t.end(), [](float v) { return v > 0; }), 8);
  EXPECT_NE(-t[6], t[8]);  // not symmetric
}

TEST(BnbTables, Fp4IsTheKernelsTreeWithMinusZeroAtIndex8) {
  const std::array<float, 16> kernel = kernel_fp4();
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(bits(dq4::bnb_fp4_table[i]), bits(kernel[i])) << "index " << i;
  }
  EXPECT_EQ(bits(dq4::bnb_fp4_table[8]), 0x80000000u);  // 0.0f * -1.0f
  EXPECT_EQ(&dq4::bnb_table(bnb_quant_type::fp4), &dq4::bnb_fp4_table);
}

TEST(BnbTables, Fp4SavedQuantMapIsGet4bitType) {
  const std::array<float, 16> python = python_table(python_fp4_text);
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(bits(dq4::bnb_fp4_saved_quant_map[i]), bits(python[i])) << "index " << i;
    // the saved map and the kernels differ in the sign of the zero at index 8 only
    if (i != 8) {
      EXPECT_EQ(bits(dq4::bnb_fp4_saved_quant_map[i]), bits(dq4::bnb_fp4_table[i])) << i;
    }
  }
  EXPECT_EQ(bits(dq4::bnb_fp4_saved_quant_map[8]), 0u);
  EXPECT_EQ(&dq4::bnb_saved_quant_map(bnb_quant_type::fp4), &dq4::bnb_fp4_saved_quant_map);
}

// dQuantizeFP4's comment: 0b000 = 0, 0b001 = 0.0625, 0b010 = 8, 0b011 = 12, 0b100 = 4, 0b101 = 6,
// 0b110 = 2, 0b111 = 3, "divided by 12 (the FP4 absmax)"; bit 3 the sign. Not e2m1, whose index 1
// is 0.5 and index 2 is 1.
TEST(BnbTables, Fp4Magnitudes) {
  const float twelfths[8] = {0.0f, 0.0625f, 8.0f, 12.0f, 4.0f, 6.0f, 2.0f, 3.0f};
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(bits(dq4::bnb_fp4_table[i]), bits(twelfths[i] / 12.0f)) << i;
    EXPECT_EQ(bits(dq4::bnb_fp4_table[i + 8]), bits(dq4::bnb_fp4_table[i]) | 0x80000000u) << i;
  }
  EXPECT_NE(dq4::bnb_fp4_table[1] * 6.0f, 0.5f);
}

TEST(BnbTables, UnknownTypeIsRejected) {
  EXPECT_THROW((void)dq4::bnb_table(static_cast<bnb_quant_type>(7)), dq4::layout_error);
  EXPECT_THROW((void)dq4::bnb_saved_quant_map(static_cast<bnb_quant_type>(7)), dq4::layout_error);
}

// ---------------------------------------------------------------------------------------------
// The upstream writer, from csrc/kernels.cu and bitsandbytes/functional.py.

// kQuantizeBlockwise: local_abs_max = -FLT_MAX; fmaxf(local_abs_max, fabsf(x)) over the block's
// valid items (fmaxf drops a NaN operand), max-reduced.
float block_absmax(const float* x, std::size_t count) {
  float m = -std::numeric_limits<float>::max();
  for (std::size_t i = 0; i < count; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m;
}

// dQuantizeNF4's tree compares x with these 15 fp32 pivots ("x > pivot" goes to the larger codes);
// a balanced search over sorted pivots, so the code is the number of pivots below x (NaN: 0).
std::uint8_t nf4_code(float x) {
  static const float pivots[15] = {-0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f,
                                   -0.33967943489551544f, -0.23460740596055984f, -0.13791173323988914f,
                                   -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f,
                                   0.2035212516784668f,   0.2920137718319893f,   0.3893125355243683f,
                                   0.5016634166240692f,   0.6427869200706482f,   0.8614784181118011f};
  std::uint8_t q = 0;
  for (float p : pivots) q = static_cast<std::uint8_t>(q + (x > p ? 1 : 0));
  return q;
}

// dQuantizeFP4: sign = x < 0 ? 0b1000 : 0 (so -0 and NaN are positive), then a tree over fabsf(x)
// with these pivots; by magnitude the codes are 0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011.
std::uint8_t fp4_code(float x) {
  static const float pivots[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f,
                                  0.4166667f,  0.583333f,  0.8333333f};
  static const std::uint8_t by_magnitude[8] = {0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011};
  const std::uint8_t sign = x < 0 ? 0b1000 : 0;
  const float a = std::fabs(x);
  std::size_t k = 0;
  for (float p : pivots) k += a > p ? 1 : 0;
  return static_cast<std::uint8_t>(by_magnitude[k] + sign);
}

struct written_4bit {
  std::vector<std::uint8_t> weight;  // [(n + 1) / 2]
  std::vector<float> absmax;         // [ceil(n / blocksize)]
};

// kQuantizeBlockwise (4-bit): per block absmax; scale = 1.0f / absmax (an approximate reciprocal
// under --use_fast_math on the GPU: IEEE here, which only moves values across pivots); items past
// n are loaded as 0 and quantized too; byte j = code(vals[2j]) << 4 | code(vals[2j + 1]), and
// (valid_items + 1) / 2 bytes are stored.
written_4bit quantize_4bit(const std::vector<float>& x, std::size_t blocksize, bnb_quant_type type) {
  const std::size_t n = x.size();
  written_4bit w;
  w.weight.assign((n + 1) / 2, 0);
  for (std::size_t start = 0; start < n; start += blocksize) {
    const std::size_t valid = std::min(blocksize, n - start);
    const float absmax = block_absmax(&x[start], valid);
    w.absmax.push_back(absmax);
    const float scale = 1.0f / absmax;
    for (std::size_t i = start; i < start + valid + (valid % 2); ++i) {
      const float v = i < n ? x[i] : 0.0f;
      const std::uint8_t q = type == bnb_quant_type::nf4 ? nf4_code(v * scale) : fp4_code(v * scale);
      if (i % 2 == 0) {
        w.weight[i / 2] = static_cast<std::uint8_t>(q << 4);
      } else {
        w.weight[i / 2] = static_cast<std::uint8_t>(w.weight[i / 2] | q);
      }
    }
  }
  return w;
}

// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for i in 0..6, the midpoints
// of linspace(0.1, 1, 2^i + 1) scaled by 10^(i - 6), with both signs; then 0 and 1.0; sorted. The
// bits of torch's linspace and multiply may differ from this in the last place: the reader reads the
// map as stored, and the test writes and reads with the same map.
std::array<float, 256> dynamic_map() {
  std::vector<float> data;
  for (int i = 0; i < 7; ++i) {
    const int items = (1 << i) + 1;
    std::vector<float> b(static_cast<std::size_t>(items));
    for (int k = 0; k < items; ++k) b[static_cast<std::size_t>(k)] = static_cast<float>(0.1 + 0.9 * k / (items - 1));
    const double scale = std::pow(10.0, i - 6);
    for (std::size_t k = 0; k + 1 < b.size(); ++k) {
      const float mean = (b[k] + b[k + 1]) / 2.0f;
      data.push_back(static_cast<float>(scale * mean));
      data.push_back(static_cast<float>(-scale * mean));
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  EXPECT_EQ(data.size(), 256u);
  std::sort(data.begin(), data.end());
  std::array<float, 256> map{};
  std::copy(data.begin(), data.end(), map.begin());
  return map;
}

// csrc/kernels.cu dQuantize<0> (STOCHASTIC = 0): binary search of the sorted 256-entry code, then
// the nearer neighbour by the midpoint.
std::uint8_t dynamic_code(const std::array<float, 256>& code, float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = code[127];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[static_cast<std::size_t>(pivot)];
  }
  if (upper_pivot == 255) upper = code[static_cast<std::size_t>(upper_pivot)];
  if (lower_pivot == 0) lower = code[static_cast<std::size_t>(lower_pivot)];
  int result = 0;
  if (x > val) {
    const float midpoint = (upper + val) * 0.5f;
    result = x > midpoint ? upper_pivot : pivot;
  } else {
    const float midpoint = (lower + val) * 0.5f;
    result = x < midpoint ? lower_pivot : pivot;
  }
  return static_cast<std::uint8_t>(result);
}

struct nested_absmax {
  std::vector<std::uint8_t> codes;
  std::vector<float> nested;  // [ceil(blocks / 256)]
  std::array<float, 256> map{};
  float offset = 0;
};

// quantize_4bit(compress_statistics=True): offset = absmax.mean() (fp32; torch's summation order is
// its own, here a double sum rounded once: the reader takes the offset from the JSON), then
// quantize_blockwise(absmax - offset, blocksize=256) with the dynamic map (kQuantizeBlockwise,
// General8bit: per 256 values m = max |x|, code = dQuantize(map, x * (1.0f / m))).
nested_absmax compress_statistics(const std::vector<float>& absmax) {
  nested_absmax s;
  s.map = dynamic_map();
  double sum = 0;
  for (float a : absmax) sum += a;
  s.offset = static_cast<float>(sum / static_cast<double>(absmax.size()));
  std::vector<float> x(absmax.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = absmax[i] - s.offset;
  for (std::size_t start = 0; start < x.size(); start += 256) {
    const std::size_t valid = std::min<std::size_t>(256, x.size() - start);
    const float m = block_absmax(&x[start], valid);
    s.nested.push_back(m);
    const float scale = 1.0f / m;
    for (std::size_t i = start; i < start + valid; ++i) s.codes.push_back(dynamic_code(s.map, x[i] * scale));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// The upstream reader.

// dequantize_4bit on a double-quantized state: dequantize_blockwise (kDequantizeBlockwise,
// General8bit: code[q] * absmax in fp32), then `absmax += quant_state.offset`, a second fp32 op.
// The volatile keeps a compiler that contracts across statements (g++ -std=gnu++17 with FMA
// hardware) from fusing the two.
float upstream_nested_absmax(const nested_absmax& s, std::size_t b) {
  const volatile float product = s.map[s.codes[b]] * s.nested[b / 256];
  const float sum = product + s.offset;
  return sum;
}

// The fused GEMM kernels: absmax_code[c] * absmax[blk >> 8] + offset, one fma.
float upstream_fused_absmax(const nested_absmax& s, std::size_t b) {
  return std::fma(s.map[s.codes[b]], s.nested[b / 256], s.offset);
}

// kDequantizeBlockwise (FP4 / NF4): byte j gives vals[2j] from qvals[j] >> 4 and vals[2j + 1] from
// qvals[j] & 0x0F, each lut[q] * absmax[block] in fp32 (the block size passed is blocksize / 2
// bytes, ops.cu dequantizeBlockwise).
int upstream_code(const std::vector<std::uint8_t>& weight, std::size_t i) {
  const std::uint8_t byte = weight[i / 2];
  return i % 2 == 0 ? byte >> 4 : byte & 0x0F;
}

float upstream_value(const std::vector<std::uint8_t>& weight, const std::vector<float>& absmax,
                     std::size_t blocksize, bnb_quant_type type, std::size_t i) {
  const std::array<float, 16> lut = type == bnb_quant_type::nf4 ? kernel_nf4() : kernel_fp4();
  return lut[static_cast<std::size_t>(upstream_code(weight, i))] * absmax[i / blocksize];
}

// ---------------------------------------------------------------------------------------------
// JSON as json.dumps writes QuantState.as_dict's non-tensor items.

std::string python_float(float f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", static_cast<double>(f));  // round-trips, like repr
  return text;
}

std::string quant_state_json(bnb_quant_type type, std::size_t blocksize, const char* dtype,
                             const std::vector<std::size_t>& shape, const nested_absmax* nested) {
  std::string s = std::string("{\"quant_type\": \"") + (type == bnb_quant_type::nf4 ? "nf4" : "fp4") +
                  "\", \"blocksize\": " + std::to_string(blocksize) + ", \"dtype\": \"" + dtype + "\", \"shape\": [";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  s += "]";
  if (nested != nullptr) {
    s += ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": " + python_float(nested->offset);
  }
  return s + "}";
}

std::vector<std::uint8_t> blob(const std::string& s) { return std::vector<std::uint8_t>(s.begin(), s.end()); }

std::string key_of(bnb_quant_type type) {
  return std::string("model.layers.0.mlp.down_proj.weight.quant_state.bitsandbytes__") +
         (type == bnb_quant_type::nf4 ? "nf4" : "fp4");
}

dq4::bnb_quant_state parse(const std::string& json, bnb_quant_type key_type = bnb_quant_type::nf4) {
  const std::vector<std::uint8_t> b = blob(json);
  return dq4::parse_bnb_quant_state(b.data(), b.size(), key_of(key_type));
}

void expect_layout_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no dq4::layout_error";
  } catch (const dq4::layout_error& e) {
    const std::string what = e.what();
    for (const char* p : parts) EXPECT_NE(what.find(p), std::string::npos) << "\"" << what << "\" lacks \"" << p << "\"";
  }
}

// ---------------------------------------------------------------------------------------------
// A whole checkpoint: written, parsed, read, and compared with the upstream reader.

struct checkpoint {
  bnb_quant_type type = bnb_quant_type::nf4;
  std::size_t blocksize = 64;
  std::vector<std::size_t> shape;
  written_4bit w;
  bool nested = false;
  nested_absmax n;
  std::string json;
  std::array<float, 16> quant_map{};

  dq4::bnb_4bit_tensors tensors() const {
    dq4::bnb_4bit_tensors t;
    t.weight = w.weight.data();
    t.weight_bytes = w.weight.size();
    t.quant_map = quant_map.data();
    t.quant_map_count = quant_map.size();
    if (nested) {
      t.absmax_codes = n.codes.data();
      t.absmax_codes_count = n.codes.size();
      t.nested_absmax = n.nested.data();
      t.nested_absmax_count = n.nested.size();
      t.nested_quant_map = n.map.data();
      t.nested_quant_map_count = n.map.size();
    } else {
      t.absmax = w.absmax.data();
      t.absmax_count = w.absmax.size();
    }
    return t;
  }
  dq4::bnb_quant_state state() const { return parse(json, type); }
  dq4::bnb_4bit_matrix read(bnb_nested_absmax how = bnb_nested_absmax::dequantize_4bit) const {
    return dq4::from_bnb_4bit(state(), tensors(), how);
  }
  /// The absmax the upstream reader uses for block b.
  float absmax(std::size_t b) const { return nested ? upstream_nested_absmax(n, b) : w.absmax[b]; }
};

checkpoint write(const std::vector<float>& x, std::vector<std::size_t> shape, std::size_t blocksize,
                 bnb_quant_type type, bool nested) {
  checkpoint c;
  c.type = type;
  c.blocksize = blocksize;
  c.shape = std::move(shape);
  c.w = quantize_4bit(x, blocksize, type);
  c.nested = nested;
  if (nested) c.n = compress_statistics(c.w.absmax);
  c.json = quant_state_json(type, blocksize, "bfloat16", c.shape, nested ? &c.n : nullptr);
  c.quant_map = python_table(type == bnb_quant_type::nf4 ? python_nf4_text : python_fp4_text);
  return c;
}

// Every element: the nibble in dq4's sequential order is the upstream code, and table[q] *
// absmax[i / blocksize] from the reader's output has the upstream reader's bits.
void expect_matches_upstream(const checkpoint& c, const dq4::bnb_4bit_matrix& m) {
  std::size_t n = 1;
  for (std::size_t d : c.shape) n *= d;
  ASSERT_EQ(m.elements, n);
  ASSERT_EQ(c.w.weight.size(), (n + 1) / 2);
  EXPECT_EQ(m.shape, c.shape);
  EXPECT_EQ(m.quant_type, c.type);
  EXPECT_EQ(m.dtype, dq4::format::bf16);
  ASSERT_EQ(m.words.size(), (n + 7) / 8);
  ASSERT_EQ(m.absmax.size(), c.w.absmax.size());
  EXPECT_EQ(m.blocksize, c.blocksize);
  EXPECT_EQ(m.double_quantized, c.nested);
  std::vector<float> resolved(m.absmax.size());
  for (std::size_t b = 0; b < resolved.size(); ++b) {
    resolved[b] = c.absmax(b);
    ASSERT_EQ(bits(m.absmax[b]), bits(resolved[b])) << "block " << b;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto nibble = static_cast<int>((m.words[i / 8] >> (4 * (i % 8))) & 0xFu);
    ASSERT_EQ(nibble, upstream_code(c.w.weight, i)) << "element " << i;
    ASSERT_EQ(m.code(i), nibble) << "element " << i;
    const float mine = m.table[static_cast<std::size_t>(nibble)] * m.absmax[i / m.blocksize];
    const float theirs = upstream_value(c.w.weight, resolved, c.blocksize, c.type, i);
    ASSERT_EQ(bits(mine), bits(theirs)) << "element " << i << ": " << mine << " vs " << theirs;
  }
  for (std::size_t i = n; i < 8 * m.words.size(); ++i) {
    EXPECT_EQ((m.words[i / 8] >> (4 * (i % 8))) & 0xFu, 0u) << "padding nibble " << i;
  }
}

std::vector<float> pseudo_normal(std::size_t n, std::uint32_t seed) {
  std::vector<float> x(n);
  std::uint32_t s = seed;
  for (std::size_t i = 0; i < n; ++i) {
    float sum = 0;
    for (int k = 0; k < 4; ++k) {
      s = s * 1664525u + 1013904223u;
      sum += static_cast<float>(s >> 8) * 0x1p-24f - 0.5f;
    }
    x[i] = sum * 0.05f;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Layout.

TEST(BnbLayout, FirstElementInTheHighNibbleBecomesSequential) {
  // elements 1, 2, ..., 8: bitsandbytes bytes 0x12 0x34 0x56 0x78; sequential word 0x87654321
  const std::vector<std::uint8_t> weight = {0x12, 0x34, 0x56, 0x78, 0x9A};
  const std::vector<float> absmax = {1.0f};
  dq4::bnb_4bit_tensors t;
  t.weight = weight.data();
  t.weight_bytes = weight.size();
  t.absmax = absmax.data();
  t.absmax_count = 1;
  const dq4::bnb_4bit_matrix m =
      dq4::from_bnb_4bit(parse(R"({"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [9]})"), t,
                         bnb_nested_absmax::dequantize_4bit);
  ASSERT_EQ(m.words.size(), 2u);
  EXPECT_EQ(m.words[0], 0x87654321u);
  EXPECT_EQ(m.words[1], 0x9u);  // odd n: the low nibble 0xA of the last byte is padding, dropped
  for (std::size_t i = 0; i < 9; ++i) EXPECT_EQ(m.code(i), static_cast<int>(i + 1));
  EXPECT_THROW((void)m.code(9), std::out_of_range);
  EXPECT_EQ(m.dtype, dq4::format::fp16);
  EXPECT_EQ(m.shape, std::vector<std::size_t>({9}));
}

// ---------------------------------------------------------------------------------------------
// Round trips, edge cases first.

TEST(BnbRoundTrip, Nf4ZeroIsCode7AndMinusZeroToo) {
  std::vector<float> x = pseudo_normal(64, 1);
  x[3] = 0.0f;
  x[4] = -0.0f;
  const checkpoint c = write(x, {1, 64}, 64, bnb_quant_type::nf4, false);
  EXPECT_EQ(upstream_code(c.w.weight, 3), 7);
  EXPECT_EQ(upstream_code(c.w.weight, 4), 7);
  const dq4::bnb_4bit_matrix m = c.read();
  expect_matches_upstream(c, m);
  EXPECT_EQ(bits(m.table[7] * m.absmax[0]), 0u);  // +0: -0 input comes back +0
}

TEST(BnbRoundTrip, Fp4MinusZeroAndTinyNegatives) {
  std::vector<float> x = pseudo_normal(32, 2);
  x[0] = -0.0f;    // x < 0 is false: code 0, +0
  x[1] = -1e-9f;   // below the first pivot, negative: code 0b1000, -0 from the kernels
  x[2] = 1e-9f;    // code 0
  const checkpoint c = write(x, {32}, 32, bnb_quant_type::fp4, false);
  EXPECT_EQ(upstream_code(c.w.weight, 0), 0);
  EXPECT_EQ(upstream_code(c.w.weight, 1), 8);
  EXPECT_EQ(upstream_code(c.w.weight, 2), 0);
  const dq4::bnb_4bit_matrix m = c.read();
  expect_matches_upstream(c, m);
  EXPECT_EQ(bits(m.table[8] * m.absmax[0]), 0x80000000u);
  EXPECT_EQ(bits(m.table[0] * m.absmax[0]), 0u);
}

// A block of zeros: absmax 0, 1.0f / 0 = inf, 0 * inf = NaN, and both trees send NaN to code 0:
// NF4 -1 * 0 = -0, FP4 0 * 0 = +0.
TEST(BnbRoundTrip, ZeroBlock) {
  for (bnb_quant_type type : {bnb_quant_type::nf4, bnb_quant_type::fp4}) {
    std::vector<float> x = pseudo_normal(3 * 64, 3);
    std::fill(x.begin() + 64, x.begin() + 128, 0.0f);
    const checkpoint c = write(x, {3, 64}, 64, type, false);
    EXPECT_EQ(c.w.absmax[1], 0.0f);
    for (std::size_t i = 64; i < 128; ++i) ASSERT_EQ(upstream_code(c.w.weight, i), 0) << i;
    const dq4::bnb_4bit_matrix m = c.read();
    expect_matches_upstream(c, m);
    EXPECT_EQ(bits(m.table[0] * m.absmax[1]), type == bnb_quant_type::nf4 ? 0x80000000u : 0u);
  }
}

TEST(BnbRoundTrip, LastPartialBlockAndOddCount) {
  for (bnb_quant_type type : {bnb_quant_type::nf4, bnb_quant_type::fp4}) {
    for (std::size_t blocksize : {32u, 64u, 128u, 4096u}) {
      const std::size_t n = 2 * blocksize + 17;  // odd, the last block 17 long
      const checkpoint c = write(pseudo_normal(n, 4), {n}, blocksize, type, false);
      ASSERT_EQ(c.w.absmax.size(), 3u);
      ASSERT_EQ(c.w.weight.size(), (n + 1) / 2);
      const dq4::bnb_4bit_matrix m = c.read();
      expect_matches_upstream(c, m);
      EXPECT_EQ(m.blocks(), 3u);
    }
  }
}

// Infinite input gives an infinite absmax (1 / inf = 0; finite * 0 = 0 -> the zero code, inf * 0 =
// NaN -> code 0); a block of NaN gives absmax -FLT_MAX (fmaxf drops every NaN).
TEST(BnbRoundTrip, InfiniteAndNanInput) {
  std::vector<float> x = pseudo_normal(3 * 64, 5);
  x[10] = std::numeric_limits<float>::infinity();
  std::fill(x.begin() + 128, x.end(), std::numeric_limits<float>::quiet_NaN());
  const checkpoint c = write(x, {3, 64}, 64, bnb_quant_type::nf4, false);
  EXPECT_EQ(c.w.absmax[0], std::numeric_limits<float>::infinity());
  EXPECT_EQ(c.w.absmax[2], -std::numeric_limits<float>::max());
  const dq4::bnb_4bit_matrix m = c.read();
  expect_matches_upstream(c, m);
  EXPECT_EQ(m.table[0] * m.absmax[2], std::numeric_limits<float>::max());
}

// An fp32 absmax is taken as stored, whatever it holds (the torch backend's abs().max() keeps NaN).
TEST(BnbRoundTrip, AbsmaxBitsAreKept) {
  const std::vector<std::uint8_t> weight(64, 0x7F);
  const std::vector<float> absmax = {std::numeric_limits<float>::quiet_NaN(), -0.0f, 1e-40f,
                                     -std::numeric_limits<float>::infinity()};
  dq4::bnb_4bit_tensors t;
  t.weight = weight.data();
  t.weight_bytes = weight.size();
  t.absmax = absmax.data();
  t.absmax_count = absmax.size();
  const dq4::bnb_4bit_matrix m = dq4::from_bnb_4bit(
      parse(R"({"quant_type": "nf4", "blocksize": 32, "dtype": "float32", "shape": [128]})"), t,
      bnb_nested_absmax::fused_gemm);
  for (std::size_t b = 0; b < absmax.size(); ++b) EXPECT_EQ(bits(m.absmax[b]), bits(absmax[b])) << b;
}

TEST(BnbRoundTrip, PlainBothTypesManyBlocks) {
  for (bnb_quant_type type : {bnb_quant_type::nf4, bnb_quant_type::fp4}) {
    const checkpoint c = write(pseudo_normal(48 * 128, 6), {48, 128}, 64, type, false);
    expect_matches_upstream(c, c.read());
  }
}

// Double quantization: more than 256 blocks (two nested groups, the second partial), codes on both
// sides of the offset.
TEST(BnbRoundTrip, DoubleQuantized) {
  for (bnb_quant_type type : {bnb_quant_type::nf4, bnb_quant_type::fp4}) {
    const std::size_t n = 301 * 64 - 11;
    const checkpoint c = write(pseudo_normal(n, 7), {n}, 64, type, true);
    ASSERT_EQ(c.n.nested.size(), 2u);
    EXPECT_TRUE(std::any_of(c.n.codes.begin(), c.n.codes.end(), [](std::uint8_t q) { return q < 127; }));
    EXPECT_TRUE(std::any_of(c.n.codes.begin(), c.n.codes.end(), [](std::uint8_t q) { return q > 127; }));
    const dq4::bnb_4bit_matrix m = c.read(bnb_nested_absmax::dequantize_4bit);
    expect_matches_upstream(c, m);
  }
}

// The fused GEMM kernels' one rounding against dequantize_4bit's two: the reader gives each, and
// they differ on some blocks.
TEST(BnbRoundTrip, DoubleQuantizedFusedDiffers) {
  const std::size_t n = 600 * 64;
  const checkpoint c = write(pseudo_normal(n, 8), {600, 64}, 64, bnb_quant_type::nf4, true);
  const dq4::bnb_4bit_matrix two = c.read(bnb_nested_absmax::dequantize_4bit);
  const dq4::bnb_4bit_matrix one = c.read(bnb_nested_absmax::fused_gemm);
  std::size_t differ = 0;
  for (std::size_t b = 0; b < two.blocks(); ++b) {
    ASSERT_EQ(bits(two.absmax[b]), bits(upstream_nested_absmax(c.n, b))) << b;
    ASSERT_EQ(bits(one.absmax[b]), bits(upstream_fused_absmax(c.n, b))) << b;
    if (bits(one.absmax[b]) != bits(two.absmax[b])) ++differ;
  }
  EXPECT_GT(differ, 0u);
  EXPECT_EQ(one.words, two.words);
}

// The recovered absmax can be negative: blocks of zeros next to one large block put the zeros'
// x = -offset where the dynamic map's nearest code overshoots. The reader keeps the negative value.
TEST(BnbRoundTrip, DoubleQuantizedNegativeAbsmax) {
  bool found = false;
  for (std::size_t zeros = 1; zeros < 64 && !found; ++zeros) {
    const std::size_t blocks = zeros + 1;
    std::vector<float> x(blocks * 64, 0.0f);
    x[zeros * 64 + 5] = 1.0f;  // the last block's absmax is 1, the others 0
    checkpoint c = write(x, {blocks, 64}, 64, bnb_quant_type::nf4, true);
    if (!(c.absmax(0) < 0.0f)) continue;
    found = true;
    const dq4::bnb_4bit_matrix m = c.read();
    expect_matches_upstream(c, m);
    EXPECT_LT(m.absmax[0], 0.0f) << zeros << " zero blocks";
    // the zero block has code 0 (its NaN), so it dequantizes to -1 * absmax = -absmax > 0
    EXPECT_EQ(bits(m.table[0] * m.absmax[0]), bits(-m.absmax[0]));
  }
  EXPECT_TRUE(found);
}

// One block: offset = its absmax, x = 0, the nested absmax 0, code = dQuantize(NaN) = 0, and
// map[0] * 0 = -0, + offset = the absmax exactly.
TEST(BnbRoundTrip, DoubleQuantizedSingleBlock) {
  const checkpoint c = write(pseudo_normal(64, 9), {64}, 64, bnb_quant_type::fp4, true);
  EXPECT_EQ(c.n.nested[0], 0.0f);
  EXPECT_EQ(c.n.codes[0], 0);
  const dq4::bnb_4bit_matrix m = c.read();
  expect_matches_upstream(c, m);
  EXPECT_EQ(bits(m.absmax[0]), bits(c.w.absmax[0]));
}

TEST(BnbRoundTrip, DoubleQuantizedNonFiniteOffset) {
  const checkpoint c = write(pseudo_normal(4 * 64, 10), {4, 64}, 64, bnb_quant_type::nf4, true);
  for (const char* offset : {"NaN", "Infinity", "-Infinity"}) {
    std::string json = c.json;
    const std::size_t at = json.find("\"nested_offset\": ") + std::strlen("\"nested_offset\": ");
    json = json.substr(0, at) + offset + "}";
    const dq4::bnb_4bit_matrix m = dq4::from_bnb_4bit(parse(json), c.tensors(), bnb_nested_absmax::dequantize_4bit);
    nested_absmax n = c.n;
    n.offset = parse(json).nested_offset;
    for (std::size_t b = 0; b < m.blocks(); ++b) {
      const float expected = upstream_nested_absmax(n, b);
      if (std::isnan(expected)) {
        EXPECT_TRUE(std::isnan(m.absmax[b])) << offset << " block " << b;
      } else {
        EXPECT_EQ(bits(m.absmax[b]), bits(expected)) << offset << " block " << b;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The quant_state JSON.

TEST(BnbQuantState, ReadsWhatJsonDumpsWrites) {
  const dq4::bnb_quant_state s = parse(
      R"({"quant_type": "fp4", "blocksize": 128, "dtype": "bfloat16", "shape": [4096, 11008], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.03125})",
      bnb_quant_type::fp4);
  EXPECT_EQ(s.quant_type, bnb_quant_type::fp4);
  EXPECT_EQ(s.blocksize, 128u);
  EXPECT_EQ(s.dtype, dq4::format::bf16);
  EXPECT_EQ(s.shape, std::vector<std::size_t>({4096, 11008}));
  EXPECT_EQ(s.elements, 4096u * 11008u);
  EXPECT_TRUE(s.nested);
  EXPECT_EQ(s.nested_blocksize, 256u);
  EXPECT_EQ(s.nested_offset, 0.03125f);

  const dq4::bnb_quant_state plain = parse("{\n\t\"shape\" :[3,5,7] , \"dtype\":\"float32\",\"blocksize\":4096,\r\n"
                                           "\"quant_type\":\"nf4\"}  ");
  EXPECT_FALSE(plain.nested);
  EXPECT_EQ(plain.elements, 105u);
  EXPECT_EQ(plain.dtype, dq4::format::fp32);
  EXPECT_EQ(parse(R"({"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [1]})").dtype,
            dq4::format::fp16);
}

// nested_offset: Python's float() of the decimal (a double), then torch.tensor -> fp32.
TEST(BnbQuantState, OffsetIsADoubleRoundedToFp32) {
  auto offset = [](const std::string& text) {
    return parse(R"({"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": )" +
                 text + "}")
        .nested_offset;
  };
  EXPECT_EQ(bits(offset("0.012340000085532665")), bits(0.01234f));  // repr of fp32 0.01234 as a double
  EXPECT_EQ(bits(offset("1e-05")), bits(static_cast<float>(1e-05)));
  EXPECT_EQ(bits(offset("-2.5E+3")), bits(-2500.0f));
  EXPECT_EQ(bits(offset("-0.0")), 0x80000000u);
  EXPECT_EQ(bits(offset("0")), 0u);
  EXPECT_TRUE(std::isnan(offset("NaN")));
  EXPECT_EQ(offset("Infinity"), std::numeric_limits<float>::infinity());
  EXPECT_EQ(offset("-Infinity"), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(offset("1e39"), std::numeric_limits<float>::infinity());  // a double beyond fp32
  EXPECT_EQ(bits(offset("1e-400")), 0u);                               // Python: 0.0
  EXPECT_EQ(bits(offset("-1e-400")), 0x80000000u);                     // Python: -0.0
  EXPECT_EQ(bits(offset("1e-310")), 0u);  // a subnormal double, below half the least fp32 subnormal
  EXPECT_EQ(bits(offset("1e-45")), 1u);   // the least fp32 subnormal
  // doubles around the fp32 overflow threshold 2^128 - 2^103 (the halfway point above FLT_MAX)
  auto text = [](double d) {
    char t[40];
    std::snprintf(t, sizeof t, "%.17g", d);
    return std::string(t);
  };
  EXPECT_EQ(bits(offset(text(0x1.ffffffp127))), bits(std::numeric_limits<float>::infinity()));
  EXPECT_EQ(bits(offset(text(std::nextafter(0x1.ffffffp127, 0.0)))), bits(std::numeric_limits<float>::max()));
  EXPECT_EQ(bits(offset(text(-0x1.ffffffp127))), bits(-std::numeric_limits<float>::infinity()));
  // decimal -> double -> fp32, two roundings, as Python's float() and torch.tensor do: a decimal a
  // hair above the halfway point 1 + 2^-24 between fp32 1 and 1 + 2^-23 becomes that halfway point
  // as a double, which then rounds to the even 1; rounded to fp32 directly it would be 1 + 2^-23.
  EXPECT_EQ(bits(offset("1.00000005960464477539062500000000001")), bits(1.0f));
  EXPECT_EQ(bits(std::strtof("1.00000005960464477539062500000000001", nullptr)), bits(1.0f) + 1);
}

TEST(BnbQuantState, KeysAndTypes) {
  const std::string ok = R"({"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [2, 32]})";
  const std::vector<std::uint8_t> b = blob(ok);
  expect_layout_error([&] { (void)dq4::parse_bnb_quant_state(nullptr, 5, "w.quant_state.bitsandbytes__nf4"); },
                      {"null quant_state", "w.quant_state.bitsandbytes__nf4"});
  expect_layout_error([&] { (void)dq4::parse_bnb_quant_state(b.data(), 0, "w.quant_state.bitsandbytes__nf4"); },
                      {"empty quant_state"});
  expect_layout_error([&] { (void)dq4::parse_bnb_quant_state(b.data(), b.size(), "w.quant_state.bitsandbytes__int4"); },
                      {"bitsandbytes__int4", "valid_qs_type_keys"});
  expect_layout_error([&] { (void)dq4::parse_bnb_quant_state(b.data(), b.size(), "w.quant_state.bitsandbytes__fp4"); },
                      {"says fp4", "quant_type is nf4"});
  EXPECT_NO_THROW((void)dq4::parse_bnb_quant_state(b.data(), b.size(), "bitsandbytes__nf4"));
}

TEST(BnbQuantState, RejectsWhatBitsandbytesDoesNotWrite) {
  const std::string head = R"("quant_type": "nf4", "dtype": "float16", )";
  const std::vector<std::pair<std::string, std::vector<const char*>>> cases = {
      {"[]", {"expected '{'", "byte 0"}},
      {"{", {"expected a string as a key", "the end of the blob"}},
      {R"({"quant_type": "nf4")", {"expected '}'", "the end of the blob"}},
      {R"({"quant_type": "nf4",})", {"expected a string as a key", "'}'"}},
      {R"({"quant_type": "nf4"} x)", {"text after the end", "byte 22"}},
      {R"({"quant_type" "nf4"})", {"expected ':'", "quant_type"}},
      {R"({"quant_type": "nf4)", {"unterminated string"}},
      {"{\"quant_type\": \"nf\\u0034\"}", {"escape sequence"}},
      {"{\"quant_type\": \"nf\xC3\xA4\"}", {"byte 195"}},
      {R"({"quant_type": "int4", "blocksize": 64, "dtype": "float16", "shape": [64]})", {"quant_type \"int4\""}},
      {R"({"quant_type": "af4", "blocksize": 64, "dtype": "float16", "shape": [64]})", {"quant_type \"af4\""}},
      {R"({"quant_type": 4, "blocksize": 64, "dtype": "float16", "shape": [64]})", {"expected a string for quant_type"}},
      {"{" + head + R"("blocksize": 16, "shape": [64]})", {"blocksize 16", "32, 64, 128"}},
      {"{" + head + R"("blocksize": 8192, "shape": [64]})", {"blocksize 8192"}},
      {"{" + head + R"("blocksize": 0, "shape": [64]})", {"blocksize 0"}},
      {"{" + head + R"("blocksize": 64.0, "shape": [64]})", {"blocksize = 64.0 is not an integer"}},
      {"{" + head + R"("blocksize": 6e1, "shape": [64]})", {"blocksize = 6e1 is not an integer"}},
      {"{" + head + R"("blocksize": "64", "shape": [64]})", {"expected a number for blocksize"}},
      {"{" + head + R"("blocksize": -64, "shape": [64]})", {"blocksize = -64 is negative"}},
      {"{" + head + R"("blocksize": 99999999999999999999999, "shape": [64]})", {"larger than SIZE_MAX"}},
      {"{" + head + R"("blocksize": 64, "shape": null})", {"shape is null"}},
      {"{" + head + R"("blocksize": 64, "shape": []})", {"shape [] has no dimensions"}},
      {"{" + head + R"("blocksize": 64, "shape": [4, 0]})", {"shape [4, 0] has no elements"}},
      {"{" + head + R"("blocksize": 64, "shape": [4, -1]})", {"a shape dimension = -1 is negative"}},
      {"{" + head + R"("blocksize": 64, "shape": [4, 2.5]})", {"a shape dimension = 2.5 is not an integer"}},
      {"{" + head + R"("blocksize": 64, "shape": [4, 64)", {"expected ']' to end the shape list"}},
      {"{" + head + R"("blocksize": 64, "shape": 64})", {"expected '[' to start the shape list"}},
      {"{" + head + R"("blocksize": 64, "shape": [4294967296, 4294967296, 16]})",
       {"4294967296 x 4294967296", "more than fit in memory"}},
      {R"({"quant_type": "nf4", "dtype": "float64", "blocksize": 64, "shape": [64]})", {"dtype \"float64\""}},
      {R"({"quant_type": "nf4", "dtype": "torch.float16", "blocksize": 64, "shape": [64]})",
       {"dtype \"torch.float16\""}},
      {R"({"quant_type": "nf4", "blocksize": 64, "shape": [64]})", {"\"dtype\" is missing"}},
      {R"({"quant_type": "nf4", "dtype": "float16", "shape": [64]})", {"\"blocksize\" is missing"}},
      {R"({"blocksize": 64, "dtype": "float16", "shape": [64]})", {"\"quant_type\" is missing"}},
      {R"({"quant_type": "nf4", "blocksize": 64, "dtype": "float16"})", {"\"shape\" is missing"}},
      {"{" + head + R"("blocksize": 64, "shape": [64], "blocksize": 64})", {"\"blocksize\" appears twice"}},
      {"{" + head + R"("blocksize": 64, "shape": [64], "absmax": 1})", {"\"absmax\" is not one bitsandbytes writes"}},
      {"{" + head + R"("blocksize": 64, "shape": [64], "quant_storage": "uint8"})", {"\"quant_storage\""}},
      {"{" + head + R"("blocksize": 64, "shape": [64], "nested_offset": 0.5})",
       {"missing nested_blocksize, nested_dtype"}},
      {"{" + head + R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_offset": 0.5})",
       {"missing nested_dtype"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 128, "nested_dtype": "float32", "nested_offset": 0.5})",
       {"nested_blocksize 128", "256"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_dtype": "bfloat16", "nested_offset": 0.5})",
       {"nested_dtype \"bfloat16\"", "_convert_weight_packed_for_cpu_inverse"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1e400})",
       {"nested_offset = 1e400", "outside the range of a double"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": "0.5"})",
       {"expected a number for nested_offset"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": .5})",
       {"expected a number for nested_offset"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1.})",
       {"a digit after the decimal point"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1e+})",
       {"a digit in the exponent"}},
      {"{" + head +
           R"("blocksize": 64, "shape": [64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": nan})",
       {"expected a number for nested_offset", "'n'"}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string& json = cases[i].first;
    try {
      (void)parse(json);
      ADD_FAILURE() << "accepted: " << json;
    } catch (const dq4::layout_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("dq4::parse_bnb_quant_state"), std::string::npos) << what;
      for (const char* p : cases[i].second) {
        EXPECT_NE(what.find(p), std::string::npos) << "\"" << what << "\" lacks \"" << p << "\" for " << json;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// from_bnb_4bit's checks.

TEST(BnbReader, QuantMapMustBeWhatBitsandbytesSaves) {
  checkpoint fp4 = write(pseudo_normal(128, 11), {128}, 64, bnb_quant_type::fp4, false);
  EXPECT_NO_THROW((void)fp4.read());
  fp4.quant_map = dq4::bnb_fp4_table;  // the kernels' -0 at index 8
  expect_layout_error([&] { (void)fp4.read(); },
                      {"quant_map[8] = -0x0p+0 (0x80000000)", "get_4bit_type(\"fp4\") writes 0x0p+0 (0x00000000)"});
  checkpoint nf4 = write(pseudo_normal(128, 12), {128}, 64, bnb_quant_type::nf4, false);
  nf4.quant_map[3] = from_bits(bits(nf4.quant_map[3]) + 1);
  expect_layout_error([&] { (void)nf4.read(); }, {"quant_map[3] = -0x1.946542p-2 (0xBECA32A1)", "0xBECA32A0"});
  // an NF4 map given for an FP4 weight
  checkpoint mixed = write(pseudo_normal(128, 13), {128}, 64, bnb_quant_type::fp4, false);
  mixed.quant_map = dq4::bnb_nf4_table;
  expect_layout_error([&] { (void)mixed.read(); }, {"quant_map[0] = -0x1p+0 (0xBF800000)", "fp4"});
  // absent: not checked
  dq4::bnb_4bit_tensors t = nf4.tensors();
  t.quant_map = nullptr;
  t.quant_map_count = 0;
  EXPECT_NO_THROW((void)dq4::from_bnb_4bit(nf4.state(), t, bnb_nested_absmax::dequantize_4bit));
  t.quant_map_count = 16;
  expect_layout_error([&] { (void)dq4::from_bnb_4bit(nf4.state(), t, bnb_nested_absmax::dequantize_4bit); },
                      {"null quant_map"});
  t = fp4.tensors();
  t.quant_map_count = 15;
  expect_layout_error([&] { (void)dq4::from_bnb_4bit(fp4.state(), t, bnb_nested_absmax::dequantize_4bit); },
                      {"quant_map has 15 entries, expected 16"});
}

TEST(BnbReader, SizesMustMatchTheState) {
  const checkpoint plain = write(pseudo_normal(5 * 64 + 3, 14), {5 * 64 + 3}, 64, bnb_quant_type::nf4, false);
  const dq4::bnb_quant_state s = plain.state();
  auto read = [&](const dq4::bnb_4bit_tensors& t) {
    return [&s, t] { (void)dq4::from_bnb_4bit(s, t, bnb_nested_absmax::dequantize_4bit); };
  };
  dq4::bnb_4bit_tensors t = plain.tensors();
  t.weight = nullptr;
  expect_layout_error(read(t), {"null weight"});
  t = plain.tensors();
  t.weight_bytes = 161;
  expect_layout_error(read(t), {"161 bytes", "323 elements", "(n + 1) / 2 = 162"});
  t = plain.tensors();
  t.absmax = nullptr;
  expect_layout_error(read(t), {"null absmax", "ceil(323 / blocksize 64) = 6 blocks"});
  t = plain.tensors();
  t.absmax_count = 5;
  expect_layout_error(read(t), {"absmax has 5 entries, expected 6"});
  t = plain.tensors();
  const std::vector<std::uint8_t> codes(6, 0);
  t.absmax_codes = codes.data();
  t.absmax_codes_count = codes.size();
  expect_layout_error(read(t), {"uint8 absmax tensor given (6 entries)", "not double-quantized"});
  t = plain.tensors();
  const std::vector<float> extra(1, 1.0f);
  t.nested_absmax = extra.data();
  t.nested_absmax_count = 1;
  expect_layout_error(read(t), {"nested_absmax tensor given (1 entries)"});
  t = plain.tensors();
  t.nested_quant_map_count = 256;
  expect_layout_error(read(t), {"nested_quant_map tensor given (256 entries)"});

  const checkpoint nested = write(pseudo_normal(300 * 32, 15), {300, 32}, 32, bnb_quant_type::fp4, true);
  const dq4::bnb_quant_state ns = nested.state();
  auto read_nested = [&](const dq4::bnb_4bit_tensors& tn) {
    return [&ns, tn] { (void)dq4::from_bnb_4bit(ns, tn, bnb_nested_absmax::fused_gemm); };
  };
  EXPECT_NO_THROW(read_nested(nested.tensors())());
  t = nested.tensors();
  t.absmax = plain.w.absmax.data();
  t.absmax_count = 300;
  expect_layout_error(read_nested(t), {"fp32 absmax tensor given (300 entries)", "uint8 codes"});
  t = nested.tensors();
  t.absmax_codes_count = 299;
  expect_layout_error(read_nested(t), {"absmax (uint8 codes) has 299 entries, expected 300"});
  t = nested.tensors();
  t.absmax_codes = nullptr;
  expect_layout_error(read_nested(t), {"null absmax (uint8 codes)"});
  t = nested.tensors();
  t.nested_absmax_count = 1;
  expect_layout_error(read_nested(t), {"nested_absmax has 1 entries, expected 2", "ceil(300 blocks / 256) = 2"});
  t = nested.tensors();
  t.nested_absmax = nullptr;
  expect_layout_error(read_nested(t), {"null nested_absmax"});
  t = nested.tensors();
  t.nested_quant_map_count = 255;
  expect_layout_error(read_nested(t), {"nested_quant_map has 255 entries, expected 256"});
  t = nested.tensors();
  t.nested_quant_map = nullptr;
  expect_layout_error(read_nested(t), {"null nested_quant_map"});
}

TEST(BnbReader, HandBuiltStatesAreChecked) {
  const checkpoint c = write(pseudo_normal(128, 16), {2, 64}, 64, bnb_quant_type::nf4, false);
  const dq4::bnb_4bit_tensors t = c.tensors();
  auto read = [&](const dq4::bnb_quant_state& s) {
    return [s, t] { (void)dq4::from_bnb_4bit(s, t, bnb_nested_absmax::dequantize_4bit); };
  };
  dq4::bnb_quant_state s = c.state();
  s.elements = 127;
  expect_layout_error(read(s), {"elements = 127 is not the product 128 of shape [2, 64]"});
  s = c.state();
  s.blocksize = 48;
  expect_layout_error(read(s), {"dq4::from_bnb_4bit: blocksize 48"});
  s = c.state();
  s.dtype = dq4::format::int8;
  expect_layout_error(read(s), {"dtype int8"});
  s = c.state();
  s.quant_type = static_cast<bnb_quant_type>(2);
  expect_layout_error(read(s), {"quant_type 2 names no dq4::bnb_quant_type"});
  s = c.state();
  s.shape = {};
  expect_layout_error(read(s), {"shape [] has no dimensions"});
  s = c.state();
  s.shape = {std::size_t{1} << 62, 8};
  s.elements = 0;
  expect_layout_error(read(s), {"4611686018427387904 x 8", "more than fit in memory"});
  s = c.state();
  s.nested = true;
  s.nested_blocksize = 0;
  expect_layout_error(read(s), {"nested_blocksize 0"});
  expect_layout_error([&] { (void)dq4::from_bnb_4bit(c.state(), t, static_cast<bnb_nested_absmax>(5)); },
                      {"nested absmax arithmetic 5 names no dq4::bnb_nested_absmax"});
}

// Where flushing subnormals to zero (bitsandbytes' CUDA build: mul.ftz, fma.rn.ftz) changes the
// double-quantized absmax, its backends disagree: rejected, with the block and the values. Where
// the flush changes nothing, the IEEE value is every backend's.
TEST(BnbReader, SubnormalNestedAbsmax) {
  checkpoint c = write(pseudo_normal(3 * 64, 17), {3, 64}, 64, bnb_quant_type::nf4, true);
  EXPECT_NO_THROW((void)c.read());
  auto with_offset = [](checkpoint k, float offset) {
    k.n.offset = offset;
    k.json = quant_state_json(k.type, k.blocksize, "bfloat16", k.shape, &k.n);
    return k;
  };
  // a subnormal nested absmax: the product is subnormal too, and lost in a normal offset
  checkpoint tiny = c;
  tiny.n.nested[0] = 1e-39f;
  EXPECT_NO_THROW((void)tiny.read(bnb_nested_absmax::dequantize_4bit));
  EXPECT_NO_THROW((void)tiny.read(bnb_nested_absmax::fused_gemm));
  // ... but with an offset of 0 the flush decides the absmax
  const checkpoint tiny0 = with_offset(tiny, 0.0f);
  expect_layout_error([&] { (void)tiny0.read(); },
                      {"absmax of block 0 (code", "nested_absmax[0] = ", "with them flushed to zero", "disagree"});
  expect_layout_error([&] { (void)tiny0.read(bnb_nested_absmax::fused_gemm); }, {"absmax of block 0"});
  // a normal nested absmax whose product with the least positive dynamic code (index 128, next to
  // the zero at 127) is subnormal
  checkpoint product = with_offset(c, 0.0f);
  ASSERT_EQ(bits(product.n.map[127]), 0u);
  ASSERT_GT(product.n.map[128], 0.0f);
  product.n.nested[0] = 0x1p-120f;
  for (std::size_t b = 0; b < product.n.codes.size(); ++b) product.n.codes[b] = 255;  // 1.0 * 2^-120: normal
  EXPECT_NO_THROW((void)product.read());
  product.n.codes[2] = 128;
  expect_layout_error([&] { (void)product.read(); }, {"absmax of block 2 (code 128, nested_quant_map[128] = "});
  expect_layout_error([&] { (void)product.read(bnb_nested_absmax::fused_gemm); }, {"absmax of block 2 (code 128"});
  product.n.codes[2] = 127;  // the zero code: the product is 0 on every backend
  EXPECT_NO_THROW((void)product.read());
  EXPECT_NO_THROW((void)product.read(bnb_nested_absmax::fused_gemm));
  // a subnormal offset: torch's add keeps it on every backend; the fused kernels' fma flushes it
  checkpoint off = with_offset(c, 1e-40f);
  off.n.codes[1] = 127;  // absmax = 0 * m + offset = the offset itself
  const dq4::bnb_4bit_matrix m = off.read(bnb_nested_absmax::dequantize_4bit);
  EXPECT_EQ(bits(m.absmax[1]), bits(1e-40f));
  expect_layout_error([&] { (void)off.read(bnb_nested_absmax::fused_gemm); },
                      {"absmax of block 1 (code 127", "offset = ", "is 0x1.16c2p-133 (0x000116C2) with subnormals but 0x0p+0"});
}

}  // namespace
