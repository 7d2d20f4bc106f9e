// The pieces of murmur serve in one process: the served model's stages
// chained equal the whole model (evaluation mode: dropout is off), the cut
// is refused by name when it cannot be, a model file serves the model it
// holds, and stage threads with their own transports on loopback answer a
// client as local inference does.
#include <catch2/catch.hpp>
#include <filesystem>
#include <cmath>
#include <random>
#include <thread>
#include <unistd.h>

#include "lan/inference_client.hpp"
#include "lan/inference_host.hpp"
#include "lan/loopback_serving.hpp"
#include "lan/served_model.hpp"
#include "model_io/model_file.hpp"

using namespace murmur;

namespace {

Tensor random_samples(int64_t n, uint32_t seed) {
  Tensor x({n, 1, 28, 28});
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : x) v = u(gen);
  return x;
}

}  // namespace

TEST_CASE("served stages chained give the whole model's logits, dropout off", "[lan][serve]") {
  const std::string spec = "conv2d:4:3,relu,dropout:0.5,maxpool2d:2,flatten,linear:32,relu,dropout:0.5,linear:10";
  const served_model m = load_served_model({"", spec, 3, {1, 28, 28}, 10});
  const Tensor x = random_samples(4, 1);
  const Tensor want = m.whole->forward(x).clone();
  const Tensor again = m.whole->forward(x).clone();  // evaluation mode: no dropout draws, the same twice
  for (int64_t i = 0; i < want.numel(); ++i) CHECK(again[i] == want[i]);
  for (size_t n : {size_t{1}, size_t{2}, size_t{3}, size_t{4}}) {
    INFO(n << " stages");
    const auto ranges = served_stage_ranges(m, n, "");
    REQUIRE(ranges.size() == n);
    Tensor h = x;
    std::vector<std::unique_ptr<Sequential>> parts;
    for (const auto& r : ranges) {
      parts.push_back(served_stage(m, r));
      h = parts.back()->forward(h).clone();
    }
    REQUIRE(h.shape() == want.shape());
    for (int64_t i = 0; i < h.numel(); ++i) CHECK(h[i] == want[i]);
  }
  CHECK(served_stage_ranges(m, 2, "4") == std::vector<stage_range>{{0, 4}, {4, 9}});
  CHECK_THROWS_WITH(served_stage_ranges(m, 2, "12"), Catch::Contains("12"));
  CHECK_THROWS_WITH(served_stage_ranges(m, 10, ""), Catch::Contains("--stages 10"));
}

TEST_CASE("one and three stage threads on loopback answer a client as local inference", "[lan][serve]") {
  const served_model m = load_served_model({"", "cnn", 5, {1, 28, 28}, 10});
  for (size_t n : {size_t{1}, size_t{3}}) {
    INFO(n << " stages");
    const loopback_layout layout = make_loopback_layout(n);
    loopback_serving serving(m, layout);
    {
      inference_client client(layout.client_options());
      for (int64_t b : {int64_t{1}, int64_t{3}}) {
        const Tensor x = random_samples(b, static_cast<uint32_t>(b));
        const Tensor got = client.infer(x);
        const Tensor want = m.whole->forward(x).clone();
        REQUIRE(got.shape() == want.shape());
        for (int64_t i = 0; i < got.numel(); ++i) CHECK(std::fabs(got[i] - want[i]) <= 1e-5f);
      }
      // [N, 784] is sent again as the model's [N, 1, 28, 28].
      const Tensor flat = random_samples(2, 9).reshape({2, 784});
      CHECK(client.infer(flat).shape() == Shape{2, 10});
      // A shape with another element count is refused by name.
      CHECK_THROWS_WITH(client.infer(Tensor({1, 1, 10, 10})), Catch::Contains("[1,28,28]"));
    }
    serving.stop();
    const auto& counters = serving.counters();
    // 2 requests, the flat one twice (bad_input, then reshaped), the bad one:
    // stage 0 answers the 2 bad_input, the last stage the 3 others.
    CHECK(counters[0].requests == 5);
    if (n == 1) CHECK(counters[0].answered == 5);
    else CHECK((counters[0].answered == 2 && counters[n - 1].answered == 3));
    for (const auto& c : counters) CHECK(c.dropped.empty());
  }
}

TEST_CASE("a served model file gives the model it was written from, a damaged one is refused by name", "[lan][serve]") {
  const std::string spec = "conv2d:4:3,relu,maxpool2d:2,flatten,linear:10";
  const served_model seeded = load_served_model({"", spec, 11, {1, 28, 28}, 10});
  const auto dir = std::filesystem::temp_directory_path() / ("test_lan_serve-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.safetensors").string();
  write_model_file(path, describe_model(spec, {1, 28, 28}, 10), *seeded.whole);
  const served_model from_file = load_served_model({path});
  CHECK(from_file.spec == spec);
  CHECK(from_file.input_shape == Shape{1, 28, 28});
  CHECK(from_file.num_classes == 10);
  CHECK_FALSE(from_file.whole->training());
  const Tensor x = random_samples(2, 4);
  const Tensor want = seeded.whole->forward(x).clone();
  const Tensor got = served_stage(from_file, served_stage_ranges(from_file, 2, "")[1])->forward(
      served_stage(from_file, served_stage_ranges(from_file, 2, "")[0])->forward(x).clone()).clone();
  for (int64_t i = 0; i < want.numel(); ++i) CHECK(got[i] == want[i]);
  // A truncated file: DataError naming it.
  std::filesystem::resize_file(path, 100);
  CHECK_THROWS_WITH(load_served_model({path}), Catch::Contains(path));
  std::filesystem::remove_all(dir);
}
