// SPDX-License-Identifier: Apache-2.0
// An oracle written independently of dq4's reference: the fp16 bit patterns of every value each
// encoding can produce, typed in from the IEEE 754 binary16 layout, and the two orders as lists.
#pragma once

#include <array>
#include <cstdint>

#include <dq4/dq4.cuh>

namespace dq4_test {

// fp16 bits of the integers -8..15 (index = value + 8).
inline constexpr std::array<std::uint16_t, 24> fp16_of_integer = {
    0xC800, 0xC700, 0xC600, 0xC500, 0xC400, 0xC200, 0xC000, 0xBC00,  // -8 .. -1
    0x0000, 0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700,  //  0 ..  7
    0x4800, 0x4880, 0x4900, 0x4980, 0x4A00, 0x4A80, 0x4B00, 0x4B80,  //  8 .. 15
};

// The value each nibble 0..15 stands for, per encoding.
inline constexpr std::array<int, 16> u4_values = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
inline constexpr std::array<int, 16> u4b8_values = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};
inline constexpr std::array<int, 16> s4_values = {0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1};

constexpr const std::array<int, 16>& oracle_values(dq4::encoding e) {
  return e == dq4::encoding::u4 ? u4_values : e == dq4::encoding::u4b8 ? u4b8_values : s4_values;
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
