// SPDX-License-Identifier: Apache-2.0
// Dequantization inside an ALU-bound loop, where its instruction count decides the speed.
//
// Each thread keeps packed words in registers and, every iteration, changes each (one IADD), converts
// it and feeds the eight values to HFMA2 accumulators, as a GEMV inner loop does, so issue slots and not memory set
// the pace. Every dq4 fp16 path runs side by side with a naive per-nibble conversion (shift, mask,
// __int2half_rn) and, when CUTLASS's headers were found at configure time, CUTLASS's
// NumericArrayConverter for the same encoding and order. Results: values per clock per SM (from
// clock64 in each block) and time (CUDA events, median of repeated runs after a warm-up).
//
//   alu_bound [results.csv]
#include <dq4/dq4.cuh>

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

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

// Converters: eight fp16 values (four half2 registers, output order of the path) from one word.
template <dq4::encoding E, dq4::order O>
struct dq4_converter {
  __device__ dq4::fp16x8 operator()(std::uint32_t w) const { return dq4::to_fp16<E, O>(w); }
};

// The conversion a kernel writes without dq4: one nibble at a time through the integer converter.
template <dq4::encoding E, dq4::order O>
struct naive_converter {
  __device__ dq4::fp16x8 operator()(std::uint32_t w) const {
    dq4::fp16x8 out{};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int n = static_cast<int>((w >> (4 * dq4::source_nibble(O, j))) & 0xFu);
      const int v = E == dq4::encoding::u4 ? n : E == dq4::encoding::u4b8 ? n - 8 : (n ^ 8) - 8;
      const std::uint32_t bits = __half_as_ushort(__int2half_rn(v));
      out.regs[j / 2] |= bits << (16 * (j % 2));
    }
    return out;
  }
};

#if defined(DQ4_HAVE_CUTLASS)
// CUTLASS's converters read the nibbles in sequential order; they exist for u4 and s4.
template <class Nibble>
struct cutlass_converter {
  __device__ dq4::fp16x8 operator()(std::uint32_t w) const {
    cutlass::Array<Nibble, 8> source;
    std::memcpy(&source, &w, sizeof w);
    const cutlass::Array<cutlass::half_t, 8> result =
        cutlass::NumericArrayConverter<cutlass::half_t, Nibble, 8>{}(source);
    dq4::fp16x8 out;
    std::memcpy(&out.regs, &result, sizeof out.regs);
    return out;
  }
};
#endif  // defined(DQ4_HAVE_CUTLASS)

constexpr int words_per_thread = 8;
constexpr int threads_per_block = 256;

template <class Convert>
__global__ void __launch_bounds__(threads_per_block)
    alu_bound_kernel(const std::uint32_t* __restrict__ packed, int iterations, std::uint32_t* __restrict__ sink,
                     long long* __restrict__ block_cycles) {
  const std::size_t thread = std::size_t{blockIdx.x} * blockDim.x + threadIdx.x;
  std::uint32_t w[words_per_thread];
#pragma unroll
  for (int k = 0; k < words_per_thread; ++k) w[k] = packed[thread * words_per_thread + k];
  const __half2 x = __float2half2_rn(1.0f / 4096);  // an activation small enough to keep sums finite
  __half2 acc[4] = {};
  const Convert convert{};
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
      const dq4::fp16x8 v = convert(w[k]);
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[r] = __hfma2(v.half2(r), x, acc[r]);
    }
  }
  const long long end = clock64();
  std::uint32_t folded = 0;
  for (int r = 0; r < 4; ++r) {  // keep the results alive
    std::uint32_t bits;
    std::memcpy(&bits, &acc[r], sizeof bits);
    folded ^= bits;
  }
  sink[thread] = folded;
  if (threadIdx.x == 0) block_cycles[blockIdx.x] = end - start;
}

// Counts the words, of all 2^32, on which a converter's bits differ from dq4's reference for the
// same encoding and order: a timing comparison is only fair between converters that agree.
template <class Convert, dq4::encoding E, dq4::order O>
__global__ void count_mismatches_kernel(unsigned long long* mismatches) {
  unsigned long long local = 0;
  const Convert convert{};
  const std::uint64_t stride = std::uint64_t{gridDim.x} * blockDim.x;
  for (std::uint64_t i = std::uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < (std::uint64_t{1} << 32); i += stride) {
    const dq4::fp16x8 got = convert(static_cast<std::uint32_t>(i));
    const dq4::fp16x8 want = dq4::reference::to_fp16<E, O>(static_cast<std::uint32_t>(i));
    bool equal = true;
    for (int r = 0; r < 4; ++r) equal = equal && got.regs[r] == want.regs[r];
    local += equal ? 0 : 1;
  }
  if (local != 0) atomicAdd(mismatches, local);
}

template <class Convert, dq4::encoding E, dq4::order O>
unsigned long long count_mismatches(int sms) {
  unsigned long long* device = nullptr;
  check(cudaMalloc(&device, sizeof *device), "cudaMalloc");
  check(cudaMemset(device, 0, sizeof *device), "cudaMemset");
  count_mismatches_kernel<Convert, E, O><<<sms * 8, 256>>>(device);
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

  template <class Convert, dq4::encoding E, dq4::order O>
  void run(const char* path, const char* implementation) {
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, alu_bound_kernel<Convert>, threads_per_block, 0),
          "occupancy");
    // The grid is sized for dq4's kernel; a converter needing more registers gets fewer resident
    // blocks and its blocks run in more than one wave, which its time shows.
    const measurement m = measure<Convert>(buffers, blocks, std::min(per_sm, blocks_per_sm), iterations);
    rows.push_back({path, implementation, m, count_mismatches<Convert, E, O>(sms)});
  }

  template <dq4::encoding E, dq4::order O>
  void run_path(const char* path) {
    run<dq4_converter<E, O>, E, O>(path, "dq4");
    run<naive_converter<E, O>, E, O>(path, "naive");
#if defined(DQ4_HAVE_CUTLASS)
    if constexpr (O == dq4::order::sequential && E == dq4::encoding::u4) {
      run<cutlass_converter<cutlass::uint4b_t>, E, O>(path, "cutlass");
    } else if constexpr (O == dq4::order::sequential && E == dq4::encoding::s4) {
      run<cutlass_converter<cutlass::int4b_t>, E, O>(path, "cutlass");
    }
#endif  // defined(DQ4_HAVE_CUTLASS)
  }
};

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: the benchmark needs one (it only builds elsewhere)\n");
    return 0;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int per_sm = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &per_sm, alu_bound_kernel<dq4_converter<dq4::encoding::u4, dq4::order::interleaved>>, threads_per_block, 0),
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

  b.run_path<dq4::encoding::u4, dq4::order::interleaved>("u4 interleaved");
  b.run_path<dq4::encoding::u4b8, dq4::order::interleaved>("u4b8 interleaved");
  b.run_path<dq4::encoding::s4, dq4::order::interleaved>("s4 interleaved");
  b.run_path<dq4::encoding::u4, dq4::order::sequential>("u4 sequential");
  b.run_path<dq4::encoding::u4b8, dq4::order::sequential>("u4b8 sequential");
  b.run_path<dq4::encoding::s4, dq4::order::sequential>("s4 sequential");

  std::printf("%s, %d SMs, %d blocks of %d threads, %d words per thread, %d iterations\n", prop.name, b.sms,
              b.blocks, threads_per_block, words_per_thread, b.iterations);
  std::printf("%-18s %-8s %9s %14s %12s %12s\n", "path", "impl", "ms", "values/clk/SM", "time vs dq4", "mismatches");
  FILE* csv = argc > 1 ? std::fopen(argv[1], "w") : nullptr;
  if (csv != nullptr) std::fprintf(csv, "device,path,implementation,ms,values_per_clock_per_sm,time_vs_dq4,mismatches\n");
  bool exact = true;
  float dq4_ms = 0;
  for (const row& r : b.rows) {
    if (r.implementation == "dq4") dq4_ms = r.m.ms;
    std::printf("%-18s %-8s %9.3f %14.1f %11.2fx %12llu\n", r.path.c_str(), r.implementation.c_str(), r.m.ms,
                r.m.values_per_clock_per_sm, r.m.ms / dq4_ms, r.mismatches);
    if (csv != nullptr) {
      std::fprintf(csv, "%s,%s,%s,%.4f,%.2f,%.3f,%llu\n", prop.name, r.path.c_str(), r.implementation.c_str(), r.m.ms,
                   r.m.values_per_clock_per_sm, r.m.ms / dq4_ms, r.mismatches);
    }
    exact = exact && r.mismatches == 0;
  }
  if (csv != nullptr) std::fclose(csv);
  check(cudaFree(b.buffers.packed), "cudaFree");
  check(cudaFree(b.buffers.sink), "cudaFree");
  check(cudaFree(b.buffers.cycles), "cudaFree");
#if !defined(DQ4_HAVE_CUTLASS)
  std::printf("CUTLASS headers were not found at configure time: no CUTLASS rows\n");
#endif  // !defined(DQ4_HAVE_CUTLASS)
  return exact ? 0 : 1;
}
