// Placement of pipeline stages on heterogeneous machines
// (run/stage_placement.hpp): the fast machine gets the heavy stage, a slow
// link is not cut across a big activation, identical machines keep today's
// balanced cut by index, the heuristic is never worse than the index
// layout, and murmur sim runs the chosen layout on the configured machines
// and reports the predicted and simulated makespan of a batch.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run/config_schema.hpp"
#include "run/link_model.hpp"
#include "run/stage_placement.hpp"
#include "sim/simulation.hpp"
#include "tensor/rng.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;

namespace Catch {
template <>
struct StringMaker<murmur::stage_range> {
  static std::string convert(const murmur::stage_range& r) {
    std::string s = "[";
    s += std::to_string(r.begin);
    s += ",";
    s += std::to_string(r.end);
    s += ")";
    return s;
  }
};
}  // namespace Catch

using murmur::test::slurp;

namespace {

// n machines of the given slowdowns, every link at `bps` bytes/s (0 = unlimited).
placement_problem machines(std::vector<layer_cost> layers, std::vector<double> slowdown, double bps = 0,
                           uint32_t microbatches = 4) {
  placement_problem p;
  p.layers = std::move(layers);
  p.samples = 8;
  p.microbatches = microbatches;
  const size_t n = slowdown.size();
  p.slowdown = std::move(slowdown);
  p.bytes_per_s.assign(n, std::vector<double>(n, bps));
  p.latency_s.assign(n, std::vector<double>(n, 0.0));
  return p;
}

std::vector<uint32_t> first(uint32_t n) {
  std::vector<uint32_t> m(n);
  for (uint32_t i = 0; i < n; ++i) m[i] = i;
  return m;
}

}  // namespace

TEST_CASE("placement: the fast machine gets the heavy stage", "[placement]") {
  // Two stages, one heavy layer then three light ones; machine 0 is 4x slower.
  auto p = machines({{8e-3, 100}, {1e-3, 100}, {1e-3, 100}, {1e-3, 100}}, {4.0, 1.0});
  const auto best = place_stages(p, first(2));
  CHECK(best.exact);
  REQUIRE(best.machine.size() == 2);
  CHECK(best.machine[0] == 1);  // the heavy first stage on the fast machine
  const auto index = predict_placement(p, best.ranges, first(2));
  CHECK(best.predicted_s < index.predicted_s);
  // With the speeds swapped, the index assignment is already the best.
  auto q = machines(p.layers, {1.0, 4.0});
  CHECK(place_stages(q, first(2)).machine == std::vector<uint32_t>{0, 1});
}

TEST_CASE("placement: a slow link is not cut across a big activation", "[placement]") {
  // Cutting after layer 0 balances the compute (2 | 1 + 1 ms) but sends 1 MB
  // per sample; after layer 1 (3 | 1 ms) it sends 100 bytes. Fast links cut
  // the balanced way, a slow link the small activation.
  const std::vector<layer_cost> layers{{2e-3, 1000000}, {1e-3, 100}, {1e-3, 10}};
  auto fast = machines(layers, {1.0, 1.0}, 1e11);
  CHECK(place_stages(fast, first(2)).ranges == std::vector<stage_range>{{0, 1}, {1, 3}});
  auto slow = machines(layers, {1.0, 1.0}, 1e7);
  CHECK(place_stages(slow, first(2)).ranges == std::vector<stage_range>{{0, 2}, {2, 3}});
  // Per directed link: only 0 -> 1 and 1 -> 0 (the gradient's way) are slow.
  auto mixed = machines(layers, {1.0, 1.0, 1.0}, 1e11);
  mixed.bytes_per_s[0][1] = mixed.bytes_per_s[1][0] = 1e7;
  CHECK(place_stages(mixed, {0, 1}).ranges == std::vector<stage_range>{{0, 2}, {2, 3}});
  CHECK(place_stages(mixed, {0, 2}).ranges == std::vector<stage_range>{{0, 1}, {1, 3}});
  // A slow downlink at the receiver counts as well.
  auto down = machines(layers, {1.0, 1.0}, 1e11);
  down.down_bytes_per_s = {1e11, 1e7};
  CHECK(place_stages(down, first(2)).ranges == std::vector<stage_range>{{0, 2}, {2, 3}});
}

TEST_CASE("placement: identical machines reduce to today's balanced cut by index", "[placement]") {
  int moved = 0;
  for (const char* arch : {"flatten,linear:512,relu,linear:512,relu,linear:256,relu,linear:128,relu,linear:10",
                           "flatten,linear:64,relu,linear:48,relu,linear:32,relu,linear:10",
                           "cnn"}) {
    auto model = build_model(arch, {1, 28, 28}, 10);
    const auto costs = modelled_layer_costs(*model, 50);
    for (double mbps : {10000.0, 100.0})
      for (uint32_t S : {2u, 3u, 4u})
        for (auto sched : {pipeline_schedule_kind::one_f_one_b, pipeline_schedule_kind::gpipe}) {
          INFO(arch << " at " << mbps << " Mbit/s, " << S << " stages, " << (sched == pipeline_schedule_kind::gpipe ? "gpipe" : "1f1b"));
          auto p = machines(costs, std::vector<double>(S, 1.0), mbps * 1e6 / 8, 8);
          p.schedule = sched;
          const auto today = balance_stages(costs, S, mbps * 1e6 / 8);
          const auto best = place_stages(p, first(S), {}, today);
          CHECK(best.machine == first(S));
          // Today's cut stays unless the model predicts more than 1 % less.
          // It moves for 2 of these 36: the 784-512-512-256-128 MLP at 10
          // Gbit/s in 3 and 4 stages with 1f1b, whose in-flight limit
          // balance_stages does not see; murmur sim agrees (3 stages, latency
          // 0: 3.54 ms a batch with today's "2,6", 3.31 ms with "2,4").
          if (best.ranges != today) {
            CHECK(best.predicted_s < predict_placement(p, today, first(S)).predicted_s / (1 + balance_tolerance));
            ++moved;
          }
          // Without the preference the model's own optimum is within 1 % of today's
          // (a ReLU on either side of a cut, a gradient send balance_stages leaves out).
          const auto free = place_stages(p, first(S));
          CHECK(free.machine == first(S));
          CHECK(free.predicted_s <= best.predicted_s * (1 + 1e-9));
        }
  }
  CHECK(moved == 2);
  // Equal layers: the balanced cut is exact, and kept.
  std::vector<layer_cost> equal(12, layer_cost{1e-3, 4096});
  auto p = machines(equal, std::vector<double>(4, 1.0), 1e9, 8);
  const auto today = balance_stages(equal, 4, 1e9);
  CHECK(today == std::vector<stage_range>{{0, 3}, {3, 6}, {6, 9}, {9, 12}});
  CHECK(place_stages(p, first(4)).ranges == today);
  CHECK(place_stages(p, first(4)).machine == first(4));
}

TEST_CASE("placement: the prediction of equal stages is (M + S - 1) stage times", "[placement]") {
  auto p = machines({{3e-3, 0}, {3e-3, 0}, {3e-3, 0}, {3e-3, 0}}, {1, 1, 1, 1}, 0, 8);
  const auto r = std::vector<stage_range>{{0, 1}, {1, 2}, {2, 3}, {3, 4}};
  const double stage = 3e-3 * p.samples;
  CHECK(predict_placement(p, r, first(4)).predicted_s == Approx((8 + 4 - 1) * stage));
  p.schedule = pipeline_schedule_kind::gpipe;
  CHECK(predict_placement(p, r, first(4)).predicted_s == Approx((8 + 4 - 1) * stage));
  p.latency_s[0][1] = 0.5;
  CHECK(predict_placement(p, r, first(4)).predicted_s == Approx((8 + 4 - 1) * stage + 0.5));
  CHECK_THROWS_AS(predict_placement(p, {{0, 2}, {3, 4}}, first(2)), std::invalid_argument);
  CHECK_THROWS_AS(predict_placement(p, r, {0, 1, 2, 9}), std::invalid_argument);
  p.slowdown[1] = 0;
  CHECK_THROWS_AS(place_stages(p, first(4)), std::invalid_argument);
}

TEST_CASE("placement: the heuristic is never better than exact and never worse than the index layout", "[placement]") {
  Rng rng(42);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<layer_cost> layers;
    for (int i = 0; i < 10; ++i)
      layers.push_back({rng.uniform(0.1e-3, 3e-3), static_cast<int64_t>(rng.uniform(100, 200000))});
    std::vector<double> slow;
    for (int k = 0; k < 5; ++k) slow.push_back(rng.uniform(1, 4));
    auto p = machines(layers, slow, 0, 8);
    for (uint32_t i = 0; i < 5; ++i)
      for (uint32_t j = 0; j < 5; ++j) {
        p.bytes_per_s[i][j] = rng.uniform(1e5, 1e8);
        p.latency_s[i][j] = rng.uniform(0, 0.01);
      }
    const auto exact = place_stages(p, first(5));
    const auto heuristic = place_stages(p, first(5), {}, {}, /*budget=*/0);
    CHECK(exact.exact);
    CHECK_FALSE(heuristic.exact);
    CHECK(exact.predicted_s <= heuristic.predicted_s * (1 + 1e-12));
    // The index assignment with its own best cut is one of the heuristic's starts.
    std::vector<uint32_t> order = first(5);
    const auto index_only = place_stages(p, order, {}, {}, 0);
    CHECK(heuristic.predicted_s <= index_only.predicted_s);
    const auto fixed_cut = place_stages(p, first(5), exact.ranges);
    CHECK(fixed_cut.ranges == exact.ranges);
    CHECK(fixed_cut.predicted_s == Approx(exact.predicted_s));
  }
}

TEST_CASE("placement: a relabelled link model moves each machine's links to its node", "[placement]") {
  RunConfig c;
  c.link_classes = "home:1,office:2";
  const auto m = link_model::from_config(c, 3);
  const auto r = m.relabelled({2, 0, 1});  // node 0 is machine 2 (office), node 1 machine 0 (home)
  CHECK(r.rate_bps(1, 0) == m.rate_bps(0, 2));
  CHECK(r.latency_s(1, 2) == m.latency_s(0, 1));
  CHECK(r.peers()[1].cls == "home");
  CHECK_THROWS_AS(m.relabelled({0, 0, 1}), std::invalid_argument);
}

TEST_CASE("placement = auto in murmur sim: the slow machine gets the light stage, faster than by index",
          "[placement][pipeline]") {
  // A heavy first stage and light later ones; machine 0 is 4x slower.
  auto cfg = [](const std::string& placement) {
    return parse_config("", "test",
                        {"data.dataset=synthetic", "data.train_samples=640", "data.test_samples=100",
                         "model.arch=flatten,linear:256,relu,linear:32,relu,linear:32,relu,linear:10", "train.epochs=1",
                         "train.batch=64", "pipeline.stages=3", "pipeline.microbatches=4", "sim.slow_peers=0",
                         "sim.slow_factor=4", "sim.link_classes=office:1,home:1,office:1",
                         "pipeline.placement=" + placement});
  };
  auto di = scratch("place-index"), da = scratch("place-auto");
  const auto index = run_simulation(cfg("index"), di.string());
  const auto autop = run_simulation(cfg("auto"), da.string());
  CHECK(index.pipeline.placement == "index");
  CHECK(autop.pipeline.placement == "auto");
  for (const auto* s : {&index, &autop}) {
    const auto& p = s->pipeline;
    INFO(p.placement << ": predicted " << p.predicted_batch_s << " s, simulated " << p.simulated_batch_s << " s");
    CHECK(p.simulated_batch_s > 0);
    CHECK(p.predicted_batch_s == Approx(p.simulated_batch_s).epsilon(0.05));
  }
  CHECK(autop.pipeline.predicted_index_batch_s == Approx(index.pipeline.predicted_batch_s));
  CHECK(autop.pipeline.simulated_batch_s < index.pipeline.simulated_batch_s);
  // Stage 0 (the heavy one) is not on machine 0, the slow one.
  CHECK(autop.pipeline.per_stage[0].machine != 0);
  const auto j = nlohmann::json::parse(slurp(da / "summary.json"));
  CHECK(j["pipeline"]["placement"] == "auto");
  CHECK(j["pipeline"]["predicted_batch_s"].get<double>() > 0);
  CHECK(j["pipeline"]["simulated_batch_s"].get<double>() > 0);
  CHECK(j["pipeline"]["per_stage"][0]["machine"].get<int>() != 0);
  CHECK_THROWS_WITH(parse_config("", "test", {"pipeline.placement=best"}), Catch::Contains("pipeline.placement"));
  // A pipeline's link classes name its nodes, not sim.peers.
  CHECK_THROWS_WITH(parse_config("", "test", {"pipeline.stages=3", "sim.link_classes=office:2"}),
                    Catch::Contains("pipeline.spares = 3 nodes"));
}
