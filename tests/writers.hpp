// SPDX-License-Identifier: Apache-2.0
// Checkpoint writers as their upstream source states their arithmetic, so that dq4's readers are held
// to other people's code rather than to dq4's own reading of the formats. Each function cites the
// file and function it reproduces and quotes the line that decides the bits.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace dq4_test {

// ---- zeros words of one group and eight columns (z[j] = the quantizer's zero of column 8c + j) ----

/// GPTQ v2 (GPTQModel's internal format): z of column j in nibble j, as it is before GPTQModel's
/// export subtracts (gptqmodel/utils/model.py, convert_gptq_v2_to_v1_format_module, input).
inline std::uint32_t v2_zeros_word(const std::array<int, 8>& z) {
  std::uint32_t word = 0;
  for (std::size_t j = 0; j < 8; ++j) word |= static_cast<std::uint32_t>(z[j]) << (4 * j);
  return word;
}

/// GPTQModel's v1 export (ModelCloud/GPTQModel, gptqmodel/utils/model.py,
/// convert_gptq_v2_to_v1_format_module, unchanged from v1.0.0 to v7.3.4 and HEAD f4c327a):
///   module.qzeros.data -= 0b00010001000100010001000100010001
/// one two's-complement subtraction per int32 word: a nibble of 0 borrows from the nibble above, and
/// the top nibble's borrow leaves the word.
inline std::uint32_t gptqmodel_v1_zeros_word(const std::array<int, 8>& z) { return v2_zeros_word(z) - 0x11111111u; }

/// AutoAWQ's conversion to the GPTQ v1 (exllama) layout (casper-hansen/AutoAWQ,
/// awq/utils/packing_utils.py, unpack_reorder_pack and pack_exllama, HEAD 88e4c76):
///   izeros = izeros - 1
///   torch.bitwise_left_shift(izeros, shifts[None, None, :]).sum(dim=-1).to(torch.int32)
/// with int64 shifts 0, 4, ..., 28: the sum of (z_j - 1) * 16^j in int64, truncated to 32 bits,
/// which is the same word subtraction as GPTQModel's.
inline std::uint32_t autoawq_v1_zeros_word(const std::array<int, 8>& z) {
  std::int64_t sum = 0;
  for (std::size_t j = 0; j < 8; ++j) sum += static_cast<std::int64_t>(z[j] - 1) * (std::int64_t{1} << (4 * j));
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(sum));
}

/// AutoGPTQ's packer (AutoGPTQ/AutoGPTQ, auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py and
/// qlinear_cuda.py, QuantLinear.pack, HEAD 9f7d370):
///   zeros -= 1
///   zeros = zeros.numpy().astype(np.uint32)
///   qzeros[:, col] |= zeros[:, j] << (self.bits * (j - i))
/// A zero of 0 is -1.0, which numpy casts to 0xFFFFFFFF on x86-64; shifted and ORed it sets its own
/// nibble and every higher nibble of the word to 15, losing their zeros.
inline std::uint32_t autogptq_v1_zeros_word(const std::array<int, 8>& z) {
  std::uint32_t word = 0;
  for (std::size_t j = 0; j < 8; ++j) {
    const std::uint32_t stored = z[j] >= 1 ? static_cast<std::uint32_t>(z[j] - 1) : 0xFFFFFFFFu;
    word |= stored << (4 * j);
  }
  return word;
}

/// The nibbles (columns) of an AutoGPTQ-written word that still hold their zero: those up to and
/// including the first column whose zero is 0 (its 15 reads back as 0); the rest are 15.
inline int autogptq_kept_columns(const std::array<int, 8>& z) {
  for (int j = 0; j < 8; ++j)
    if (z[static_cast<std::size_t>(j)] == 0) return j + 1;
  return 8;
}

// ---- whole tensors ----

/// W[K][N] as integers, with zeros and fp16 scales per group of G rows.
struct int_matrix {
  std::size_t rows, cols, group_size;
  std::vector<int> q;            // [K][N], 0..15
  std::vector<int> z;            // [K/G][N], 0..15: the quantizer's zeros
  std::vector<std::uint16_t> s;  // [K/G][N], fp16 bits
};

/// A deterministic random matrix; every `zero_every`-th zero is 0 (the case GPTQ v1 writers differ on).
inline int_matrix make_matrix(std::size_t rows, std::size_t cols, std::size_t group_size, std::uint32_t seed,
                              std::size_t zero_every) {
  int_matrix m{rows, cols, group_size, {}, {}, {}};
  std::uint32_t state = seed;
  const auto next = [&state] { return (state = state * 1664525u + 1013904223u) >> 8; };
  for (std::size_t i = 0; i < rows * cols; ++i) m.q.push_back(static_cast<int>(next() % 16));
  for (std::size_t i = 0; i < rows / group_size * cols; ++i) {
    m.z.push_back(zero_every != 0 && i % zero_every == 0 ? 0 : static_cast<int>(next() % 16));
    m.s.push_back(static_cast<std::uint16_t>(0x2000 + next() % 0x1800));  // 2^-7 .. about 0.4
  }
  return m;
}

/// AutoAWQ's packing of weights and zeros (casper-hansen/AutoAWQ, awq/modules/linear/gemm.py,
/// WQLinear_GEMM.from_linear): order_map = [0, 2, 4, 6, 1, 3, 5, 7];
///   qweight[:, col] |= intweight[:, col * pack_num + order_map[i]] << (i * w_bit)
/// and the zeros the same way: nibble i holds column 8c + order_map[i].
struct awq_tensors {
  std::vector<std::int32_t> qweight, qzeros;
};

inline awq_tensors write_awq(const int_matrix& m) {
  constexpr std::array<std::size_t, 8> order_map = {0, 2, 4, 6, 1, 3, 5, 7};
  awq_tensors t;
  const auto pack_row = [&](const std::vector<int>& values, std::size_t row, std::vector<std::int32_t>& out) {
    for (std::size_t c = 0; c < m.cols / 8; ++c) {
      std::uint32_t word = 0;
      for (std::size_t i = 0; i < 8; ++i)
        word |= static_cast<std::uint32_t>(values[row * m.cols + 8 * c + order_map[i]]) << (4 * i);
      out.push_back(static_cast<std::int32_t>(word));
    }
  };
  for (std::size_t k = 0; k < m.rows; ++k) pack_row(m.q, k, t.qweight);
  for (std::size_t g = 0; g < m.rows / m.group_size; ++g) pack_row(m.z, g, t.qzeros);
  return t;
}

/// Which GPTQ zeros writer made a tensor.
enum class gptq_writer { v2, gptqmodel_v1, autoawq_v1, autogptq_v1 };

/// A GPTQ checkpoint: qweight packs eight rows per word (AutoGPTQ's QuantLinear.pack:
///   qweight[row] |= intweight[j] << (self.bits * (j - i))   for j in i .. i + 8)
/// and qzeros eight columns per word, written by `writer`.
struct gptq_tensors {
  std::vector<std::int32_t> qweight, qzeros, g_idx;
};

inline std::uint32_t write_zeros_word(gptq_writer writer, const std::array<int, 8>& z) {
  switch (writer) {
    case gptq_writer::v2: return v2_zeros_word(z);
    case gptq_writer::gptqmodel_v1: return gptqmodel_v1_zeros_word(z);
    case gptq_writer::autoawq_v1: return autoawq_v1_zeros_word(z);
    case gptq_writer::autogptq_v1: return autogptq_v1_zeros_word(z);
  }
  return 0;
}

inline gptq_tensors write_gptq(const int_matrix& m, gptq_writer writer) {
  gptq_tensors t;
  for (std::size_t i = 0; i < m.rows / 8; ++i) {
    for (std::size_t n = 0; n < m.cols; ++n) {
      std::uint32_t word = 0;
      for (std::size_t j = 0; j < 8; ++j) word |= static_cast<std::uint32_t>(m.q[(8 * i + j) * m.cols + n]) << (4 * j);
      t.qweight.push_back(static_cast<std::int32_t>(word));
    }
  }
  for (std::size_t g = 0; g < m.rows / m.group_size; ++g) {
    for (std::size_t c = 0; c < m.cols / 8; ++c) {
      std::array<int, 8> z{};
      for (std::size_t j = 0; j < 8; ++j) z[j] = m.z[g * m.cols + 8 * c + j];
      t.qzeros.push_back(static_cast<std::int32_t>(write_zeros_word(writer, z)));
    }
  }
  for (std::size_t k = 0; k < m.rows; ++k) t.g_idx.push_back(static_cast<std::int32_t>(k / m.group_size));
  return t;
}

}  // namespace dq4_test
