// data.dataset = files: a run trains on .npy / IDX files the test writes, with
// iid and Dirichlet shards; the config keys are checked and reported.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "../npy_bytes.hpp"
#include "run/config_schema.hpp"
#include "run/key_usage.hpp"
#include "run/run_data.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using namespace murmur::test;
namespace fs = std::filesystem;

namespace {

// A learnable set (make_synthetic, 10 classes of 12x12) written as .npy:
// features float32 [N,1,12,12] or uint8 [N,12,12], labels int64 [N].
struct npy_set {
  std::string train_x, train_y, test_x, test_y;
};

npy_set write_set(const fs::path& dir, bool as_uint8) {
  fs::create_directories(dir);
  const Dataset all = make_synthetic(3000, 10, 12, 7);
  auto write = [&](const std::string& name, int64_t begin, int64_t end) {
    const int64_t n = end - begin, pix = 144;
    const float* src = all.images.data() + begin * pix;
    npy_raw x;
    if (as_uint8) {
      std::vector<uint8_t> px(static_cast<size_t>(n * pix));
      for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(src[i] * 255.f + 0.5f);
      x = npy_array_bytes("|u1", {n, 12, 12}, px, 2);
    } else {
      x = npy_array_bytes("<f4", {n, 1, 12, 12}, std::vector<float>(src, src + n * pix), 1);
    }
    write_bytes((dir / (name + "_x.npy")).string(), x);
    std::vector<int64_t> y(all.labels.begin() + begin, all.labels.begin() + end);
    write_bytes((dir / (name + "_y.npy")).string(), npy_array_bytes("<i8", {n}, y, 3));
  };
  write("train", 0, 2500);
  write("test", 2500, 3000);
  return {(dir / "train_x.npy").string(), (dir / "train_y.npy").string(), (dir / "test_x.npy").string(),
          (dir / "test_y.npy").string()};
}

std::vector<std::string> files_keys(const npy_set& s) {
  return {"data.dataset=files", "data.train_features=" + s.train_x, "data.train_labels=" + s.train_y,
          "data.test_features=" + s.test_x, "data.test_labels=" + s.test_y};
}

RunConfig files_config(const npy_set& s, std::vector<std::string> more) {
  auto keys = files_keys(s);
  keys.insert(keys.end(), more.begin(), more.end());
  return load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml", keys);
}

}  // namespace

TEST_CASE("a simulation trains on npy files with iid and dirichlet shards", "[sim][npy]") {
  const fs::path dir = scratch("npy-data");
  const npy_set f32 = write_set(dir / "f32", false), u8 = write_set(dir / "u8", true);
  struct { const npy_set* set; const char* partition; } runs[] = {{&f32, "iid"}, {&u8, "dirichlet"}};
  for (const auto& r : runs) {
    INFO("partition " << r.partition);
    RunConfig c = files_config(*r.set, {"data.partition=" + std::string(r.partition), "data.alpha=0.5",
                                        "sim.loss=0"});
    const run_data d = load_run_data(c);
    REQUIRE(d.train->size() == 2500);
    REQUIRE(d.test->size() == 500);
    CHECK(d.train->sample_shape() == Shape{1, 12, 12});
    CHECK(d.train->num_classes == 10);  // inferred
    auto s = run_simulation(c, scratch(std::string("npy-run-") + r.partition).string());
    CHECK(s.final_test_accuracy > 0.6);  // chance is 0.1
  }
}

TEST_CASE("data files: shape mismatch, missing keys and unused keys are reported", "[sim][npy]") {
  const fs::path dir = scratch("npy-checks");
  const npy_set s = write_set(dir, false);
  // Test features of another sample shape: the error names both files.
  const std::string other = (dir / "other_x.npy").string();
  write_bytes(other, npy_array_bytes("<f4", {500, 144}, std::vector<float>(500 * 144, 0.5f)));
  RunConfig c = files_config(s, {"data.test_features=" + other});
  try {
    load_run_data(c);
    FAIL("a test set of another sample shape was accepted");
  } catch (const DataError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(other) != std::string::npos);
    CHECK(msg.find(s.train_x) != std::string::npos);
    CHECK(msg.find("[1,1,144]") != std::string::npos);
  }
  // data.classes: explicit count checked, labels over it refused by file.
  c = files_config(s, {"data.classes=12"});
  CHECK(load_run_data(c).train->num_classes == 12);
  c = files_config(s, {"data.classes=5"});
  CHECK_THROWS_WITH(load_run_data(c), Catch::Contains(s.train_y) && Catch::Contains("out of range for 5 classes"));
  // A missing file key is a config error naming it.
  CHECK_THROWS_WITH(files_config(s, {"data.test_labels="}),
                    Catch::Contains("data.test_labels is empty with data.dataset = files"));
  // Keys that the chosen data set does not read are named in the warning.
  c = files_config(s, {"data.dir=/elsewhere"});
  CHECK_THAT(check_key_usage(c, run_host::sim, "t.toml"),
             Catch::Contains("data.dataset = files does not use data.dir = /elsewhere"));
  CHECK(check_key_usage(files_config(s, {}), run_host::sim, "t.toml").empty());
  RunConfig fm = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml",
                             {"data.train_features=" + s.train_x, "data.classes=3"});
  const std::string w = check_key_usage(fm, run_host::peer, "t.toml");
  CHECK_THAT(w, Catch::Contains("data.dataset = synthetic does not use") && Catch::Contains("data.train_features") &&
                    Catch::Contains("data.classes = 3"));
}

TEST_CASE("data files: IDX files under any name load through the run config", "[sim][npy]") {
  const fs::path dir = scratch("idx-any-name");
  fs::create_directories(dir);
  npy_raw img = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2};
  for (int i = 0; i < 16; ++i) img.push_back(static_cast<unsigned char>(i * 16));
  const npy_raw lab = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 2, 1};
  for (const char* n : {"a.img", "a.lbl", "b.img", "b.lbl"})
    write_bytes((dir / n).string(), std::string(n).find("img") != std::string::npos ? img : lab);
  RunConfig c = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml",
                            {"data.dataset=files", "data.train_features=" + (dir / "a.img").string(),
                             "data.train_labels=" + (dir / "a.lbl").string(),
                             "data.test_features=" + (dir / "b.img").string(),
                             "data.test_labels=" + (dir / "b.lbl").string(), "data.train_samples=0",
                             "data.test_samples=0"});
  const run_data d = load_run_data(c);
  CHECK(d.train->images.shape() == Shape{4, 1, 2, 2});
  CHECK(d.test->labels == std::vector<int32_t>{0, 1, 2, 1});
  CHECK(d.train->num_classes == 3);
}
