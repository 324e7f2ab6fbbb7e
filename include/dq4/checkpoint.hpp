// SPDX-License-Identifier: Apache-2.0
//
// dq4 checkpoint layouts (host only): AutoAWQ and GPTQ tensors as they are stored, turned into the
// one layout dq4's kernels read. AWQ and GPTQ store the same kind of matrix W[K][N] (y = x W, K input
// features, N output features, one scale and zero per group of G consecutive rows and per column)
// with different packings. See the README for diagrams of each layout and for which writer and
// reader each GPTQ v1 zero-point reading matches.
//
// Every function here reports bad input (null tensors, shapes that do not divide or do not fit in
// memory, enum values that name no enumerator, act-order g_idx) by throwing dq4::layout_error with
// the numbers, so this header needs exceptions; <dq4/dq4.cuh> alone does not.
#pragma once

#include <dq4/dq4.cuh>

#if !(defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND))
#error "dq4/checkpoint.hpp reports bad checkpoints by throwing dq4::layout_error: compile with exceptions enabled (no -fno-exceptions)"
#endif  // no exceptions

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace dq4 {

/// A checkpoint tensor whose shape or contents do not fit the layout it claims, or an argument that
/// names no layout.
class layout_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {

/// The zero z of nibble k of a zeros word under a convention known at run time.
[[nodiscard]] inline int zero_of(zeros convention, std::uint32_t zeros_word, int k) {
  switch (convention) {
    case zeros::awq: return reference::zero_of<zeros::awq>(zeros_word, k);
    case zeros::gptq_v2: return reference::zero_of<zeros::gptq_v2>(zeros_word, k);
    case zeros::gptq_v1: return reference::zero_of<zeros::gptq_v1>(zeros_word, k);
    case zeros::gptq_v1_wrap: return reference::zero_of<zeros::gptq_v1_wrap>(zeros_word, k);
    case zeros::gptq_v1_no_wrap: return reference::zero_of<zeros::gptq_v1_no_wrap>(zeros_word, k);
  }
  throw layout_error("dq4: zero convention " + zeros_name(convention) + " names no dq4::zeros enumerator");
}

/// a * b elements of T for the tensor `what`, checked: the product must fit in size_t and in a
/// std::vector<T> (whose allocation would otherwise throw without saying which tensor).
template <class T>
[[nodiscard]] std::size_t element_count(std::size_t a, std::size_t b, const char* what, const std::string& who) {
  const std::size_t limit = std::vector<T>().max_size();
  if (b != 0 && a > limit / b) {
    throw layout_error(who + ": " + what + " has " + std::to_string(a) + " x " + std::to_string(b) +
                       " elements, more than fit in memory (at most " + std::to_string(limit) + ")");
  }
  return a * b;
}

inline void check_shape(std::size_t rows, std::size_t cols, std::size_t group_size, std::size_t row_multiple,
                        const std::string& who) {
  const std::string shape = "K = " + std::to_string(rows) + ", N = " + std::to_string(cols) + ", G = " +
                            std::to_string(group_size);
  if (rows == 0 || cols == 0) throw layout_error(who + ": empty matrix (" + shape + ")");
  if (group_size == 0) throw layout_error(who + ": group size 0 (" + shape + ")");
  if (group_size > rows) {
    throw layout_error(who + ": group size G = " + std::to_string(group_size) + " is larger than K = " +
                       std::to_string(rows) + " (GPTQ's group_size = -1, one group for all rows, is G = K)");
  }
  if (cols % 8 != 0) {
    throw layout_error(who + ": N = " + std::to_string(cols) +
                       " output features is not a multiple of 8 (8 values per packed word)");
  }
  if (rows % row_multiple != 0) {
    throw layout_error(who + ": K = " + std::to_string(rows) + " input features is not a multiple of " +
                       std::to_string(row_multiple) + " (8 rows per packed qweight word)");
  }
  if (rows % group_size != 0) {
    throw layout_error(who + ": K = " + std::to_string(rows) + " input features is not a multiple of the group size " +
                       std::to_string(group_size));
  }
}

inline void check_tensor(const void* tensor, const char* name, const std::string& who) {
  if (tensor == nullptr) throw layout_error(who + ": null " + name + " tensor (qweight, qzeros and scales are all required)");
}

inline void check_scale_format(format f, const std::string& who) {
  if (f != format::fp16 && f != format::bf16) {
    throw layout_error(who + ": scale format " + format_name(f) +
                       ": the scales are 16-bit patterns, so the format must be format::fp16 or format::bf16");
  }
}

}  // namespace detail

/// W[K][N] in the layout dq4's kernels read: row k's columns 8c..8c+7 are word (k, c) of `weights`
/// (order `word_order`), the zero points of group g (rows gG..gG+G-1) for those columns are word
/// (g, c) of `zero_points` (same order, read under `zero_convention`), and their scales are
/// scales[g][8c..8c+7] (bit patterns of `scale_format`, in output order: a kernel loads eight of
/// them as the scales fragment). Dequantized, W[k][n] = (q - z) * s. The accessors check their
/// indices (std::out_of_range).
struct packed_matrix {
  std::size_t rows = 0, cols = 0, group_size = 0;  // K, N, G
  order word_order = order::interleaved;
  zeros zero_convention = zeros::awq;
  format scale_format = format::fp16;
  std::vector<std::uint32_t> weights;      // [K][N / 8]
  std::vector<std::uint32_t> zero_points;  // [K / G][N / 8]
  std::vector<std::uint16_t> scales;       // [K / G][N]

  [[nodiscard]] std::size_t words_per_row() const noexcept { return cols / 8; }
  /// K / G: 0 for a matrix without groups (a default-constructed one).
  [[nodiscard]] std::size_t groups() const noexcept { return group_size == 0 ? 0 : rows / group_size; }
  /// The integer weight q (0..15) of W[k][n].
  [[nodiscard]] int weight(std::size_t k, std::size_t n) const {
    check_index(k, rows, n, "weight", "row");
    return static_cast<int>(reference::nibble(weights[k * words_per_row() + n / 8], nibble_of(n)));
  }
  /// The zero point z of column n in group g (0..15; 1..16 under zeros::gptq_v1_no_wrap).
  [[nodiscard]] int zero(std::size_t g, std::size_t n) const {
    check_index(g, groups(), n, "zero", "group");
    if (zero_convention == zeros::gptq_v1 && word_order == order::interleaved) {
      throw layout_error("dq4::packed_matrix::zero: zeros::gptq_v1 words are read in sequential order only");
    }
    return detail::zero_of(zero_convention, zero_points[g * words_per_row() + n / 8], nibble_of(n));
  }
  /// The scale bit pattern of column n in group g.
  [[nodiscard]] std::uint16_t scale(std::size_t g, std::size_t n) const {
    check_index(g, groups(), n, "scale", "group");
    return scales[g * cols + n];
  }

 private:
  [[nodiscard]] int nibble_of(std::size_t n) const noexcept { return source_nibble(word_order, static_cast<int>(n % 8)); }
  void check_index(std::size_t i, std::size_t count, std::size_t n, const char* what, const char* unit) const {
    if (i >= count || n >= cols) {
      throw std::out_of_range("dq4::packed_matrix::" + std::string(what) + "(" + std::to_string(i) + ", " +
                              std::to_string(n) + "): the matrix has " + std::to_string(count) + " " + unit + "s of " +
                              std::to_string(cols) + " columns");
    }
  }
};

/// An AutoAWQ ("GEMM" version) checkpoint: qweight int32 [K][N/8], qzeros int32 [K/G][N/8], both with
/// eight columns per word in AWQ's order (nibble i holds column [0,2,4,6,1,3,5,7][i], dq4's
/// interleaved order), zeros stored as z; scales [K/G][N] as 16-bit patterns of `scale_format`
/// (format::fp16 or format::bf16, no default: the checkpoint says which). The result is the same
/// data with its layout recorded (no repacking: AWQ's packing is what the interleaved paths read).
/// Throws layout_error for null tensors, shapes that do not divide (N by 8, K by G) or do not fit in
/// memory, and a scale format that is not 16-bit.
[[nodiscard]] inline packed_matrix from_awq(const std::int32_t* qweight, const std::int32_t* qzeros,
                                            const std::uint16_t* scales, std::size_t rows, std::size_t cols,
                                            std::size_t group_size, format scale_format) {
  const std::string who = "dq4::from_awq";
  detail::check_tensor(qweight, "qweight", who);
  detail::check_tensor(qzeros, "qzeros", who);
  detail::check_tensor(scales, "scales", who);
  detail::check_shape(rows, cols, group_size, 1, who);
  detail::check_scale_format(scale_format, who);
  const std::size_t groups = rows / group_size, words = cols / 8;
  packed_matrix m;
  m.rows = rows;
  m.cols = cols;
  m.group_size = group_size;
  m.word_order = order::interleaved;
  m.zero_convention = zeros::awq;
  m.scale_format = scale_format;
  m.weights.assign(qweight, qweight + detail::element_count<std::uint32_t>(rows, words, "qweight", who));
  m.zero_points.assign(qzeros, qzeros + detail::element_count<std::uint32_t>(groups, words, "qzeros", who));
  m.scales.assign(scales, scales + detail::element_count<std::uint16_t>(groups, cols, "scales", who));
  return m;
}

/// A GPTQ checkpoint (AutoGPTQ, GPTQModel): qweight int32 [K/8][N] with eight consecutive rows per
/// word (row 8i + j in nibble j), qzeros int32 [K/G][N/8] with eight consecutive columns per word
/// (column 8c + j in nibble j), scales [K/G][N] (16-bit patterns of `scale_format`). `reading` says
/// how the stored zeros give z, and has no default: zeros::gptq_v2 for v2 checkpoints; for v1 (the
/// original format, stored z - 1) zeros::gptq_v1 (the exact inverse of GPTQModel's and AutoAWQ's
/// writers, and GPTQModel's own loader), zeros::gptq_v1_wrap or zeros::gptq_v1_no_wrap (to
/// reproduce a serving stack's bits: see the README). count_gptq_v1_disagreements says whether the
/// choice matters for a tensor. The gptq_v1 and gptq_v1_wrap zeros are stored as z (zero_convention
/// gptq_v2), so any word order can read them; gptq_v1_no_wrap keeps its nibbles (z = 16 is none).
/// g_idx, when given, must be the plain grouping g_idx[k] = k / G: act-order checkpoints (desc_act
/// with a permuted g_idx) are rejected, since their rows would need a permutation of the
/// activations. Repacks the weights along N into words of order `word_order`. Throws layout_error
/// for null tensors, shapes that do not divide (K by 8 and G, N by 8) or do not fit in memory, a
/// reading, order or scale format that is not one of those, or a g_idx that is not k / G.
[[nodiscard]] inline packed_matrix from_gptq(const std::int32_t* qweight, const std::int32_t* qzeros,
                                             const std::uint16_t* scales, const std::int32_t* g_idx,
                                             std::size_t rows, std::size_t cols, std::size_t group_size,
                                             zeros reading, order word_order, format scale_format) {
  const std::string who = "dq4::from_gptq";
  detail::check_tensor(qweight, "qweight", who);
  detail::check_tensor(qzeros, "qzeros", who);
  detail::check_tensor(scales, "scales", who);
  detail::check_shape(rows, cols, group_size, 8, who);
  if (reading != zeros::gptq_v1 && reading != zeros::gptq_v1_wrap && reading != zeros::gptq_v1_no_wrap &&
      reading != zeros::gptq_v2) {
    throw layout_error(who + ": zero reading " + detail::zeros_name(reading) +
                       ": GPTQ zeros are read as zeros::gptq_v1, gptq_v1_wrap, gptq_v1_no_wrap or gptq_v2");
  }
  if (!detail::is_valid(word_order)) {
    throw layout_error(who + ": word order " + detail::order_name(word_order) + " names no dq4::order enumerator");
  }
  detail::check_scale_format(scale_format, who);
  const std::size_t groups = rows / group_size, words = cols / 8;
  const std::size_t weight_words = detail::element_count<std::uint32_t>(rows, words, "qweight", who);
  const std::size_t zero_words = detail::element_count<std::uint32_t>(groups, words, "qzeros", who);
  const std::size_t scale_count = detail::element_count<std::uint16_t>(groups, cols, "scales", who);
  if (g_idx != nullptr) {
    for (std::size_t k = 0; k < rows; ++k) {
      if (g_idx[k] < 0) {
        throw layout_error(who + ": g_idx[" + std::to_string(k) + "] = " + std::to_string(g_idx[k]) +
                           " is negative: not a group index");
      }
      if (static_cast<std::size_t>(g_idx[k]) != k / group_size) {
        throw layout_error(who + ": g_idx[" + std::to_string(k) + "] = " + std::to_string(g_idx[k]) + " is not k / G = " +
                           std::to_string(k / group_size) + ": act-order (desc_act) checkpoints are not supported");
      }
    }
  }
  packed_matrix m;
  m.rows = rows;
  m.cols = cols;
  m.group_size = group_size;
  m.word_order = word_order;
  m.zero_convention = reading == zeros::gptq_v1_no_wrap ? zeros::gptq_v1_no_wrap : zeros::gptq_v2;
  m.scale_format = scale_format;
  m.weights.assign(weight_words, 0u);
  for (std::size_t k = 0; k < rows; ++k) {
    for (std::size_t n = 0; n < cols; ++n) {
      const auto packed = static_cast<std::uint32_t>(qweight[(k / 8) * cols + n]);
      const std::uint32_t q = reference::nibble(packed, static_cast<int>(k % 8));
      m.weights[k * words + n / 8] |= q << (4 * source_nibble(word_order, static_cast<int>(n % 8)));
    }
  }
  m.zero_points.resize(zero_words);
  for (std::size_t i = 0; i < zero_words; ++i) {
    const auto stored = static_cast<std::uint32_t>(qzeros[i]);  // sequential, as GPTQ packs them
    const std::uint32_t z = reading == zeros::gptq_v1        ? detail::zeros_as_nibbles<zeros::gptq_v1>(stored)
                            : reading == zeros::gptq_v1_wrap ? detail::zeros_as_nibbles<zeros::gptq_v1_wrap>(stored)
                                                             : stored;
    m.zero_points[i] = word_order == order::interleaved ? reorder<order::sequential, order::interleaved>(z) : z;
  }
  m.scales.assign(scales, scales + scale_count);
  return m;
}

/// How many of the 8 * words zero points of a GPTQ v1 qzeros tensor the three v1 readings
/// (gptq_v1, gptq_v1_wrap, gptq_v1_no_wrap) do not all agree on: 0 when no stored nibble is 15, so
/// that any reading gives the same weights; otherwise a loader should say which writer made the
/// checkpoint (see the README). Throws layout_error for a null tensor.
[[nodiscard]] inline std::size_t count_gptq_v1_disagreements(const std::int32_t* qzeros, std::size_t words) {
  if (words != 0 && qzeros == nullptr) throw layout_error("dq4::count_gptq_v1_disagreements: null qzeros tensor");
  std::size_t count = 0;
  for (std::size_t i = 0; i < words; ++i) {
    const auto stored = static_cast<std::uint32_t>(qzeros[i]);
    for (int k = 0; k < 8; ++k) {
      const int word_add = reference::zero_of<zeros::gptq_v1>(stored, k);
      const int wrap = reference::zero_of<zeros::gptq_v1_wrap>(stored, k);
      const int no_wrap = reference::zero_of<zeros::gptq_v1_no_wrap>(stored, k);
      if (word_add != wrap || wrap != no_wrap) ++count;
    }
  }
  return count;
}

}  // namespace dq4
