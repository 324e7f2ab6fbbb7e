// SPDX-License-Identifier: Apache-2.0
// pack takes exactly eight values: a shorter braced list is not padded with zeros.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return static_cast<int>(dq4::pack<dq4::u4, dq4::sequential>({1, 2, 3}));
#else
  return static_cast<int>(dq4::pack<dq4::u4, dq4::sequential>({1, 2, 3, 0, 0, 0, 0, 0}));
#endif
}
