// SPDX-License-Identifier: Apache-2.0
// dq4 needs C++17: an older dialect gets one clear #error (the error run adds -std=c++14).
#include <dq4/dq4.cuh>

int main() { return static_cast<int>(dq4::dequantize<dq4::format::fp16, dq4::u4, dq4::sequential>(0u).regs[0]); }
