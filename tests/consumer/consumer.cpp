// SPDX-License-Identifier: Apache-2.0
// Host use of dq4 from a consumer project: pack, then read back with the portable path.
#include <dq4/dq4.cuh>

#include <cstdio>

int main() {
  const std::uint32_t word = dq4::pack<dq4::s4, dq4::sequential>({-8, -1, 0, 1, 2, 3, 6, 7});
  const dq4::fp16x8 values = dq4::to_fp16<dq4::s4, dq4::sequential>(word);
  const bool ok = values.bits(0) == 0xC800 && values.bits(1) == 0xBC00 && values.bits(7) == 0x4700;
  std::printf("consumer: %s\n", ok ? "ok" : "WRONG BITS");
  return ok ? 0 : 1;
}
