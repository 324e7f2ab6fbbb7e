// SPDX-License-Identifier: Apache-2.0
// Dequantization inside an ALU-bound loop, where its instruction count decides the speed.
//
// Each thread keeps packed words in registers and, every iteration, changes each (one IADD), converts
// it and feeds the eight values to fma accumulators of the output format (HFMA2, HFMA2.BF16 or FFMA),
// as a GEMV inner loop does, so issue slots and not memory set the pace. The 8-bit outputs (int8,
// e4m3, e5m2) have no arithmetic outside the tensor cores on sm_90, so their registers go to integer
// accumulators instead (see accumulator below). Every dq4 path (fp16, bf16, fp32; u4, u4b8, s4, e2m1;
// unscaled, with scales, with zero points, q - z unscaled; int8, e4m3 and e5m2 from the encodings they
// take, q - z; e2m1 with an e8m0 block scale (MXFP4) to e4m3, fp16, bf16 and fp32; NF4 codebooks)
// runs side by side with a naive per-nibble conversion (shift, mask, sign extension or integer or
// float conversion; fp8 through cuda_fp8.h's per-value __nv_cvt_float_to_fp8) and, when CUTLASS's
// headers were found at configure time, CUTLASS's NumericArrayConverter where it has the same
// conversion; MXFP4 to bf16 also with Marlin's bit moves and two multiplies, and the codebooks with a
// shared-memory table read per value (as bitsandbytes and FLUTE read theirs). Every converter is held
// to dq4's reference on all 2^32 words (the mismatches column; any mismatch fails the run). Results:
// values per clock per SM (from clock64 in each block) and time (CUDA events, median of repeated runs
// after a warm-up).
//
//   alu_bound [results.csv]
#include <dq4/dq4.cuh>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
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

#include "marlin_sequence.hpp"
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

// q - z without a scale, for kernels that scale after the MMA (zeros prepared once, in make()).
template <format F, dq4::zeros Z, dq4::order O>
struct dq4_difference_converter {
  static constexpr format value_format = F;
  dq4::zero_point<F, O> zero;
  static __device__ dq4_difference_converter make() { return {dq4::prepare_zeros<F, Z, O>(eight_zeros)}; }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const { return dq4::dequantize<F, O>(w, zero); }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const {
    return dq4::reference::dequantize<F, Z, O>(w, eight_zeros);
  }
};

// The e8m0 block scale of the block-scaled rows: 125 is 2^-2, inside the range (122..133) where every
// scaled e2m1 value stays a normal e4m3. Read from device memory, so that the block_scale is prepared
// at run time, once per thread before the loop, as a kernel prepares it once per block; the table it
// gives then lives in registers, not in instruction immediates.
__device__ std::uint8_t block_scale_bits = 125;

template <format F, dq4::order O>
struct dq4_block_scaled_converter {
  static constexpr format value_format = F;
  dq4::block_scale<F> scale;
  static __device__ dq4_block_scaled_converter make() { return {dq4::prepare_block_scale<F>(dq4::e8m0{block_scale_bits})}; }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const { return dq4::dequantize<F, dq4::encoding::e2m1, O>(w, scale); }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const {
    return dq4::reference::dequantize<F, dq4::encoding::e2m1, O>(w, scale.scale);
  }
};

// Marlin's MXFP4 dequantization as vLLM runs it (bf16 only; its layout is dq4's interleaved order):
// the e2m1 bits moved into bf16 fields (benchmarks/marlin_sequence.hpp), the bias 2^126 multiplied in,
// then the group scale 2^(E - 127) (exact here: E = 125 keeps every product normal).
struct marlin_mxfp4_converter {
  static constexpr format value_format = format::bf16;
  std::uint32_t scale;  ///< 2^(E - 127) in both bf16 halves
  static __device__ marlin_mxfp4_converter make() { return {(static_cast<std::uint32_t>(block_scale_bits) << 7) * 0x00010001u}; }
  __device__ dq4::fragment<format::bf16, 8> operator()(std::uint32_t w) const {
    dq4::fragment<format::bf16, 8> out{};
#if __CUDA_ARCH__ >= 800
    marlin_probes::marlin_e2m1_bits<format::bf16>(w, out.regs);
    const dq4::detail::device_arithmetic<format::bf16> bf16{};
    for (auto& r : out.regs) r = bf16.mul(bf16.mul(r, marlin_probes::marlin_bias<format::bf16>), scale);
#else   // no bf16 multiply before sm_80 (the benchmark runs on newer GPUs; this only compiles)
    out = expected(w);
#endif  // __CUDA_ARCH__ >= 800
    return out;
  }
  __device__ dq4::fragment<format::bf16, 8> expected(std::uint32_t w) const {
    return dq4::reference::dequantize<format::bf16, dq4::encoding::e2m1, dq4::order::interleaved>(w, dq4::e8m0{block_scale_bits});
  }
};


// The bits of one value in format F, the way a kernel converts without dq4: one conversion per value
// (fp8: cuda_fp8.h's portable per-value conversion, round to nearest even, saturating to the largest
// finite value as dq4's reference does; one F2FP on sm_89 and newer, software below).
template <format F>
__device__ std::uint32_t naive_bits_of_float(float v) {
  if constexpr (F == format::fp16) return __half_as_ushort(__float2half_rn(v));
  if constexpr (F == format::bf16) return __bfloat16_as_ushort(__float2bfloat16_rn(v));
  if constexpr (F == format::fp32) return __float_as_uint(v);
  if constexpr (F == format::e4m3) return __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  if constexpr (F == format::e5m2) return __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E5M2);
}
template <format F>
__device__ std::uint32_t naive_bits_of_int(int v) {
  if constexpr (F == format::fp16) return __half_as_ushort(__int2half_rn(v));
  if constexpr (F == format::bf16) return __bfloat16_as_ushort(__int2bfloat16_rn(v));
  if constexpr (F == format::fp32) return __float_as_uint(static_cast<float>(v));
  if constexpr (F == format::int8) return static_cast<std::uint32_t>(v) & 0xFFu;  // the byte of v
  if constexpr (F == format::e4m3) return naive_bits_of_float<F>(static_cast<float>(v));
}

// The value of nibble n under an integer encoding: u4 as it is, u4b8 minus 8, s4 sign-extended.
template <dq4::encoding E>
__device__ int naive_decode(int n) {
  return E == dq4::encoding::u4 ? n : E == dq4::encoding::u4b8 ? n - 8 : (n ^ 8) - 8;
}

// An e2m1 nibble as a float: sign, exponent and mantissa decoded with float arithmetic.
__device__ inline float naive_e2m1(int n) {
  const int e = (n >> 1) & 3, m = n & 1;
  const float magnitude = e == 0 ? 0.5f * m : (1.0f + 0.5f * m) * static_cast<float>(1 << (e - 1));
  return (n & 8) != 0 ? -magnitude : magnitude;
}

// Element j's bits at its place in the fragment (value_bits(F) * (j % per register) in register j / per).
template <format F>
__device__ void naive_place(dq4::fragment<F, 8>& out, int j, std::uint32_t bits) {
  constexpr int per_register = dq4::values_per_register(F);
  out.regs[j / per_register] |= bits << (dq4::value_bits(F) * (j % per_register));
}

// One nibble at a time: shift, mask, decode, convert. Element j reads nibble fragment_nibble(F, O, j),
// dq4's layout (the source order for the 16- and 32-bit formats; nibble j in byte j for the 8-bit
// formats, but int8 in interleaved order the even nibbles in register 0 and the odd ones in register 1).
template <format F, dq4::encoding E, dq4::order O>
struct naive_converter {
  static constexpr format value_format = F;
  static __device__ naive_converter make() { return {}; }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const {
    dq4::fragment<F, 8> out{};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int n = static_cast<int>((w >> (4 * dq4::fragment_nibble(F, O, j))) & 0xFu);
      if constexpr (E == dq4::encoding::e2m1) {
        naive_place<F>(out, j, naive_bits_of_float<F>(naive_e2m1(n)));
      } else {
        naive_place<F>(out, j, naive_bits_of_int<F>(naive_decode<E>(n)));
      }
    }
    return out;
  }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const { return dq4::reference::dequantize<F, E, O>(w); }
};

// q - z one nibble at a time, the eight zeros (as integers) prepared in make().
template <format F, dq4::zeros Z, dq4::order O>
struct naive_difference_converter {
  static constexpr format value_format = F;
  int z[8];  ///< the zero of nibble k
  static __device__ naive_difference_converter make() {
    naive_difference_converter c{};
#pragma unroll
    for (int k = 0; k < 8; ++k) c.z[k] = dq4::reference::zero_of<Z>(eight_zeros, k);
    return c;
  }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const {
    dq4::fragment<F, 8> out{};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int k = dq4::fragment_nibble(F, O, j);
      naive_place<F>(out, j, naive_bits_of_int<F>(static_cast<int>((w >> (4 * k)) & 0xFu) - z[k]));
    }
    return out;
  }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const {
    return dq4::reference::dequantize<F, Z, O>(w, eight_zeros);
  }
};

// e2m1 times the block scale 2^(s - 127) one value at a time: the float product (exact) converted once.
template <format F, dq4::order O>
struct naive_block_scaled_converter {
  static constexpr format value_format = F;
  dq4::e8m0 bits;
  float scale;
  static __device__ naive_block_scaled_converter make() {
    const dq4::e8m0 s{block_scale_bits};
    return {s, __uint_as_float(static_cast<std::uint32_t>(s.bits) << 23)};  // 2^(s - 127), s in 1..254
  }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const {
    dq4::fragment<F, 8> out{};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int n = static_cast<int>((w >> (4 * dq4::fragment_nibble(F, O, j))) & 0xFu);
      naive_place<F>(out, j, naive_bits_of_float<F>(naive_e2m1(n) * scale));
    }
    return out;
  }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const { return dq4::reference::dequantize<F, dq4::encoding::e2m1, O>(w, bits); }
};

// The absmax of the codebook rows, read from device memory like the block scale.
__device__ float codebook_absmax = 0.0123f;

// NF4 (bitsandbytes' table in F) times the block's absmax: dq4's register look-up, one multiply per
// register.
template <format F, dq4::order O>
struct dq4_codebook_converter {
  static constexpr format value_format = F;
  dq4::codebook<F> book;
  dq4::fragment<F, 8> scales;
  static __device__ dq4_codebook_converter make() {
    return {dq4::codebook_of<F>(dq4::nf4_values().value), dq4::splat<F>(naive_bits_of_float<F>(codebook_absmax))};
  }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const { return dq4::dequantize<F, O>(w, book, scales); }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const { return dq4::reference::dequantize<F, O>(w, book, scales); }
};

// The same with the table in shared memory, read once per value (as bitsandbytes' and FLUTE's
// kernels look up their codebooks), then the same multiply per register.
template <format F, dq4::order O>
struct shared_table_converter {
  static constexpr format value_format = F;
  const std::uint16_t* table;
  dq4::codebook<F> book;
  dq4::fragment<F, 8> scales;
  static __device__ shared_table_converter make() {
    __shared__ std::uint16_t entries[16];
    const dq4::codebook<F> book = dq4::codebook_of<F>(dq4::nf4_values().value);
    if (threadIdx.x < 16) entries[threadIdx.x] = static_cast<std::uint16_t>(book.entry(threadIdx.x));
    __syncthreads();
    return {entries, book, dq4::splat<F>(naive_bits_of_float<F>(codebook_absmax))};
  }
  __device__ dq4::fragment<F, 8> operator()(std::uint32_t w) const {
    dq4::fragment<F, 8> out{};
#pragma unroll
    for (int j = 0; j < 8; ++j) naive_place<F>(out, j, table[(w >> (4 * dq4::source_nibble(O, j))) & 0xFu]);
#if __CUDA_ARCH__ >= 800
    const dq4::detail::device_arithmetic<F> arithmetic{};
    for (int r = 0; r < 4; ++r) out.regs[r] = arithmetic.mul(out.regs[r], scales.regs[r]);
    return out;
#else   // no bf16 multiply before sm_80 (the benchmark runs on newer GPUs; this only compiles)
    return expected(w);
#endif  // __CUDA_ARCH__ >= 800
  }
  __device__ dq4::fragment<F, 8> expected(std::uint32_t w) const { return dq4::reference::dequantize<F, O>(w, book, scales); }
};

#if defined(DQ4_HAVE_CUTLASS)
template <format F>
using cutlass_type = std::conditional_t<
    F == format::fp16, cutlass::half_t,
    std::conditional_t<F == format::bf16, cutlass::bfloat16_t,
                       std::conditional_t<F == format::int8, std::int8_t,
                                          std::conditional_t<F == format::e4m3, cutlass::float_e4m3_t, cutlass::float_e5m2_t>>>>;

// CUTLASS's converters read the nibbles in sequential order and write element j from nibble j (for
// the 8-bit outputs byte j, dq4's sequential layout): u4 (uint4b_t) to fp16, bf16, e4m3; s4
// (int4b_t, two's complement) to fp16, bf16, int8, e4m3; e2m1 to fp16, e4m3, e5m2. CUTLASS 4.2 has no
// packed e2m1 to e4m3 or e5m2 converter: NumericArrayConverter<float_e4m3_t / float_e5m2_t,
// float_e2m1_t, 8> falls to its generic path, element by element (e2m1 decoded to float in software,
// then one conversion per value); those rows say "cutlass-generic".
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

// acc += v * x register by register, in the output format (fp32: value by value). The 8-bit formats
// (int8, e4m3, e5m2) have no arithmetic outside the tensor cores on sm_90 (no fp8 arithmetic at all),
// so their result registers are consumed by an integer accumulator: acc[r] += v.regs[r], one 32-bit
// IADD per result register (two per word; ptxas may join two words' adds into one IADD3), whatever
// the converter. The sums are stored at the end, so nothing can be removed, and every converter of an
// 8-bit row (dq4, naive, CUTLASS) returns two registers per word, so the consumption costs them all
// the same.
template <format F>
struct accumulator {
  std::uint32_t regs[dq4::fragment<F, 8>::registers] = {};
  __device__ void add(const dq4::fragment<F, 8>& v, [[maybe_unused]] float x) {
#pragma unroll
    for (int r = 0; r < dq4::fragment<F, 8>::registers; ++r) {
      if constexpr (dq4::value_bits(F) == 8) {
        regs[r] += v.regs[r];
      } else if constexpr (F == format::fp16) {
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
      // would convert it once, outside the loop. An empty asm statement does not stop ptxas. The add
      // is written in PTX so that the front end does not see the word as an induction variable: from
      // `w += c` it made `w << 4` one of its own (one more IADD per word) and split the one-SHF
      // rotate of dq4's 8-bit paths into three instructions, which a kernel loading its words never
      // pays (sm_90, instructions per word in this loop: int8 u4 sequential 9.1 against 7.1, e4m3
      // e2m1 14.8 against 13.0; the 16-bit e2m1 paths move by less than 1, the rest not at all).
      asm("add.u32 %0, %0, 0x11111111;" : "+r"(w[k]));
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

  static std::string format_prefix(format f) { return dq4::detail::format_name(f) + " "; }
  static const char* order_suffix(dq4::order o) { return o == dq4::order::interleaved ? " interleaved" : " sequential"; }

  template <format F, dq4::encoding E, dq4::order O>
  void run_path() {
    const std::string path = format_prefix(F) + dq4::detail::encoding_name(E) + order_suffix(O);
    run<dq4_converter<F, E, O>>(path, "dq4");
    run<naive_converter<F, E, O>>(path, "naive");
#if defined(DQ4_HAVE_CUTLASS)
    if constexpr (O == dq4::order::sequential) {
      using dq4::encoding;
      constexpr bool sixteen_bit = F == format::fp16 || F == format::bf16;
      if constexpr (E == encoding::u4 && (sixteen_bit || F == format::e4m3)) {
        run<cutlass_converter<F, cutlass::uint4b_t, E>>(path, "cutlass");
      }
      if constexpr (E == encoding::s4 && (sixteen_bit || F == format::int8 || F == format::e4m3)) {
        run<cutlass_converter<F, cutlass::int4b_t, E>>(path, "cutlass");
      }
      if constexpr (E == encoding::e2m1 && F == format::fp16) run<cutlass_converter<F, cutlass::float_e2m1_t, E>>(path, "cutlass");
      if constexpr (E == encoding::e2m1 && (F == format::e4m3 || F == format::e5m2)) {
        run<cutlass_converter<F, cutlass::float_e2m1_t, E>>(path, "cutlass-generic");
      }
    }
#endif  // defined(DQ4_HAVE_CUTLASS)
  }

  template <format F, dq4::encoding E, dq4::order O>
  void run_scaled_path() {
    const std::string path = format_prefix(F) + dq4::detail::encoding_name(E) + " scaled" + order_suffix(O);
    run<dq4_scaled_converter<F, E, O>>(path, "dq4");
  }

  template <format F, dq4::zeros Z, dq4::order O>
  void run_zero_point_path() {
    run<dq4_zero_point_converter<F, Z, O>>(format_prefix(F) + dq4::detail::zeros_name(Z) + order_suffix(O), "dq4");
  }

  // q - z without a scale ("<format> <zeros> q-z <order>"); CUTLASS has no such converter.
  template <format F, dq4::zeros Z, dq4::order O>
  void run_difference_path() {
    const std::string path = format_prefix(F) + dq4::detail::zeros_name(Z) + " q-z" + order_suffix(O);
    run<dq4_difference_converter<F, Z, O>>(path, "dq4");
    run<naive_difference_converter<F, Z, O>>(path, "naive");
  }

  // e2m1 times an e8m0 block scale (MXFP4); CUTLASS has no such converter, Marlin one for bf16.
  template <format F, dq4::order O>
  void run_block_scaled_path() {
    const std::string path = format_prefix(F) + "e2m1 e8m0-scaled" + order_suffix(O);
    run<dq4_block_scaled_converter<F, O>>(path, "dq4");
    run<naive_block_scaled_converter<F, O>>(path, "naive");
    if constexpr (F == format::bf16 && O == dq4::order::interleaved) run<marlin_mxfp4_converter>(path, "marlin");
  }

  // NF4 times an absmax: registers against a shared-memory table.
  template <format F, dq4::order O>
  void run_codebook_path() {
    const std::string path = format_prefix(F) + "nf4 scaled" + order_suffix(O);
    run<dq4_codebook_converter<F, O>>(path, "dq4");
    run<shared_table_converter<F, O>>(path, "shared-table");
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
    run_path<F, encoding::e2m1, order::interleaved>();
    run_path<F, encoding::e2m1, order::sequential>();
    run_scaled_path<F, encoding::e2m1, order::sequential>();  // NVFP4's inner loop (splat of s_F)
    run_block_scaled_path<F, order::interleaved>();
    run_block_scaled_path<F, order::sequential>();
    if constexpr (F != format::fp32) run_codebook_path<F, order::sequential>();
    run_scaled_path<F, encoding::u4b8, order::interleaved>();
    run_scaled_path<F, encoding::u4b8, order::sequential>();
    run_zero_point_path<F, dq4::zeros::awq, order::interleaved>();
    run_zero_point_path<F, dq4::zeros::gptq_v1, order::sequential>();
    run_difference_path<F, dq4::zeros::awq, order::interleaved>();
    run_difference_path<F, dq4::zeros::gptq_v1, order::sequential>();
  }

  // The 8-bit outputs: int8 from the integer encodings in both orders, e4m3 from every encoding in
  // sequential order (the order of fp8 checkpoints), q - z for AWQ, e2m1 with an e8m0 block scale,
  // and e5m2 from e2m1.
  void run_eight_bit() {
    using dq4::encoding;
    using dq4::order;
    run_path<format::int8, encoding::u4, order::interleaved>();
    run_path<format::int8, encoding::u4b8, order::interleaved>();
    run_path<format::int8, encoding::s4, order::interleaved>();
    run_path<format::int8, encoding::u4, order::sequential>();
    run_path<format::int8, encoding::u4b8, order::sequential>();
    run_path<format::int8, encoding::s4, order::sequential>();
    run_difference_path<format::int8, dq4::zeros::awq, order::interleaved>();
    run_path<format::e4m3, encoding::u4, order::sequential>();
    run_path<format::e4m3, encoding::u4b8, order::sequential>();
    run_path<format::e4m3, encoding::s4, order::sequential>();
    run_path<format::e4m3, encoding::e2m1, order::sequential>();
    run_difference_path<format::e4m3, dq4::zeros::awq, order::interleaved>();
    run_block_scaled_path<format::e4m3, order::sequential>();
    run_path<format::e5m2, encoding::e2m1, order::sequential>();
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
  b.run_eight_bit();

  std::printf("%s, %d SMs, %d blocks of %d threads, %d words per thread, %d iterations\n", prop.name, b.sms,
              b.blocks, threads_per_block, words_per_thread, b.iterations);
  std::printf("%-34s %-15s %9s %14s %12s %12s\n", "path", "impl", "ms", "values/clk/SM", "time vs dq4", "mismatches");
  if (csv != nullptr) std::fprintf(csv, "device,path,implementation,ms,values_per_clock_per_sm,time_vs_dq4,mismatches\n");
  bool exact = true;
  float dq4_ms = 0;
  for (const row& r : b.rows) {
    if (r.implementation == "dq4") dq4_ms = r.m.ms;
    std::printf("%-34s %-15s %9.3f %14.1f %11.2fx %12llu\n", r.path.c_str(), r.implementation.c_str(), r.m.ms,
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
