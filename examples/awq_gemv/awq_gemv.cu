// SPDX-License-Identifier: Apache-2.0
// W4A16 for LLM decode with an AWQ checkpoint (group size 128): the checks of the fused GEMV
// (gemv_kernel.cuh, y = x W for 1 to 8 tokens, scaled after or before the MMA) and of the bulk
// dequantization (bulk_kernel.cuh), on a random layer read by dq4::from_awq. For each shape:
// - every dequantized value of the bulk kernel against dq4's reference, bit for bit;
// - the GEMV with unit-vector activations (token b selects row k_b, so every output must be one
//   reference weight, bit for bit: a misplaced weight, scale or zero point shows);
// - the GEMV with random activations against a float64 host sum, within a bound derived from how
//   the tensor core sums, and its accuracy (max and rms error against the exact float64 value);
// - on sm_90+, calls chained to the kernel before them (programmatic dependent launch) against the
//   same calls made one at a time, bit for bit;
// for batches of 1, 3 and 8 tokens, fp16 and bf16. Every output buffer is poisoned first, with one
// more token row than the batch that must stay poisoned. The timing is benchmarks/gemv_benchmark.cu.
//
//   awq_gemv [--quick] [--shape K N] [--csv accuracy.csv]
//     --quick: one small shape (or the --shape), every row of the unit-vector check (the CTest runs)
//     --shape: this K x N only; a shape that a launch function refuses is reported with its reason
//              (exit 2 when both kernels refuse it), before any GPU is looked for
//     --csv:   the accuracy of every variant, one row per format, scaling, shape and batch
#include <dq4/checkpoint.hpp>
#include <dq4/dq4.cuh>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "launch.cuh"
#include "plan.hpp"
#include "support/cuda_support.cuh"
#include "test_layer.cuh"

namespace {

using awq_gemv::device_layer;
using awq_gemv::gemv_plan;
using awq_gemv::scaling;
using awq_gemv::shape;
using awq_gemv::start;
using dq4::format;
using dq4_support::check;

constexpr int batches[] = {1, 3, 8};

const char* name_of(format f) { return f == format::fp16 ? "fp16" : "bf16"; }
const char* name_of(scaling s) { return s == scaling::after_mma ? "after_mma" : "before_mma"; }

// The value of a 16-bit bit pattern of format f (every one is a float).
double value_of(format f, std::uint16_t bits) {
  if (f == format::fp16) return static_cast<double>(__half2float(__ushort_as_half(bits)));
  const std::uint32_t widened = std::uint32_t{bits} << 16;
  float v;
  std::memcpy(&v, &widened, 4);
  return v;
}

// The layer's weights on the host, [K][N]: the reference's dequantized bits (what the bulk kernel
// and the before-MMA GEMV multiply), their values, and the exact (q - z) * s (in a float: an 11-bit
// scale times a 5-bit integer is exact).
struct host_weights {
  std::vector<std::uint16_t> bits;
  std::vector<float> rounded, exact;
};

host_weights reference_weights(const dq4::packed_matrix& m, format f) {
  host_weights w;
  const std::size_t count = m.rows * m.cols;
  w.bits.resize(count);
  w.rounded.resize(count);
  w.exact.resize(count);
  for (std::size_t k = 0; k < m.rows; ++k) {
    for (std::size_t n = 0; n < m.cols; ++n) {
      const std::size_t g = k / m.group_size, i = k * m.cols + n;
      const int difference = m.weight(k, n) - m.zero(g, n);
      const std::uint16_t scale = m.scale(g, n);
      w.bits[i] = static_cast<std::uint16_t>(
          dq4::reference::round_to(f, dq4::reference::times(difference, dq4::reference::number_of(f, scale))));
      w.rounded[i] = static_cast<float>(value_of(f, w.bits[i]));
      w.exact[i] = static_cast<float>(difference * value_of(f, scale));
    }
  }
  return w;
}

// y = x W on the host in float64 for one batch: the exact value (exact weights), the before-MMA
// GEMV's intended value (the rounded weights) and sum |x w|, each [batch][N]. Columns are split
// over the host's threads.
struct host_sums {
  std::vector<double> exact, rounded, magnitude;
};

host_sums host_gemv(const host_weights& w, shape s, format f, const std::vector<std::uint16_t>& x, int batch) {
  host_sums out{std::vector<double>(batch * s.n), std::vector<double>(batch * s.n), std::vector<double>(batch * s.n)};
  const auto columns = [&](std::size_t first, std::size_t end) {
    for (int b = 0; b < batch; ++b) {
      double* exact = &out.exact[b * s.n];
      double* rounded = &out.rounded[b * s.n];
      double* magnitude = &out.magnitude[b * s.n];
      for (std::size_t k = 0; k < s.k; ++k) {
        const double xk = value_of(f, x[b * s.k + k]);
        const float* we = &w.exact[k * s.n];
        const float* wr = &w.rounded[k * s.n];
        for (std::size_t n = first; n < end; ++n) {
          exact[n] += xk * we[n];
          rounded[n] += xk * wr[n];
          magnitude[n] += std::fabs(xk * we[n]);
        }
      }
    }
  };
  const std::size_t threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
  const std::size_t per_thread = (s.n / 8 + threads - 1) / threads * 8;
  std::vector<std::thread> pool;
  for (std::size_t first = 0; first < s.n; first += per_thread) pool.emplace_back(columns, first, std::min(s.n, first + per_thread));
  for (auto& t : pool) t.join();
  return out;
}

// A device buffer of `batch` + 1 token rows of N outputs, poisoned; the GEMV writes the first batch.
struct poisoned_output {
  std::uint16_t* device = nullptr;
  std::size_t per_token = 0;
  int batch = 0;
  poisoned_output(shape s, int b) : per_token(s.n), batch(b) {
    check(cudaMalloc(&device, (b + 1) * s.n * 2), "cudaMalloc");
    poison();
  }
  ~poisoned_output() { check(cudaFree(device), "cudaFree"); }
  poisoned_output(const poisoned_output&) = delete;
  poisoned_output& operator=(const poisoned_output&) = delete;
  void poison() { check(cudaMemset(device, 0xEE, (batch + 1) * per_token * 2), "cudaMemset"); }
  // The batch's outputs; the row past them must still be poison (counted in `overrun`).
  std::vector<std::uint16_t> read(std::size_t& overrun) const {
    std::vector<std::uint16_t> all((batch + 1) * per_token);
    check(cudaMemcpy(all.data(), device, all.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
    for (std::size_t i = batch * per_token; i < all.size(); ++i) overrun += all[i] != 0xEEEE ? 1 : 0;
    all.resize(batch * per_token);
    return all;
  }
};

// The exact check of the GEMV: with unit-vector activations (token b selects row k_b) every output
// is one product 1 * W[k_b][n] plus exact zeros, which the tensor core and the fp32 sums carry
// without rounding (after the MMA: s (q - z) is exact in fp32 and rounded once to 16 bits), so y[b]
// must equal row k_b of the reference's dequantized weights bit for bit. Rows: all of them
// (all_rows), else every row of the first and last group and one row per k16 step, its position in
// the step cycling through 0..15. Returns the mismatches, written-past-the-batch outputs included.
template <format F, scaling S>
std::size_t unit_vector_mismatches(const device_layer& l, shape s, const gemv_plan& plan, const host_weights& w, bool all_rows) {
  std::vector<std::size_t> rows;
  for (std::size_t k = 0; k < s.k; ++k) {
    const bool edge_group = k < awq_gemv::group_size || k >= s.k - awq_gemv::group_size;
    if (all_rows || edge_group || k % 16 == (k / 16) % 16) rows.push_back(k);
  }
  const int batch = plan.batch;
  const std::uint16_t one = F == format::fp16 ? 0x3C00 : 0x3F80;
  std::vector<std::uint16_t> xh(batch * s.k);
  std::uint16_t* x = nullptr;
  check(cudaMalloc(&x, xh.size() * 2), "cudaMalloc");
  poisoned_output y(s, batch);
  std::size_t mismatches = 0;
  for (std::size_t first = 0; first < rows.size(); first += static_cast<std::size_t>(batch)) {
    const auto row_of = [&](int b) { return rows[std::min(first + b, rows.size() - 1)]; };
    std::fill(xh.begin(), xh.end(), std::uint16_t{0});
    for (int b = 0; b < batch; ++b) xh[b * s.k + row_of(b)] = one;
    check(cudaMemcpy(x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    y.poison();
    awq_gemv::launch_gemv<F, S>(l, x, y.device, plan, nullptr);
    const std::vector<std::uint16_t> yh = y.read(mismatches);
    for (int b = 0; b < batch; ++b) {
      const std::uint16_t* expected = &w.bits[row_of(b) * s.n];
      for (std::size_t n = 0; n < s.n; ++n) mismatches += yh[b * s.n + n] != expected[n] ? 1 : 0;
    }
  }
  check(cudaFree(x), "cudaFree");
  return mismatches;
}

// The kernel before each chained call in chained_mismatches: it lets the call start at once
// (sm_90+), then holds on for `ns` nanoseconds before it writes the call's activations, so a call
// that read them before its griddepcontrol.wait would read the previous call's.
__global__ void write_activations_late(uint4* to, const uint4* from, std::size_t count, unsigned long long ns) {
  awq_gemv::let_next_kernel_start();
  dq4_support::sleep_ns(ns);
  for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) to[i] = from[i];
}

// Chained calls against calls one at a time: four calls, each chained to a kernel that writes its
// activations late (alternately `x` and a second set), into poisoned outputs, and each must give
// the bits of the same call made alone. A call that read its activations, or touched the workspace
// that the previous call still uses, before that call and the writer had ended would give other
// bits or leave outputs poisoned.
template <format F, scaling S>
std::size_t chained_mismatches(const device_layer& l, shape s, const gemv_plan& plan, const std::uint16_t* x,
                               const std::vector<std::uint16_t>& y_of_x) {
  const int batch = plan.batch;
  const std::size_t x_count = batch * s.k;
  std::uint16_t* other_x = awq_gemv::device_copy(awq_gemv::random_activations(F, x_count, 7));
  std::uint16_t* x_late = nullptr;
  check(cudaMalloc(&x_late, x_count * 2), "cudaMalloc");
  std::size_t mismatches = 0;
  poisoned_output y_of_other(s, batch);
  awq_gemv::launch_gemv<F, S>(l, other_x, y_of_other.device, plan, nullptr);
  const std::vector<std::uint16_t> expected_other = y_of_other.read(mismatches);
  std::vector<std::unique_ptr<poisoned_output>> outputs;
  for (int call = 0; call < 4; ++call) outputs.push_back(std::make_unique<poisoned_output>(s, batch));
  for (int call = 0; call < 4; ++call) {
    const std::uint16_t* source = call % 2 == 0 ? x : other_x;
    write_activations_late<<<1, 256>>>(reinterpret_cast<uint4*>(x_late), reinterpret_cast<const uint4*>(source), x_count / 8, 20000);
    check(cudaGetLastError(), "write_activations_late");
    awq_gemv::launch_gemv<F, S>(l, x_late, outputs[call]->device, plan, nullptr, start::chained);
  }
  for (int call = 0; call < 4; ++call) {
    const std::vector<std::uint16_t> got = outputs[call]->read(mismatches);
    const std::vector<std::uint16_t>& expected = call % 2 == 0 ? y_of_x : expected_other;
    for (std::size_t i = 0; i < got.size(); ++i) mismatches += got[i] != expected[i] ? 1 : 0;
  }
  check(cudaFree(other_x), "cudaFree");
  check(cudaFree(x_late), "cudaFree");
  return mismatches;
}

// The error of one GEMV against the exact float64 value r, relative to the size of the outputs:
// max |y - r| / rms(r) and rms(y - r) / rms(r).
struct accuracy {
  double max_error, rms_error;
};

accuracy accuracy_of(format f, const std::vector<std::uint16_t>& y, const std::vector<double>& exact) {
  double worst = 0, squares = 0, reference_squares = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double e = std::fabs(value_of(f, y[i]) - exact[i]);
    worst = std::max(worst, e);
    squares += e * e;
    reference_squares += exact[i] * exact[i];
  }
  const double rms = std::sqrt(reference_squares / static_cast<double>(y.size()));
  return {worst / rms, std::sqrt(squares / static_cast<double>(y.size())) / rms};
}

// Outputs outside the bound on the error of the GEMV's sums against its intended value (the exact
// value after the MMA, the sum of the rounded weights before it). The tensor core adds each k16
// step's 16 exact products to its accumulator without IEEE rounding: it aligns the 17 terms to the
// largest, truncates them to its fp32 width and truncates the normalized sum (Fasi, Higham,
// Mikaitis and Pranesh, "Numerical behavior of NVIDIA tensor cores", 2021), losing less than
// 51 * 2^-23 of the largest term, so less than 51 * 2^-23 * S per step, S = sum_k |x w|; K / 16
// steps give < 3.2 K 2^-23 S. The fp32 additions after it (the scaled groups, the warps' and parts'
// sums: fewer than K / 16 + 16 of them) add 2^-24 S each. In all < 2^-21 K S (times 1 + 2^-8 before
// the MMA, whose rounded weights may be that much larger). The rounding to the 16-bit output adds
// half an ulp, at most 2^-11 |y| (fp16) or 2^-8 |y| (bf16), plus the smallest subnormal.
template <format F, scaling S>
std::size_t outside_bound(const std::vector<std::uint16_t>& y, const host_sums& h, shape s) {
  const double unit = F == format::fp16 ? 1.0 / 2048 : 1.0 / 256;
  const std::vector<double>& intended = S == scaling::after_mma ? h.exact : h.rounded;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double bound = static_cast<double>(s.k) * h.magnitude[i] * (1 + 1.0 / 256) / 2097152.0 + unit * std::fabs(intended[i]) + 1e-7;
    bad += !(std::fabs(value_of(F, y[i]) - intended[i]) <= bound) ? 1 : 0;  // NaN fails
  }
  return bad;
}

struct run_options {
  bool quick = false;
  std::FILE* csv = nullptr;
  cudaDeviceProp device{};
};

// The GEMV checks of one scaling and batch, with random activations xh whose host sums are h.
// Returns whether all passed.
template <format F, scaling S>
bool check_gemv(const device_layer& l, shape s, int batch, const host_weights& w, const std::vector<std::uint16_t>& xh,
                const host_sums& h, const run_options& o) {
  gemv_plan plan = awq_gemv::make_gemv_plan<F, S>(s, batch, o.device);
  const char* label = name_of(S);
  std::size_t unit_mismatches = unit_vector_mismatches<F, S>(l, s, plan, w, o.quick);
  std::uint16_t* x = awq_gemv::device_copy(xh);
  poisoned_output y(s, batch);
  awq_gemv::launch_gemv<F, S>(l, x, y.device, plan, nullptr);
  std::size_t overrun = 0;
  const std::vector<std::uint16_t> yh = y.read(overrun);
  const std::size_t bad = outside_bound<F, S>(yh, h, s) + overrun;
  const accuracy a = accuracy_of(F, yh, h.exact);
  std::printf("  %s batch %d (%u blocks: %u tiles a block, %u parts): %zu unit-vector outputs differ from the reference weight; "
              "%zu of %zu outputs outside the bound; error against float64: max %.2e, rms %.2e (of the outputs' rms)\n",
              label, batch, plan.split.blocks, plan.split.band_tiles, plan.split.parts, unit_mismatches, bad, yh.size(),
              a.max_error, a.rms_error);
  bool ok = unit_mismatches == 0 && bad == 0;
  if (plan.chainable) {
    const std::size_t wrong = chained_mismatches<F, S>(l, s, plan, x, yh);
    std::printf("  %s batch %d: %zu outputs of 4 chained calls differ from the calls one at a time\n", label, batch, wrong);
    ok = ok && wrong == 0;
  }
  if (o.csv != nullptr) {
    std::fprintf(o.csv, "%s,%s,%s,%zu,%zu,%d,%.3e,%.3e,%s\n", o.device.name, name_of(F), label, s.k, s.n, batch, a.max_error,
                 a.rms_error, ok ? "pass" : "FAIL");
  }
  check(cudaFree(x), "cudaFree");
  awq_gemv::free_gemv_plan(plan);
  return ok;
}

// Every check of one shape in one format, for the kernels that take the shape.
template <format F>
bool check_shape(shape s, const run_options& o) {
  const dq4::packed_matrix m = awq_gemv::random_layer(s, F, static_cast<std::uint32_t>(s.k * 31 + s.n));
  const host_weights w = reference_weights(m, F);
  device_layer l = awq_gemv::upload(m);
  std::printf("%s K=%zu N=%zu\n", name_of(F), s.k, s.n);
  bool ok = true;
  if (awq_gemv::bulk_shape_error(s) == nullptr) {
    awq_gemv::launch_dequantize<F>(l, s, o.device.multiProcessorCount, nullptr);
    check(cudaDeviceSynchronize(), "dequantize_kernel");
    std::vector<std::uint16_t> dense(s.k * s.n);
    check(cudaMemcpy(dense.data(), l.dequantized, dense.size() * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
    std::size_t bad = 0;
    for (std::size_t i = 0; i < dense.size(); ++i) bad += dense[i] != w.bits[i] ? 1 : 0;
    std::printf("  bulk: %zu of %zu dequantized values differ from the reference\n", bad, dense.size());
    ok = bad == 0;
  }
  for (const int batch : batches) {
    if (awq_gemv::gemv_shape_error(s, batch) != nullptr) continue;
    // One set of activations and host sums for both scalings: the float64 sums are the checks' costliest part.
    const std::vector<std::uint16_t> xh = awq_gemv::random_activations(F, batch * s.k, 99 + batch);
    const host_sums h = host_gemv(w, s, F, xh, batch);
    ok = check_gemv<F, scaling::after_mma>(l, s, batch, w, xh, h, o) && ok;
    ok = check_gemv<F, scaling::before_mma>(l, s, batch, w, xh, h, o) && ok;
  }
  awq_gemv::free_layer(l);
  return ok;
}

// The kernels that take a shape: false (with the reasons) when neither does.
bool some_kernel_takes(shape s) {
  const char* gemv = awq_gemv::gemv_shape_error(s, 1);
  const char* bulk = awq_gemv::bulk_shape_error(s);
  if (gemv != nullptr) std::printf("shape %zu x %zu: launch_gemv refuses it: %s\n", s.k, s.n, gemv);
  if (bulk != nullptr) std::printf("shape %zu x %zu: launch_dequantize refuses it: %s\n", s.k, s.n, bulk);
  return gemv == nullptr || bulk == nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  run_options o;
  const char* csv_path = nullptr;
  std::vector<shape> shapes = {{4096, 4096}, {4096, 14336}, {14336, 4096}, {8192, 8192}, {8192, 28672}, {28672, 8192}};
  bool one_shape = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      o.quick = true;
    } else if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
      csv_path = argv[++i];
    } else if (std::strcmp(argv[i], "--shape") == 0 && i + 2 < argc) {
      shapes = {{std::strtoull(argv[i + 1], nullptr, 10), std::strtoull(argv[i + 2], nullptr, 10)}};
      one_shape = true;
      i += 2;
    } else {
      std::fprintf(stderr, "usage: awq_gemv [--quick] [--shape K N] [--csv accuracy.csv]\n");
      return 2;
    }
  }
  if (o.quick && !one_shape) shapes = {{1024, 2048}};
  for (const shape s : shapes) {
    if (!some_kernel_takes(s)) return 2;
  }
  o.csv = dq4_support::open_output(csv_path);  // a path that cannot be written stops the run first
  // bf16 tensor cores and cp.async: sm_80
  if (!dq4_support::device_at_least(80, "the GEMV example has nothing to run", o.device)) return 0;
  if (o.csv != nullptr) std::fprintf(o.csv, "device,format,scaling,k,n,batch,max_error,rms_error,checks\n");
  bool ok = true;
  for (const shape s : shapes) {
    ok = check_shape<format::fp16>(s, o) && ok;
    ok = check_shape<format::bf16>(s, o) && ok;
  }
  dq4_support::close_output(o.csv, csv_path);
  std::printf(ok ? "OK\n" : "FAILED\n");
  return ok ? 0 : 1;
}
