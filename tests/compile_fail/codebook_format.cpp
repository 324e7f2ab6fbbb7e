// SPDX-License-Identifier: Apache-2.0
// Codebooks hold fp16 or bf16 entries; another format is a compile error that says what to do.
#include <dq4/dq4.cuh>

int main() {
  const std::uint32_t bits[16] = {};
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::make_codebook<dq4::format::fp32>(bits).low[0]);
#else
  return static_cast<int>(dq4::make_codebook<dq4::format::fp16>(bits).low[0]);
#endif
}
