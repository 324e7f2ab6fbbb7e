// SPDX-License-Identifier: Apache-2.0
// The AWQ GEMV's shapes and work split, in plain C++ (host and device): which shapes each launch
// function takes (and the message for the others), how the K x N layer is cut into blocks and warps,
// and which steps each warp multiplies. tests/test_gemv_plan.cpp checks on the host that every plan
// covers every step of every tile exactly once, for every batch and many shapes and GPU sizes.
#pragma once

#include <dq4/dq4.cuh>

#include <algorithm>
#include <cstddef>

namespace awq_gemv {

inline constexpr std::size_t group_size = 128;  // AWQ's usual group size, the one this example takes
inline constexpr int warps_per_block = 8;
inline constexpr int tile_columns = 128;   // a warp's columns: 16 packed words of each row
inline constexpr int step_rows = 16;       // rows of one mma.sync.m16n8k16 step (its k)
inline constexpr int steps_per_group = static_cast<int>(group_size) / step_rows;
inline constexpr int max_batch = 8;        // tokens: the mma's 8 B columns
inline constexpr std::size_t max_dimension = std::size_t{1} << 24;  // keeps every index in 32 bits

struct shape {
  std::size_t k, n;  // K rows (input features), N columns (output features)
};

/// Why launch_gemv cannot take this shape and batch, or null when it can.
constexpr const char* gemv_shape_error(shape s, int batch) noexcept {
  if (s.k == 0 || s.k % group_size != 0) return "K must be a positive multiple of the group size, 128";
  if (s.n == 0 || s.n % tile_columns != 0) return "N must be a positive multiple of 128 (a warp's tile of columns)";
  if (s.k > max_dimension || s.n > max_dimension) return "K and N must be at most 2^24";
  if (batch < 1 || batch > max_batch) return "the batch must be 1 to 8 tokens";
  return nullptr;
}

/// Why launch_dequantize cannot take this shape, or null when it can.
constexpr const char* bulk_shape_error(shape s) noexcept {
  if (s.k == 0 || s.k % group_size != 0) return "K must be a positive multiple of the group size, 128";
  if (s.n == 0 || s.n % 8 != 0) return "N must be a positive multiple of 8 (a packed word's columns)";
  if (s.k > max_dimension || s.n > max_dimension) return "K and N must be at most 2^24";
  return nullptr;
}

/// How one call is cut: blocks of `band_tiles` adjacent tiles (8 / band_tiles warps on each),
/// each band's K cut into `parts` parts of `part_steps` steps (the last may be shorter), one block
/// per (band, part).
struct gemv_split {
  unsigned band_tiles, parts, part_steps, blocks;
};

/// The tile (128 columns) a warp multiplies, the slot of the tile its block's sums go to, and its
/// steps [first, end) (empty for a warp past the last tile).
struct work_item {
  unsigned tile, part, first, end;
};

/// The kernel whose Batch runs a batch: the one-token kernel, or the one of 8 tokens for 2..8.
constexpr int kernel_batch(int batch) noexcept { return batch == 1 ? 1 : max_batch; }

/// Block b takes part b % parts of band b / parts: band_tiles adjacent tiles (64 band_tiles
/// contiguous bytes of each row), each shared by 8 / band_tiles warps that split the part's steps
/// into contiguous runs (their sums are added in the block in run order).
DQ4_HD constexpr work_item work_of(const gemv_split& p, shape s, unsigned block, unsigned warp) noexcept {
  const unsigned band = block / p.parts, part = block % p.parts, steps = static_cast<unsigned>(s.k / step_rows);
  const unsigned tile = band * p.band_tiles + warp % p.band_tiles, sharers = warps_per_block / p.band_tiles;
  const unsigned first = part * p.part_steps, length = (steps < first + p.part_steps ? steps : first + p.part_steps) - first;
  const unsigned run = warp / p.band_tiles;
  if (tile >= s.n / tile_columns) return {tile, part, 0, 0};  // the last band may be narrower than a block
  return {tile, part, first + length * run / sharers, first + length * (run + 1) / sharers};
}

/// For one token, of two splits that both start every block at once with runs of at least a group:
/// whether c beats d. More blocks first; then a band of at least 2 tiles (128 contiguous bytes of
/// each row, a whole L2 line, read by one block at once rather than its halves by two blocks at
/// different times); then fewer parts (less finishing). Ties go to the split tried first.
constexpr bool one_token_prefers(const gemv_split& c, const gemv_split& d) noexcept {
  if (c.blocks != d.blocks) return c.blocks > d.blocks;
  const bool c_whole_lines = c.band_tiles >= 2, d_whole_lines = d.band_tiles >= 2;
  if (c_whole_lines != d_whole_lines) return c_whole_lines;
  return c.parts < d.parts;
}

/// The split of a call with `resident` blocks resident at once on the GPU (the SMs times the blocks
/// per SM). A band's K is cut into parts, equal but for the last, none empty; each part costs a
/// slot write and read of batch x 128 floats per tile, so at most K / (64 batch) parts (that
/// traffic under a quarter of the tile's weight bytes, K x 64) and at most 32 (two rounds of loads
/// for the warp that adds them).
/// - One token: of the splits that start every block at once, the one with the most blocks whose
///   warps each get a run of at least a group's 8 steps (a shorter run spends its time starting
///   the pipeline and finishing); among those, bands of at least 2 tiles (a block then reads whole
///   128-byte lines of every row, both halves at once), then the fewest parts, then the widest band;
///   without any (more bands of 8 tiles than resident blocks), bands of 8 tiles and one part.
/// - Eight tokens: a part's sums are 8 times larger and the finishing warp loads them two parts
///   per round trip, so fewer parts pay more than wide bands: one tile per block and at most 4
///   parts, as many as the resident blocks take.
/// (The measurements behind these rules: docs/gemv.md.) The shape must be one gemv_shape_error
/// accepts.
constexpr gemv_split plan_gemv_split(shape s, int batch, std::size_t resident) noexcept {
  const std::size_t tiles = s.n / tile_columns, steps_per_tile = s.k / step_rows;
  const auto kernel_tokens = static_cast<std::size_t>(kernel_batch(batch));
  const std::size_t slot_limit = std::min<std::size_t>(32, std::max<std::size_t>(1, s.k / (64 * kernel_tokens)));
  const auto split_for = [&](unsigned band_tiles, std::size_t wanted_parts) {
    const std::size_t bands = (tiles + band_tiles - 1) / band_tiles;
    const std::size_t part_steps = (steps_per_tile + wanted_parts - 1) / wanted_parts;
    const std::size_t parts = (steps_per_tile + part_steps - 1) / part_steps;
    return gemv_split{band_tiles, static_cast<unsigned>(parts), static_cast<unsigned>(part_steps), static_cast<unsigned>(bands * parts)};
  };
  if (kernel_tokens > 1) {
    return split_for(1, std::min<std::size_t>({slot_limit, 4, std::max<std::size_t>(1, resident / tiles)}));
  }
  gemv_split chosen = split_for(warps_per_block, 1);
  bool found = false;
  for (const unsigned band_tiles : {8u, 4u, 2u, 1u}) {
    const std::size_t sharers = warps_per_block / band_tiles;
    for (std::size_t wanted = 1; wanted <= slot_limit; ++wanted) {
      const gemv_split c = split_for(band_tiles, wanted);
      const bool fits = c.blocks <= resident && c.part_steps / sharers >= static_cast<std::size_t>(steps_per_group);
      if (fits && (!found || one_token_prefers(c, chosen))) {
        chosen = c;
        found = true;
      }
    }
  }
  return chosen;
}

/// Floats of the workspace's slots for a split: [tiles][parts][Batch][128].
constexpr std::size_t slot_floats(const gemv_split& p, shape s, int batch) noexcept {
  return s.n / tile_columns * p.parts * static_cast<std::size_t>(kernel_batch(batch)) * tile_columns;
}

}  // namespace awq_gemv
