// SPDX-License-Identifier: Apache-2.0
// The AWQ GEMV's work split (examples/awq_gemv/plan.hpp, the header the kernel includes): for every
// batch and many shapes and GPU sizes, the blocks and warps of a plan cover every 16-row step of
// every 128-column tile exactly once, no part is empty, and each warp's sums go to its block's
// part; and the launch functions' shape rules refuse exactly the shapes at and past their limits.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "awq_gemv/plan.hpp"

namespace {

using awq_gemv::gemv_split;
using awq_gemv::shape;

// Every (tile, step) covered once by the warps of the plan's blocks, the warps of one block on one
// part, and the parts of the expected lengths.
void expect_plan_covers_every_step(shape s, int batch, std::size_t resident) {
  const gemv_split p = awq_gemv::plan_gemv_split(s, batch, resident);
  const std::size_t tiles = s.n / awq_gemv::tile_columns, steps = s.k / awq_gemv::step_rows;
  const std::string where = std::to_string(s.k) + " x " + std::to_string(s.n) + ", batch " + std::to_string(batch) +
                            ", " + std::to_string(resident) + " resident";
  ASSERT_GE(p.parts, 1u) << where;
  ASSERT_GE(p.part_steps, 1u) << where;
  ASSERT_LT(std::size_t{p.parts - 1} * p.part_steps, steps) << where << ": the last part is empty";
  ASSERT_GE(std::size_t{p.parts} * p.part_steps, steps) << where << ": the parts miss steps";
  ASSERT_TRUE(p.band_tiles == 1 || p.band_tiles == 2 || p.band_tiles == 4 || p.band_tiles == 8) << where;
  ASSERT_EQ(p.blocks, (tiles + p.band_tiles - 1) / p.band_tiles * p.parts) << where;
  if (batch > 1) {
    EXPECT_EQ(p.band_tiles, 1u) << where;
    EXPECT_LE(p.parts, 4u) << where;
  }
  std::vector<unsigned> covered(tiles * steps, 0);
  for (unsigned block = 0; block < p.blocks; ++block) {
    for (unsigned warp = 0; warp < static_cast<unsigned>(awq_gemv::warps_per_block); ++warp) {
      const awq_gemv::work_item item = awq_gemv::work_of(p, s, block, warp);
      ASSERT_EQ(item.part, block % p.parts) << where;
      if (item.first == item.end) continue;
      ASSERT_LT(item.tile, tiles) << where;
      ASSERT_LT(item.first, item.end) << where;
      ASSERT_LE(item.end, steps) << where;
      ASSERT_GE(item.first, item.part * p.part_steps) << where << ": a warp outside its block's part";
      ASSERT_LE(item.end, (item.part + 1) * p.part_steps) << where << ": a warp outside its block's part";
      for (unsigned step = item.first; step < item.end; ++step) ++covered[item.tile * steps + step];
    }
  }
  for (std::size_t i = 0; i < covered.size(); ++i) {
    ASSERT_EQ(covered[i], 1u) << where << ": tile " << i / steps << " step " << i % steps;
  }
}

TEST(GemvPlan, CoversEveryStepOnce) {
  for (const std::size_t k : {128u, 256u, 384u, 1024u, 4096u, 4224u, 14336u, 28672u}) {
    for (const std::size_t n : {128u, 256u, 384u, 640u, 2048u, 4096u, 14336u, 28672u}) {
      for (const int batch : {1, 3, 8}) {
        for (const std::size_t resident : {1u, 2u, 17u, 216u, 264u, 1000u}) expect_plan_covers_every_step({k, n}, batch, resident);
      }
    }
  }
}

// The splits chosen at the decode shapes on a GPU of 132 SMs and 2 blocks per SM (H100, H200): the
// ones measured fastest among the candidates (docs/gemv.md, "The plan for one token"), so that a
// change to the rules shows here as well as in the benchmark.
TEST(GemvPlan, DecodeShapesOn132Sms) {
  struct expected {
    shape s;
    int batch;
    unsigned band_tiles, parts;
  };
  for (const expected& e : {expected{{4096, 4096}, 1, 2, 8}, expected{{4096, 14336}, 1, 4, 9}, expected{{14336, 4096}, 1, 2, 16},
                            expected{{8192, 8192}, 1, 2, 8}, expected{{8192, 28672}, 1, 8, 9}, expected{{28672, 8192}, 1, 2, 8},
                            expected{{4096, 4096}, 8, 1, 4}, expected{{8192, 28672}, 8, 1, 1}}) {
    const gemv_split p = awq_gemv::plan_gemv_split(e.s, e.batch, 264);
    EXPECT_EQ(p.band_tiles, e.band_tiles) << e.s.k << " x " << e.s.n << ", batch " << e.batch;
    EXPECT_EQ(p.parts, e.parts) << e.s.k << " x " << e.s.n << ", batch " << e.batch;
  }
}

TEST(GemvPlan, ShapeRulesAtTheirBoundaries) {
  constexpr std::size_t big = awq_gemv::max_dimension;
  EXPECT_EQ(awq_gemv::gemv_shape_error({128, 128}, 1), nullptr);
  EXPECT_EQ(awq_gemv::gemv_shape_error({big, big}, 8), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({0, 128}, 1), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({64, 128}, 1), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({192, 128}, 1), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({128, 0}, 1), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({128, 136}, 1), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({big + 128, 128}, 1), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({128, big + 128}, 1), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({128, 128}, 0), nullptr);
  EXPECT_NE(awq_gemv::gemv_shape_error({128, 128}, 9), nullptr);
  EXPECT_EQ(awq_gemv::bulk_shape_error({128, 8}), nullptr);
  EXPECT_EQ(awq_gemv::bulk_shape_error({128, 136}), nullptr);
  EXPECT_NE(awq_gemv::bulk_shape_error({128, 4}), nullptr);
  EXPECT_NE(awq_gemv::bulk_shape_error({128, 0}), nullptr);
  EXPECT_NE(awq_gemv::bulk_shape_error({100, 8}), nullptr);
  EXPECT_NE(awq_gemv::bulk_shape_error({big + 128, 8}), nullptr);
}

}  // namespace
