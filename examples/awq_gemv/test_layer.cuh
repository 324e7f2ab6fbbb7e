// SPDX-License-Identifier: Apache-2.0
// A random AWQ layer for the checks (awq_gemv.cu) and the benchmark (benchmarks/gemv_benchmark.cu):
// a checkpoint as AutoAWQ stores it, read by dq4::from_awq, and its copies on the device.
#pragma once

#include <dq4/checkpoint.hpp>
#include <dq4/dq4.cuh>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "launch.cuh"
#include "plan.hpp"

namespace awq_gemv {

/// A random AutoAWQ checkpoint of a K x N layer (qweight and qzeros int32 [rows][N / 8], scales
/// [K / 128][N]), through dq4::from_awq. A fast LCG: the values only need to cover every nibble;
/// scales around 2^-8 .. 2^-4, as in real layers.
inline dq4::packed_matrix random_layer(shape s, format f, std::uint32_t seed) {
  std::uint32_t state = seed;
  const auto next = [&state] { return state = state * 1664525u + 1013904223u; };
  std::vector<std::int32_t> qweight(s.k * s.n / 8), qzeros(s.k / group_size * s.n / 8);
  for (auto& w : qweight) w = static_cast<std::int32_t>(next());
  for (auto& z : qzeros) z = static_cast<std::int32_t>(next());
  std::vector<std::uint16_t> scales(s.k / group_size * s.n);
  for (auto& v : scales) {
    const float scale = 0.004f + static_cast<float>(next() >> 8) * (0.05f / 16777216.0f);
    v = f == format::fp16 ? __half_as_ushort(__float2half_rn(scale)) : __bfloat16_as_ushort(__float2bfloat16_rn(scale));
  }
  return dq4::from_awq(qweight.data(), qzeros.data(), scales.data(), s.k, s.n, group_size, f);
}

/// 16-bit activations in [-1, 1), bit patterns of format f.
inline std::vector<std::uint16_t> random_activations(format f, std::size_t count, std::uint32_t seed) {
  std::vector<std::uint16_t> x(count);
  std::uint32_t state = seed;
  for (auto& v : x) {
    state = state * 1664525u + 1013904223u;
    const float value = static_cast<float>(state >> 8) / 8388608.0f - 1.0f;
    v = f == format::fp16 ? __half_as_ushort(__float2half_rn(value)) : __bfloat16_as_ushort(__float2bfloat16_rn(value));
  }
  return x;
}

template <class T>
T* device_copy(const std::vector<T>& host) {
  T* d = nullptr;
  dq4_support::check(cudaMalloc(&d, host.size() * sizeof(T)), "cudaMalloc");
  dq4_support::check(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
  return d;
}

/// The layer on the device, its dequantized matrix allocated and poisoned (0xEE bytes), not filled.
inline device_layer upload(const dq4::packed_matrix& m) {
  device_layer l;
  l.weights = device_copy(m.weights);
  l.zeros = device_copy(m.zero_points);
  l.scales = device_copy(m.scales);
  const std::size_t dense_bytes = m.rows * m.cols * 2;
  dq4_support::check(cudaMalloc(&l.dequantized, dense_bytes), "cudaMalloc");
  dq4_support::check(cudaMemset(l.dequantized, 0xEE, dense_bytes), "cudaMemset");
  return l;
}

inline void free_layer(device_layer& l) {
  dq4_support::check(cudaFree(l.weights), "cudaFree");
  dq4_support::check(cudaFree(l.zeros), "cudaFree");
  dq4_support::check(cudaFree(l.scales), "cudaFree");
  dq4_support::check(cudaFree(l.dequantized), "cudaFree");
  l = {};
}

}  // namespace awq_gemv
