// SPDX-License-Identifier: Apache-2.0
// Times the AWQ GEMV and bulk kernels of examples/awq_gemv against, in the same run: the read floor
// (a kernel that only reads the GEMV's bytes: weights, zero points and scales), cuBLAS on the
// dequantized 16-bit matrix, and a device-to-device copy (for the bulk kernel). Each time is the
// median over 11 runs of the time per call of 10 calls queued back to back (timing.cuh), with the
// weights rotated through more than 512 MB of copies so that every call reads them from DRAM. The
// correctness of the kernels is awq_gemv's job (run it first: benchmarks/run.sh does).
//
//   dq4_gemv_benchmark [--shape K N] [--csv results.csv]
#include <dq4/checkpoint.hpp>
#include <dq4/dq4.cuh>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "awq_gemv/launch.cuh"
#include "awq_gemv/test_layer.cuh"
#include "support/cuda_support.cuh"
#include "timing.cuh"

namespace {

using awq_gemv::device_layer;
using awq_gemv::scaling;
using awq_gemv::shape;
using awq_gemv::start;
using dq4::format;
using dq4_support::check;

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "cuBLAS error in %s: %d\n", what, static_cast<int>(status));
    std::exit(1);
  }
}

// The read floor: every 16-byte chunk of the three buffers (weights, zero points, scales) read once
// with ld.global.cg (L2 only, as the GEMV's copies), the three taken as one run of chunks so that
// each thread issues all its loads at once, four in flight per loop trip, in a grid-stride loop.
// The chunks are XORed together and the result stored only if it is a value no input makes
// likely, so that the loads cannot be dropped and nothing else is written.
struct read_ranges {
  const uint4* from[3];
  std::size_t chunks[3];
};

__device__ uint4 load_chunk(const read_ranges& r, std::size_t i) {
  if (i < r.chunks[0]) return __ldcg(r.from[0] + i);
  i -= r.chunks[0];
  if (i < r.chunks[1]) return __ldcg(r.from[1] + i);
  i -= r.chunks[1];
  return i < r.chunks[2] ? __ldcg(r.from[2] + i) : make_uint4(0, 0, 0, 0);
}

__global__ void read_floor_kernel(read_ranges r, unsigned* sink) {
  const std::size_t stride = std::size_t{gridDim.x} * blockDim.x, total = r.chunks[0] + r.chunks[1] + r.chunks[2];
  uint4 x = make_uint4(0, 0, 0, 0);
  for (std::size_t i = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x; i < total; i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int m = 0; m < 4; ++m) v[m] = load_chunk(r, i + m * stride);
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      x.x ^= v[m].x;
      x.y ^= v[m].y;
      x.z ^= v[m].z;
      x.w ^= v[m].w;
    }
  }
  if ((x.x ^ x.y ^ x.z ^ x.w) == 0x9E3779B9u) *sink = x.x;
}

read_ranges ranges_of(const device_layer& l, shape s) {
  const std::size_t words = s.k * s.n / 8, zero_words = s.k / awq_gemv::group_size * s.n / 8;
  return {{reinterpret_cast<const uint4*>(l.weights), reinterpret_cast<const uint4*>(l.zeros),
           reinterpret_cast<const uint4*>(l.scales)},
          {words / 4, zero_words / 4, zero_words * 8 * 2 / 16}};
}

struct grid {
  unsigned blocks, threads;
};

// The floor of one shape: the best of 12 grids (1, 2, 4 or 8 blocks per SM of 128, 256 or 512
// threads), each timed as the GEMV is.
template <class Layer>
float read_floor_us(Layer layer, shape s, int sms, grid& best, unsigned* sink) {
  float best_us = INFINITY;
  for (const unsigned per_sm : {1u, 2u, 4u, 8u}) {
    for (const unsigned threads : {128u, 256u, 512u}) {
      const grid g{per_sm * static_cast<unsigned>(sms), threads};
      const float us = dq4_bench::median_us_back_to_back(11, 10, [&](int r) {
        read_floor_kernel<<<g.blocks, g.threads>>>(ranges_of(layer(r), s), sink);
        check(cudaGetLastError(), "read_floor_kernel");
      });
      if (us < best_us) {
        best_us = us;
        best = g;
      }
    }
  }
  return best_us;
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

// Device-to-device copy bandwidth (read + write), 1 GiB.
double copy_bandwidth_gbs() {
  const std::size_t bytes = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc");
  check(cudaMalloc(&b, bytes), "cudaMalloc");
  const float ms = dq4_support::median_ms(11, [&](int) { check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync"); });
  check(cudaFree(a), "cudaFree");
  check(cudaFree(b), "cudaFree");
  return 2.0 * static_cast<double>(bytes) / (ms * 1e6);
}

struct context {
  cublasHandle_t handle;
  cudaDeviceProp device;
  double copy_gbs;
  std::FILE* csv;
  unsigned* sink;
};

// One shape in one format: the floor, then for 1 and 8 tokens the GEMV (both scalings, and chained),
// cuBLAS, and the bulk kernel.
template <format F>
void time_shape(shape s, const context& c) {
  const char* fname = F == format::fp16 ? "fp16" : "bf16";
  const int sms = c.device.multiProcessorCount;
  const dq4::packed_matrix m = awq_gemv::random_layer(s, F, static_cast<std::uint32_t>(s.k * 31 + s.n));
  const std::size_t packed_bytes = m.weights.size() * 4 + m.zero_points.size() * 4 + m.scales.size() * 2;
  const std::size_t dense_bytes = s.k * s.n * 2;
  const int copies = static_cast<int>(std::max<std::size_t>(2, (512u << 20) / packed_bytes + 1));
  std::vector<device_layer> layers;
  for (int i = 0; i < copies; ++i) {
    layers.push_back(awq_gemv::upload(m));
    awq_gemv::launch_dequantize<F>(layers.back(), s, sms, nullptr);  // cuBLAS multiplies these
  }
  check(cudaDeviceSynchronize(), "dequantize");
  const auto layer = [&](int run) -> const device_layer& { return layers[static_cast<std::size_t>(run % copies)]; };
  const auto time_us = [](auto launch) { return dq4_bench::median_us_back_to_back(11, 10, launch); };
  grid floor_grid{};
  const float floor_us = read_floor_us(layer, s, sms, floor_grid, c.sink);
  const float bulk_us = time_us([&](int r) { awq_gemv::launch_dequantize<F>(layer(r), s, sms, nullptr); });
  const double bulk_fraction = static_cast<double>(packed_bytes + dense_bytes) / (bulk_us * 1e3) / c.copy_gbs;
  // A device-to-device copy of the bulk kernel's traffic (half read, half written), timed the same
  // way between the layers' dequantized matrices: what a copy of this size reaches.
  const std::size_t same_traffic = (packed_bytes + dense_bytes) / 2;
  const float same_copy_us = time_us([&](int r) {
    check(cudaMemcpyAsync(layer(r + 1).dequantized, layer(r).dequantized, same_traffic, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
  });
  const double same_copy_fraction = 2.0 * static_cast<double>(same_traffic) / (same_copy_us * 1e3) / c.copy_gbs;
  for (const int batch : {1, 8}) {
    const std::vector<std::uint16_t> xh = awq_gemv::random_activations(F, batch * s.k, 99);
    std::uint16_t* x = awq_gemv::device_copy(xh);
    std::uint16_t* y = nullptr;
    check(cudaMalloc(&y, batch * s.n * 2), "cudaMalloc");
    awq_gemv::gemv_plan after = awq_gemv::make_gemv_plan<F, scaling::after_mma>(s, batch, c.device);
    awq_gemv::gemv_plan before = awq_gemv::make_gemv_plan<F, scaling::before_mma>(s, batch, c.device);
    const float dq4_us = time_us([&](int r) { awq_gemv::launch_gemv<F, scaling::after_mma>(layer(r), x, y, after, nullptr); });
    const float before_us = time_us([&](int r) { awq_gemv::launch_gemv<F, scaling::before_mma>(layer(r), x, y, before, nullptr); });
    const float chained_us = after.chainable ? time_us([&](int r) {
      awq_gemv::launch_gemv<F, scaling::after_mma>(layer(r), x, y, after, nullptr, start::chained);
    })
                                             : NAN;
    const float cublas_us = time_us([&](int r) { cublas_gemv(c.handle, F, layer(r), s, batch, x, y); });
    std::printf("%s K=%zu N=%zu batch %d: floor %.2f us (%u x %u), dq4 %.2f us (%.2fx the floor; scaled before the MMA "
                "%.2f us), chained %.2f us, cuBLAS %.2f us; bulk %.2f us (%.1f%% of copy; a copy of its traffic %.1f%%)\n",
                fname, s.k, s.n, batch, floor_us, floor_grid.blocks, floor_grid.threads, dq4_us, dq4_us / floor_us, before_us,
                chained_us, cublas_us, bulk_us, 100 * bulk_fraction, 100 * same_copy_fraction);
    if (c.csv != nullptr) {
      std::fprintf(c.csv, "%s,%s,%zu,%zu,%d,%.3f,%u,%u,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.4f,%.4f,%.1f\n", c.device.name, fname,
                   s.k, s.n, batch, floor_us, floor_grid.blocks, floor_grid.threads, dq4_us, dq4_us / floor_us, before_us,
                   chained_us, cublas_us, bulk_us, bulk_fraction, same_copy_fraction, c.copy_gbs);
    }
    awq_gemv::free_gemv_plan(after);
    awq_gemv::free_gemv_plan(before);
    check(cudaFree(x), "cudaFree");
    check(cudaFree(y), "cudaFree");
  }
  for (auto& l : layers) awq_gemv::free_layer(l);
}

}  // namespace

int main(int argc, char** argv) {
  const char* csv_path = nullptr;
  std::vector<shape> shapes = {{4096, 4096}, {4096, 14336}, {14336, 4096}, {8192, 8192}, {8192, 28672}, {28672, 8192}};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (std::strcmp(argv[i], "--shape") == 0 && i + 2 < argc) {
      shapes = {{std::strtoull(argv[i + 1], nullptr, 10), std::strtoull(argv[i + 2], nullptr, 10)}};
      i += 2;
    } else {
      std::fprintf(stderr, "usage: dq4_gemv_benchmark [--shape K N] [--csv results.csv]\n");
      return 2;
    }
  }
  for (const shape s : shapes) {
    const char* error = awq_gemv::gemv_shape_error(s, 8);
    if (error != nullptr) {
      std::fprintf(stderr, "shape %zu x %zu: %s\n", s.k, s.n, error);
      return 2;
    }
  }
  context c{};
  c.csv = dq4_support::open_output(csv_path);
  if (!dq4_support::device_at_least(80, "the GEMV benchmark has nothing to time", c.device)) return 0;
  check(cublasCreate(&c.handle), "cublasCreate");
  check(cudaMalloc(&c.sink, sizeof(unsigned)), "cudaMalloc");
  c.copy_gbs = copy_bandwidth_gbs();
  std::printf("%s: device-to-device copy %.0f GB/s (read + write)\n", c.device.name, c.copy_gbs);
  if (c.csv != nullptr) {
    std::fprintf(c.csv, "device,format,k,n,batch,floor_us,floor_blocks,floor_threads,dq4_us,dq4_vs_floor,dq4_before_mma_us,"
                        "dq4_chained_us,cublas_us,bulk_us,bulk_fraction_of_copy,same_traffic_copy_fraction,copy_gbs\n");
  }
  for (const shape s : shapes) {
    time_shape<format::fp16>(s, c);
    time_shape<format::bf16>(s, c);
  }
  check(cudaFree(c.sink), "cudaFree");
  check(cublasDestroy(c.handle), "cublasDestroy");
  dq4_support::close_output(c.csv, csv_path);
  return 0;
}
