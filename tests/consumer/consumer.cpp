// SPDX-License-Identifier: Apache-2.0
// Host use of dq4 from a consumer project: pack, read back with the portable path, and the README's
// checkpoint example (readme_host.hpp, copied from README.md as it stands) on a GPTQ v1 layer whose
// zeros word GPTQModel wrote with a borrow.
#include <dq4/dq4.cuh>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "readme_host.hpp"

int main() {
  const std::uint32_t word = dq4::pack<dq4::s4, dq4::sequential>({-8, -1, 0, 1, 2, 3, 6, 7});
  const dq4::fp16x8 values = dq4::to_fp16<dq4::s4, dq4::sequential>(word);
  bool ok = values.bits(0) == 0xC800 && values.bits(1) == 0xBC00 && values.bits(7) == 0x4700;

  // 32 rows x 8 columns, one group: zeros 9 8 9 0 6 9 6 8, stored by GPTQModel as 0x7584F878.
  const std::vector<std::int32_t> qweight(4 * 8, 0x33333333);  // every q = 3
  const std::int32_t qzeros[1] = {static_cast<std::int32_t>(0x7584F878u)};
  const std::vector<std::uint16_t> scales(8, 0x222A);
  const dq4::packed_matrix m = load_gptq_v1(qweight.data(), qzeros, scales.data(), 32, 8, 32);
  ok = ok && m.zero(0, 3) == 0 && m.zero(0, 4) == 6 && m.weight(31, 7) == 3;
  std::printf("consumer: %s\n", ok ? "ok" : "WRONG BITS");
  return ok ? 0 : 1;
}
