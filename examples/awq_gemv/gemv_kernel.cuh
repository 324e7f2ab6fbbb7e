// SPDX-License-Identifier: Apache-2.0
// The W4A16 GEMV on tensor cores, for an AWQ layer as dq4::from_awq leaves it (no repacking): y = x W
// for 1 to 8 tokens, fp16 or bf16, fp32 accumulation. y^T = W^T x^T is a matrix product with W^T as
// the A operand of mma.sync.m16n8k16 (16 columns of W by 16 rows k) and the tokens as its 8 B
// columns. A warp owns a tile of 128 columns (16 packed words per row) and walks down K in steps of
// 16 rows.
//
// The A fragment wants, in each register, two consecutive k of one column; a packed word holds one
// k of eight columns. So two rows are merged by a byte permute before dequantization, the zeros (and
// scales) merged to match: mma_fragments.hpp, which tests/test_gemv_recipe.cpp checks on the host.
// Two ways to scale (the scaling template parameter):
// - after_mma (the default): the tensor core multiplies the activations by q - z, exact small
//   integers (1 PRMT + 9 fp16 or 11 bf16 instructions per merged word), into per-group fp32 sums;
//   at the end of each group every sum is multiplied by its column's scale and added to the
//   total (one FFMA, one fp32 rounding). The products and the group sums carry no weight rounding;
//   a weight picked out by a unit vector is s (q - z) exactly in fp32, rounded once to 16 bits.
// - before_mma: every weight is dequantized exactly, (q - z) * s rounded once to 16 bits (1 PRMT +
//   13 or 15 instructions), the same bits as dq4's reference and as a dequantize-then-GEMM path.
//
// Lanes: g = lane / 4 takes words 2g, 2g + 1 of the tile (columns 16g .. 16g + 15); t = lane % 4
// takes rows 4t .. 4t + 3 of each step. K may be relabelled freely inside an mma as long as A and B
// agree, so rows 4t, 4t + 1 play the fragment's k = 2t, 2t + 1 and rows 4t + 2, 4t + 3 its
// k = 2t + 8, 2t + 9; the B fragment is then x[token g][4t .. 4t + 3], one 8-byte load. Output
// register pair (c0, c1) of mma j of word w holds column 8 (2g + w) + 2j for tokens 2t and 2t + 1,
// (c2, c3) column 8 (2g + w) + 2j + 1: a lane's sums are its own words' columns.
//
// Work split (plan.hpp): the warps of a block take adjacent tiles of a band, each band's K is cut
// into parts, one block per (band, part). At the end of its part a block stores each tile's partial
// sums into the part's slot of the workspace and counts its part as done; the warp that completes a
// tile's count adds the slots in part order (deterministic for a given device) and writes the 16-bit
// outputs. No memset or second kernel: the completing warp resets the tile's counter, so the
// workspace is ready for the next call. The variants tried and their times: docs/gemv.md.
#pragma once

#include <dq4/dq4.cuh>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "mma_fragments.hpp"
#include "plan.hpp"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "awq_gemv uses mma.sync.m16n8k16 with fp16 and bf16 and cp.async: build it for CUDA architectures 80 and newer"
#endif

namespace awq_gemv {

using dq4::format;

/// Where the group scale is applied: to the weights before the MMA, or to the fp32 sums after it.
enum class scaling { before_mma, after_mma };

template <format F>
using value_type = std::conditional_t<F == format::fp16, __half, __nv_bfloat16>;

// D += A B for one m16n8k16 tile, 16-bit inputs, fp32 accumulators.
template <format F>
__device__ void mma_16x8x16(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  if constexpr (F == format::fp16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

struct gemv_args {
  const std::uint32_t* weights;  // [K][N / 8]
  const std::uint32_t* zeros;    // [K / 128][N / 8]
  const std::uint16_t* scales;   // [K / 128][N]
  const void* x;                 // [batch][K] 16-bit
  void* y;                       // [batch][N] 16-bit
  float* slots;                  // [tiles][parts][Batch][128]: the partial sums of each part
  unsigned* arrivals;            // [tiles]: parts done; zero between calls
  shape size;                    // K, N
  gemv_split split;
  int batch;                     // tokens, at most the kernel's Batch
  bool chained;                  // launched chained to the kernel before (see start_after_previous_kernel)
};

// One step's fragments for one lane: rows 4t .. 4t + 3, words 2g and 2g + 1 of the tile, and the
// lane's B fragment (four activations of token g; zero for lanes past the batch).
struct step_loads {
  uint2 rows[4];
  uint2 x;
};

// A group's zero points and scales for the lane's two words, as loaded.
struct group_loads {
  uint2 zeros;
  uint4 scales[2];
};

// Asynchronous 16-byte copies (cp.async.cg, sm_80+) into shared memory: the bytes in flight hold no
// registers and bypass L1. With `copy` false nothing is read and the 16 bytes are zeroed (the
// source-size operand): every lane copies, no branch around it. The L2::128B hint has L2 fetch the
// whole 128-byte line, whose other half the neighbouring warp reads.
__device__ inline void copy_16_async(unsigned shared_address, const void* global, bool copy = true) {
  asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;" ::"r"(shared_address), "l"(global),
               "r"(copy ? 16 : 0)
               : "memory");
}
__device__ inline void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int Pending>
__device__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
}
inline constexpr int stages = 4;  // 5 or 6: slower for one token, 2% faster for eight (H100)

// A warp's ring of `stages` stages in shared memory, one step each, 2 KB: the tile's 16 rows x 64
// bytes of weights; 512 bytes of the group's data (at a group's first step and at the warp's first:
// 64 bytes of zero points, 256 bytes of scales, then the zeros of the lanes that have nothing to
// copy); 512 bytes of activations (lanes 2k, 2k + 1 copy token k's 16 activations, zeros past the
// batch). Every lane copies 16 bytes into each part, so no copy needs a branch.
//
// The weights are copied in whole 16-byte chunks (lane l: chunk l % 4 of rows l / 4 and 8 + l / 4,
// so each copy instruction reads 64 contiguous bytes of 8 rows: whole sectors) and read back as the
// fragments want them (lane (g, t): 8 bytes of rows 4t .. 4t + 3). Chunk c of row r sits in the
// 128-byte line r / 2 at chunk (4 (r % 2) + c) xor 2 (r / 4): the 16 lanes of a half warp, which
// read rows 4t + i for the four t and chunks c = g / 2 of two adjacent g, then hit 8 different
// chunks of one line -- no bank conflicts (unswizzled, the four t would hit the same banks).
namespace ring {
inline constexpr unsigned zeros = step_rows * 16 * 4, scales = zeros + 16 * 4;  // weights at 0
inline constexpr unsigned x = zeros + 32 * 16;
inline constexpr unsigned stage_bytes = x + 32 * 16;
inline constexpr unsigned bytes = stages * stage_bytes;
__host__ __device__ constexpr unsigned chunk(unsigned row, unsigned c) {
  return row / 2 * 128 + ((4 * (row % 2) + c) ^ (2 * (row / 4))) * 16;
}
// The layout's promises, checked when this file compiles: every (row, chunk) has 16 bytes of its
// own, and for each of the four rows a lane reads, the 16 lanes of a half warp read 16 different
// 8-byte bank pairs.
constexpr bool chunks_are_distinct() {
  bool taken[step_rows * 4] = {};
  for (unsigned row = 0; row < step_rows; ++row) {
    for (unsigned c = 0; c < 4; ++c) {
      const unsigned at = chunk(row, c) / 16;
      if (at >= step_rows * 4 || taken[at]) return false;
      taken[at] = true;
    }
  }
  return true;
}
constexpr bool reads_are_conflict_free() {
  for (unsigned i = 0; i < 4; ++i) {
    for (unsigned half = 0; half < 2; ++half) {
      bool taken[16] = {};
      for (unsigned lane = 16 * half; lane < 16 * half + 16; ++lane) {
        const unsigned g = lane / 4, t = lane % 4, pair = (chunk(4 * t + i, g / 2) + 8 * (g % 2)) / 8 % 16;
        if (taken[pair]) return false;
        taken[pair] = true;
      }
    }
  }
  return true;
}
static_assert(chunks_are_distinct() && reads_are_conflict_free(), "the ring's swizzle must be a conflict-free permutation");
}  // namespace ring

/// The scaled totals of a warp that scales after the MMA: 32 floats per lane, in shared memory
/// rather than registers (beside the group's sums, 32 more registers would leave the compiler
/// recomputing the pipeline's addresses every step: 15 more instructions per step on sm_90), laid
/// out [register group i = 4w + j][lane] as float4, so that each access is conflict-free.
inline constexpr unsigned total_bytes = 8 * 32 * 16;

/// Shared memory of a block: the rings of its warps, then their totals (after the MMA).
template <scaling S>
inline constexpr int shared_bytes = warps_per_block * (ring::bytes + (S == scaling::after_mma ? total_bytes : 0));

// One lane's part of the copies: where they come from (pointers advanced a step at a time) and go
// to, and where the lane reads its fragments back (byte offsets in stage 0).
struct lane_pipeline {
  const char* words;        // chunk l % 4 of row l / 4 of the next step to copy
  const char* x;            // token l / 2, activations 8 (l % 2) .. + 7 of that step
  const char* group;        // lanes 0..3: 16 bytes of the next group's zero points; 4..19: of its scales
                            // (lanes 20..31 copy nothing: any address in the scales will do)
  unsigned group_stride;    // bytes from one group's row of zero points (scales) to the next
  unsigned step, first;     // the next step to copy, the first of the warp's work
  bool copies_x;            // token l / 2 is in the batch
  unsigned copy_to[2], x_to, group_to;  // shared addresses (cp.async operands)
  unsigned read_at[2];      // the lane's fragment bytes (rows 4t and 4t + 1: the swizzle differs)

  // Points the copies at the first step of the warp's work.
  __device__ void start(const gemv_args& a, const work_item& item, int lane) {
    const std::size_t row_bytes = a.size.n / 2, first_row = std::size_t{item.first} * step_rows;
    const unsigned l = static_cast<unsigned>(lane);
    words = reinterpret_cast<const char*>(a.weights) + (first_row + l / 4) * row_bytes + std::size_t{item.tile} * 64 + 16 * (l % 4);
    x = static_cast<const char*>(a.x) + ((copies_x ? l / 2 * a.size.k : 0) + first_row + 8 * (l % 2)) * 2;
    const std::size_t group_row = first_row / group_size;
    const auto* zeros = reinterpret_cast<const char*>(a.zeros);
    const auto* scales = reinterpret_cast<const char*>(a.scales);
    group = l < 4 ? zeros + group_row * row_bytes + std::size_t{item.tile} * 64 + 16 * l
                  : scales + group_row * a.size.n * 2 + std::size_t{item.tile} * 256 + 16 * ((l - 4) % 16);
    step = first = item.first;
  }

  // The copies of the next step into `stage`: its weights and activations, and its group's zero
  // points and scales when it starts a group or the warp's work.
  __device__ void copy_step(const gemv_args& a, unsigned stage) {
    const std::size_t row_bytes = a.size.n / 2;
    const unsigned at = stage * ring::stage_bytes;
    copy_16_async(copy_to[0] + at, words);
    copy_16_async(copy_to[1] + at, words + 8 * row_bytes);
    copy_16_async(x_to + at, x, copies_x);
    if (step == first || step % steps_per_group == 0) {
      copy_16_async(group_to + at, group, threadIdx.x % 32 < 20);
      group += group_stride;
    }
    words += step_rows * row_bytes;
    x += step_rows * 2;
    ++step;
  }
  __device__ step_loads read_step(const char* stages_at, unsigned stage) const {
    const char* at = stages_at + stage * ring::stage_bytes;
    step_loads s;
#pragma unroll
    for (int r = 0; r < 4; ++r) s.rows[r] = *reinterpret_cast<const uint2*>(at + read_at[r % 2] + r / 2 * 128);
    const int g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
    s.x = *reinterpret_cast<const uint2*>(at + ring::x + 32 * g + 8 * t);
    return s;
  }
  __device__ group_loads read_group(const char* stages_at, unsigned stage) const {
    const char* at = stages_at + stage * ring::stage_bytes;
    const int g = (threadIdx.x % 32) / 4;
    const auto* scales = reinterpret_cast<const uint4*>(at + ring::scales + 32 * g);
    return {*reinterpret_cast<const uint2*>(at + ring::zeros + 8 * g), {scales[0], scales[1]}};
  }
};

template <int Batch>
__device__ lane_pipeline lane_pipeline_for(const gemv_args& a, const char* stages_at, int lane) {
  const unsigned ring_address = static_cast<unsigned>(__cvta_generic_to_shared(stages_at));
  const unsigned l = static_cast<unsigned>(lane), g = l / 4, t = l % 4;
  lane_pipeline p;
  p.group_stride = static_cast<unsigned>(l < 4 ? a.size.n / 2 : a.size.n * 2);
  p.copies_x = l / 2 < static_cast<unsigned>(a.batch) && l / 2 < static_cast<unsigned>(Batch);
  p.copy_to[0] = ring_address + ring::chunk(l / 4, l % 4);
  p.copy_to[1] = ring_address + ring::chunk(l / 4 + 8, l % 4);
  p.x_to = ring_address + ring::x + 16 * l;
  p.group_to = ring_address + ring::zeros + 16 * l;
  p.read_at[0] = ring::chunk(4 * t, g / 2) + 8 * (g % 2);
  p.read_at[1] = ring::chunk(4 * t + 1, g / 2) + 8 * (g % 2);
  return p;
}

// A group's zero points and scales prepared for the merged words: [word][even columns, odd
// columns]. Scaled before the MMA, each column's scale fills both halves of a register; after it,
// the scales stay as loaded (register j of word w: columns 2j and 2j + 1) until the group's sums
// are scaled.
template <format F, scaling S>
struct group_registers {
  dq4::zero_point<F, dq4::order::interleaved> zero[2][2];
  dq4::fragment<F, 8> scales[2][S == scaling::before_mma ? 2 : 1];
};

template <format F, scaling S>
__device__ group_registers<F, S> prepare_group(const group_loads& l) {
  group_registers<F, S> p;
  const std::uint32_t zeros[2] = {l.zeros.x, l.zeros.y};
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    p.zero[w][0] = merged_zeros<F, 0>(zeros[w]);
    p.zero[w][1] = merged_zeros<F, 1>(zeros[w]);
    const dq4::fragment<F, 8> s{{l.scales[w].x, l.scales[w].y, l.scales[w].z, l.scales[w].w}};
    if constexpr (S == scaling::before_mma) {
      p.scales[w][0] = doubled_scales<F, 0>(s);
      p.scales[w][1] = doubled_scales<F, 1>(s);
    } else {
      p.scales[w][0] = s;
    }
  }
  return p;
}

using accumulators = float[2][4][4];  // [word][mma j][fragment register]

// The step's eight mma per word: merged rows (0, 1) and (2, 3), even and odd columns, dequantized
// to the A registers (scaled or not) and multiplied by the step's activations into `sums`.
template <format F, scaling S>
__device__ void multiply_step(const step_loads& s, const group_registers<F, S>& p, accumulators& sums) {
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const std::uint32_t r0 = w == 0 ? s.rows[0].x : s.rows[0].y, r1 = w == 0 ? s.rows[1].x : s.rows[1].y;
    const std::uint32_t r2 = w == 0 ? s.rows[2].x : s.rows[2].y, r3 = w == 0 ? s.rows[3].x : s.rows[3].y;
    dq4::fragment<F, 8> even01, odd01, even23, odd23;
    if constexpr (S == scaling::before_mma) {
      even01 = column_pairs<F, 0>(r0, r1, p.zero[w][0], p.scales[w][0]);
      odd01 = column_pairs<F, 1>(r0, r1, p.zero[w][1], p.scales[w][1]);
      even23 = column_pairs<F, 0>(r2, r3, p.zero[w][0], p.scales[w][0]);
      odd23 = column_pairs<F, 1>(r2, r3, p.zero[w][1], p.scales[w][1]);
    } else {
      even01 = column_pair_differences<F, 0>(r0, r1, p.zero[w][0]);
      odd01 = column_pair_differences<F, 1>(r0, r1, p.zero[w][1]);
      even23 = column_pair_differences<F, 0>(r2, r3, p.zero[w][0]);
      odd23 = column_pair_differences<F, 1>(r2, r3, p.zero[w][1]);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::uint32_t a[4] = {even01.regs[j], odd01.regs[j], even23.regs[j], odd23.regs[j]};
      mma_16x8x16<F>(sums[w][j], a, s.x.x, s.x.y);
    }
  }
}

// Column c's scale (half c % 2 of register c / 2 of a word's scales) as an fp32 number: exact.
template <format F>
__device__ float scale_of_column(const dq4::fragment<F, 8>& scales, int c) {
  const std::uint32_t bits = c % 2 == 0 ? scales.regs[c / 2] & 0xFFFFu : scales.regs[c / 2] >> 16;
  if constexpr (F == format::fp16) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
  } else {
    return __uint_as_float(bits << 16);
  }
}

// After the MMA: total += s * group sum for every sum of the lane (one FFMA, one fp32 rounding),
// the totals read from and written back to shared memory, and the group's sums back to zero for
// the next group.
template <format F>
__device__ void add_scaled_group(const group_registers<F, scaling::after_mma>& p, accumulators& group, float4* totals) {
#pragma unroll
  for (int w = 0; w < 2; ++w) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float4 t = totals[32 * (4 * w + j)];
      float(&g)[4] = group[w][j];
      const float even = scale_of_column<F>(p.scales[w][0], 2 * j), odd = scale_of_column<F>(p.scales[w][0], 2 * j + 1);
      t.x = fmaf(even, g[0], t.x);
      t.y = fmaf(even, g[1], t.y);
      t.z = fmaf(odd, g[2], t.z);
      t.w = fmaf(odd, g[3], t.w);
      totals[32 * (4 * w + j)] = t;
      g[0] = g[1] = g[2] = g[3] = 0;
    }
  }
}

// The lane's totals from shared memory, in the accumulators' order.
__device__ inline void read_totals(const float4* totals, accumulators& acc) {
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float4 t = totals[32 * i];
    float(&d)[4] = acc[i / 4][i % 4];
    d[0] = t.x;
    d[1] = t.y;
    d[2] = t.z;
    d[3] = t.w;
  }
}

// A part's sums of one tile, [token][128 columns] floats: the lane's accumulators stored one by one
// with store(index, value).
template <int Batch, class Store>
__device__ void store_part_sums(const accumulators& acc, int lane, Store store) {
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int w = 0; w < 2; ++w) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int column = 8 * (2 * g + w) + 2 * j;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int token = 2 * t + i % 2;
        if (token < Batch) store(token * tile_columns + column + i / 2, acc[w][j][i]);
      }
    }
  }
}

// The tile's outputs: lane l adds columns 4l .. 4l + 3 of every token over the parts' sums, in part
// order, and writes them to y. load(part, token) is the lane's float4 of a part's sums. The loads
// of up to `in_flight` parts (all tokens) are issued before any of them is added, so the warp waits
// about one round trip per round and not one per part. A skipped part is not added as zero:
// -0 + 0 is +0.
template <format F, int Batch, class Load>
__device__ void add_parts_and_write(const gemv_args& a, const work_item& item, int lane, Load load) {
  const unsigned parts = a.split.parts;
  float4 sums[Batch];
#pragma unroll
  for (int token = 0; token < Batch; ++token) sums[token] = make_float4(0, 0, 0, 0);
  constexpr unsigned in_flight = Batch == 1 ? 16 : 2;  // 16 loads of 16 bytes either way
  for (unsigned first = 0; first < parts; first += in_flight) {
    float4 v[in_flight][Batch];
#pragma unroll
    for (unsigned i = 0; i < in_flight; ++i) {
#pragma unroll
      for (int token = 0; token < Batch; ++token) v[i][token] = first + i < parts ? load(first + i, token) : make_float4(0, 0, 0, 0);
    }
#pragma unroll
    for (unsigned i = 0; i < in_flight && first + i < parts; ++i) {
#pragma unroll
      for (int token = 0; token < Batch; ++token) {
        sums[token].x += v[i][token].x;
        sums[token].y += v[i][token].y;
        sums[token].z += v[i][token].z;
        sums[token].w += v[i][token].w;
      }
    }
  }
  auto* y = static_cast<value_type<F>*>(a.y);
#pragma unroll
  for (int token = 0; token < Batch; ++token) {
    if (token >= a.batch) break;
    value_type<F>* out = y + token * a.size.n + std::size_t{item.tile} * tile_columns + 4 * lane;
    out[0] = static_cast<value_type<F>>(sums[token].x);
    out[1] = static_cast<value_type<F>>(sums[token].y);
    out[2] = static_cast<value_type<F>>(sums[token].z);
    out[3] = static_cast<value_type<F>>(sums[token].w);
  }
}

// Finishing: the tile's partial sums of this block's part into
// the part's slot of the workspace, then a count of the parts done; the warp that completes the
// count (the last of the tile's parts to arrive) adds the slots and resets the count for the next
// call. Three round trips to L2: the fence after the stores, the count, the slots' loads. (In a
// thread block cluster through distributed shared memory instead it was slower: docs/gemv.md.)
template <format F, int Batch>
__device__ void finish_through_workspace(const gemv_args& a, const work_item& item, const accumulators& acc, int lane) {
  const unsigned parts = a.split.parts;
  float* tile_slots = a.slots + std::size_t{item.tile} * parts * Batch * tile_columns;
  float* mine = tile_slots + std::size_t{item.part} * Batch * tile_columns;
  store_part_sums<Batch>(acc, lane, [&](int i, float v) { __stcg(mine + i, v); });
  // Publish the slot, then count; the warp that brings the count to the tile's parts sees every slot.
  __threadfence();
  __syncwarp();
  unsigned before = 0;
  if (lane == 0) before = atomicAdd(a.arrivals + item.tile, 1);
  if (__shfl_sync(0xFFFFFFFFu, before, 0) + 1 != parts) return;
  __threadfence();
  const auto* slots = reinterpret_cast<const float4*>(tile_slots);
  add_parts_and_write<F, Batch>(a, item, lane, [&](unsigned part, int token) {
    return __ldcg(slots + (part * Batch + token) * (tile_columns / 4) + lane);
  });
  if (lane == 0) a.arrivals[item.tile] = 0;
}

// When warps share a tile (band_tiles < 8), the block adds their sums in shared memory, in the
// order of their runs: each warp leaves its accumulators in its own (drained) ring, and the warp of
// the first run adds the others' to its own. Returns whether this warp holds the block's sums.
__device__ inline bool add_block_sums(const gemv_args& a, accumulators& acc, char* ring, int lane) {
  const unsigned warp = threadIdx.x / 32, band_tiles = a.split.band_tiles;
  if (band_tiles == warps_per_block) return true;
  auto* mine = reinterpret_cast<float4*>(ring);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float(&d)[4] = acc[i / 4][i % 4];
    mine[i * 32 + lane] = make_float4(d[0], d[1], d[2], d[3]);
  }
  __syncthreads();
  if (warp >= band_tiles) return false;
  for (unsigned other = warp + band_tiles; other < warps_per_block; other += band_tiles) {
    const auto* theirs = reinterpret_cast<const float4*>(ring + (other - warp) * ring::bytes);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float4 v = theirs[i * 32 + lane];
      float(&d)[4] = acc[i / 4][i % 4];
      d[0] += v.x;
      d[1] += v.y;
      d[2] += v.z;
      d[3] += v.w;
    }
  }
  return true;
}

// Lets a kernel chained to this one be scheduled now (sm_90+; without a chained kernel, nothing).
__device__ inline void let_next_kernel_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Chained calls (programmatic dependent launch, sm_90 and newer). A call launched with
// cudaLaunchAttributeProgrammaticStreamSerialization may start while the kernel before it in the
// stream is still running: its blocks take the SMs that the earlier kernel's blocks leave, instead
// of waiting for the whole grid to end and for the next launch. `griddepcontrol.wait` then holds
// each block until that kernel has ended and its writes are visible, and everything that kernel may
// have written -- the activations, and the workspace and y of an earlier call of this GEMV -- is
// touched only after it. Before it, a chained call's warps ask L2 for the first eighth of their
// steps' weights, at most `prefetched_steps` steps (the lines their first copies read), using the
// memory bandwidth that the kernel before leaves idle as its last blocks end: the weights must not
// be written by that kernel. Without the launch attribute both instructions do nothing.
//
// When the next call may be scheduled: at the start for one token, after the main loop for 8. A
// chained grid is placed on the SMs as the slots free up; the 8-token plans leave many slots free,
// so a call let start early lands where the call before still runs, unevenly (docs/gemv.md).
template <int Batch>
inline constexpr bool lets_next_call_start_early = Batch == 1;

template <int Batch>
__device__ void start_after_previous_kernel(const gemv_args& a, const work_item& item, int lane) {
  if constexpr (lets_next_call_start_early<Batch>) let_next_kernel_start();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr unsigned prefetched_steps = 8;
  if (a.chained && lane < step_rows) {  // one 128-byte line per row: this tile's 64 bytes and its neighbour's
    const std::size_t row_bytes = a.size.n / 2;
    const unsigned end = item.first + min(prefetched_steps, (item.end - item.first) / 8);
    for (unsigned step = item.first; step < end; ++step) {
      const char* row = reinterpret_cast<const char*>(a.weights) + (std::size_t{step} * step_rows + lane) * row_bytes;
      asm volatile("prefetch.global.L2 [%0];" ::"l"(row + std::size_t{item.tile} * 64));
    }
  }
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Pipeline: the copies of the next stages - 1 steps are in flight (into the warp's ring) while a
// step is multiplied. The loop is unrolled by the ring size, so every shared-memory offset is a
// constant.
template <format F, int Batch, scaling S>
__global__ void __launch_bounds__(32 * warps_per_block, 2) gemv_kernel(gemv_args a) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const work_item item = work_of(a.split, a.size, blockIdx.x, static_cast<unsigned>(warp));
  start_after_previous_kernel<Batch>(a, item, lane);
  // The rings start on a 128-byte line, as their layout assumes, whatever else a later edit puts in
  // shared memory: a 16-byte static array, which moved them by 16 bytes, made the kernel 19% slower
  // (H100, 8192 x 28672, one token: 59.9 against 50.4 us; 50.6 us with it and this alignment).
  extern __shared__ __align__(128) char rings[];
  char* stages_at = rings + warp * ring::bytes;
  lane_pipeline pipe = lane_pipeline_for<Batch>(a, stages_at, lane);
  pipe.start(a, item, lane);
#pragma unroll
  for (unsigned i = 0; i + 1 < stages; ++i) {
    if (pipe.step < item.end) pipe.copy_step(a, i);
    commit_copies();  // an empty group past the end keeps the count of pending groups uniform
  }
  // Before the MMA the sums are the totals; after it, the group's sums, and the totals wait in
  // shared memory (zero to start with).
  accumulators sums = {};
  float4* totals = reinterpret_cast<float4*>(rings + warps_per_block * ring::bytes + warp * total_bytes) + lane;
  if constexpr (S == scaling::after_mma) {
#pragma unroll
    for (int i = 0; i < 8; ++i) totals[32 * i] = make_float4(0, 0, 0, 0);
  }
  group_registers<F, S> group{};
  for (unsigned s = item.first; s < item.end; s += stages) {
#pragma unroll
    for (unsigned j = 0; j < stages; ++j) {
      if (s + j == item.end) break;
      wait_copies<stages - 2>();  // this lane's copies of step s + j have landed,
      __syncwarp();               // and every lane's; every lane is done with the previous stage
      if (pipe.step < item.end) pipe.copy_step(a, (j + stages - 1) % stages);
      commit_copies();
      const step_loads current = pipe.read_step(stages_at, j);
      if (s + j == item.first || (s + j) % steps_per_group == 0) {
        if constexpr (S == scaling::after_mma) {
          if (s + j != item.first) add_scaled_group<F>(group, sums, totals);
        }
        group = prepare_group<F, S>(pipe.read_group(stages_at, j));
      }
      multiply_step<F, S>(current, group, sums);
    }
  }
  if constexpr (S == scaling::after_mma) {
    add_scaled_group<F>(group, sums, totals);
    read_totals(totals, sums);
  }
  if constexpr (!lets_next_call_start_early<Batch>) let_next_kernel_start();
  if (add_block_sums(a, sums, stages_at, lane) && item.tile < a.size.n / tile_columns) {
    finish_through_workspace<F, Batch>(a, item, sums, lane);
  }
}

}  // namespace awq_gemv
