// SPDX-License-Identifier: Apache-2.0
// The host side of the AWQ GEMV and bulk kernels: a layer on the device, the GEMV's plan and
// workspace, and the launch functions, which check their arguments before every launch (a shape they
// cannot do, a null or misaligned pointer, a plan made for another shape stop the program with a
// message saying what is needed).
#pragma once

#include <dq4/dq4.cuh>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "bulk_kernel.cuh"
#include "gemv_kernel.cuh"
#include "plan.hpp"
#include "support/cuda_support.cuh"

namespace awq_gemv {

/// One layer on the device as dq4::from_awq leaves it: packed weights [K][N / 8], zero points
/// [K / 128][N / 8], 16-bit scales [K / 128][N]; and room for its dequantized matrix [K][N].
struct device_layer {
  std::uint32_t* weights = nullptr;
  std::uint32_t* zeros = nullptr;
  std::uint16_t* scales = nullptr;
  void* dequantized = nullptr;
};

/// How a call starts: after the kernel before it in the stream has ended (as any launch), or
/// chained to it (programmatic dependent launch, sm_90+: see start_after_previous_kernel).
enum class start { after_previous, chained };

/// The GEMV's grid and workspace for one shape, batch size, format and scaling.
struct gemv_plan {
  shape size{};
  int batch = 0;
  gemv_split split{};
  float* slots = nullptr;
  unsigned* arrivals = nullptr;
  bool chainable = false;  // the device has programmatic dependent launch (sm_90+)
};

namespace detail {

inline void require(bool condition, const char* function, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "%s: %s\n", function, what);
    std::exit(2);
  }
}

inline bool aligned(const void* p, std::size_t bytes) {
  return p != nullptr && reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

template <format F, scaling S>
const void* gemv_kernel_for(int batch) {
  return batch == 1 ? reinterpret_cast<const void*>(gemv_kernel<F, 1, S>)
                    : reinterpret_cast<const void*>(gemv_kernel<F, max_batch, S>);
}

}  // namespace detail

/// The plan of the GEMV for `size` and `batch` on `device`: as many blocks as are resident at once
/// (plan_gemv_split), and a workspace that the kernel leaves ready for the next call.
template <format F, scaling S = scaling::after_mma>
gemv_plan make_gemv_plan(shape size, int batch, const cudaDeviceProp& device) {
  const char* error = gemv_shape_error(size, batch);
  detail::require(error == nullptr, "make_gemv_plan", error);
  const void* kernel = detail::gemv_kernel_for<F, S>(batch);
  dq4_support::check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes<S>), "cudaFuncSetAttribute");
  int per_sm = 0;
  dq4_support::check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 32 * warps_per_block, shared_bytes<S>),
                "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  gemv_plan p;
  p.size = size;
  p.batch = batch;
  p.split = plan_gemv_split(size, batch, static_cast<std::size_t>(device.multiProcessorCount) * static_cast<std::size_t>(per_sm));
  p.chainable = device.major >= 9;
  dq4_support::check(cudaMalloc(&p.slots, slot_floats(p.split, size, batch) * sizeof(float)), "cudaMalloc");
  dq4_support::check(cudaMalloc(&p.arrivals, size.n / tile_columns * sizeof(unsigned)), "cudaMalloc");
  dq4_support::check(cudaMemset(p.arrivals, 0, size.n / tile_columns * sizeof(unsigned)), "cudaMemset");  // once
  return p;
}

inline void free_gemv_plan(gemv_plan& p) {
  dq4_support::check(cudaFree(p.slots), "cudaFree");
  dq4_support::check(cudaFree(p.arrivals), "cudaFree");
  p = {};
}

/// y [batch][N] = x [batch][K] W, both 16-bit of format F, with the plan made for this shape, batch,
/// F and S (the workspace is the plan's: calls with one plan must run one after another, as calls
/// in one stream do).
template <format F, scaling S = scaling::after_mma>
void launch_gemv(const device_layer& l, const void* x, void* y, const gemv_plan& p, cudaStream_t stream,
                 start how = start::after_previous) {
  constexpr const char* me = "launch_gemv";
  const char* error = gemv_shape_error(p.size, p.batch);
  detail::require(error == nullptr, me, error);
  detail::require(p.slots != nullptr && p.arrivals != nullptr, me, "the plan has no workspace: make it with make_gemv_plan");
  detail::require(detail::aligned(l.weights, 16) && detail::aligned(l.zeros, 16) && detail::aligned(l.scales, 16), me,
                  "weights, zero points and scales must be non-null and 16-byte aligned");
  detail::require(detail::aligned(x, 16) && detail::aligned(y, 2), me,
                  "x must be non-null and 16-byte aligned, y non-null and 2-byte aligned");
  detail::require(how == start::after_previous || p.chainable, me, "chained calls need programmatic dependent launch (sm_90 or newer)");
  const gemv_args args{l.weights, l.zeros, l.scales, x, y, p.slots, p.arrivals, p.size, p.split, p.batch, how == start::chained};
  cudaLaunchAttribute chained{};
  chained.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  chained.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = p.split.blocks;
  config.blockDim = 32 * warps_per_block;
  config.dynamicSmemBytes = shared_bytes<S>;
  config.stream = stream;
  config.attrs = how == start::chained ? &chained : nullptr;
  config.numAttrs = how == start::chained ? 1 : 0;
  void* kernel_args[] = {const_cast<gemv_args*>(&args)};
  dq4_support::check(cudaLaunchKernelExC(&config, detail::gemv_kernel_for<F, S>(p.batch), kernel_args), "gemv_kernel launch");
  dq4_support::check(cudaGetLastError(), "gemv_kernel");
}

/// The layer's dequantized matrix, [K][N] of format F, into l.dequantized: 32 blocks of 256 threads
/// per SM in a grid-stride loop over the tiles.
template <format F>
void launch_dequantize(const device_layer& l, shape size, int sms, cudaStream_t stream) {
  constexpr const char* me = "launch_dequantize";
  const char* error = bulk_shape_error(size);
  detail::require(error == nullptr, me, error);
  detail::require(sms > 0, me, "the number of SMs must be positive");
  detail::require(detail::aligned(l.weights, 4) && detail::aligned(l.zeros, 4) && detail::aligned(l.scales, 16) &&
                      detail::aligned(l.dequantized, 16),
                  me, "weights and zero points must be non-null and 4-byte aligned, scales and the output 16-byte aligned");
  dequantize_kernel<F><<<static_cast<unsigned>(sms * 32), 256, 0, stream>>>(
      l.weights, l.zeros, reinterpret_cast<const uint4*>(l.scales), size, static_cast<uint4*>(l.dequantized));
  dq4_support::check(cudaGetLastError(), "dequantize_kernel");
}

}  // namespace awq_gemv
