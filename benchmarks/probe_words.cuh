// SPDX-License-Identifier: Apache-2.0
// The probe harness of benchmarks/cutlass_probes.cu and benchmarks/marlin_probes.cu (tests/sass/probes.cu
// has dq4's own, with its per-group registers): a probe thread loads `Words` packed words and the
// per-group registers its conversion needs, converts each word (Convert{}(word, group)) and stores
// each result register on its own.
#pragma once

#include <cstdint>

namespace dq4_probes {

template <int Registers>
struct result_registers {
  std::uint32_t r[Registers];
};

/// The per-group registers of a conversion that needs none.
struct no_group {};

/// One probe thread's slice: the words, and the group registers loaded with them, in the n1 and n2
/// probes alike, so that they are values in registers (not constants ptxas could fold into the first
/// word's arithmetic).
template <int Words, class Group>
struct alignas(16) probe_input {
  std::uint32_t w[Words];
  Group group;
};

template <class Convert, class Group, int Words>
__device__ void convert_words(const void* in, void* out) {
  constexpr int per_word = Convert::registers;
  const probe_input<Words, Group> p = static_cast<const probe_input<Words, Group>*>(in)[threadIdx.x];
  result_registers<per_word * Words> results;
#pragma unroll
  for (int i = 0; i < Words; ++i) {
    const result_registers<per_word> r = Convert{}(p.w[i], p.group);
#pragma unroll
    for (int k = 0; k < per_word; ++k) results.r[per_word * i + k] = r.r[k];
  }
  static_cast<result_registers<per_word * Words>*>(out)[threadIdx.x] = results;
}

}  // namespace dq4_probes
