// SPDX-License-Identifier: Apache-2.0
// Packs random AWQ-style 4-bit weights on the host, dequantizes a large buffer on the GPU with dq4's
// fast path, checks every value against the reference, and reports throughput against the device's
// copy bandwidth. Without a usable GPU it says so and runs the host part alone.
//
//   dequantize_buffer [log2 of the value count, 10..30; default 27]
#include <dq4/dq4.cuh>

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "support/cuda_support.cuh"

namespace {

constexpr dq4::encoding encoding = dq4::u4;        // AWQ weights: unsigned 0..15
constexpr dq4::order order = dq4::interleaved;     // AWQ's packing order

using dq4_support::check;
using dq4_support::median_ms;

// Each warp converts 128 consecutive words per step: lane l takes words l, l + 32, l + 64, l + 96,
// so every load instruction reads 128 contiguous bytes and every 16-byte store instruction writes
// 512 contiguous bytes (a thread writing its own 64 contiguous bytes would scatter each store
// instruction over 2 KiB and halve the bandwidth).
constexpr int words_per_lane = 4;

__global__ void dequantize_kernel(const std::uint32_t* __restrict__ packed, std::size_t words, uint4* __restrict__ out) {
  const std::size_t lane = threadIdx.x % 32;
  const std::size_t warp = (std::size_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const std::size_t warps = std::size_t{gridDim.x} * blockDim.x / 32;
  constexpr std::size_t step = 32 * words_per_lane;
  for (std::size_t base = warp * step; base < words; base += warps * step) {
    std::uint32_t w[words_per_lane];
#pragma unroll
    for (int k = 0; k < words_per_lane; ++k) {  // all loads first: four in flight per thread
      const std::size_t i = base + lane + 32 * k;
      w[k] = i < words ? packed[i] : 0;
    }
#pragma unroll
    for (int k = 0; k < words_per_lane; ++k) {
      const std::size_t i = base + lane + 32 * k;
      if (i < words) {
        const dq4::fp16x8 v = dq4::to_fp16<encoding, order>(w[k]);
        out[i] = make_uint4(v.regs[0], v.regs[1], v.regs[2], v.regs[3]);
      }
    }
  }
}

// Dequantizes `words` packed words into 8 * words fp16 values. Rejects, with a message, what the
// kernel cannot handle: null buffers, or buffers not aligned for its 4-byte loads and 16-byte stores.
cudaError_t dequantize(const std::uint32_t* packed, std::size_t words, std::uint16_t* out, int blocks,
                       cudaStream_t stream) {
  if (packed == nullptr || out == nullptr) {
    std::fprintf(stderr, "dequantize: null buffer\n");
    return cudaErrorInvalidValue;
  }
  if (reinterpret_cast<std::uintptr_t>(packed) % 4 != 0 || reinterpret_cast<std::uintptr_t>(out) % 16 != 0) {
    std::fprintf(stderr, "dequantize: packed must be 4-byte and out 16-byte aligned (got %p and %p)\n",
                 static_cast<const void*>(packed), static_cast<void*>(out));
    return cudaErrorMisalignedAddress;
  }
  dequantize_kernel<<<blocks, 256, 0, stream>>>(packed, words, reinterpret_cast<uint4*>(out));
  return cudaGetLastError();
}

// Random weights packed as AWQ packs them; values[i] is what element i must dequantize to.
void make_weights(std::size_t count, std::vector<int>& values, std::vector<std::uint32_t>& packed) {
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> pick(dq4::min_value<encoding>, dq4::max_value<encoding>);
  values.resize(count);
  for (int& v : values) v = pick(rng);
  packed.resize(count / 8);
  dq4::pack<encoding, order>(values.data(), values.size(), packed.data());
}

// Number of elements whose bits differ from the reference value; prints the first few.
std::size_t count_mismatches(const std::vector<int>& values, const std::vector<std::uint16_t>& out) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint16_t expected = dq4::reference::fp16_bits(values[i]);
    if (out[i] != expected && bad++ < 5) {
      std::fprintf(stderr, "  element %zu: expected 0x%04x, got 0x%04x\n", i, expected, out[i]);
    }
  }
  return bad;
}

// The host part: the portable path over the first words, checked against the reference.
bool run_on_host(const std::vector<int>& values, const std::vector<std::uint32_t>& packed) {
  const std::size_t words = std::min<std::size_t>(packed.size(), std::size_t{1} << 20);
  std::vector<std::uint16_t> out(8 * words);
  for (std::size_t w = 0; w < words; ++w) {
    const dq4::fp16x8 v = dq4::to_fp16<encoding, order>(packed[w]);
    for (int j = 0; j < 8; ++j) out[8 * w + j] = v.bits(j);
  }
  const std::vector<int> checked(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(8 * words));
  const std::size_t bad = count_mismatches(checked, out);
  std::printf("host: %zu values dequantized by the portable path, %zu mismatches\n", out.size(), bad);
  return bad == 0;
}

bool run_on_gpu(const cudaDeviceProp& prop, const std::vector<int>& values, const std::vector<std::uint32_t>& packed) {
  const std::size_t words = packed.size(), count = values.size();
  const std::size_t in_bytes = words * sizeof(std::uint32_t), out_bytes = count * sizeof(std::uint16_t);
  std::uint32_t* d_packed = nullptr;
  std::uint16_t* d_out = nullptr;
  check(cudaMalloc(&d_packed, in_bytes), "cudaMalloc");
  check(cudaMalloc(&d_out, out_bytes), "cudaMalloc");
  check(cudaMemcpy(d_packed, packed.data(), in_bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaMemset(d_out, 0xFF, out_bytes), "cudaMemset");  // poison: 0xFFFF is a NaN no value maps to

  // Bad input is refused before any launch.
  const bool rejects_misaligned = dequantize(d_packed, 4, d_out + 1, 1, nullptr) == cudaErrorMisalignedAddress;
  const bool rejects_null = dequantize(nullptr, 4, d_out, 1, nullptr) == cudaErrorInvalidValue;

  const int blocks = prop.multiProcessorCount * 8;
  check(dequantize(d_packed, words, d_out, blocks, nullptr), "dequantize launch");
  check(cudaDeviceSynchronize(), "dequantize kernel");
  std::vector<std::uint16_t> out(count);
  check(cudaMemcpy(out.data(), d_out, out_bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  const std::size_t bad = count_mismatches(values, out);
  std::printf("gpu: %zu values dequantized, %zu mismatches against the reference\n", count, bad);

  // Throughput: bytes read plus bytes written, against a device-to-device copy of the output size.
  const float kernel_ms = median_ms(20, [&](int) { check(dequantize(d_packed, words, d_out, blocks, nullptr), "launch"); });
  std::uint16_t* d_copy = nullptr;
  check(cudaMalloc(&d_copy, out_bytes), "cudaMalloc");
  const float copy_ms = median_ms(20, [&](int) {
    check(cudaMemcpyAsync(d_copy, d_out, out_bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
  });
  const double kernel_gbs = static_cast<double>(in_bytes + out_bytes) / (kernel_ms * 1e6);
  const double copy_gbs = 2.0 * static_cast<double>(out_bytes) / (copy_ms * 1e6);
  std::printf("gpu: %s, %zu MiB packed -> %zu MiB fp16\n", prop.name, in_bytes >> 20, out_bytes >> 20);
  std::printf("gpu: dequantize %.3f ms, %.0f GB/s (read + write); %.1f Gvalues/s\n", kernel_ms, kernel_gbs,
              static_cast<double>(count) / (kernel_ms * 1e6));
  std::printf("gpu: device copy %.3f ms, %.0f GB/s; dequantize reaches %.1f%% of copy bandwidth\n", copy_ms,
              copy_gbs, 100.0 * kernel_gbs / copy_gbs);
  std::printf("gpu: misaligned buffer %s, null buffer %s\n", rejects_misaligned ? "rejected" : "ACCEPTED",
              rejects_null ? "rejected" : "ACCEPTED");
  check(cudaFree(d_copy), "cudaFree");
  check(cudaFree(d_packed), "cudaFree");
  check(cudaFree(d_out), "cudaFree");
  return bad == 0 && rejects_misaligned && rejects_null;
}

}  // namespace

int main(int argc, char** argv) {
  const int log2_count = argc > 1 ? std::atoi(argv[1]) : 27;
  if (log2_count < 10 || log2_count > 30) {
    std::fprintf(stderr, "usage: %s [log2 of the value count, 10..30]\n", argv[0]);
    return 2;
  }
  std::vector<int> values;
  std::vector<std::uint32_t> packed;
  make_weights(std::size_t{1} << log2_count, values, packed);
  std::printf("packed %zu random u4 values into %zu words (interleaved, AWQ order)\n", values.size(), packed.size());
  bool ok = run_on_host(values, packed);

  cudaDeviceProp prop{};
  if (dq4_support::device_at_least(75, "ran the host part only", prop)) ok = run_on_gpu(prop, values, packed) && ok;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
