// SPDX-License-Identifier: Apache-2.0
// A fuzzer of the host API, built with AddressSanitizer and UndefinedBehaviorSanitizer (tests/
// run_fuzz.cmake, with every C++ compiler it finds): random and adversarial shapes, tensors, enum
// values, packer inputs and reference-helper arguments. Every call must either succeed with a
// result that agrees with its inputs, or throw the documented exception; the sanitizers turn any
// out-of-bounds access, null dereference, overflow of a signed integer or oversized shift into a
// failure. Deterministic: the seed and the iteration count are fixed (argv may override them).
//
//   fuzz_host_api [iterations, default 20000] [seed, default 1]
#include <dq4/checkpoint.hpp>

#include <array>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct random_source {
  std::uint64_t state;
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  std::uint32_t word() { return static_cast<std::uint32_t>(next()); }
};

int failures = 0;
long accepted = 0, rejected = 0;  // checkpoint reads, to show that both outcomes were exercised

void fail(const std::string& what) {
  if (failures++ < 20) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

// A dimension: usually small (sometimes 0 or not a multiple of 8), or huge: two huge ones make every
// tensor's element count overflow size_t or exceed what a std::vector can hold.
std::size_t dimension(random_source& r, bool huge) {
  if (huge) {
    constexpr std::size_t big[] = {std::size_t{1} << 32, std::size_t{1} << 33, std::size_t{1} << 35, std::size_t{1} << 40,
                                   std::size_t{1} << 62, std::numeric_limits<std::size_t>::max(),
                                   std::numeric_limits<std::size_t>::max() - 7};
    return big[r.below(sizeof big / sizeof big[0])];
  }
  return r.below(4) == 0 ? r.below(70) : 8 * r.below(33);
}

std::size_t group_size(random_source& r, std::size_t rows) {
  switch (r.below(5)) {
    case 0: return 0;
    case 1: return std::numeric_limits<std::size_t>::max();  // GPTQ's group_size = -1
    case 2: return rows;
    default: return rows == 0 ? 1 : std::size_t{8} << r.below(4);
  }
}

template <class Enum>
Enum any_enumerator(random_source& r, int count) {
  return static_cast<Enum>(r.below(6) == 0 ? 5 + static_cast<int>(r.below(100)) : static_cast<int>(r.below(count)));
}

// The documented exceptions are fine; anything else is a failure.
template <class Call>
bool call_expecting(const char* what, const Call& call, bool overflow_expected) {
  try {
    call();
    if (overflow_expected) fail(std::string(what) + ": accepted a shape whose sizes do not fit");
    ++accepted;
    return true;
  } catch (const dq4::layout_error&) {
    ++rejected;
  } catch (const std::exception& e) {
    fail(std::string(what) + ": unexpected exception: " + e.what());
  }
  return false;
}

// One checkpoint read of a random shape: tensors sized for the shape when it is small, tiny ones
// when it is huge (which must be rejected before they are read).
void fuzz_checkpoint(random_source& r) {
  const bool huge = r.below(8) == 0;
  const std::size_t rows = dimension(r, huge), cols = dimension(r, huge);
  const std::size_t g = group_size(r, rows);
  const bool overflow = huge;
  const bool small = !huge && rows <= 512 && cols <= 512;
  const std::size_t weight_words = small ? rows * cols / 8 + 8 : 8;
  const std::size_t groups = small && g != 0 && g <= rows ? rows / g + 1 : 1;
  std::vector<std::int32_t> qweight(weight_words), qzeros(small ? groups * (cols / 8 + 1) + 8 : 8);
  std::vector<std::int32_t> g_idx(small ? rows + 1 : 1);
  std::vector<std::uint16_t> scales(small ? groups * cols + 8 : 8);
  for (auto& w : qweight) w = static_cast<std::int32_t>(r.word());
  for (auto& w : qzeros) w = static_cast<std::int32_t>(r.word());
  for (auto& s : scales) s = static_cast<std::uint16_t>(r.word());
  for (std::size_t k = 0; k < g_idx.size(); ++k) {
    g_idx[k] = g != 0 && g <= rows ? static_cast<std::int32_t>(k / g) : 0;
    if (r.below(50) == 0) g_idx[k] = static_cast<std::int32_t>(r.word());  // act-order or negative
  }
  const auto* qw = r.below(20) == 0 ? nullptr : qweight.data();
  const auto* qz = r.below(20) == 0 ? nullptr : qzeros.data();
  const auto* sc = r.below(20) == 0 ? nullptr : scales.data();
  const auto f = any_enumerator<dq4::format>(r, 3);
  if (r.below(2) == 0) {
    dq4::packed_matrix m;
    const bool ok = call_expecting("from_awq", [&] { m = dq4::from_awq(qw, qz, sc, rows, cols, g, f); }, overflow);
    if (ok && m.rows > 0) {  // spot checks: the accessors agree with the tensors
      const std::size_t k = r.below(m.rows), n = r.below(m.cols);
      const auto word = static_cast<std::uint32_t>(qweight[k * (cols / 8) + n / 8]);
      if (m.weight(k, n) != static_cast<int>(dq4::reference::nibble(word, dq4::source_nibble(dq4::interleaved, static_cast<int>(n % 8))))) {
        fail("from_awq: weight differs from qweight");
      }
      (void)m.zero(k / m.group_size, n);
      (void)m.scale(k / m.group_size, n);
    }
  } else {
    const auto z = any_enumerator<dq4::zeros>(r, 5);
    const auto o = any_enumerator<dq4::order>(r, 2);
    const auto* gi = r.below(3) == 0 ? nullptr : g_idx.data();
    dq4::packed_matrix m;
    const bool ok = call_expecting("from_gptq", [&] { m = dq4::from_gptq(qw, qz, sc, gi, rows, cols, g, z, o, f); }, overflow);
    if (ok && m.rows > 0) {
      const std::size_t k = r.below(m.rows), n = r.below(m.cols);
      const auto word = static_cast<std::uint32_t>(qweight[(k / 8) * cols + n]);
      if (m.weight(k, n) != static_cast<int>(dq4::reference::nibble(word, static_cast<int>(k % 8)))) {
        fail("from_gptq: weight differs from qweight");
      }
      const int zero = m.zero(k / m.group_size, n);
      if (zero < 0 || zero > 16) fail("from_gptq: zero out of range");
      (void)m.scale(k / m.group_size, n);
    }
  }
  try {
    (void)dq4::count_gptq_v1_disagreements(r.below(10) == 0 ? nullptr : qzeros.data(), r.below(qzeros.size() + 1));
  } catch (const dq4::layout_error&) {
  }
}

// The packers: values in and out of range, sizes with and without remainders, null buffers. On an
// error the output is untouched.
void fuzz_packers(random_source& r) {
  const std::size_t count = r.below(4) == 0 ? r.below(40) : 8 * r.below(6);
  std::vector<int> values(count + 1);
  for (auto& v : values) v = r.below(10) == 0 ? static_cast<int>(r.word()) : static_cast<int>(r.below(24)) - 8;
  std::vector<std::uint32_t> words(count / 8 + 1, 0xA5A5A5A5u);
  const std::vector<std::uint32_t> before = words;
  const int* in = r.below(20) == 0 ? nullptr : values.data();
  std::uint32_t* out = r.below(20) == 0 ? nullptr : words.data();
  try {
    switch (r.below(3)) {
      case 0: dq4::pack<dq4::u4, dq4::interleaved>(in, count, out); break;
      case 1: dq4::pack<dq4::u4b8, dq4::sequential>(in, count, out); break;
      default: dq4::pack<dq4::s4, dq4::sequential>(in, count, out); break;
    }
  } catch (const dq4::pack_error& e) {
    if (words != before) fail("pack wrote before reporting value " + std::to_string(e.value()));
  } catch (const std::invalid_argument&) {
    if (words != before) fail("pack wrote before reporting a bad size or pointer");
  }
  try {
    dq4::reorder<dq4::sequential, dq4::interleaved>(r.below(10) == 0 ? nullptr : words.data(), r.below(words.size() + 1),
                                                    r.below(10) == 0 ? nullptr : words.data());
  } catch (const std::invalid_argument&) {
  }
}

// The reference helpers over their whole domain: any int, any nibble index, any exact number.
void fuzz_reference(random_source& r) {
  const auto f = static_cast<dq4::format>(r.below(6));
  const int v = static_cast<int>(r.word());
  (void)dq4::reference::bits_of(f, r.below(4) == 0 ? INT_MIN : v);
  (void)dq4::reference::times(r.below(4) == 0 ? INT_MIN : v, dq4::reference::number_of(f, r.word()));
  (void)dq4::reference::nibble(r.word(), static_cast<int>(r.word()));
  const dq4::reference::exact_number x{r.below(2) == 0, r.next() >> r.below(64), static_cast<int>(r.word()), r.below(50) == 0,
                                       r.below(50) == 0};
  (void)dq4::reference::round_to(f, x);
  const auto zeros_word = r.word();
  const int k = static_cast<int>(r.below(8));
  if (dq4::reference::zero_of<dq4::zeros::gptq_v1_no_wrap>(zeros_word, k) > 16) fail("zero_of out of range");
}

}  // namespace

#include <dq4/checkpoint_fp4.hpp>

namespace {

// The block-scaled fp4 readers (checkpoint_fp4.hpp): shapes of rank 1 to 5, small (sometimes
// empty, mismatched or not whole blocks) or huge (two dimensions of at least 2^32, whose products
// overflow), random bytes, null tensors, global scales of any bit pattern and enum values that
// name no enumerator. An accepted read must agree with the bytes it was given.
void fuzz_fp4_checkpoint(random_source& r) {
  const bool huge = r.below(8) == 0;
  const auto product = [](const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (const std::size_t d : shape) n *= d;
    return n;
  };
  const auto perturb = [&](std::vector<std::size_t>& shape) {
    if (r.below(10) == 0 && !shape.empty()) shape[r.below(shape.size())] += 1;
    if (r.below(30) == 0) shape.push_back(1);
  };
  if (r.below(2) == 0) {
    const std::size_t rank = r.below(10) == 0 ? 2 + 3 * r.below(2) : 3 + r.below(2);  // mostly 3 or 4
    std::vector<std::size_t> blocks_shape(rank);
    for (std::size_t i = 0; i + 1 < rank; ++i) blocks_shape[i] = r.below(12) == 0 ? 0 : 1 + r.below(5);
    blocks_shape[rank - 1] = r.below(10) == 0 ? r.below(40) : 16;
    if (huge) blocks_shape[0] = blocks_shape[rank - 2] = dimension(r, true);
    std::vector<std::size_t> scales_shape(blocks_shape.begin(), blocks_shape.end() - 1);
    perturb(scales_shape);
    std::vector<std::uint8_t> blocks(huge ? 64 : product(blocks_shape) + 1), scales(huge ? 64 : product(scales_shape) + 1);
    for (auto& b : blocks) b = static_cast<std::uint8_t>(r.word());
    for (auto& s : scales) s = static_cast<std::uint8_t>(r.word());
    const auto* bp = r.below(20) == 0 ? nullptr : blocks.data();
    const auto* sp = r.below(20) == 0 ? nullptr : scales.data();
    dq4::mxfp4_matrix m;
    const bool ok = call_expecting("from_gpt_oss_mxfp4", [&] { m = dq4::from_gpt_oss_mxfp4(bp, blocks_shape, sp, scales_shape); }, huge);
    if (ok) {
      const std::size_t e = r.below(m.experts), n = r.below(m.rows), k = r.below(m.cols);
      const std::uint8_t byte = blocks[((e * m.rows + n) * m.cols + k) / 2];
      if (m.nibble(e, n, k) != (k % 2 == 0 ? byte & 0xFu : byte >> 4u)) fail("from_gpt_oss_mxfp4: nibble differs from blocks");
      if (m.scale(e, n, k).bits != scales[(e * m.rows + n) * (m.cols / 32) + k / 32]) fail("from_gpt_oss_mxfp4: scale differs");
    }
  } else {
    const auto checkpoint = any_enumerator<dq4::nvfp4_checkpoint>(r, 2);
    std::vector<std::size_t> weight_shape = {r.below(12) == 0 ? 0 : 1 + r.below(8), r.below(4) == 0 ? r.below(40) : 8 * (1 + r.below(5))};
    if (huge) weight_shape = {dimension(r, true), dimension(r, true)};
    if (r.below(20) == 0) weight_shape.push_back(1 + r.below(3));
    std::vector<std::size_t> scale_shape = {weight_shape[0], weight_shape.size() > 1 ? weight_shape[1] / 8 : 1};
    perturb(scale_shape);
    std::vector<std::size_t> global_shape;
    if (r.below(3) == 0) global_shape.push_back(r.below(10) == 0 ? r.below(4) : 1);
    std::vector<std::uint8_t> weight(huge ? 64 : product(weight_shape) + 1), scales(huge ? 64 : product(scale_shape) + 1);
    for (auto& b : weight) b = static_cast<std::uint8_t>(r.word());
    for (auto& s : scales) s = static_cast<std::uint8_t>(r.word());
    constexpr std::uint32_t special[] = {0x3F800000u, 0, 0x80000000u, 0x7FC00000u, 0x7F800000u, 0xFF800000u, 1, 0x00200000u,
                                         0x00200001u, 0x7F7FFFFFu, 0xBF800000u};
    const std::uint32_t g = r.below(2) == 0 ? special[r.below(sizeof special / sizeof special[0])] : r.word();
    const std::uint8_t global[4] = {static_cast<std::uint8_t>(g), static_cast<std::uint8_t>(g >> 8),
                                    static_cast<std::uint8_t>(g >> 16), static_cast<std::uint8_t>(g >> 24)};
    const auto* wp = r.below(20) == 0 ? nullptr : weight.data();
    const auto* sp = r.below(20) == 0 ? nullptr : scales.data();
    const auto* gp = r.below(20) == 0 ? nullptr : global;
    dq4::nvfp4_matrix m;
    const bool ok = call_expecting(
        "from_nvfp4", [&] { m = dq4::from_nvfp4(checkpoint, wp, weight_shape, sp, scale_shape, gp, global_shape); }, huge);
    if (ok) {
      const std::size_t n = r.below(m.rows), k = r.below(m.cols);
      const std::uint8_t byte = weight[n * (m.cols / 2) + k / 2];
      if (m.nibble(n, k) != (k % 2 == 0 ? byte & 0xFu : byte >> 4u)) fail("from_nvfp4: nibble differs from weight");
      if (m.scale(n, k) != scales[n * (m.cols / 16) + k / 16]) fail("from_nvfp4: scale differs from weight_scale");
      float stored = 0, multiplier = 0;
      std::memcpy(&stored, &g, sizeof stored);
      const float expected = checkpoint == dq4::nvfp4_checkpoint::modelopt ? stored : 1.0f / stored;
      std::memcpy(&multiplier, &m.global_scale, sizeof multiplier);
      if (std::memcmp(&multiplier, &expected, sizeof expected) != 0) fail("from_nvfp4: global scale differs");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 20000;
  random_source r{argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1};
  for (long i = 0; i < iterations; ++i) {
    fuzz_checkpoint(r);
    fuzz_packers(r);
    fuzz_reference(r);
    fuzz_fp4_checkpoint(r);
  }
  std::printf("fuzz_host_api: %ld iterations, %ld checkpoint reads accepted, %ld rejected, %d failures\n", iterations,
              accepted, rejected, failures);
  return failures == 0 && accepted > 0 && rejected > 0 ? 0 : 1;
}
