// SPDX-License-Identifier: Apache-2.0
// The dequantization paths, for tests that check each one the same way.
#pragma once

#include <dq4/dq4.cuh>

namespace dq4_test {

template <dq4::format F, dq4::encoding E, dq4::order O>
struct path {
  static constexpr dq4::format format = F;
  static constexpr dq4::encoding encoding = E;
  static constexpr dq4::order order = O;
};

template <dq4::format F, class Fn>
void for_each_order_and_encoding(Fn&& f) {
  f(path<F, dq4::encoding::u4, dq4::order::interleaved>{});
  f(path<F, dq4::encoding::u4b8, dq4::order::interleaved>{});
  f(path<F, dq4::encoding::s4, dq4::order::interleaved>{});
  f(path<F, dq4::encoding::u4, dq4::order::sequential>{});
  f(path<F, dq4::encoding::u4b8, dq4::order::sequential>{});
  f(path<F, dq4::encoding::s4, dq4::order::sequential>{});
  if constexpr (F != dq4::format::fp32) {
    f(path<F, dq4::encoding::e2m1, dq4::order::interleaved>{});
    f(path<F, dq4::encoding::e2m1, dq4::order::sequential>{});
  }
}

// Calls f(path<F, E, O>{}) for every format, encoding and order dq4 supports (22 paths); f reads
// them as decltype(p)::format etc.
template <class Fn>
void for_each_path(Fn&& f) {
  for_each_order_and_encoding<dq4::format::fp16>(f);
  for_each_order_and_encoding<dq4::format::bf16>(f);
  for_each_order_and_encoding<dq4::format::fp32>(f);
}

// The zero-point conventions, for tests that check each one the same way.
template <dq4::format F, dq4::zeros Z, dq4::order O>
struct zero_path {
  static constexpr dq4::format format = F;
  static constexpr dq4::zeros zeros = Z;
  static constexpr dq4::order order = O;
};

template <dq4::format F, class Fn>
void for_each_zero_path(Fn&& f) {
  f(zero_path<F, dq4::zeros::awq, dq4::order::interleaved>{});
  f(zero_path<F, dq4::zeros::gptq_v1, dq4::order::interleaved>{});
  f(zero_path<F, dq4::zeros::gptq_v2, dq4::order::interleaved>{});
  f(zero_path<F, dq4::zeros::awq, dq4::order::sequential>{});
  f(zero_path<F, dq4::zeros::gptq_v1, dq4::order::sequential>{});
  f(zero_path<F, dq4::zeros::gptq_v2, dq4::order::sequential>{});
}

}  // namespace dq4_test
