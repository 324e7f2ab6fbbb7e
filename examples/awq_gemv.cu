// SPDX-License-Identifier: Apache-2.0
// W4A16 for LLM decode with an AWQ checkpoint (group size 128): a fused GEMV y = x W for a batch of
// 1 to 8 tokens, and the bulk dequantization of W to a 16-bit matrix (the prefill path, which hands
// the matrix to a GEMM), both with dq4's exact zero-point path: every weight is (q - z) * s rounded
// once to fp16 or bf16, the same bits the reference gives.
//
// For each shape it checks every GEMV output against a host computation from the reference
// dequantized weights and against cuBLAS on the dequantized matrix, checks every dequantized value,
// and times the GEMV against cuBLAS (cublasGemmEx on the dequantized 16-bit matrix) and the bulk
// kernel against a device-to-device copy, with weights rotated through more than twice the L2 size
// so that they come from DRAM, and calls queued back to back (the time per call of a decode step's
// stream of kernels, without the host's launch latency). On sm_90+ it also checks and times the
// calls chained (programmatic dependent launch: see start_after_previous_kernel).
//
//   awq_gemv [--quick] [--shape K N] [--csv results.csv]
//     --quick: one small shape, correctness only (the CTest run)
//     --shape: this K x N only
#include <dq4/checkpoint.hpp>
#include <dq4/dq4.cuh>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "support/awq_mma_fragments.hpp"
#include "support/cuda_support.cuh"

namespace {

using dq4::format;

using dq4_support::check;
using dq4_support::median_ms;

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "cuBLAS error in %s: %d\n", what, static_cast<int>(status));
    std::exit(1);
  }
}

constexpr std::size_t group_size = 128;

// ------------------------------------------------------------------------------------------------
// The GEMV on tensor cores. y^T = W^T x^T is a matrix product with W^T as the A operand of
// mma.sync.m16n8k16 (16 columns of W by 16 rows k) and the tokens as its 8 B columns, fp32
// accumulation. A warp owns a tile of 128 columns (16 packed words per row) and walks down K in
// steps of 16 rows.
//
// The A fragment wants, in each register, two consecutive k of one column; a packed word holds one
// k of eight columns. So two rows are merged by a byte permute before dequantization, the zeros and
// scales are merged to match, and dq4::dequantize still computes (q - z) * s with one rounding:
// every weight the tensor core sees has the reference's bits. The recipe is in
// support/awq_mma_fragments.hpp, which tests/test_gemv_recipe.cpp checks on the host.
// Per merged word: 1 PRMT + 13 (fp16) or 15 (bf16) instructions for eight weights.
//
// Lanes: g = lane / 4 takes words 2g, 2g + 1 of the tile (columns 16g .. 16g + 15); t = lane % 4
// takes rows 4t .. 4t + 3 of each step. K may be relabelled freely inside an mma as long as A and B
// agree, so rows 4t, 4t + 1 play the fragment's k = 2t, 2t + 1 and rows 4t + 2, 4t + 3 its
// k = 2t + 8, 2t + 9; the B fragment is then x[token g][4t .. 4t + 3], one 8-byte load. Output
// register pair (c0, c2) of mma j of word w holds columns 8w' + 2j and 8w' + 2j + 1 for token 2t,
// (c1, c3) the same columns for token 2t + 1.
//
// Work split: the eight warps of a block take the eight adjacent tiles of a band (1024 columns), so
// together they read 512 contiguous bytes of each row. Each band's K is cut into equal parts, one
// block per (band, part), as many as fill the resident blocks (two blocks of 128 registers per
// thread on each SM). Where there are few tiles (N = 4096: 32), a band is 4, 2 or 1 tiles instead,
// and for 8 tokens always 1 with at most 4 parts (see make_gemv_plan); the warps of a tile then
// split the part's steps, their sums added in shared memory in a fixed order. At the end of its
// part a block stores each tile's partial sums into the part's slot of the workspace and counts its
// part as done; the warp that completes a tile's count adds the slots in part order (deterministic
// for a given device) and writes the 16-bit outputs. No memset or second kernel: the completing
// warp resets the tile's counter, so the workspace is ready for the next call.
//
// Measured on an H100 while choosing this (8192 x 28672, one token, fp16, one call at a time):
// plain register loads one step ahead, 66 us; asynchronous 8-byte copies of each lane's own words
// four steps ahead, 59 us (six or more stages: slower); warps that each took their own column range
// instead of a band, 78 us; the finishing warp adding the slots one load at a time, 64 us; blocks
// whose K range crossed into the next band (equal runs over all steps instead of parts of one band),
// 59 us against 57 us, the crossing warps being the last. Then whole-sector 16-byte copies through a
// swizzled ring, the group's zero points and scales travelling in the same ring: 56 us; with the
// L2::128B hint, 53 us. Work handed out at run time in items of 8 steps (an atomic ticket per item,
// so warps on faster SMs take more) was slower (H200: 70 against 45 us): publishing each item's
// partial sums needs a memory fence, and the fence waits for the warp's copies in flight. Without
// the fence (slots poisoned with a NaN no arithmetic makes, relaxed stores and loads, the adding warp
// loading again what is still poisoned), with whole bands per item and long parts first, short ones
// last, it was still slower (H100, 8192 x 28672, one token: 54.7 against 51.5 us): given the static
// parts as its items it matched the static split (50.7 us), and the short items at the end spread
// the blocks' ends (in-kernel timers: last at 48-54 us against 44-45 us) instead of closing them up.
// ------------------------------------------------------------------------------------------------

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "awq_gemv uses mma.sync.m16n8k16 with fp16 and bf16 and cp.async: build it for CUDA architectures 80 and newer"
#endif

constexpr int warps_per_block = 8;
constexpr int tile_columns = 128;
constexpr int tile_words = tile_columns / 8;
constexpr int step_rows = 16;
constexpr int steps_per_group = static_cast<int>(group_size) / step_rows;
constexpr int max_batch = 8;

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
  std::size_t rows, cols;        // K, N
  unsigned band_tiles;           // tiles of a block: 8, 4, 2 or 1 (then 8 / band_tiles warps share a tile)
  unsigned parts;                // a tile's K is cut into this many parts, one block each
  unsigned part_steps;           // steps of a part (the last may be shorter)
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
// whole 128-byte line, whose other half the neighbouring warp reads (8192 x 28672 on an H100, calls
// back to back: 50 us against 53 us without it; L2::256B the same as 128B).
__device__ void copy_16_async(unsigned shared_address, const void* global, bool copy = true) {
  asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;" ::"r"(shared_address), "l"(global),
               "r"(copy ? 16 : 0)
               : "memory");
}
__device__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int Pending>
__device__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
}
constexpr int stages = 4;  // 5 or 6: slower for one token, 2% faster for eight (H100)

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
constexpr unsigned zeros = step_rows * tile_words * 4, scales = zeros + tile_words * 4;  // weights at 0
constexpr unsigned x = zeros + 32 * 16;
constexpr unsigned stage_bytes = x + 32 * 16;
constexpr unsigned bytes = stages * stage_bytes;
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

// A warp's work: steps [first, end) of one tile (empty for a warp past the last tile), whose
// block's partial sums go to slot `part` of the tile.
struct work_item {
  unsigned tile, part, first, end;
};

// Block b takes part b % parts of band b / parts: band_tiles adjacent tiles (so the block reads
// 64 band_tiles contiguous bytes of each row), each shared by 8 / band_tiles warps that split the
// part's steps into contiguous runs (their sums are added in the block, see add_block_sums).
__device__ work_item work_of(const gemv_args& a, unsigned block, unsigned warp) {
  const unsigned band = block / a.parts, part = block % a.parts, steps = static_cast<unsigned>(a.rows / step_rows);
  const unsigned tile = band * a.band_tiles + warp % a.band_tiles, sharers = warps_per_block / a.band_tiles;
  const unsigned first = part * a.part_steps, length = min(steps, first + a.part_steps) - first;
  const unsigned run = warp / a.band_tiles;
  if (tile >= a.cols / tile_columns) return {tile, part, 0, 0};  // the last band may be narrower than a block
  return {tile, part, first + length * run / sharers, first + length * (run + 1) / sharers};
}

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
    const std::size_t row_bytes = a.cols / 2, first_row = std::size_t{item.first} * step_rows;
    const unsigned l = static_cast<unsigned>(lane);
    words = reinterpret_cast<const char*>(a.weights) + (first_row + l / 4) * row_bytes + item.tile * 64 + 16 * (l % 4);
    x = static_cast<const char*>(a.x) + ((copies_x ? l / 2 * a.rows : 0) + first_row + 8 * (l % 2)) * 2;
    const std::size_t group_row = first_row / group_size;
    const auto* zeros = reinterpret_cast<const char*>(a.zeros);
    const auto* scales = reinterpret_cast<const char*>(a.scales);
    group = l < 4 ? zeros + group_row * row_bytes + item.tile * 64 + 16 * l
                  : scales + group_row * a.cols * 2 + item.tile * 256 + 16 * ((l - 4) % 16);
    step = first = item.first;
  }

  // The copies of the next step into `stage`: its weights and activations, and its group's zero
  // points and scales when it starts a group or the warp's work.
  __device__ void copy_step(const gemv_args& a, unsigned stage) {
    const std::size_t row_bytes = a.cols / 2;
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
  p.group_stride = static_cast<unsigned>(l < 4 ? a.cols / 2 : a.cols * 2);
  p.copies_x = l / 2 < static_cast<unsigned>(a.batch) && l / 2 < static_cast<unsigned>(Batch);
  p.copy_to[0] = ring_address + ring::chunk(l / 4, l % 4);
  p.copy_to[1] = ring_address + ring::chunk(l / 4 + 8, l % 4);
  p.x_to = ring_address + ring::x + 16 * l;
  p.group_to = ring_address + ring::zeros + 16 * l;
  p.read_at[0] = ring::chunk(4 * t, g / 2) + 8 * (g % 2);
  p.read_at[1] = ring::chunk(4 * t + 1, g / 2) + 8 * (g % 2);
  return p;
}

// A group's zero points and scales prepared for the merged words: [word][even columns, odd columns].
template <format F>
struct group_registers {
  dq4::zero_point<F, dq4::order::interleaved> zero[2][2];
  dq4::fragment<F, 8> scales[2][2];
};

template <format F>
__device__ group_registers<F> prepare_group(const group_loads& l) {
  group_registers<F> p;
  const std::uint32_t zeros[2] = {l.zeros.x, l.zeros.y};
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    p.zero[w][0] = dq4_gemv::merged_zeros<F, 0>(zeros[w]);
    p.zero[w][1] = dq4_gemv::merged_zeros<F, 1>(zeros[w]);
    const dq4::fragment<F, 8> s{{l.scales[w].x, l.scales[w].y, l.scales[w].z, l.scales[w].w}};
    p.scales[w][0] = dq4_gemv::doubled_scales<F, 0>(s);
    p.scales[w][1] = dq4_gemv::doubled_scales<F, 1>(s);
  }
  return p;
}

using accumulators = float[2][4][4];  // [word][mma j][fragment register]

template <format F>
__device__ void multiply_step(const step_loads& s, const group_registers<F>& p, accumulators& acc) {
#pragma unroll
  for (int w = 0; w < 2; ++w) {
    const std::uint32_t r0 = w == 0 ? s.rows[0].x : s.rows[0].y, r1 = w == 0 ? s.rows[1].x : s.rows[1].y;
    const std::uint32_t r2 = w == 0 ? s.rows[2].x : s.rows[2].y, r3 = w == 0 ? s.rows[3].x : s.rows[3].y;
    const auto even01 = dq4_gemv::column_pairs<F, 0>(r0, r1, p.zero[w][0], p.scales[w][0]);
    const auto odd01 = dq4_gemv::column_pairs<F, 1>(r0, r1, p.zero[w][1], p.scales[w][1]);
    const auto even23 = dq4_gemv::column_pairs<F, 0>(r2, r3, p.zero[w][0], p.scales[w][0]);
    const auto odd23 = dq4_gemv::column_pairs<F, 1>(r2, r3, p.zero[w][1], p.scales[w][1]);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::uint32_t a[4] = {even01.regs[j], odd01.regs[j], even23.regs[j], odd23.regs[j]};
      mma_16x8x16<F>(acc[w][j], a, s.x.x, s.x.y);
    }
  }
}

// The tile's partial sums of this block's part (this warp's, or the block's when warps share the
// tile) into the part's slot; the warp that completes the tile (the last of its parts to arrive)
// sums the slots in part order and writes y.
template <format F, int Batch>
__device__ void finish_item(const gemv_args& a, const work_item& item, accumulators& acc, int lane) {
  const int g = lane / 4, t = lane % 4;
  float* mine = a.slots + (std::size_t{item.tile} * a.parts + item.part) * Batch * tile_columns;
#pragma unroll
  for (int w = 0; w < 2; ++w) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int column = 8 * (2 * g + w) + 2 * j;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int token = 2 * t + i % 2;
        if (token < Batch) __stcg(mine + token * tile_columns + column + i / 2, acc[w][j][i]);
        acc[w][j][i] = 0;
      }
    }
  }
  // Publish the slot, then count; the warp that brings the count to the tile's parts sees every slot.
  __threadfence();
  __syncwarp();
  unsigned before = 0;
  if (lane == 0) before = atomicAdd(a.arrivals + item.tile, 1);
  if (__shfl_sync(0xFFFFFFFFu, before, 0) + 1 != a.parts) return;
  __threadfence();
  // Lane l sums columns 4l .. 4l + 3 of every token over the slots, in slot order. The 16-byte
  // loads of up to `in_flight` slots (all tokens) are issued before any of them is added, so this
  // warp, the last of the call, waits about one round trip to L2 per round and not one per slot.
  // (A loop over the slots unrolled 16 times did that only for 16 slots or more: with 9 its
  // remainder loop loaded one slot at a time, and the calls at 8192 x 28672 took 50.4 us instead
  // of 48.9; H100, one token, side by side.) A skipped slot is not added as zero: -0 + 0 is +0.
  const auto* slots = reinterpret_cast<const float4*>(a.slots + std::size_t{item.tile} * a.parts * Batch * tile_columns);
  float4 sums[Batch];
#pragma unroll
  for (int token = 0; token < Batch; ++token) sums[token] = make_float4(0, 0, 0, 0);
  constexpr unsigned in_flight = Batch == 1 ? 16 : 2;  // 16 loads of 16 bytes either way
  for (unsigned first = 0; first < a.parts; first += in_flight) {
    float4 v[in_flight][Batch];
#pragma unroll
    for (unsigned i = 0; i < in_flight; ++i) {
#pragma unroll
      for (int token = 0; token < Batch; ++token) {
        v[i][token] = first + i < a.parts ? __ldcg(slots + ((first + i) * Batch + token) * (tile_columns / 4) + lane)
                                          : make_float4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (unsigned i = 0; i < in_flight && first + i < a.parts; ++i) {
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
    value_type<F>* out = y + token * a.cols + item.tile * tile_columns + 4 * lane;
    out[0] = static_cast<value_type<F>>(sums[token].x);
    out[1] = static_cast<value_type<F>>(sums[token].y);
    out[2] = static_cast<value_type<F>>(sums[token].z);
    out[3] = static_cast<value_type<F>>(sums[token].w);
  }
  if (lane == 0) a.arrivals[item.tile] = 0;
}

// When warps share a tile (band_tiles < 8), the block adds their sums in shared memory, in the
// order of their runs: each warp leaves its accumulators in its own (drained) ring, and the warp of
// the first run adds the others' to its own. Returns whether this warp holds the block's sums.
__device__ bool add_block_sums(const gemv_args& a, accumulators& acc, char* ring, int lane) {
  const unsigned warp = threadIdx.x / 32;
  if (a.band_tiles == warps_per_block) return true;
  auto* mine = reinterpret_cast<float4*>(ring);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float(&d)[4] = acc[i / 4][i % 4];
    mine[i * 32 + lane] = make_float4(d[0], d[1], d[2], d[3]);
  }
  __syncthreads();
  if (warp >= a.band_tiles) return false;
  for (unsigned other = warp + a.band_tiles; other < warps_per_block; other += a.band_tiles) {
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
__device__ void let_next_kernel_start() {
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
// Measured on the H100, one token, calls back to back, chained: 8192 x 28672 47.6 us (49.2 one at a
// time); with 8 steps whatever the warp's share, 47.5 us, but 14336 x 4096 18.2 us against 16.2
// (a warp there has 13 steps, and prefetching most of them at once delayed the kernel before);
// without any prefetch 48.6-49.0 and 16.4 us; 4, 12 or 24 steps at 8192 x 28672: 0.5 us slower, the
// same, 6 us slower. Prefetching in calls made one at a time made those 1.7 us slower.
//
// When the next call may be scheduled: at the start for one token, after the main loop for 8. A
// chained grid is placed on the SMs as the slots free up; the 8-token plans leave many slots free
// (128 blocks of 264 at 14336 x 4096), so a call let start early lands where the call before still
// runs, unevenly. Measured on the H100, chained, both builds side by side: signalled after the main
// loop, 8 tokens at 14336 x 4096 17.3 us against 22.8 (4096 x 4096 9.7 against 11.2, 8192 x 28672
// 53.5 against 54.7), but one token at 8192 x 28672 48.5 against 47.7 (its grid fills the slots).
template <int Batch>
constexpr bool lets_next_call_start_early = Batch == 1;

template <int Batch>
__device__ void start_after_previous_kernel(const gemv_args& a, const work_item& item, int lane) {
  if constexpr (lets_next_call_start_early<Batch>) let_next_kernel_start();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr unsigned prefetched_steps = 8;
  if (a.chained && lane < step_rows) {  // one 128-byte line per row: this tile's 64 bytes and its neighbour's
    const std::size_t row_bytes = a.cols / 2;
    const unsigned end = item.first + min(prefetched_steps, (item.end - item.first) / 8);
    for (unsigned step = item.first; step < end; ++step) {
      const char* row = reinterpret_cast<const char*>(a.weights) + (std::size_t{step} * step_rows + lane) * row_bytes;
      asm volatile("prefetch.global.L2 [%0];" ::"l"(row + item.tile * 64));
    }
  }
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Pipeline: the copies of the next stages - 1 steps are in flight (into the warp's ring) while a
// step is multiplied. The loop is unrolled by the ring size, so every shared-memory offset is a
// constant.
template <format F, int Batch>
__global__ void __launch_bounds__(32 * warps_per_block, 2) gemv_kernel(gemv_args a) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const work_item item = work_of(a, blockIdx.x, static_cast<unsigned>(warp));
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
  accumulators acc = {};
  group_registers<F> group{};
  for (unsigned s = item.first; s < item.end; s += stages) {
#pragma unroll
    for (unsigned j = 0; j < stages; ++j) {
      if (s + j == item.end) break;
      wait_copies<stages - 2>();  // this lane's copies of step s + j have landed,
      __syncwarp();               // and every lane's; every lane is done with the previous stage
      if (pipe.step < item.end) pipe.copy_step(a, (j + stages - 1) % stages);
      commit_copies();
      const step_loads current = pipe.read_step(stages_at, j);
      if (s + j == item.first || (s + j) % steps_per_group == 0) group = prepare_group<F>(pipe.read_group(stages_at, j));
      multiply_step<F>(current, group, acc);
    }
  }
  if constexpr (!lets_next_call_start_early<Batch>) let_next_kernel_start();
  if (add_block_sums(a, acc, stages_at, lane) && item.tile < a.cols / tile_columns) {
    finish_item<F, Batch>(a, item, acc, lane);
  }
}

// The group's registers for one word: zero points prepared once, scales loaded as a fragment.
template <format F>
struct word_group {
  dq4::zero_point<F, dq4::order::interleaved> zero;
  dq4::fragment<F, 8> scales;
};

template <format F>
__device__ word_group<F> load_word_group(const std::uint32_t* zeros, const uint4* scales, std::size_t word) {
  word_group<F> g;
  g.zero = dq4::prepare_zeros<F, dq4::zeros::awq, dq4::order::interleaved>(zeros[word]);
  const uint4 s = scales[word];  // eight 16-bit scales, columns 8 word .. 8 word + 7
  g.scales.regs[0] = s.x;
  g.scales.regs[1] = s.y;
  g.scales.regs[2] = s.z;
  g.scales.regs[3] = s.w;
  return g;
}

// The bulk path: W dequantized to F, row-major [K][N]. A warp takes a tile of 8 rows (of one group)
// by 32 words: lane l takes word column 32t + l of the 8 rows, so it prepares its zero points and
// loads its scales once for 8 words, each load instruction reads 128 contiguous bytes and each 16-byte
// store instruction writes 512 contiguous bytes, streaming (st.global.cs: the output is not read again
// by this kernel).
template <format F>
__global__ void dequantize_kernel(const std::uint32_t* __restrict__ weights, const std::uint32_t* __restrict__ zeros,
                                  const uint4* __restrict__ scales, std::size_t rows, std::size_t cols,
                                  uint4* __restrict__ out) {
  constexpr int tile_rows = 8;  // divides the group size
  const std::size_t words_per_row = cols / 8, tiles_per_row = words_per_row / 32;
  const std::size_t tiles = rows / tile_rows * tiles_per_row;
  const std::size_t lane = threadIdx.x % 32;
  const std::size_t warp = (std::size_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const std::size_t warps = std::size_t{gridDim.x} * blockDim.x / 32;
  for (std::size_t t = warp; t < tiles; t += warps) {
    const std::size_t k0 = t / tiles_per_row * tile_rows, c = t % tiles_per_row * 32 + lane;
    std::uint32_t w[tile_rows];
#pragma unroll
    for (int i = 0; i < tile_rows; ++i) w[i] = weights[(k0 + i) * words_per_row + c];  // all loads first
    const word_group<F> g = load_word_group<F>(zeros, scales, (k0 / group_size) * words_per_row + c);
#pragma unroll
    for (int i = 0; i < tile_rows; ++i) {
      const dq4::fragment<F, 8> v = dq4::dequantize<F, dq4::order::interleaved>(w[i], g.zero, g.scales);
      __stcs(out + (k0 + i) * words_per_row + c, make_uint4(v.regs[0], v.regs[1], v.regs[2], v.regs[3]));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Host side
// ------------------------------------------------------------------------------------------------

struct shape {
  std::size_t k, n;
};

// A random AWQ checkpoint of a K x N layer (fast LCG: the values only need to cover every nibble).
struct checkpoint {
  std::vector<std::int32_t> qweight, qzeros;
  std::vector<std::uint16_t> scales;
};

checkpoint random_checkpoint(shape s, format f, std::uint32_t seed) {
  checkpoint c;
  std::uint32_t state = seed;
  const auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  c.qweight.resize(s.k * s.n / 8);
  for (auto& w : c.qweight) w = static_cast<std::int32_t>(next());
  c.qzeros.resize(s.k / group_size * s.n / 8);
  for (auto& z : c.qzeros) z = static_cast<std::int32_t>(next());
  c.scales.resize(s.k / group_size * s.n);
  for (auto& v : c.scales) {  // scales around 2^-6 .. 2^-4, as in real layers
    const float scale = 0.004f + static_cast<float>(next() >> 8) * (0.05f / 16777216.0f);
    v = f == format::fp16 ? __half_as_ushort(__float2half_rn(scale)) : __bfloat16_as_ushort(__float2bfloat16_rn(scale));
  }
  return c;
}

// Bit pattern of the reference dequantized weight W[k][n] of a packed_matrix.
template <format F>
std::uint16_t reference_weight(const dq4::packed_matrix& m, std::size_t k, std::size_t n) {
  const std::size_t g = k / m.group_size;
  return static_cast<std::uint16_t>(dq4::reference::round_to(
      F, dq4::reference::times(m.weight(k, n) - m.zero(g, n), dq4::reference::number_of(F, m.scale(g, n)))));
}

template <class T>
T* device_copy(const std::vector<T>& host) {
  T* d = nullptr;
  check(cudaMalloc(&d, host.size() * sizeof(T)), "cudaMalloc");
  check(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
  return d;
}

// One copy of a layer on the device: packed weights, zeros, scales, and its dequantized matrix.
struct device_layer {
  std::uint32_t* weights = nullptr;
  std::uint32_t* zeros = nullptr;
  std::uint16_t* scales = nullptr;
  void* dequantized = nullptr;  // [K][N] 16-bit
};

// The GEMV's grid (every block resident at once) and its workspace for one format and batch size.
struct gemv_plan {
  unsigned blocks = 0;
  unsigned band_tiles = 0, parts = 0, part_steps = 0;
  float* slots = nullptr;
  unsigned* arrivals = nullptr;
  bool chainable = false;  // the device has programmatic dependent launch (sm_90+)
};

// How a call starts: after the kernel before it in the stream has ended (as any launch), or
// chained to it (programmatic dependent launch: see start_after_previous_kernel).
enum class start { after_previous, chained };

template <format F>
const void* gemv_kernel_for(int batch) {
  return batch == 1 ? reinterpret_cast<const void*>(gemv_kernel<F, 1>) : reinterpret_cast<const void*>(gemv_kernel<F, max_batch>);
}

// Shared memory of a block: the rings of its warps.
constexpr int ring_bytes = warps_per_block * ring::bytes;

template <format F>
gemv_plan make_gemv_plan(shape s, int batch, const cudaDeviceProp& device) {
  const int sms = device.multiProcessorCount;
  int per_sm = 0;
  check(cudaFuncSetAttribute(gemv_kernel_for<F>(batch), cudaFuncAttributeMaxDynamicSharedMemorySize, ring_bytes),
        "cudaFuncSetAttribute");
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_kernel_for<F>(batch), 32 * warps_per_block, ring_bytes),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  gemv_plan p;
  // A band's K is cut into as many parts as fill the resident blocks (at least one part); the parts
  // are equal but for the last, and none is empty. Each part costs a slot write and read of
  // batch x 128 floats per tile: at most K / (64 batch) parts keep that traffic under a quarter of
  // the tile's weight bytes (K x 64), which matters for 8 tokens and small K. Bands of 8 tiles read
  // the longest runs of each row, but where there are few tiles they need many parts (slots for the
  // finishing warp to add: up to 32 take it two rounds of loads) or leave blocks idle. So: 8 tiles if
  // that fills 90% of the resident blocks with at most 32 parts, else the band width that fills them
  // with the fewest parts (the widest if several), else the one that starts the most blocks.
  // (H100, one token: 4096 x 4096 in 10.6 us with 1-tile bands against 12.0 us with 64 parts of 8
  // tiles.) For 8 tokens a part's sums are 8 times larger and the finishing warp loads them two
  // parts (16 loads of 16 bytes per lane) per round trip, so fewer parts pay more than wide bands:
  // one tile per block and at most 4 parts, as many as the resident blocks take. (H100, 8 tokens,
  // fp16, side by side with the plans forced: 8192 x 28672 54.3 us with 1 part against 78.8 us
  // with 8-tile bands and 9 parts, 57.1 and 62.7 us with 2 and 4 tiles and parts; 4096 x 14336 19.7
  // us with 2 parts against 30.4 with 4-tile bands and 8 parts (and 19.0 us with 1 part, but 24.7
  // against 19.4 chained); 14336 x 4096 and 4096 x 4096 with 4 parts 18.5 and 10.9 us against 20.8
  // and 13.8 with 8, 22.9 and 13.0 with 5.)
  const std::size_t tiles = s.n / tile_columns, steps_per_tile = s.k / step_rows;
  const std::size_t kernel_batch = batch == 1 ? 1 : max_batch;  // the Batch of the kernel that runs
  const std::size_t slot_limit = std::max<std::size_t>(1, s.k / (64 * kernel_batch));
  const std::size_t resident = static_cast<std::size_t>(sms * per_sm);
  struct split {
    unsigned band_tiles;
    std::size_t part_steps, parts, blocks;
    bool fills;
  };
  const auto split_for = [&](unsigned band_tiles, std::size_t max_parts) {
    const std::size_t bands = (tiles + band_tiles - 1) / band_tiles;
    const std::size_t wanted = std::min({slot_limit, max_parts, std::max<std::size_t>(1, resident / bands)});
    const std::size_t part_steps = (steps_per_tile + wanted - 1) / wanted;
    const std::size_t parts = (steps_per_tile + part_steps - 1) / part_steps;
    return split{band_tiles, part_steps, parts, bands * parts, 10 * bands * parts >= 9 * resident};
  };
  split chosen = kernel_batch > 1 ? split_for(1, 4) : split_for(warps_per_block, slot_limit);
  if (kernel_batch == 1 && (!chosen.fills || chosen.parts > 32)) {
    for (const unsigned band_tiles : {4u, 2u, 1u}) {
      const split c = split_for(band_tiles, slot_limit);
      if (c.fills ? !chosen.fills || c.parts < chosen.parts : !chosen.fills && c.blocks > chosen.blocks) chosen = c;
    }
  }
  p.band_tiles = chosen.band_tiles;
  p.part_steps = static_cast<unsigned>(chosen.part_steps);
  p.parts = static_cast<unsigned>(chosen.parts);
  p.blocks = static_cast<unsigned>(chosen.blocks);
  p.chainable = device.major >= 9;
  check(cudaMalloc(&p.slots, tiles * p.parts * kernel_batch * tile_columns * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&p.arrivals, tiles * sizeof(unsigned)), "cudaMalloc");
  check(cudaMemset(p.arrivals, 0, tiles * sizeof(unsigned)), "cudaMemset");  // once: the kernel leaves it zero
  return p;
}

void free_gemv_plan(gemv_plan& p) {
  check(cudaFree(p.slots), "cudaFree");
  check(cudaFree(p.arrivals), "cudaFree");
  p = {};
}

// The kernel's contract, checked before every launch: a bad argument stops the program with a
// message instead of reading out of bounds or misaligned.
bool aligned(const void* p, std::size_t bytes) { return p != nullptr && reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "launch_gemv: %s\n", what);
    std::exit(2);
  }
}

template <format F>
void launch_gemv(const device_layer& l, shape s, int batch, const void* x, void* y, const gemv_plan& p, cudaStream_t stream,
                 start how = start::after_previous) {
  require(s.k > 0 && s.k % group_size == 0 && s.n > 0 && s.n % tile_columns == 0, "K must be a multiple of 128 and N of 128");
  require(batch >= 1 && batch <= max_batch, "the batch must be 1 to 8 tokens");
  require(aligned(l.weights, 16) && aligned(l.zeros, 16) && aligned(l.scales, 16),
          "weights, zero points and scales must be non-null and 16-byte aligned");
  require(aligned(x, 16) && aligned(y, 2), "x must be non-null and 16-byte aligned, y non-null and 2-byte aligned");
  require(p.slots != nullptr && p.arrivals != nullptr, "the plan has no workspace: make it with make_gemv_plan");
  require(how == start::after_previous || p.chainable, "chained calls need programmatic dependent launch (sm_90 or newer)");
  const gemv_args args{l.weights, l.zeros, l.scales, x, y, p.slots, p.arrivals, s.k, s.n, p.band_tiles, p.parts, p.part_steps,
                       batch, how == start::chained};
  cudaLaunchAttribute chained{};
  chained.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  chained.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = p.blocks;
  config.blockDim = 32 * warps_per_block;
  config.dynamicSmemBytes = ring_bytes;
  config.stream = stream;
  config.attrs = how == start::chained ? &chained : nullptr;
  config.numAttrs = how == start::chained ? 1 : 0;
  void* kernel_args[] = {const_cast<gemv_args*>(&args)};
  check(cudaLaunchKernelExC(&config, gemv_kernel_for<F>(batch), kernel_args), "gemv_kernel launch");
  check(cudaGetLastError(), "gemv_kernel");
}

// 32 blocks of 256 threads per SM: a grid-stride loop over the tiles.
template <format F>
void launch_dequantize(const device_layer& l, shape s, int sms, cudaStream_t stream) {
  dequantize_kernel<F><<<static_cast<unsigned>(sms * 32), 256, 0, stream>>>(l.weights, l.zeros, reinterpret_cast<const uint4*>(l.scales), s.k,
                                                     s.n, static_cast<uint4*>(l.dequantized));
  check(cudaGetLastError(), "dequantize_kernel");
}

void cublas_gemv(cublasHandle_t handle, format f, const device_layer& l, shape s, int batch, const void* x, void* y) {
  // Column-major view: W row-major [K][N] is an N x K matrix with leading dimension N; x is K x batch,
  // y is N x batch. y = W x with fp32 accumulation.
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType_t type = f == format::fp16 ? CUDA_R_16F : CUDA_R_16BF;
  check(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(s.n), batch, static_cast<int>(s.k), &one,
                     l.dequantized, type, static_cast<int>(s.n), x, type, static_cast<int>(s.k), &zero, y, type,
                     static_cast<int>(s.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
}

float bits16_to_float(format f, std::uint16_t bits) {
  if (f == format::fp16) return __half2float(__ushort_as_half(bits));
  const std::uint32_t f32 = std::uint32_t{bits} << 16;
  float v;
  std::memcpy(&v, &f32, 4);
  return v;
}

// The exact check of the GEMV: with unit-vector activations (token b selects row k_b) every output
// is one product 1 * W[k_b][n] plus exact zeros, which the tensor core and the fp32 sums carry
// without rounding, so y[b] must equal row k_b of the dequantized matrix bit for bit (`dense`, itself
// checked against the reference). This catches any misplaced weight, scale or zero point, which the
// tolerance of a random-activation test could hide. Rows: all of them (all_rows), else every row of
// the first and last group and one row per k16 step, its position in the step cycling through 0..15.
template <format F>
std::size_t unit_vector_mismatches(const device_layer& l, shape s, int batch, const gemv_plan& plan,
                                   const std::vector<std::uint16_t>& dense, bool all_rows) {
  std::vector<std::size_t> rows;
  for (std::size_t k = 0; k < s.k; ++k) {
    const bool edge_group = k < group_size || k >= s.k - group_size;
    if (all_rows || edge_group || k % step_rows == (k / step_rows) % step_rows) rows.push_back(k);
  }
  const std::uint16_t one = F == format::fp16 ? 0x3C00 : 0x3F80;
  std::vector<std::uint16_t> xh(batch * s.k), yh(batch * s.n);
  std::uint16_t* x = nullptr;
  std::uint16_t* y = nullptr;
  check(cudaMalloc(&x, xh.size() * 2), "cudaMalloc");
  check(cudaMalloc(&y, yh.size() * 2), "cudaMalloc");
  std::size_t mismatches = 0;
  for (std::size_t first = 0; first < rows.size(); first += static_cast<std::size_t>(batch)) {
    std::fill(xh.begin(), xh.end(), std::uint16_t{0});
    for (int b = 0; b < batch; ++b) xh[b * s.k + rows[std::min(first + b, rows.size() - 1)]] = one;
    check(cudaMemcpy(x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    check(cudaMemset(y, 0xEE, yh.size() * 2), "cudaMemset");  // poison
    launch_gemv<F>(l, s, batch, x, y, plan, nullptr);
    check(cudaMemcpy(yh.data(), y, yh.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
    for (int b = 0; b < batch; ++b) {
      const std::size_t k = rows[std::min(first + b, rows.size() - 1)];
      for (std::size_t n = 0; n < s.n; ++n) mismatches += yh[b * s.n + n] != dense[k * s.n + n] ? 1 : 0;
    }
  }
  check(cudaFree(x), "cudaFree");
  check(cudaFree(y), "cudaFree");
  return mismatches;
}

std::vector<std::uint16_t> random_activations(format f, std::size_t count, std::uint32_t seed) {
  std::vector<std::uint16_t> x(count);
  std::uint32_t state = seed;
  for (auto& v : x) {
    state = state * 1664525u + 1013904223u;
    const float value = static_cast<float>(state >> 8) / 8388608.0f - 1.0f;  // in [-1, 1)
    v = f == format::fp16 ? __half_as_ushort(__float2half_rn(value)) : __bfloat16_as_ushort(__float2bfloat16_rn(value));
  }
  return x;
}

// The kernel before each chained call in chained_mismatches: it lets the call start at once
// (sm_90+), then holds on for `ns` nanoseconds before it writes the call's activations, so a call
// that read them before its griddepcontrol.wait would read the previous call's.
__global__ void write_activations_late(uint4* to, const uint4* from, std::size_t count, unsigned long long ns) {
  let_next_kernel_start();
  dq4_support::sleep_ns(ns);
  for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) to[i] = from[i];
}

// Chained calls against calls one at a time: four calls, each chained to a kernel that writes its
// activations late (alternately `x` and a second set), into four poisoned outputs, and each must
// give the bits of the same call made alone. A call that read its activations, or touched the
// workspace that the previous call still uses, before that call and the writer had ended would
// give other bits or leave outputs poisoned.
template <format F>
std::size_t chained_mismatches(const device_layer& l, shape s, int batch, const gemv_plan& plan, const std::uint16_t* x,
                               const std::vector<std::uint16_t>& y_of_x) {
  const std::size_t x_count = batch * s.k, y_count = batch * s.n;
  std::uint16_t* other_x = device_copy(random_activations(F, x_count, 7));
  std::uint16_t *x_late = nullptr, *y = nullptr;
  check(cudaMalloc(&x_late, x_count * 2), "cudaMalloc");
  check(cudaMalloc(&y, 5 * y_count * 2), "cudaMalloc");
  check(cudaMemset(y, 0xEE, 5 * y_count * 2), "cudaMemset");  // poison
  std::uint16_t* y_of_other = y + 4 * y_count;
  launch_gemv<F>(l, s, batch, other_x, y_of_other, plan, nullptr);
  for (int call = 0; call < 4; ++call) {
    const std::uint16_t* source = call % 2 == 0 ? x : other_x;
    write_activations_late<<<1, 256>>>(reinterpret_cast<uint4*>(x_late), reinterpret_cast<const uint4*>(source), x_count / 8, 20000);
    check(cudaGetLastError(), "write_activations_late");
    launch_gemv<F>(l, s, batch, x_late, y + call * y_count, plan, nullptr, start::chained);
  }
  std::vector<std::uint16_t> got(5 * y_count);
  check(cudaMemcpy(got.data(), y, got.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
  std::size_t mismatches = 0;
  for (int call = 0; call < 4; ++call) {
    const std::uint16_t* expected = call % 2 == 0 ? y_of_x.data() : &got[4 * y_count];
    for (std::size_t i = 0; i < y_count; ++i) mismatches += got[call * y_count + i] != expected[i] ? 1 : 0;
  }
  check(cudaFree(other_x), "cudaFree");
  check(cudaFree(x_late), "cudaFree");
  check(cudaFree(y), "cudaFree");
  return mismatches;
}

// One layer shape in one format: every dequantized value, then the GEMV for each batch size.
template <format F>
bool run_shape(shape s, bool quick, cublasHandle_t handle, double copy_gbs, FILE* csv, const cudaDeviceProp& device) {
  const int sms = device.multiProcessorCount;
  const char* fname = F == format::fp16 ? "fp16" : "bf16";
  if (s.n % tile_columns != 0 || s.k % group_size != 0 || s.k == 0 || s.n == 0) {
    std::fprintf(stderr, "shape %zu x %zu: this example needs N a positive multiple of %d and K of %zu\n", s.k, s.n,
                 tile_columns, group_size);
    return false;
  }
  const checkpoint c = random_checkpoint(s, F, static_cast<std::uint32_t>(s.k * 31 + s.n));
  const dq4::packed_matrix m = dq4::from_awq(c.qweight.data(), c.qzeros.data(), c.scales.data(), s.k, s.n, group_size, F);
  const std::size_t packed_bytes = m.weights.size() * 4 + m.zero_points.size() * 4 + m.scales.size() * 2;
  const std::size_t dense_bytes = s.k * s.n * 2;
  // Enough copies that one pass over the packed weights (and so over the larger dequantized ones) is
  // more than twice the 50 MB L2 of an H100.
  const int copies = quick ? 1 : static_cast<int>(std::max<std::size_t>(2, (256u << 20) / packed_bytes + 1));
  std::vector<device_layer> layers(static_cast<std::size_t>(copies));
  for (auto& l : layers) {
    l.weights = device_copy(m.weights);
    l.zeros = device_copy(m.zero_points);
    l.scales = device_copy(m.scales);
    check(cudaMalloc(&l.dequantized, dense_bytes), "cudaMalloc");
    check(cudaMemset(l.dequantized, 0xEE, dense_bytes), "cudaMemset");  // poison
    launch_dequantize<F>(l, s, sms, nullptr);
  }
  check(cudaDeviceSynchronize(), "dequantize");

  // Every dequantized value against the reference, bit for bit.
  std::vector<std::uint16_t> dense(s.k * s.n);
  check(cudaMemcpy(dense.data(), layers[0].dequantized, dense_bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  std::size_t bad_values = 0;
  for (std::size_t k = 0; k < s.k; ++k)
    for (std::size_t n = 0; n < s.n; ++n) bad_values += dense[k * s.n + n] != reference_weight<F>(m, k, n) ? 1 : 0;
  std::printf("%s K=%zu N=%zu: %zu of %zu dequantized values differ from the reference\n", fname, s.k, s.n, bad_values,
              dense.size());
  bool ok = bad_values == 0;
  std::vector<float> w(dense.size());
  for (std::size_t i = 0; i < dense.size(); ++i) w[i] = bits16_to_float(F, dense[i]);

  for (const int batch : {1, max_batch}) {
    gemv_plan plan = make_gemv_plan<F>(s, batch, device);
    const std::size_t wrong_placements = unit_vector_mismatches<F>(layers[0], s, batch, plan, dense, quick);
    std::printf("  batch %d: %zu outputs differ from the weight a unit-vector activation selects\n", batch, wrong_placements);
    ok = ok && wrong_placements == 0;

    // Activations in [-1, 1); the GEMV and cuBLAS.
    const std::vector<std::uint16_t> xh = random_activations(F, batch * s.k, 99);
    std::uint16_t* x = device_copy(xh);
    std::uint16_t *y = nullptr, *y_cublas = nullptr;
    check(cudaMalloc(&y, batch * s.n * 2), "cudaMalloc");
    check(cudaMalloc(&y_cublas, batch * s.n * 2), "cudaMalloc");
    check(cudaMemset(y, 0xEE, batch * s.n * 2), "cudaMemset");  // poison
    check(cudaMemset(y_cublas, 0xEE, batch * s.n * 2), "cudaMemset");
    launch_gemv<F>(layers[0], s, batch, x, y, plan, nullptr);
    cublas_gemv(handle, F, layers[0], s, batch, x, y_cublas);
    check(cudaDeviceSynchronize(), "gemv");
    std::vector<std::uint16_t> yh(batch * s.n), yc(batch * s.n);
    check(cudaMemcpy(yh.data(), y, yh.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
    check(cudaMemcpy(yc.data(), y_cublas, yc.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");

    // Host: y = sum_k x w in double from the reference weights (exact products; the double sum is
    // far inside the tolerance). Tolerance, from how the GEMV sums: the tensor core adds each k16
    // step's 16 exact products to its accumulator without IEEE rounding -- it aligns the 17 terms to
    // the largest, truncates them to its fp32 width and truncates the normalized sum (the model
    // measured by Fasi, Higham, Mikaitis and Pranesh, "Numerical behavior of NVIDIA tensor cores",
    // 2021). That loses less than 17 + 34 units of 2^-23 of the largest term, so less than
    // 51 * 2^-23 * S per step, S = sum_k |x w|; K / 16 steps give < 3.2 K 2^-23 S. The warps'
    // partial sums are then added in fp32 (at most K / 16 of them, 2^-24 S each). In all < 2^-21 K S.
    // The rounding to the 16-bit output adds half an ulp, at most 2^-11 |y| (fp16) or 2^-8 |y|
    // (bf16), plus the smallest subnormal. cuBLAS sums on tensor cores too: twice the bound between
    // the two. (The unit-vector test above is the exact one; this one checks the sums.)
    const double unit = F == format::fp16 ? 1.0 / 2048 : 1.0 / 256;
    std::size_t bad_outputs = 0, bad_vs_cublas = 0;
    for (int b = 0; b < batch; ++b) {
      std::vector<double> sum(s.n, 0.0), magnitude(s.n, 0.0);
      for (std::size_t k = 0; k < s.k; ++k) {
        const double xk = bits16_to_float(F, xh[b * s.k + k]);
        const float* row = &w[k * s.n];
        for (std::size_t n = 0; n < s.n; ++n) {
          sum[n] += xk * row[n];
          magnitude[n] += std::fabs(xk * row[n]);
        }
      }
      for (std::size_t n = 0; n < s.n; ++n) {
        const double tolerance = static_cast<double>(s.k) * magnitude[n] / 2097152.0 + unit * std::fabs(sum[n]) + 1e-7;
        const double ours = bits16_to_float(F, yh[b * s.n + n]), theirs = bits16_to_float(F, yc[b * s.n + n]);
        bad_outputs += !(std::fabs(ours - sum[n]) <= tolerance) ? 1 : 0;
        bad_vs_cublas += !(std::fabs(ours - theirs) <= 2 * tolerance) ? 1 : 0;
      }
    }
    ok = ok && bad_outputs == 0 && bad_vs_cublas == 0;
    std::printf("  batch %d: %zu of %zu outputs outside the tolerance against the host, %zu against cuBLAS\n", batch,
                bad_outputs, yh.size(), bad_vs_cublas);
    if (plan.chainable) {
      const std::size_t wrong_chained = chained_mismatches<F>(layers[0], s, batch, plan, x, yh);
      std::printf("  batch %d: %zu outputs of 4 chained calls differ from the calls one at a time\n", batch, wrong_chained);
      ok = ok && wrong_chained == 0;
    }

    if (!quick) {
      const auto layer = [&](int run) -> const device_layer& { return layers[static_cast<std::size_t>(run % copies)]; };
      // Each time: the median over 11 runs of 10 calls queued back to back (as the kernels of a decode
      // step run), weights rotated through the copies so that every call reads them from DRAM.
      const auto time_us = [](auto launch) { return dq4_support::median_us_back_to_back(11, 10, launch); };
      const float ours_us = time_us([&](int r) { launch_gemv<F>(layer(r), s, batch, x, y, plan, nullptr); });
      const float cublas_us = time_us([&](int r) { cublas_gemv(handle, F, layer(r), s, batch, x, y_cublas); });
      const float bulk_us = time_us([&](int r) { launch_dequantize<F>(layer(r), s, sms, nullptr); });
      // The same calls chained (sm_90+): each may start while the one before is still running.
      // cuBLAS runs without it, so this time is reported beside the ratio, not in it.
      const float chained_us =
          plan.chainable ? time_us([&](int r) { launch_gemv<F>(layer(r), s, batch, x, y, plan, nullptr, start::chained); }) : NAN;
      const double gemv_bytes = static_cast<double>(packed_bytes + batch * s.k * 2 + batch * s.n * 2);
      const double ours_gbs = gemv_bytes / (ours_us * 1e3), chained_gbs = gemv_bytes / (chained_us * 1e3);
      const double bulk_gbs = static_cast<double>(packed_bytes + dense_bytes) / (bulk_us * 1e3);
      std::printf("  batch %d: gemv %.2f us (%.0f GB/s, %.1f%% of copy), cuBLAS %.2f us: %.2fx faster; chained calls "
                  "%.2f us (%.1f%% of copy); bulk dequantize %.2f us (%.0f GB/s, %.1f%% of copy)\n",
                  batch, ours_us, ours_gbs, 100 * ours_gbs / copy_gbs, cublas_us, cublas_us / ours_us, chained_us,
                  100 * chained_gbs / copy_gbs, bulk_us, bulk_gbs, 100 * bulk_gbs / copy_gbs);
      if (csv != nullptr) {
        std::fprintf(csv, "%s,%s,%zu,%zu,%d,%.3f,%.3f,%.3f,%.1f,%.3f,%.1f,%.3f,%.1f,%.3f,%.3f,%.3f\n", device.name, fname, s.k,
                     s.n, batch, ours_us, cublas_us, cublas_us / ours_us, ours_gbs, ours_gbs / copy_gbs, copy_gbs, bulk_us,
                     bulk_gbs, bulk_gbs / copy_gbs, chained_us, chained_gbs / copy_gbs);
      }
    }
    check(cudaFree(x), "cudaFree");
    check(cudaFree(y), "cudaFree");
    check(cudaFree(y_cublas), "cudaFree");
    free_gemv_plan(plan);
  }
  for (auto& l : layers) {
    check(cudaFree(l.weights), "cudaFree");
    check(cudaFree(l.zeros), "cudaFree");
    check(cudaFree(l.scales), "cudaFree");
    check(cudaFree(l.dequantized), "cudaFree");
  }
  return ok;
}

// Device-to-device copy bandwidth (read + write), 1 GiB.
double copy_bandwidth_gbs() {
  const std::size_t bytes = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc");
  check(cudaMalloc(&b, bytes), "cudaMalloc");
  const float ms = median_ms(11, [&](int) { check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync"); });
  check(cudaFree(a), "cudaFree");
  check(cudaFree(b), "cudaFree");
  return 2.0 * static_cast<double>(bytes) / (ms * 1e6);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const char* csv_path = nullptr;
  shape only{0, 0};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (std::strcmp(argv[i], "--shape") == 0 && i + 2 < argc) {
      only.k = std::strtoull(argv[i + 1], nullptr, 10);
      only.n = std::strtoull(argv[i + 2], nullptr, 10);
      i += 2;
    } else {
      std::fprintf(stderr, "usage: awq_gemv [--quick] [--shape K N] [--csv results.csv]\n");
      return 2;
    }
  }
  std::FILE* csv = dq4_support::open_output(csv_path);  // a path that cannot be written stops the run first
  cudaDeviceProp prop{};  // bf16 tensor cores and cp.async: sm_80
  if (!dq4_support::device_at_least(80, "the GEMV example has nothing to run", prop)) return 0;
  cublasHandle_t handle;
  check(cublasCreate(&handle), "cublasCreate");
  const double copy_gbs = quick ? 1.0 : copy_bandwidth_gbs();
  if (csv != nullptr) {
    std::fprintf(csv, "device,format,k,n,batch,dq4_gemv_us,cublas_us,speedup,dq4_gbs,dq4_fraction_of_copy,copy_gbs,"
                      "bulk_dequantize_us,bulk_dequantize_gbs,bulk_fraction_of_copy,dq4_chained_us,dq4_chained_fraction_of_copy\n");
  }
  if (!quick) std::printf("%s: device-to-device copy %.0f GB/s (read + write)\n", prop.name, copy_gbs);
  std::vector<shape> shapes = quick ? std::vector<shape>{{1024, 2048}}
                                    : std::vector<shape>{{4096, 4096}, {4096, 14336}, {14336, 4096}, {8192, 28672}};
  if (only.k != 0) shapes = {only};
  bool ok = true;
  for (const shape s : shapes) {
    ok = run_shape<format::fp16>(s, quick, handle, copy_gbs, csv, prop) && ok;
    ok = run_shape<format::bf16>(s, quick, handle, copy_gbs, csv, prop) && ok;
  }
  dq4_support::close_output(csv, csv_path);
  check(cublasDestroy(handle), "cublasDestroy");
  std::printf(ok ? "OK\n" : "FAILED\n");
  return ok ? 0 : 1;
}
