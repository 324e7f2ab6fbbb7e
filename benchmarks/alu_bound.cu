// SPDX-License-Identifier: Apache-2.0
// Dequantization inside an ALU-bound loop, where its instruction count decides the speed.
//
// Each thread keeps packed words in registers and, every iteration, changes each (one IADD), converts
// it and feeds the eight values to fma accumulators of the output format (HFMA2, HFMA2.BF16 or FFMA),
// as a GEMV inner loop does, so issue slots and not memory set the pace. Every dq4 path (fp16, bf16,
// fp32; u4, u4b8, s4, e2m1; unscaled, with scales, with zero points) runs side by side with a naive
// per-nibble conversion (shift, mask, integer or float conversion) and, when CUTLASS's headers were
// found at configure time, CUTLASS's NumericArrayConverter where it has the same conversion. Results:
// values per clock per SM (from clock64 in each block) and time (CUDA events, median of repeated
// runs after a warm-up).
//
//   alu_bound [results.csv]
#include <dq4/dq4.cuh>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#if defined(DQ4_HAVE_CUTLASS)
#include <cutlass/numeric_conversion.h>
#endif  // defined(DQ4_HAVE_CUTLASS)

#include <algorithm>
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

// A converter turns one word into a fragment<F, 8> (the path's output order) and says what the
// reference gives for the same word (expected). Converters with per-group state (scales, zero
// points) set it up in make(), once per thread, before the timed loop.

// Fixed per-group registers for the scaled paths: the shared fixtures' eight different scales and
// eight different zeros.
using dq4_support::eight_scales;
using dq4_support::eight_zeros;

template <format F, dq4::encoding E, dq4::order O>
struct dq4_converter {
  static constexpr format value_format = F;
  static __device__ dq4_converter make() { return {}; }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const { return dq4::dequantize<F, E, O>(w); }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const { return dq4::reference::dequantize<F, E, O>(w); }
};

template <format F, dq4::encoding E, dq4::order O>
struct dq4_scaled_converter {
  static constexpr format value_format = F;
  dq4::fragment<F, 8> scales;
  static __device__ dq4_scaled_converter make() { return {eight_scales<F>()}; }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const { return dq4::dequantize<F, E, O>(w, scales); }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const { return dq4::reference::dequantize<F, E, O>(w, scales); }
};

template <format F, dq4::zeros Z, dq4::order O>
struct dq4_zero_point_converter {
  static constexpr format value_format = F;
  dq4::zero_point<F, O> zero;
  dq4::fragment<F, 8> scales;
  static __device__ dq4_zero_point_converter make() {
    return {dq4::prepare_zeros<F, Z, O>(eight_zeros), eight_scales<F>()};
  }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const { return dq4::dequantize<F, O>(w, zero, scales); }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const {
    return dq4::reference::dequantize<F, Z, O>(w, eight_zeros, scales);
  }
};

// The bits of one value in format F, the way a kernel converts without dq4.
template <format F>
__device__ std::uint32_t naive_bits_of_float(float v) {
  if constexpr (F == format::fp16) return __half_as_ushort(__float2half_rn(v));
  if constexpr (F == format::bf16) return __bfloat16_as_ushort(__float2bfloat16_rn(v));
  if constexpr (F == format::fp32) return __float_as_uint(v);
}
template <format F>
__device__ std::uint32_t naive_bits_of_int(int v) {
  if constexpr (F == format::fp16) return __half_as_ushort(__int2half_rn(v));
  if constexpr (F == format::bf16) return __bfloat16_as_ushort(__int2bfloat16_rn(v));
  if constexpr (F == format::fp32) return __float_as_uint(static_cast<float>(v));
}

// One nibble at a time: shift, mask, decode, convert.
template <format F, dq4::encoding E, dq4::order O>
struct naive_converter {
  static constexpr format value_format = F;
  static __device__ naive_converter make() { return {}; }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const {
    dq4::fragment<F, 8> out{};
    constexpr int per_register = dq4::values_per_register(F);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int n = static_cast<int>((w >> (4 * dq4::source_nibble(O, j))) & 0xFu);
      std::uint32_t bits;
      if constexpr (E == dq4::encoding::e2m1) {
        const int e = (n >> 1) & 3, m = n & 1;
        const float magnitude = e == 0 ? 0.5f * m : (1.0f + 0.5f * m) * static_cast<float>(1 << (e - 1));
        bits = naive_bits_of_float<F>((n & 8) != 0 ? -magnitude : magnitude);
      } else {
        bits = naive_bits_of_int<F>(E == dq4::encoding::u4 ? n : E == dq4::encoding::u4b8 ? n - 8 : (n ^ 8) - 8);
      }
      out.regs[j / per_register] |= bits << (16 * (j % per_register));
    }
    return out;
  }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const { return dq4::reference::dequantize<F, E, O>(w); }
};

#if defined(DQ4_HAVE_CUTLASS)
template <format F>
using cutlass_type = std::conditional_t<F == format::fp16, cutlass::half_t, cutlass::bfloat16_t>;

// CUTLASS's converters read the nibbles in sequential order: u4, s4 (fp16, bf16) and e2m1 (fp16).
template <format F, class Nibble, dq4::encoding E>
struct cutlass_converter {
  static constexpr format value_format = F;
  static __device__ cutlass_converter make() { return {}; }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const {
    cutlass::Array<Nibble, 8> source;
    std::memcpy(&source, &w, sizeof w);
    const cutlass::Array<cutlass_type<F>, 8> result = cutlass::NumericArrayConverter<cutlass_type<F>, Nibble, 8>{}(source);
    dq4::fragment<F, 8> out;
    std::memcpy(&out.regs, &result, sizeof out.regs);
    return out;
  }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const {
    return dq4::reference::dequantize<F, E, dq4::order::sequential>(w);
  }
};
#endif  // defined(DQ4_HAVE_CUTLASS)

constexpr int words_per_thread = 8;
constexpr int threads_per_block = 256;

// acc += v * x register by register, in the output format (fp32: value by value).
template <format F>
struct accumulator {
  std::uint32_t regs[dq4::fragment<F, 8>::registers] = {};
  __device__ void add(const dq4::fragment<F, 8>& v, float x) {
#pragma unroll
    for (int r = 0; r < dq4::fragment<F, 8>::registers; ++r) {
      if constexpr (F == format::fp16) {
        const __half2 h = __hfma2(v.half2(r), __float2half2_rn(x), *reinterpret_cast<const __half2*>(&regs[r]));
        std::memcpy(&regs[r], &h, 4);
      } else if constexpr (F == format::bf16) {
        const __nv_bfloat162 a = *reinterpret_cast<const __nv_bfloat162*>(&regs[r]);
#if __CUDA_ARCH__ >= 800
        const __nv_bfloat162 h = __hfma2(v.bfloat162(r), __float2bfloat162_rn(x), a);
#else   // no bf16 arithmetic before sm_80: accumulate through fp32
        const float2 p = __bfloat1622float2(v.bfloat162(r)), q = __bfloat1622float2(a);
        const __nv_bfloat162 h = __floats2bfloat162_rn(fmaf(p.x, x, q.x), fmaf(p.y, x, q.y));
#endif  // __CUDA_ARCH__ >= 800
        std::memcpy(&regs[r], &h, 4);
      } else {
        regs[r] = __float_as_uint(fmaf(v.value(r), x, __uint_as_float(regs[r])));
      }
    }
  }
};

template <class Convert>
__global__ void __launch_bounds__(threads_per_block)
    alu_bound_kernel(const std::uint32_t* __restrict__ packed, int iterations, std::uint32_t* __restrict__ sink,
                     long long* __restrict__ block_cycles) {
  constexpr format F = Convert::value_format;
  const std::size_t thread = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  std::uint32_t w[words_per_thread];
#pragma unroll
  for (int k = 0; k < words_per_thread; ++k) w[k] = packed[thread * words_per_thread + k];
  const float x = 1.0f / 4096;  // an activation small enough to keep sums finite
  accumulator<F> acc;
  const Convert convert = Convert::make();
  const long long start = clock64();
  // The same unrolling for every converter (ptxas would otherwise choose per kernel, and the loop
  // overhead would differ between converters); the iteration count is a multiple of 4.
#pragma unroll 4
  for (int it = 0; it < iterations; ++it) {
#pragma unroll
    for (int k = 0; k < words_per_thread; ++k) {
      // The word changes every iteration (one IADD, the same for every converter), or the compiler
      // would convert it once, outside the loop. An empty asm statement does not stop ptxas.
      w[k] += 0x11111111u;
      acc.add(convert(w[k]), x);
    }
  }
  const long long end = clock64();
  std::uint32_t folded = 0;
  for (auto r : acc.regs) folded ^= r;  // keep the results alive
  sink[thread] = folded;
  if (threadIdx.x == 0) block_cycles[blockIdx.x] = end - start;
}

// Counts the words, of all 2^32, on which a converter's bits differ from the reference for the same
// path: a timing comparison is only fair between converters that agree.
template <class Convert>
__global__ void count_mismatches_kernel(unsigned long long* mismatches) {
  unsigned long long local = 0;
  const Convert convert = Convert::make();
  const std::uint64_t stride = std::uint64_t{gridDim.x} * blockDim.x;
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < (std::uint64_t{1} << 32); i += stride) {
    const auto got = convert(static_cast<std::uint32_t>(i));
    const auto want = convert.expected(static_cast<std::uint32_t>(i));
    bool equal = true;
    for (int r = 0; r < static_cast<int>(sizeof got.regs / 4); ++r) equal = equal && got.regs[r] == want.regs[r];
    local += equal ? 0 : 1;
  }
  if (local != 0) atomicAdd(mismatches, local);
}

template <class Convert>
unsigned long long count_mismatches(int sms) {
  unsigned long long* device = nullptr;
  check(cudaMalloc(&device, sizeof *device), "cudaMalloc");
  check(cudaMemset(device, 0, sizeof *device), "cudaMemset");
  count_mismatches_kernel<Convert><<<sms * 8, 256>>>(device);
  check(cudaGetLastError(), "launch");
  check(cudaDeviceSynchronize(), "count_mismatches_kernel");
  unsigned long long count = 0;
  check(cudaMemcpy(&count, device, sizeof count, cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaFree(device), "cudaFree");
  return count;
}

struct device_buffers {
  std::uint32_t* packed = nullptr;
  std::uint32_t* sink = nullptr;
  long long* cycles = nullptr;
};

struct measurement {
  float ms;
  double values_per_clock_per_sm;
};

template <class Convert>
measurement measure(const device_buffers& b, int blocks, int blocks_per_sm, int iterations) {
  alu_bound_kernel<Convert><<<blocks, threads_per_block>>>(b.packed, iterations, b.sink, b.cycles);  // warm-up
  check(cudaGetLastError(), "launch");
  check(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<float> times;
  std::vector<double> rates;
  std::vector<long long> cycles(static_cast<std::size_t>(blocks));
  for (int run = 0; run < 7; ++run) {
    check(cudaEventRecord(start), "cudaEventRecord");
    alu_bound_kernel<Convert><<<blocks, threads_per_block>>>(b.packed, iterations, b.sink, b.cycles);
    check(cudaGetLastError(), "launch");
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
    check(cudaMemcpy(cycles.data(), b.cycles, cycles.size() * sizeof(long long), cudaMemcpyDeviceToHost), "cycles");
    // All blocks are resident at once (one wave); an SM's rate is its blocks' values over the
    // slowest block's cycles.
    const long long slowest = *std::max_element(cycles.begin(), cycles.end());
    const double values_per_block = 8.0 * words_per_thread * threads_per_block * iterations;
    rates.push_back(values_per_block * blocks_per_sm / static_cast<double>(slowest));
  }
  check(cudaEventDestroy(start), "cudaEventDestroy");
  check(cudaEventDestroy(stop), "cudaEventDestroy");
  std::nth_element(times.begin(), times.begin() + 3, times.end());
  std::nth_element(rates.begin(), rates.begin() + 3, rates.end());
  return {times[3], rates[3]};
}


struct row {
  std::string path, implementation;
  measurement m;
  unsigned long long mismatches;
};

struct bench {
  device_buffers buffers;
  int blocks, blocks_per_sm, sms, iterations;
  std::vector<row> rows;

  template <class Convert>
  void run(const std::string& path, const char* implementation) {
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, alu_bound_kernel<Convert>, threads_per_block, 0),
          "occupancy");
    // The grid is sized for dq4's fp16 kernel; a converter needing more registers gets fewer resident
    // blocks and its blocks run in more than one wave, which its time shows.
    const measurement m = measure<Convert>(buffers, blocks, std::min(per_sm, blocks_per_sm), iterations);
    rows.push_back({path, implementation, m, count_mismatches<Convert>(sms)});
  }

  template <format F, dq4::encoding E, dq4::order O>
  void run_path() {
    const std::string path = std::string(F == format::fp16 ? "fp16 " : F == format::bf16 ? "bf16 " : "fp32 ") +
                             dq4::detail::encoding_name(E) + (O == dq4::order::interleaved ? " interleaved" : " sequential");
    run<dq4_converter<F, E, O>>(path, "dq4");
    run<naive_converter<F, E, O>>(path, "naive");
#if defined(DQ4_HAVE_CUTLASS)
    if constexpr (O == dq4::order::sequential && F != format::fp32) {
      if constexpr (E == dq4::encoding::u4) run<cutlass_converter<F, cutlass::uint4b_t, E>>(path, "cutlass");
      if constexpr (E == dq4::encoding::s4) run<cutlass_converter<F, cutlass::int4b_t, E>>(path, "cutlass");
      if constexpr (E == dq4::encoding::e2m1 && F == format::fp16) {
        run<cutlass_converter<F, cutlass::float_e2m1_t, E>>(path, "cutlass");
      }
    }
#endif  // defined(DQ4_HAVE_CUTLASS)
  }

  template <format F, dq4::encoding E, dq4::order O>
  void run_scaled_path() {
    const std::string path = std::string(F == format::fp16 ? "fp16 " : F == format::bf16 ? "bf16 " : "fp32 ") +
                             dq4::detail::encoding_name(E) + " scaled" + (O == dq4::order::interleaved ? " interleaved" : " sequential");
    run<dq4_scaled_converter<F, E, O>>(path, "dq4");
  }

  template <format F, dq4::zeros Z, dq4::order O>
  void run_zero_point_path(const char* name) {
    const std::string path = std::string(F == format::fp16 ? "fp16 " : F == format::bf16 ? "bf16 " : "fp32 ") + name +
                             (O == dq4::order::interleaved ? " interleaved" : " sequential");
    run<dq4_zero_point_converter<F, Z, O>>(path, "dq4");
  }

  template <format F>
  void run_format() {
    using dq4::encoding;
    using dq4::order;
    run_path<F, encoding::u4, order::interleaved>();
    run_path<F, encoding::u4b8, order::interleaved>();
    run_path<F, encoding::s4, order::interleaved>();
    run_path<F, encoding::u4, order::sequential>();
    run_path<F, encoding::u4b8, order::sequential>();
    run_path<F, encoding::s4, order::sequential>();
    if constexpr (F != format::fp32) {
      run_path<F, encoding::e2m1, order::interleaved>();
      run_path<F, encoding::e2m1, order::sequential>();
      run_scaled_path<F, encoding::e2m1, order::sequential>();
    }
    run_scaled_path<F, encoding::u4b8, order::interleaved>();
    run_scaled_path<F, encoding::u4b8, order::sequential>();
    run_zero_point_path<F, dq4::zeros::awq, order::interleaved>("awq");
    run_zero_point_path<F, dq4::zeros::gptq_v1, order::sequential>("gptq_v1");
  }
};

}  // namespace

int main(int argc, char** argv) {
  const char* csv_path = argc > 1 ? argv[1] : nullptr;
  std::FILE* csv = dq4_support::open_output(csv_path);  // a path that cannot be written stops the run first
  cudaDeviceProp prop{};
  if (!dq4_support::device_at_least(75, "the benchmark has nothing to run (it only builds elsewhere)", prop)) return 0;
  int per_sm = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &per_sm, alu_bound_kernel<dq4_converter<format::fp16, dq4::encoding::u4, dq4::order::interleaved>>, threads_per_block, 0),
        "occupancy");
  bench b{};
  b.sms = prop.multiProcessorCount;
  b.blocks_per_sm = per_sm;
  b.blocks = prop.multiProcessorCount * per_sm;  // one full wave
  b.iterations = 4096;
  const std::size_t words = std::size_t{static_cast<unsigned>(b.blocks)} * threads_per_block * words_per_thread;
  check(cudaMalloc(&b.buffers.packed, words * sizeof(std::uint32_t)), "cudaMalloc");
  check(cudaMalloc(&b.buffers.sink, words / words_per_thread * sizeof(std::uint32_t)), "cudaMalloc");
  check(cudaMalloc(&b.buffers.cycles, static_cast<std::size_t>(b.blocks) * sizeof(long long)), "cudaMalloc");
  std::vector<std::uint32_t> host(words);
  std::uint32_t state = 12345;
  for (auto& w : host) w = state = state * 1664525u + 1013904223u;  // random words, every nibble value
  check(cudaMemcpy(b.buffers.packed, host.data(), words * sizeof(std::uint32_t), cudaMemcpyHostToDevice), "cudaMemcpy");

  b.run_format<format::fp16>();
  b.run_format<format::bf16>();
  b.run_format<format::fp32>();

  std::printf("%s, %d SMs, %d blocks of %d threads, %d words per thread, %d iterations\n", prop.name, b.sms,
              b.blocks, threads_per_block, words_per_thread, b.iterations);
  std::printf("%-30s %-8s %9s %14s %12s %12s\n", "path", "impl", "ms", "values/clk/SM", "time vs dq4", "mismatches");
  if (csv != nullptr) std::fprintf(csv, "device,path,implementation,ms,values_per_clock_per_sm,time_vs_dq4,mismatches\n");
  bool exact = true;
  float dq4_ms = 0;
  for (const row& r : b.rows) {
    if (r.implementation == "dq4") dq4_ms = r.m.ms;
    std::printf("%-30s %-8s %9.3f %14.1f %11.2fx %12llu\n", r.path.c_str(), r.implementation.c_str(), r.m.ms,
                r.m.values_per_clock_per_sm, r.m.ms / dq4_ms, r.mismatches);
    if (csv != nullptr) {
      std::fprintf(csv, "%s,%s,%s,%.4f,%.2f,%.3f,%llu\n", prop.name, r.path.c_str(), r.implementation.c_str(), r.m.ms,
                   r.m.values_per_clock_per_sm, r.m.ms / dq4_ms, r.mismatches);
    }
    exact = exact && r.mismatches == 0;
  }
  dq4_support::close_output(csv, csv_path);
  check(cudaFree(b.buffers.packed), "cudaFree");
  check(cudaFree(b.buffers.sink), "cudaFree");
  check(cudaFree(b.buffers.cycles), "cudaFree");
#if !defined(DQ4_HAVE_CUTLASS)
  std::printf("CUTLASS headers were not found at configure time: no CUTLASS rows\n");
#endif  // !defined(DQ4_HAVE_CUTLASS)
  return exact ? 0 : 1;
}
