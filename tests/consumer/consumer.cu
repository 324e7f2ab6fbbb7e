// SPDX-License-Identifier: Apache-2.0
// Device use of dq4 from a consumer project: the README's kernels (readme_device.cuh, copied from
// README.md as they stand), launched where a GPU is present and checked bit for bit against the
// reference; elsewhere compiled only, which it says.
#include <dq4/dq4.cuh>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "readme_device.cuh"

namespace {

bool ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) std::fprintf(stderr, "consumer_cuda: %s: %s\n", what, cudaGetErrorString(status));
  return status == cudaSuccess;
}

template <class T>
T* device_buffer(const std::vector<T>& host) {
  T* d = nullptr;
  if (!ok(cudaMalloc(&d, host.size() * sizeof(T)), "cudaMalloc")) return nullptr;
  if (!ok(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy")) return nullptr;
  return d;
}

template <class T>
bool read_back(const T* d, std::vector<T>& host) {
  return ok(cudaMemcpy(host.data(), d, host.size() * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy");
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("consumer_cuda: no CUDA device: the README's kernels were compiled, not run\n");
    return 0;
  }
  std::uint32_t state = 2024;
  const auto next = [&state] { return state = state * 1664525u + 1013904223u; };

  // dequantize_awq: 32 threads, one uint4 each, 32 fp16 values per thread.
  std::vector<std::uint32_t> words(4 * 32);
  for (auto& w : words) w = next();
  std::vector<std::uint32_t> out(16 * 32, 0xDEADBEEFu);  // poisoned
  uint4* d_packed = reinterpret_cast<uint4*>(device_buffer(words));
  std::uint32_t* d_out = device_buffer(out);
  if (d_packed == nullptr || d_out == nullptr) return 1;
  dequantize_awq<<<1, 32>>>(d_packed, reinterpret_cast<__half2*>(d_out));
  if (!ok(cudaGetLastError(), "dequantize_awq") || !ok(cudaDeviceSynchronize(), "dequantize_awq")) return 1;
  if (!read_back(d_out, out)) return 1;
  int wrong = 0;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const auto expected = dq4::reference::dequantize<dq4::format::fp16, dq4::u4, dq4::interleaved>(words[i]);
    for (int r = 0; r < 4; ++r) wrong += out[4 * i + static_cast<std::size_t>(r)] != expected.regs[r];
  }

  // dequantize_awq_group: 64 rows of one group, its zeros word and eight bf16 scales.
  constexpr int rows = 64;
  std::vector<std::uint32_t> qweight(rows);
  for (auto& w : qweight) w = next();
  const std::uint32_t qzeros = next();
  const std::vector<std::uint16_t> scales = {0x3F80, 0xBEAB, 0x0001, 0x7F7F, 0x3DCD, 0xC000, 0x0080, 0x3EAB};
  std::vector<std::uint32_t> group_out(4 * rows, 0xDEADBEEFu);
  std::uint32_t* d_qweight = device_buffer(qweight);
  std::uint16_t* d_scales = device_buffer(scales);
  std::uint32_t* d_group_out = device_buffer(group_out);
  if (d_qweight == nullptr || d_scales == nullptr || d_group_out == nullptr) return 1;
  dequantize_awq_group<<<1, 1>>>(d_qweight, qzeros, reinterpret_cast<const uint4*>(d_scales), rows,
                                 reinterpret_cast<__nv_bfloat162*>(d_group_out));
  if (!ok(cudaGetLastError(), "dequantize_awq_group") || !ok(cudaDeviceSynchronize(), "dequantize_awq_group")) return 1;
  if (!read_back(d_group_out, group_out)) return 1;
  std::uint32_t scale_bits[8];
  for (int j = 0; j < 8; ++j) scale_bits[j] = scales[static_cast<std::size_t>(j)];
  const auto s = dq4::reference::assemble<dq4::format::bf16>(scale_bits);
  for (int k = 0; k < rows; ++k) {
    const auto expected = dq4::reference::dequantize<dq4::format::bf16, dq4::zeros::awq, dq4::interleaved>(
        qweight[static_cast<std::size_t>(k)], qzeros, s);
    for (int r = 0; r < 4; ++r) wrong += group_out[static_cast<std::size_t>(4 * k + r)] != expected.regs[r];
  }

  // gptq_int8_operands: 16 words of column 5, GPTQ v1 zeros.
  constexpr int column = 5, int8_words = 16;
  std::vector<std::uint32_t> int8_out(2 * int8_words, 0xDEADBEEFu);
  std::uint32_t* d_int8_out = device_buffer(int8_out);
  if (d_int8_out == nullptr) return 1;
  gptq_int8_operands<<<1, 1>>>(d_qweight, qzeros, column, int8_words, d_int8_out);
  if (!ok(cudaGetLastError(), "gptq_int8_operands") || !ok(cudaDeviceSynchronize(), "gptq_int8_operands")) return 1;
  if (!read_back(d_int8_out, int8_out)) return 1;
  const int z = static_cast<int>(((qzeros + 0x11111111u) >> (4 * column)) & 0xFu);  // GPTQ v1: the word add
  for (int i = 0; i < int8_words; ++i) {
    for (int k = 0; k < 8; ++k) {
      const int q = static_cast<int>((qweight[static_cast<std::size_t>(i)] >> (4 * k)) & 0xFu);
      const std::uint32_t byte = (int8_out[static_cast<std::size_t>(2 * i + k / 4)] >> (8 * (k % 4))) & 0xFFu;
      wrong += byte != (static_cast<std::uint32_t>(q - z) & 0xFFu);
    }
  }

  // mxfp4_to_e4m3: 32 blocks, scale bytes 0..255 in steps of 8 plus the NaN byte.
  constexpr int blocks = 32;
  std::vector<std::uint32_t> mx(4 * blocks);
  for (auto& w : mx) w = next();
  std::vector<std::uint8_t> mx_scales(blocks);
  for (int i = 0; i < blocks; ++i) mx_scales[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i == 31 ? 0xFF : 8 * i + 3);
  std::vector<std::uint32_t> mx_out(8 * blocks, 0xDEADBEEFu);
  uint4* d_mx = reinterpret_cast<uint4*>(device_buffer(mx));
  std::uint8_t* d_mx_scales = device_buffer(mx_scales);
  uint4* d_mx_out = reinterpret_cast<uint4*>(device_buffer(mx_out));
  if (d_mx == nullptr || d_mx_scales == nullptr || d_mx_out == nullptr) return 1;
  mxfp4_to_e4m3<<<1, blocks>>>(d_mx, d_mx_scales, d_mx_out);
  if (!ok(cudaGetLastError(), "mxfp4_to_e4m3") || !ok(cudaDeviceSynchronize(), "mxfp4_to_e4m3")) return 1;
  if (!read_back(reinterpret_cast<const std::uint32_t*>(d_mx_out), mx_out)) return 1;
  for (std::size_t i = 0; i < mx.size(); ++i) {
    const auto expected = dq4::reference::dequantize<dq4::format::e4m3, dq4::e2m1, dq4::sequential>(
        mx[i], dq4::e8m0{mx_scales[i / 4]});
    for (int r = 0; r < 2; ++r) wrong += mx_out[2 * i + static_cast<std::size_t>(r)] != expected.regs[r];
  }
  for (void* p : {static_cast<void*>(d_packed), static_cast<void*>(d_out), static_cast<void*>(d_qweight),
                  static_cast<void*>(d_scales), static_cast<void*>(d_group_out), static_cast<void*>(d_int8_out),
                  static_cast<void*>(d_mx), static_cast<void*>(d_mx_scales), static_cast<void*>(d_mx_out)}) {
    if (!ok(cudaFree(p), "cudaFree")) return 1;
  }
  std::printf("consumer_cuda: the README's kernels ran: %d wrong registers\n", wrong);
  return wrong == 0 ? 0 : 1;
}
