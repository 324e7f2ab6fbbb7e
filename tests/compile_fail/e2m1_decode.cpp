// SPDX-License-Identifier: Apache-2.0
// reference::decode reads integer encodings only (e2m1 values are reference::element's).
#include <dq4/dq4.cuh>

int main() {
#if defined(DQ4_EXPECT_ERROR)
  return dq4::reference::decode<dq4::e2m1>(3u);
#else
  return dq4::reference::decode<dq4::u4b8>(3u);
#endif
}
