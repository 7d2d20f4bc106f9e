// Every simulated run leaves its final model (run_dir/model.safetensors):
// data parallel, the honest peers' mean, evaluated as itself; pipeline,
// replica 0's stages concatenated, equal to the stages' last checkpoints.
// model.init_from starts a run from such a file, and refuses one that does
// not hold the run's model, naming the first tensor that differs.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "model_io/model_evaluation.hpp"
#include "model_io/model_file.hpp"
#include "protocols/checkpoint_file.hpp"
#include "run/config_schema.hpp"
#include "run/initial_model.hpp"
#include "run/run_data.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"
#include "tests/float_distances.hpp"

using namespace murmur;
using murmur::testing::max_abs_diff;
namespace fs = std::filesystem;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

RunConfig small(std::vector<std::string> more = {}) {
  std::vector<std::string> o = {"data.dataset=synthetic", "data.train_samples=2000", "data.test_samples=500",
                                "model.arch=flatten,linear:32,relu,linear:10", "train.epochs=1", "train.batch=32",
                                "sim.peers=4"};
  o.insert(o.end(), more.begin(), more.end());
  return parse_config("", "test", o);
}

}  // namespace

TEST_CASE("a data-parallel sim writes the honest peers' mean as model.safetensors, with its accuracy",
          "[sim][model_io]") {
  const RunConfig c = small({"train.epochs=4"});
  const auto dir = scratch("final-model-dp");
  const sim_summary s = run_simulation(c, dir.string());
  REQUIRE(s.final_model.written);
  const model_weights w = read_model_file((dir / "model.safetensors").string());
  CHECK(w.model.spec == c.model);
  CHECK(w.model.whole());
  CHECK(w.model.notes.at("source") == "murmur sim: mean of the 4 peers' parameters");
  CHECK(w.model.notes.at("step") == std::to_string(s.steps));
  // The accuracy summary.json gives is the file's own.
  auto model = build_model_from(w);
  const run_data data = load_run_data(c);
  const model_evaluation e = evaluate_model(*model, *data.test);
  CHECK(e.accuracy == Approx(s.final_model.test_accuracy));
  // The consensus model is as good as the peers it averages.
  CHECK(e.accuracy > 0.8);
  CHECK(e.accuracy > s.final_test_accuracy - 0.05);
  const auto summary = nlohmann::json::parse(slurp(dir / "summary.json"));
  CHECK(summary["final_model"]["file"] == "model.safetensors");
  CHECK(summary["final_model"]["test_accuracy"].get<double>() == Approx(e.accuracy));
}

TEST_CASE("a pipeline sim writes replica 0's whole model, equal to its stages' parameters", "[sim][model_io][pipeline]") {
  const RunConfig c = small({"sim.peers=1", "pipeline.stages=2", "checkpoint.every=1000000", "train.epochs=0.5"});
  const auto dir = scratch("final-model-pipe");
  const sim_summary s = run_simulation(c, dir.string());
  REQUIRE(s.final_model.written);
  const model_weights w = read_model_file((dir / "model.safetensors").string());
  CHECK(w.model.whole());
  CHECK(w.model.notes.at("source") == "murmur sim: replica 0's 2 stages, concatenated");
  CHECK(s.final_model.test_accuracy > 0.5);
}

TEST_CASE("model.init_from starts every peer from the file's weights", "[sim][model_io]") {
  const auto first = scratch("init-from-a"), second = scratch("init-from-b");
  run_simulation(small(), first.string());
  const std::string file = (first / "model.safetensors").string();
  const model_weights start = read_model_file(file);
  // A learning rate near zero: the run ends where it started.
  const RunConfig c = small({"model.init_from=" + file, "train.lr=1e-9", "train.momentum=0"});
  const sim_summary s = run_simulation(c, second.string());
  const model_weights end = read_model_file((second / "model.safetensors").string());
  CHECK(max_abs_diff(start.params, end.params) < 1e-5);
  CHECK(s.final_model.test_accuracy == Approx(std::stod(start.model.notes.at("test_accuracy"))).margin(0.005));
  // The same for a pipeline: its stages start from their slices of the file.
  const auto third = scratch("init-from-c");
  const sim_summary p = run_simulation(
      small({"model.init_from=" + first.string(), "train.lr=1e-9", "train.momentum=0", "sim.peers=1", "pipeline.stages=2"}),
      third.string());
  REQUIRE(p.final_model.written);
  CHECK(max_abs_diff(start.params, read_model_file((third / "model.safetensors").string()).params) < 1e-5);
}

TEST_CASE("model.init_from refuses a file that does not hold the run's model, naming the tensor", "[sim][model_io]") {
  const auto dir = scratch("init-from-bad");
  run_simulation(small(), dir.string());
  const std::string file = (dir / "model.safetensors").string();
  const Shape in{1, 12, 12};
  auto refused = [&](const std::string& arch) {
    RunConfig c = small({"model.arch=" + arch, "model.init_from=" + file});
    try {
      load_initial_parameters(c, in, 10);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    FAIL("accepted " << arch);
    return std::string();
  };
  CHECK_THAT(refused("flatten,linear:33,relu,linear:10"),
             Catch::Contains("model.init_from = " + file + ": tensor '1.weight' [32,144] in the file") &&
                 Catch::Contains("has '1.weight' [33,144] there"));
  CHECK_THAT(refused("flatten,linear:32,relu,linear:32,relu,linear:10"),
             Catch::Contains("tensor '3.weight' [10,32] in the file"));
  CHECK_THAT(refused("flatten,linear:32,tanh,linear:10"),
             Catch::Contains("layer 2 is 'relu' in the file") && Catch::Contains("'tanh' in this run's model"));
  RunConfig none = small();
  CHECK(load_initial_parameters(none, in, 10) == nullptr);
  RunConfig missing = small({"model.init_from=" + (dir / "nope.safetensors").string()});
  CHECK_THROWS_WITH(load_initial_parameters(missing, in, 10), Catch::Contains("nope.safetensors: no such file"));
}
