// `murmur sim` end to end with a tiny ResNet-9 (groupnorm, residual blocks,
// gap) on the synthetic set, as a user would run it; and a bad residual spec
// refused naming the block.
#include <catch2/catch.hpp>
#include <filesystem>

#include "murmur_process.hpp"

namespace fs = std::filesystem;
using namespace murmur::test;

TEST_CASE("murmur sim trains a tiny resnet9 end to end", "[cli][resnet]") {
  auto out = scratch_path("cli-resnet9");
  auto r = murmur_run("sim " + source_path("configs/synthetic-smoke.toml") +
                      " --set model.arch=resnet9:4 --set train.lr=0.05 --set sim.loss=0 --quiet --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("model resnet9:4") && Catch::Contains("final test accuracy"));
  CHECK(fs::exists(out / "summary.json"));
}

TEST_CASE("murmur sim refuses a residual body that changes the shape, naming the block", "[cli][resnet]") {
  auto r = murmur_run("sim " + source_path("configs/synthetic-smoke.toml") +
                      " --set 'model.arch=conv2d:4:3,res[conv2d:8:3:1:1],flatten,linear:10' --out " +
                      scratch_path("cli-resnet-bad").string());
  CHECK(r.code != 0);
  CHECK_THAT(r.output, Catch::Contains("res block") && Catch::Contains("'res[conv2d:8:3:1:1]'"));
}
