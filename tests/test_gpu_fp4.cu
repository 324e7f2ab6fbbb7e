// SPDX-License-Identifier: Apache-2.0
// Block-scaled fp4 and codebooks on the GPU, every fast path against its reference, bit for bit:
//   - MXFP4 (e2m1 times an e8m0 block scale) to fp16, bf16 and fp32 in both orders: every scale byte
//     with every nibble value in every position (2^32 indices), all 2^32 words for seven fixed scale
//     bytes (E = 127, the subnormal and overflow edges of fp16, 0, 254 and the NaN 255), and block
//     scales prepared on the host used on the device;
//   - NVFP4 (e2m1 times s_F = round_F(s * g)): every e4m3 scale byte with 1024 tensor scales g (every
//     power of two of fp32, exporter-like values, raw bit patterns) and varied words;
//   - codebooks: NF4 in fp16 and bf16 over all 2^32 words; a codebook times every 16-bit scale pattern
//     with every nibble value in every position; bitsandbytes' two roundings for every fp32 absmax
//     pattern (2^32), each with its own word.
// Without a usable GPU every test here skips and says why.
#include <dq4/dq4.cuh>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gpu_harness.cuh"
#include "paths.hpp"

namespace {

using namespace dq4_gpu_test;
using dq4::encoding;
using dq4::format;
using dq4::order;

// A word whose low `bits` bits are the index's (every nibble value combination there) and whose
// other nibbles come from a hash of them.
template <int Bits>
__host__ __device__ constexpr std::uint32_t word_of(std::uint32_t i) {
  const std::uint32_t low = i & ((1u << Bits) - 1u);
  return low | (scrambled(low) << Bits);
}

std::string format_order(format f, order o) { return dq4_test::format_name(f) + " " + dq4_test::order_name(o); }

// ---- MXFP4 -------------------------------------------------------------------------------------

// Scale < 0: the top byte of the index is the scale byte, the low 24 bits the word's nibbles 0..5.
// Scale >= 0: every 32-bit word with that scale byte.
template <format F, order O, int Scale>
struct mxfp4_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = 32;
  static std::string name() {
    return format_order(F, O) + " e2m1 e8m0 " + (Scale < 0 ? std::string("every scale") : std::to_string(Scale));
  }
  __host__ __device__ static dq4::e8m0 scale(std::uint32_t i) {
    return dq4::e8m0{static_cast<std::uint8_t>(Scale < 0 ? i >> 24 : static_cast<std::uint32_t>(Scale))};
  }
  __host__ __device__ static std::uint32_t word(std::uint32_t i) { return Scale < 0 ? word_of<24>(i) : i; }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    const dq4::block_scale<F> block = dq4::prepare_block_scale<F>(scale(i));
    store<F>(dq4::dequantize<F, encoding::e2m1, O>(word(i), block), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::reference::dequantize<F, encoding::e2m1, O>(word(i), scale(i)), out);
  }
};

template <format F, order O>
struct mxfp4_case {
  static constexpr format value_format = F;
  static constexpr order value_order = O;
};
using mxfp4_cases = ::testing::Types<mxfp4_case<format::fp16, order::interleaved>, mxfp4_case<format::fp16, order::sequential>,
                                     mxfp4_case<format::bf16, order::interleaved>, mxfp4_case<format::bf16, order::sequential>,
                                     mxfp4_case<format::fp32, order::interleaved>, mxfp4_case<format::fp32, order::sequential>>;

template <class C>
class GpuMxfp4Path : public ::testing::Test {};
TYPED_TEST_SUITE(GpuMxfp4Path, mxfp4_cases);

TYPED_TEST(GpuMxfp4Path, EveryScaleByteEveryNibbleEveryPosition) {
  expect_exhaustively_equal<mxfp4_path<TypeParam::value_format, TypeParam::value_order, -1>>();
}

// E = 127 (1), 140 and 141 (fp16's last finite and first infinite 6 * 2^k), 103 and 102 (fp16's
// subnormal ties), 0 (bf16 and fp32 subnormals), 254 (their overflow) and 255 (NaN).
template <format F, order O, int... S>
void expect_every_word_for_scales(std::integer_sequence<int, S...>) {
  (expect_exhaustively_equal<mxfp4_path<F, O, S>>(), ...);
}
TYPED_TEST(GpuMxfp4Path, EveryWordForFixedScales) {
  expect_every_word_for_scales<TypeParam::value_format, TypeParam::value_order>(
      std::integer_sequence<int, 127, 140, 141, 103, 102, 0, 254, 255>{});
}

// Block scales prepared on the host, copied and used on the device: the device's own preparation
// gives the same registers, and dequantize the reference's bits (every scale byte, 256 words each).
template <format F, order O>
__global__ void host_prepared_mxfp4_kernel(const dq4::block_scale<F>* host_prepared, dq4::block_scale<F>* device_prepared,
                                           std::uint32_t* out) {
  const unsigned s = blockIdx.x;
  if (threadIdx.x == 0) device_prepared[s] = dq4::prepare_block_scale<F>(dq4::e8m0{static_cast<std::uint8_t>(s)});
  store<F>(dq4::dequantize<F, encoding::e2m1, O>(scrambled(s * 256 + threadIdx.x), host_prepared[s]),
           out + (std::size_t{s} * 256 + threadIdx.x) * registers_of<F>);
}

TYPED_TEST(GpuMxfp4Path, PreparedOnTheHostUsedOnTheDevice) {
  DQ4_REQUIRE_GPU();
  constexpr format F = TypeParam::value_format;
  constexpr order O = TypeParam::value_order;
  std::vector<dq4::block_scale<F>> prepared;
  for (unsigned s = 0; s < 256; ++s) prepared.push_back(dq4::prepare_block_scale<F>(dq4::e8m0{static_cast<std::uint8_t>(s)}));
  const std::size_t results = 256 * 256 * registers_of<F>;
  dq4::block_scale<F>*d_host = nullptr, *d_device = nullptr;
  std::uint32_t* d_out = nullptr;
  DQ4_CUDA_OK(cudaMalloc(&d_host, 256 * sizeof(dq4::block_scale<F>)));
  DQ4_CUDA_OK(cudaMalloc(&d_device, 256 * sizeof(dq4::block_scale<F>)));
  DQ4_CUDA_OK(cudaMalloc(&d_out, results * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMemset(d_device, 0xEE, 256 * sizeof(dq4::block_scale<F>)));  // poison
  DQ4_CUDA_OK(cudaMemset(d_out, 0xEE, results * sizeof(std::uint32_t)));
  DQ4_CUDA_OK(cudaMemcpy(d_host, prepared.data(), 256 * sizeof(dq4::block_scale<F>), cudaMemcpyHostToDevice));
  host_prepared_mxfp4_kernel<F, O><<<256, 256>>>(d_host, d_device, d_out);
  DQ4_LAUNCH_OK();
  std::vector<dq4::block_scale<F>> device_prepared(256);
  std::vector<std::uint32_t> out(results);
  DQ4_CUDA_OK(cudaMemcpy(device_prepared.data(), d_device, 256 * sizeof(dq4::block_scale<F>), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaMemcpy(out.data(), d_out, results * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  DQ4_CUDA_OK(cudaFree(d_host));
  DQ4_CUDA_OK(cudaFree(d_device));
  DQ4_CUDA_OK(cudaFree(d_out));
  mismatch_log log;
  for (unsigned s = 0; s < 256; ++s) {
    for (int r = 0; r < dq4::detail::block_scale_registers(F); ++r) {
      EXPECT_EQ(device_prepared[s].table[r], prepared[s].table[r]) << "scale byte " << s << " register " << r;
    }
    EXPECT_EQ(device_prepared[s].scale.bits, s);
    for (unsigned t = 0; t < 256; ++t) {
      std::uint32_t expected[8];
      store<F>(dq4::reference::dequantize<F, encoding::e2m1, O>(scrambled(s * 256 + t), dq4::e8m0{static_cast<std::uint8_t>(s)}), expected);
      log.compare(out.data() + (std::size_t{s} * 256 + t) * registers_of<F>, expected, registers_of<F>,
                  [&] { return "scale byte " + std::to_string(s) + " word " + hex_word(scrambled(s * 256 + t)); });
    }
  }
  EXPECT_EQ(log.count(), 0u) << log.first();
}

// ---- NVFP4 -------------------------------------------------------------------------------------

// Tensor scale t of 1024: t < 277 every power of two 2^(t - 149) of fp32 (subnormals first);
// t < 768 normal values near those exporters write (exponent field 100..139, mantissa from a hash);
// the rest raw bit patterns (any sign, exponent, NaN or infinity).
__host__ __device__ constexpr std::uint32_t tensor_scale_bits(std::uint32_t t) {
  if (t < 277) {
    const int e = static_cast<int>(t) - 149;  // 2^e
    return e < -126 ? 1u << (e + 149) : static_cast<std::uint32_t>(e + 127) << 23;
  }
  if (t < 768) return (100u + scrambled(t) % 40u) << 23 | (scrambled(t * 7u) & 0x7FFFFFu);
  return scrambled(t);
}

__host__ __device__ inline float float_of(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Index: scale byte (8 bits), tensor scale (10 bits), word nibbles 0..3 (14 bits, and a hash above).
template <format F, order O>
struct nvfp4_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = 32;
  static std::string name() { return format_order(F, O) + " e2m1 nvfp4 scale"; }
  __host__ __device__ static std::uint8_t scale(std::uint32_t i) { return static_cast<std::uint8_t>(i >> 24); }
  __host__ __device__ static std::uint32_t tensor_scale(std::uint32_t i) { return tensor_scale_bits((i >> 14) & 1023u); }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    const dq4::fragment<F, 8> s = dq4::prepare_nvfp4_scale<F>(scale(i), float_of(tensor_scale(i)));
    store<F>(dq4::dequantize<F, encoding::e2m1, O>(word_of<14>(i), s), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    const dq4::fragment<F, 8> s = dq4::splat<F>(dq4::reference::nvfp4_scale(F, scale(i), tensor_scale(i)));
    store<F>(dq4::reference::dequantize<F, encoding::e2m1, O>(word_of<14>(i), s), out);
  }
};

// The scale alone, for every scale byte and tensor scale (the path above sees it only through q * s_F).
template <format F>
struct nvfp4_scale_sample {
  static constexpr int registers = 1;
  static constexpr int log2_count = 18;
  static std::string name() { return dq4_test::format_name(F) + " nvfp4 scale alone"; }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    out[0] = dq4::prepare_nvfp4_scale<F>(static_cast<std::uint8_t>(i >> 10), float_of(tensor_scale_bits(i & 1023u))).regs[0];
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    out[0] = dq4::splat<F>(dq4::reference::nvfp4_scale(F, static_cast<std::uint8_t>(i >> 10), tensor_scale_bits(i & 1023u))).regs[0];
  }
};

template <class C>
class GpuNvfp4Path : public ::testing::Test {};
TYPED_TEST_SUITE(GpuNvfp4Path, mxfp4_cases);

TYPED_TEST(GpuNvfp4Path, EveryScaleByteWithTensorScalesAndWords) {
  expect_exhaustively_equal<nvfp4_path<TypeParam::value_format, TypeParam::value_order>>();
}
TYPED_TEST(GpuNvfp4Path, ScaleAloneForEveryScaleByteAndTensorScale) {
  expect_exhaustively_equal<nvfp4_scale_sample<TypeParam::value_format>>();
}

// ---- Codebooks ---------------------------------------------------------------------------------

// bitsandbytes' two tables: NF4, and its FP4 (which is not e2m1).
enum class table { nf4, bnb_fp4 };
__host__ __device__ constexpr dq4::codebook_values values_of(table t) {
  return t == table::nf4 ? dq4::nf4_values() : dq4::bnb_fp4_values();
}
std::string table_name(table t) { return t == table::nf4 ? "nf4" : "bnb fp4"; }

template <format F>
__host__ __device__ dq4::codebook<F> nf4_book() {
  return dq4::codebook_of<F>(dq4::nf4_values().value);
}

// Every 32-bit word with a codebook of the table's values in F.
template <format F, order O, table T>
struct codebook_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = 32;
  static std::string name() { return format_order(F, O) + " " + table_name(T) + " codebook"; }
  __host__ __device__ static dq4::codebook<F> book() { return dq4::codebook_of<F>(values_of(T).value); }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) { store<F>(dq4::dequantize<F, O>(i, book()), out); }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::reference::dequantize<F, O>(i, book()), out);
  }
};

// Every 16-bit scale pattern (the top half of the index) with the word's nibbles 0..3 from the low half.
template <format F, order O>
struct scaled_codebook_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = 32;
  static std::string name() { return format_order(F, O) + " nf4 codebook every scale"; }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::dequantize<F, O>(word_of<16>(i), nf4_book<F>(), dq4::splat<F>(i >> 16)), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::reference::dequantize<F, O>(word_of<16>(i), nf4_book<F>(), dq4::splat<F>(i >> 16)), out);
  }
};

// bitsandbytes' arithmetic for every fp32 absmax pattern (the index), each with its own word.
template <format F, order O, table T>
struct bitsandbytes_path {
  static constexpr int registers = registers_of<F>;
  static constexpr int log2_count = 32;
  static std::string name() { return format_order(F, O) + " bitsandbytes " + table_name(T) + " every absmax"; }
  __device__ static void fast(std::uint32_t i, std::uint32_t* out) {
    store<F>(dq4::dequantize<F, O>(scrambled(i), dq4::bitsandbytes_codebook<F>(values_of(T).value, float_of(i))), out);
  }
  __host__ __device__ static void expected(std::uint32_t i, std::uint32_t* out) {
    const dq4::codebook_values values = values_of(T);
    std::uint32_t bits[16] = {};
    for (int n = 0; n < 16; ++n) {
      std::uint32_t entry;
      std::memcpy(&entry, &values.value[n], sizeof entry);
      bits[n] = dq4::reference::bitsandbytes_value(F, entry, i);
    }
    store<F>(dq4::reference::dequantize<F, O>(scrambled(i), dq4::make_codebook<F>(bits)), out);
  }
};

template <format F, order O>
struct codebook_case {
  static constexpr format value_format = F;
  static constexpr order value_order = O;
};
using codebook_cases = ::testing::Types<codebook_case<format::fp16, order::interleaved>, codebook_case<format::fp16, order::sequential>,
                                        codebook_case<format::bf16, order::interleaved>, codebook_case<format::bf16, order::sequential>>;

template <class C>
class GpuCodebookPath : public ::testing::Test {};
TYPED_TEST_SUITE(GpuCodebookPath, codebook_cases);

TYPED_TEST(GpuCodebookPath, EveryWord) {
  expect_exhaustively_equal<codebook_path<TypeParam::value_format, TypeParam::value_order, table::nf4>>();
  expect_exhaustively_equal<codebook_path<TypeParam::value_format, TypeParam::value_order, table::bnb_fp4>>();
}
TYPED_TEST(GpuCodebookPath, EveryScalePatternEveryNibbleEveryPosition) {
  expect_exhaustively_equal<scaled_codebook_path<TypeParam::value_format, TypeParam::value_order>>();
}
TYPED_TEST(GpuCodebookPath, BitsandbytesEveryAbsmax) {
  expect_exhaustively_equal<bitsandbytes_path<TypeParam::value_format, TypeParam::value_order, table::nf4>>();
  expect_exhaustively_equal<bitsandbytes_path<TypeParam::value_format, TypeParam::value_order, table::bnb_fp4>>();
}

}  // namespace
