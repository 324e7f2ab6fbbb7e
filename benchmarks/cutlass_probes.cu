// SPDX-License-Identifier: Apache-2.0
// CUTLASS's 4-bit to 8-bit converters, counted the way tests/sass counts dq4's paths, with dq4's
// paths for the same conversions beside them in the same harness. A probe loads `Words` packed words
// (one thread's slice), converts each and stores each result register on its own; the difference
// between the n2 and n1 probes, without memory and control instructions and constant moves, is what
// one more word costs with the constants already in registers. benchmarks/count_cutlass.py reads the
// SASS (kernel names as tests/sass/check_sass.py parses them: probe_<impl>_<format>_<encoding>_
// <order>_w32_<n1|n2>). Built only where CUTLASS's headers were found (benchmarks/CMakeLists.txt).
//
// CUTLASS 4.2's converters, all reading the nibbles in sequential order and writing byte j from
// nibble j (dq4's sequential 8-bit layout):
//   NumericArrayConverter<int8_t, int4b_t, 8>                   s4 to int8 (inline PTX)
//   NumericArrayConverter<float_e4m3_t, int4b_t, 8>             s4 to e4m3 (two PRMT tables, a PRMT select)
//   NumericArrayConverter<float_e4m3_t, uint4b_t, 8>            u4 to e4m3 (the same, unsigned tables)
//   NumericArrayConverter<float_e4m3_t / float_e5m2_t, float_e2m1_t, 8>: no packed converter in 4.2;
//     the generic PackedNumericArrayConverter, element by element (e2m1 decoded to float in software,
//     then one float-to-fp8 conversion per value). Its SASS has loops and branches, so its static count
//     is not what it executes.
#include <dq4/dq4.cuh>

#include <cutlass/numeric_conversion.h>

#include <cstdint>
#include <cstring>

#include "probe_words.cuh"

namespace {

using dq4::format;

using dq4_probes::no_group;
using dq4_probes::result_registers;

// CUTLASS's NumericArrayConverter<Result, Source, 8> on one word (eight nibbles, nibble j = element j).
template <class Result, class Source>
struct cutlass_conversion {
  static constexpr int registers = 2;
  __device__ result_registers<2> operator()(std::uint32_t word, no_group) const {
    cutlass::Array<Source, 8> source;
    std::memcpy(&source, &word, sizeof word);
    const cutlass::Array<Result, 8> result = cutlass::NumericArrayConverter<Result, Source, 8>{}(source);
    static_assert(sizeof result == 8, "eight 8-bit values");
    result_registers<2> out;
    std::memcpy(&out, &result, sizeof out);
    return out;
  }
};

// dq4::dequantize<F, E, sequential> on one word.
template <format F, dq4::encoding E>
struct dq4_conversion {
  static constexpr int registers = dq4::fragment<F, 8>::registers;
  __device__ result_registers<registers> operator()(std::uint32_t word, no_group) const {
    const dq4::fragment<F, 8> f = dq4::dequantize<F, E, dq4::order::sequential>(word);
    result_registers<registers> out;
    for (int k = 0; k < registers; ++k) out.r[k] = f.regs[k];
    return out;
  }
};

}  // namespace

#define DQ4_PROBE_PAIR(name, ...)                                                                          \
  extern "C" __global__ void probe_##name##_sequential_w32_n1(const void* in, void* out) {                \
    dq4_probes::convert_words<__VA_ARGS__, no_group, 1>(in, out);                                                                \
  }                                                                                                        \
  extern "C" __global__ void probe_##name##_sequential_w32_n2(const void* in, void* out) {                \
    dq4_probes::convert_words<__VA_ARGS__, no_group, 2>(in, out);                                                                \
  }

DQ4_PROBE_PAIR(cutlass_int8_s4, cutlass_conversion<std::int8_t, cutlass::int4b_t>)
DQ4_PROBE_PAIR(cutlass_e4m3_s4, cutlass_conversion<cutlass::float_e4m3_t, cutlass::int4b_t>)
DQ4_PROBE_PAIR(cutlass_e4m3_u4, cutlass_conversion<cutlass::float_e4m3_t, cutlass::uint4b_t>)
DQ4_PROBE_PAIR(cutlass_e4m3_e2m1, cutlass_conversion<cutlass::float_e4m3_t, cutlass::float_e2m1_t>)
DQ4_PROBE_PAIR(cutlass_e5m2_e2m1, cutlass_conversion<cutlass::float_e5m2_t, cutlass::float_e2m1_t>)

DQ4_PROBE_PAIR(dq4_int8_s4, dq4_conversion<format::int8, dq4::encoding::s4>)
DQ4_PROBE_PAIR(dq4_e4m3_s4, dq4_conversion<format::e4m3, dq4::encoding::s4>)
DQ4_PROBE_PAIR(dq4_e4m3_u4, dq4_conversion<format::e4m3, dq4::encoding::u4>)
DQ4_PROBE_PAIR(dq4_e4m3_e2m1, dq4_conversion<format::e4m3, dq4::encoding::e2m1>)
DQ4_PROBE_PAIR(dq4_e5m2_e2m1, dq4_conversion<format::e5m2, dq4::encoding::e2m1>)
