// SPDX-License-Identifier: Apache-2.0
// An oracle written independently of dq4's reference: the bit patterns of every value each encoding
// can produce, typed in from the IEEE 754 layouts (fp16: 1/5/10 bits, bf16: 1/8/7 bits) or taken
// from the host compiler's own float conversion (fp32), and the two orders as lists.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include <dq4/dq4.cuh>

namespace dq4_test {

// fp16 and bf16 bits of the integers -8..15 (index = value + 8).
inline constexpr std::array<std::uint16_t, 24> fp16_of_integer = {
    0xC800, 0xC700, 0xC600, 0xC500, 0xC400, 0xC200, 0xC000, 0xBC00,  // -8 .. -1
    0x0000, 0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700,  //  0 ..  7
    0x4800, 0x4880, 0x4900, 0x4980, 0x4A00, 0x4A80, 0x4B00, 0x4B80,  //  8 .. 15
};
inline constexpr std::array<std::uint16_t, 24> bf16_of_integer = {
    0xC100, 0xC0E0, 0xC0C0, 0xC0A0, 0xC080, 0xC040, 0xC000, 0xBF80,  // -8 .. -1
    0x0000, 0x3F80, 0x4000, 0x4040, 0x4080, 0x40A0, 0x40C0, 0x40E0,  //  0 ..  7
    0x4100, 0x4110, 0x4120, 0x4130, 0x4140, 0x4150, 0x4160, 0x4170,  //  8 .. 15
};

// fp4 e2m1 nibbles 0..7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6; nibbles 8..15 the same with the sign set.
inline constexpr std::array<std::uint16_t, 8> fp16_of_e2m1 = {0x0000, 0x3800, 0x3C00, 0x3E00,
                                                              0x4000, 0x4200, 0x4400, 0x4600};
inline constexpr std::array<std::uint16_t, 8> bf16_of_e2m1 = {0x0000, 0x3F00, 0x3F80, 0x3FC0,
                                                              0x4000, 0x4040, 0x4080, 0x40C0};

// The value each nibble 0..15 stands for, per integer encoding.
inline constexpr std::array<int, 16> u4_values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
inline constexpr std::array<int, 16> u4b8_values = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
inline constexpr std::array<int, 16> s4_values = {0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1};

constexpr const std::array<int, 16>& oracle_values(dq4::encoding e) {
  return e == dq4::encoding::u4 ? u4_values : e == dq4::encoding::u4b8 ? u4b8_values : s4_values;
}

inline std::uint32_t fp32_bits_of(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// Bits of the value nibble n stands for, under encoding e, in format f (fp16, bf16, fp32).
inline std::uint32_t oracle_bits(dq4::format f, dq4::encoding e, unsigned n) {
  if (e == dq4::encoding::e2m1) {
    const std::uint32_t sign = (n & 8u) != 0 ? 0x8000u : 0u;
    return sign | (f == dq4::format::fp16 ? fp16_of_e2m1 : bf16_of_e2m1)[n & 7u];
  }
  const int v = oracle_values(e)[n];
  switch (f) {
    case dq4::format::fp16: return fp16_of_integer[static_cast<std::size_t>(v + 8)];
    case dq4::format::bf16: return bf16_of_integer[static_cast<std::size_t>(v + 8)];
    case dq4::format::fp32: return fp32_bits_of(static_cast<float>(v));
    default: break;  // the 8-bit formats have their own oracles (test_eight_bit.cpp)
  }
  return 0;
}

constexpr std::uint16_t oracle_fp16(dq4::encoding e, unsigned nibble) {
  return fp16_of_integer[static_cast<std::size_t>(oracle_values(e)[nibble] + 8)];
}

// Nibble that output j comes from.
inline constexpr std::array<int, 8> interleaved_source = {0, 4, 1, 5, 2, 6, 3, 7};
inline constexpr std::array<int, 8> sequential_source = {0, 1, 2, 3, 4, 5, 6, 7};

constexpr int oracle_source(dq4::order o, int j) {
  return (o == dq4::order::interleaved ? interleaved_source : sequential_source)[static_cast<std::size_t>(j)];
}

}  // namespace dq4_test
