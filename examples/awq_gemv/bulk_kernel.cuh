// SPDX-License-Identifier: Apache-2.0
// The bulk path of an AWQ layer (prefill, which hands the matrix to a GEMM): W dequantized to fp16
// or bf16, row-major [K][N], every value (q - z) * s rounded once, the reference's bits.
#pragma once

#include <dq4/dq4.cuh>

#include <cstddef>
#include <cstdint>

#include "plan.hpp"

namespace awq_gemv {

// A warp takes a tile of 8 rows (of one group) by 32 words: lane l takes word column 32 t + l of the
// 8 rows, so it prepares its zero points and loads its scales once for 8 words, each load
// instruction reads 128 contiguous bytes and each 16-byte store instruction writes 512 contiguous
// bytes, streaming (st.global.cs: the output is not read again by this kernel). Where N / 8 is not
// a multiple of 32 the last tile of each row is narrower: its lanes past the row's end do nothing.
template <dq4::format F>
__global__ void dequantize_kernel(const std::uint32_t* __restrict__ weights, const std::uint32_t* __restrict__ zeros,
                                  const uint4* __restrict__ scales, shape size, uint4* __restrict__ out) {
  constexpr int tile_rows = 8;  // divides the group size
  const std::size_t words_per_row = size.n / 8, tiles_per_row = (words_per_row + 31) / 32;
  const std::size_t tiles = size.k / tile_rows * tiles_per_row;
  const std::size_t lane = threadIdx.x % 32;
  const std::size_t warp = (std::size_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const std::size_t warps = std::size_t{gridDim.x} * blockDim.x / 32;
  for (std::size_t t = warp; t < tiles; t += warps) {
    const std::size_t k0 = t / tiles_per_row * tile_rows, c = t % tiles_per_row * 32 + lane;
    if (c >= words_per_row) continue;
    std::uint32_t w[tile_rows];
#pragma unroll
    for (int i = 0; i < tile_rows; ++i) w[i] = weights[(k0 + i) * words_per_row + c];  // all loads first
    const std::size_t group_word = k0 / group_size * words_per_row + c;
    const auto zero = dq4::prepare_zeros<F, dq4::zeros::awq, dq4::order::interleaved>(zeros[group_word]);
    const uint4 s = scales[group_word];  // eight 16-bit scales, columns 8c .. 8c + 7
    const dq4::fragment<F, 8> column_scales{{s.x, s.y, s.z, s.w}};
#pragma unroll
    for (int i = 0; i < tile_rows; ++i) {
      const dq4::fragment<F, 8> v = dq4::dequantize<F, dq4::order::interleaved>(w[i], zero, column_scales);
      __stcs(out + (k0 + i) * words_per_row + c, make_uint4(v.regs[0], v.regs[1], v.regs[2], v.regs[3]));
    }
  }
}

}  // namespace awq_gemv
