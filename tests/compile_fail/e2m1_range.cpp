// SPDX-License-Identifier: Apache-2.0
// e2m1 is not an integer encoding: it has no min_value / max_value.
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return dq4::min_value<dq4::e2m1>;
#else
  return dq4::min_value<dq4::s4>;
#endif
}
