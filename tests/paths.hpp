// SPDX-License-Identifier: Apache-2.0
// The six (encoding, order) paths, for tests that check each one the same way.
#pragma once

#include <dq4/dq4.cuh>

namespace dq4_test {

template <dq4::encoding E, dq4::order O>
struct path {
  static constexpr dq4::encoding encoding = E;
  static constexpr dq4::order order = O;
};

// Calls f(path<E, O>{}) for every encoding and order; f reads them as decltype(p)::encoding etc.
template <class F>
void for_each_path(F&& f) {
  f(path<dq4::encoding::u4, dq4::order::interleaved>{});
  f(path<dq4::encoding::u4b8, dq4::order::interleaved>{});
  f(path<dq4::encoding::s4, dq4::order::interleaved>{});
  f(path<dq4::encoding::u4, dq4::order::sequential>{});
  f(path<dq4::encoding::u4b8, dq4::order::sequential>{});
  f(path<dq4::encoding::s4, dq4::order::sequential>{});
}

}  // namespace dq4_test
