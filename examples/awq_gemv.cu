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
// so that they come from DRAM.
//
//   awq_gemv [--quick] [--csv results.csv]
//     --quick: one small shape, correctness only (the CTest run)
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
#include <string>
#include <vector>

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
// Kernels. A GEMV thread owns Words consecutive words of a row (8 * Words columns); lane l of a warp
// takes words Words*l .. Words*l + Words-1 of the warp's slice, so a warp reads 128 * Words
// contiguous bytes per row. Words = 4 (one 128-bit load) for one token; 1 for a batch of 8, whose
// 8 x 8 fp32 accumulators per thread fill the registers as 8 x 32 would not.
// ------------------------------------------------------------------------------------------------

constexpr int warps_per_block = 8;

template <int Batch>
constexpr int words_per_thread = Batch <= 2 ? 4 : 1;
template <int Batch>
constexpr int columns_per_warp = 32 * 8 * words_per_thread<Batch>;

template <format F>
using value_type = std::conditional_t<F == format::fp16, __half, __nv_bfloat16>;

// The two values of a 16-bit register as floats (exact).
template <format F>
__device__ float2 to_float2(std::uint32_t reg) {
  if constexpr (F == format::fp16) {
    __half2 h;
    std::memcpy(&h, &reg, sizeof h);
    return __half22float2(h);
  } else {
    return make_float2(__uint_as_float(reg << 16), __uint_as_float(reg & 0xFFFF0000u));
  }
}

// The group's registers for one word: zero points prepared once, scales loaded as a fragment.
template <format F>
struct word_group {
  dq4::zero_point<F, dq4::order::interleaved> zero;
  dq4::fragment<F, 8> scales;
};

template <format F>
__device__ word_group<F> load_group(const std::uint32_t* zeros, const uint4* scales, std::size_t word) {
  word_group<F> g;
  g.zero = dq4::prepare_zeros<F, dq4::zeros::awq, dq4::order::interleaved>(zeros[word]);
  const uint4 s = scales[word];  // eight 16-bit scales, columns 8 word .. 8 word + 7
  g.scales.regs[0] = s.x;
  g.scales.regs[1] = s.y;
  g.scales.regs[2] = s.z;
  g.scales.regs[3] = s.w;
  return g;
}

template <int Words>
__device__ void load_words(const std::uint32_t* p, std::uint32_t (&w)[Words]) {
  if constexpr (Words == 4) {
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    w[0] = v.x;
    w[1] = v.y;
    w[2] = v.z;
    w[3] = v.w;
  } else {
    for (int i = 0; i < Words; ++i) w[i] = p[i];
  }
}

// y_acc[b][n] += sum over this block's rows k of x[b][k] * W[k][n], W dequantized exactly to F and
// multiplied and summed in fp32. Grid: (N / columns_per_warp, splits of K); block y takes groups
// [y * groups_per_block, (y + 1) * groups_per_block); in each group, warp w takes rows 16w..16w+15.
// The warps' partial sums are added in shared memory, then once per column into y_acc (fp32
// atomics; y_acc starts at zero): the fewer splits, the fewer atomics.
template <format F, int Batch>
__global__ void __launch_bounds__(32 * warps_per_block)
    gemv_kernel(const std::uint32_t* __restrict__ weights, const std::uint32_t* __restrict__ zeros,
                const uint4* __restrict__ scales, const value_type<F>* __restrict__ x, std::size_t rows,
                std::size_t cols, std::size_t groups_per_block, float* __restrict__ y_acc) {
  constexpr int words = words_per_thread<Batch>, columns = 8 * words, warp_columns = columns_per_warp<Batch>;
  constexpr int rows_per_warp = group_size / warps_per_block;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const std::size_t words_per_row = cols / 8;
  const std::size_t first_word = blockIdx.x * (warp_columns / 8) + std::size_t{words} * lane;
  const std::size_t first_group = blockIdx.y * groups_per_block;
  const std::size_t end_group = first_group + groups_per_block < rows / group_size ? first_group + groups_per_block : rows / group_size;

  float acc[Batch][columns] = {};
  for (std::size_t group = first_group; group < end_group; ++group) {
    word_group<F> g[words];
#pragma unroll
    for (int i = 0; i < words; ++i) g[i] = load_group<F>(zeros, scales, group * words_per_row + first_word + i);
    const std::size_t first_row = group * group_size + rows_per_warp * warp;
#pragma unroll 8
    for (int r = 0; r < rows_per_warp; ++r) {
      const std::size_t k = first_row + r;
    std::uint32_t w[words];
    load_words<words>(weights + k * words_per_row + first_word, w);
    float xk[Batch];
#pragma unroll
    for (int b = 0; b < Batch; ++b) xk[b] = static_cast<float>(x[b * rows + k]);
#pragma unroll
    for (int i = 0; i < words; ++i) {
      const dq4::fragment<F, 8> v = dq4::dequantize<F, dq4::order::interleaved>(w[i], g[i].zero, g[i].scales);
#pragma unroll
      for (int reg = 0; reg < 4; ++reg) {
        const float2 pair = to_float2<F>(v.regs[reg]);
#pragma unroll
        for (int b = 0; b < Batch; ++b) {
          acc[b][8 * i + 2 * reg] = fmaf(xk[b], pair.x, acc[b][8 * i + 2 * reg]);
          acc[b][8 * i + 2 * reg + 1] = fmaf(xk[b], pair.y, acc[b][8 * i + 2 * reg + 1]);
        }
      }
    }
    }
  }

  // Sum the eight warps, one batch row at a time.
  __shared__ float partial[warps_per_block][warp_columns];
  for (int b = 0; b < Batch; ++b) {
#pragma unroll
    for (int c = 0; c < columns; ++c) partial[warp][columns * lane + c] = acc[b][c];
    __syncthreads();
    for (int c = threadIdx.x; c < warp_columns; c += blockDim.x) {
      float sum = 0;
#pragma unroll
      for (int w = 0; w < warps_per_block; ++w) sum += partial[w][c];
      atomicAdd(&y_acc[b * cols + blockIdx.x * warp_columns + c], sum);
    }
    __syncthreads();
  }
}

template <format F>
__global__ void finish_kernel(const float* __restrict__ y_acc, std::size_t count, value_type<F>* __restrict__ y) {
  const std::size_t i = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i < count) y[i] = static_cast<value_type<F>>(y_acc[i]);
}

// The bulk path: W dequantized to F, row-major [K][N]. A warp takes a tile of 4 rows (of one group)
// by 32 words: lane l takes word column 32t + l of the 4 rows, so it prepares its zero points and
// loads its scales once for 4 words, each load instruction reads 128 contiguous bytes and each 16-byte
// store instruction writes 512 contiguous bytes.
template <format F>
__global__ void dequantize_kernel(const std::uint32_t* __restrict__ weights, const std::uint32_t* __restrict__ zeros,
                                  const uint4* __restrict__ scales, std::size_t rows, std::size_t cols,
                                  uint4* __restrict__ out) {
  constexpr int tile_rows = 4;  // divides the group size
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
    const word_group<F> g = load_group<F>(zeros, scales, (k0 / group_size) * words_per_row + c);
#pragma unroll
    for (int i = 0; i < tile_rows; ++i) {
      const dq4::fragment<F, 8> v = dq4::dequantize<F, dq4::order::interleaved>(w[i], g.zero, g.scales);
      out[(k0 + i) * words_per_row + c] = make_uint4(v.regs[0], v.regs[1], v.regs[2], v.regs[3]);
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

template <format F>
void launch_gemv(const device_layer& l, shape s, int batch, const void* x, float* y_acc, void* y, cudaStream_t stream) {
  check(cudaMemsetAsync(y_acc, 0, batch * s.n * sizeof(float), stream), "cudaMemsetAsync");
  const auto* sc = reinterpret_cast<const uint4*>(l.scales);
  const auto* xv = static_cast<const value_type<F>*>(x);
  // Split K into as few parts as give about four blocks per SM in all (132 SMs on an H100).
  const std::size_t groups = s.k / group_size;
  const auto launch = [&](auto kernel, int warp_columns) {
    const std::size_t column_blocks = s.n / static_cast<std::size_t>(warp_columns);
    const std::size_t wanted_splits = std::min(groups, std::max<std::size_t>(1, (4 * 132 + column_blocks - 1) / column_blocks));
    const std::size_t per_block = (groups + wanted_splits - 1) / wanted_splits;
    const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>((groups + per_block - 1) / per_block));
    kernel<<<grid, 32 * warps_per_block, 0, stream>>>(l.weights, l.zeros, sc, xv, s.k, s.n, per_block, y_acc);
  };
  if (batch == 1) {
    launch(gemv_kernel<F, 1>, columns_per_warp<1>);
  } else {
    launch(gemv_kernel<F, 8>, columns_per_warp<8>);
  }
  check(cudaGetLastError(), "gemv_kernel");
  const std::size_t count = batch * s.n;
  finish_kernel<F><<<static_cast<unsigned>((count + 255) / 256), 256, 0, stream>>>(y_acc, count, static_cast<value_type<F>*>(y));
  check(cudaGetLastError(), "finish_kernel");
}

template <format F>
void launch_dequantize(const device_layer& l, shape s, cudaStream_t stream) {
  dequantize_kernel<F><<<132 * 16, 256, 0, stream>>>(l.weights, l.zeros, reinterpret_cast<const uint4*>(l.scales), s.k,
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

// One layer shape in one format: every dequantized value, then the GEMV for each batch size.
template <format F>
bool run_shape(shape s, bool quick, cublasHandle_t handle, double copy_gbs, FILE* csv, const char* device_name) {
  const char* fname = F == format::fp16 ? "fp16" : "bf16";
  if (s.n % columns_per_warp<1> != 0 || s.k % group_size != 0) {
    std::fprintf(stderr, "shape %zu x %zu: this example needs N a multiple of %d and K of %zu\n", s.k, s.n,
                 columns_per_warp<1>, group_size);
    return false;
  }
  const checkpoint c = random_checkpoint(s, F, static_cast<std::uint32_t>(s.k * 31 + s.n));
  const dq4::packed_matrix m = dq4::from_awq(c.qweight.data(), c.qzeros.data(), c.scales.data(), s.k, s.n, group_size, F);
  const std::size_t packed_bytes = m.weights.size() * 4 + m.zero_points.size() * 4 + m.scales.size() * 2;
  const std::size_t dense_bytes = s.k * s.n * 2;
  // Enough copies that one pass over them is more than twice the 50 MB L2 of an H100.
  const int copies = quick ? 1 : static_cast<int>(std::max<std::size_t>(2, (256u << 20) / dense_bytes + 1));
  std::vector<device_layer> layers(static_cast<std::size_t>(copies));
  for (auto& l : layers) {
    l.weights = device_copy(m.weights);
    l.zeros = device_copy(m.zero_points);
    l.scales = device_copy(m.scales);
    check(cudaMalloc(&l.dequantized, dense_bytes), "cudaMalloc");
    check(cudaMemset(l.dequantized, 0xEE, dense_bytes), "cudaMemset");  // poison
    launch_dequantize<F>(l, s, nullptr);
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

  for (const int batch : {1, 8}) {
    // Activations in [-1, 1); the GEMV and cuBLAS.
    std::vector<std::uint16_t> xh(batch * s.k);
    std::uint32_t state = 99;
    for (auto& v : xh) {
      state = state * 1664525u + 1013904223u;
      const float f = static_cast<float>(state >> 8) / 8388608.0f - 1.0f;
      v = F == format::fp16 ? __half_as_ushort(__float2half_rn(f)) : __bfloat16_as_ushort(__float2bfloat16_rn(f));
    }
    std::uint16_t* x = device_copy(xh);
    float* y_acc = nullptr;
    std::uint16_t *y = nullptr, *y_cublas = nullptr;
    check(cudaMalloc(&y_acc, batch * s.n * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(&y, batch * s.n * 2), "cudaMalloc");
    check(cudaMalloc(&y_cublas, batch * s.n * 2), "cudaMalloc");
    check(cudaMemset(y, 0xEE, batch * s.n * 2), "cudaMemset");  // poison
    check(cudaMemset(y_cublas, 0xEE, batch * s.n * 2), "cudaMemset");
    launch_gemv<F>(layers[0], s, batch, x, y_acc, y, nullptr);
    cublas_gemv(handle, F, layers[0], s, batch, x, y_cublas);
    check(cudaDeviceSynchronize(), "gemv");
    std::vector<std::uint16_t> yh(batch * s.n), yc(batch * s.n);
    check(cudaMemcpy(yh.data(), y, yh.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
    check(cudaMemcpy(yc.data(), y_cublas, yc.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");

    // Host: y = sum_k x w in double from the reference weights (exact products; the double sum is
    // far inside the tolerance). Tolerance: fp32 accumulation of K terms in any order is within
    // K * 2^-24 * sum |x w| of the exact sum (the bound for recursive summation); the final rounding
    // to the 16-bit output adds half an ulp, at most 2^-11 |y| (fp16) or 2^-8 |y| (bf16), plus the
    // smallest subnormal. Against cuBLAS (same products, its own order): twice that.
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
        const double tolerance = static_cast<double>(s.k) * magnitude[n] / 16777216.0 + unit * std::fabs(sum[n]) + 1e-7;
        const double ours = bits16_to_float(F, yh[b * s.n + n]), theirs = bits16_to_float(F, yc[b * s.n + n]);
        bad_outputs += !(std::fabs(ours - sum[n]) <= tolerance) ? 1 : 0;
        bad_vs_cublas += !(std::fabs(ours - theirs) <= 2 * tolerance) ? 1 : 0;
      }
    }
    ok = ok && bad_outputs == 0 && bad_vs_cublas == 0;
    std::printf("  batch %d: %zu of %zu outputs outside the tolerance against the host, %zu against cuBLAS\n", batch,
                bad_outputs, yh.size(), bad_vs_cublas);

    if (!quick) {
      const auto layer = [&](int run) -> const device_layer& { return layers[static_cast<std::size_t>(run % copies)]; };
      const float ours_ms = median_ms(21, [&](int r) { launch_gemv<F>(layer(r), s, batch, x, y_acc, y, nullptr); });
      const float cublas_ms = median_ms(21, [&](int r) { cublas_gemv(handle, F, layer(r), s, batch, x, y_cublas); });
      const float bulk_ms = median_ms(21, [&](int r) { launch_dequantize<F>(layer(r), s, nullptr); });
      const double gemv_bytes = static_cast<double>(packed_bytes + batch * s.k * 2 + batch * s.n * 2);
      const double ours_gbs = gemv_bytes / (ours_ms * 1e6);
      const double bulk_gbs = static_cast<double>(packed_bytes + dense_bytes) / (bulk_ms * 1e6);
      std::printf("  batch %d: gemv %.2f us (%.0f GB/s, %.1f%% of copy), cuBLAS %.2f us: %.2fx faster; bulk dequantize "
                  "%.2f us (%.0f GB/s, %.1f%% of copy)\n",
                  batch, ours_ms * 1e3, ours_gbs, 100 * ours_gbs / copy_gbs, cublas_ms * 1e3, cublas_ms / ours_ms,
                  bulk_ms * 1e3, bulk_gbs, 100 * bulk_gbs / copy_gbs);
      if (csv != nullptr) {
        std::fprintf(csv, "%s,%s,%zu,%zu,%d,%.3f,%.3f,%.3f,%.1f,%.3f,%.1f,%.3f,%.1f,%.3f\n", device_name, fname, s.k, s.n,
                     batch, ours_ms * 1e3, cublas_ms * 1e3, cublas_ms / ours_ms, ours_gbs, ours_gbs / copy_gbs, copy_gbs,
                     bulk_ms * 1e3, bulk_gbs, bulk_gbs / copy_gbs);
      }
    }
    check(cudaFree(x), "cudaFree");
    check(cudaFree(y_acc), "cudaFree");
    check(cudaFree(y), "cudaFree");
    check(cudaFree(y_cublas), "cudaFree");
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
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
      csv_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: awq_gemv [--quick] [--csv results.csv]\n");
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: the GEMV example needs one; nothing to run here\n");
    return 0;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  if (prop.major * 10 + prop.minor < 80) {
    std::printf("%s is sm_%d%d: this example uses bf16 arithmetic and needs sm_80 or newer\n", prop.name, prop.major, prop.minor);
    return 0;
  }
  cublasHandle_t handle;
  check(cublasCreate(&handle), "cublasCreate");
  const double copy_gbs = quick ? 1.0 : copy_bandwidth_gbs();
  FILE* csv = csv_path != nullptr ? std::fopen(csv_path, "w") : nullptr;
  if (csv != nullptr) {
    std::fprintf(csv, "device,format,k,n,batch,dq4_gemv_us,cublas_us,speedup,dq4_gbs,dq4_fraction_of_copy,copy_gbs,"
                      "bulk_dequantize_us,bulk_dequantize_gbs,bulk_fraction_of_copy\n");
  }
  if (!quick) std::printf("%s: device-to-device copy %.0f GB/s (read + write)\n", prop.name, copy_gbs);
  const std::vector<shape> shapes = quick ? std::vector<shape>{{1024, 2048}}
                                          : std::vector<shape>{{4096, 4096}, {4096, 14336}, {14336, 4096}, {8192, 28672}};
  bool ok = true;
  for (const shape s : shapes) {
    ok = run_shape<format::fp16>(s, quick, handle, copy_gbs, csv, prop.name) && ok;
    ok = run_shape<format::bf16>(s, quick, handle, copy_gbs, csv, prop.name) && ok;
  }
  if (csv != nullptr) std::fclose(csv);
  check(cublasDestroy(handle), "cublasDestroy");
  std::printf(ok ? "OK\n" : "FAILED\n");
  return ok ? 0 : 1;
}
