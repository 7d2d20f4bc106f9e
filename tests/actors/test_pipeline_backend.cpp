// Pipeline stages on a compute backend (the CPU backend here; tests/gpu
// runs the same on CUDA) train as the host stages: the same per-step losses,
// parameters and optimizer state within float rounding, for both schedules,
// convolutions, SGD and Adam; a host write between steps (gossip's mix)
// reaches the backend; a stage restored from its checkpoint on a backend
// continues exactly as before.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>

#include "tensor/cpu_backend.hpp"
#include "tests/actors/backend_pipeline_run.hpp"

using namespace murmur;
using namespace murmur::testing;

namespace {

const auto on_cpu_backend = [] { return make_cpu_backend(); };
const std::string kConv = "conv2d:4:3,relu,maxpool2d:2,conv2d:8:3,relu,flatten,linear:10";

}  // namespace

TEST_CASE("pipeline stages on a backend train as the host stages", "[pipeline][backend]") {
  pipeline_run_settings p;
  auto [opt, S, M, kind, model, cuts] =
      GENERATE_COPY(table<std::string, uint32_t, uint32_t, pipeline_schedule_kind, std::string, std::string>({
          {"sgd", 2, 4, pipeline_schedule_kind::one_f_one_b, p.model, ""},
          {"sgd", 3, 4, pipeline_schedule_kind::gpipe, p.model, ""},
          {"adam", 3, 5, pipeline_schedule_kind::one_f_one_b, p.model, ""},
          {"sgd", 3, 3, pipeline_schedule_kind::one_f_one_b, kConv, "3,6"},
          {"sgd", 2, 1, pipeline_schedule_kind::gpipe, kConv, "6"},
          {"adam", 2, 4, pipeline_schedule_kind::gpipe, kConv, "3"},
      }));
  p.optimizer = opt;
  p.stages = S;
  p.microbatches = M;
  p.schedule = kind;
  p.model = model;
  p.cuts = cuts;
  p.batch = opt == "adam" ? 27 : 30;
  p.steps = 20;  // past the end of the first epoch (17 steps, the last one partial)
  INFO(opt << " S " << S << " M " << M << " " << to_string(kind) << " cuts '" << cuts << "' " << model);
  const pipeline_run host = run_backend_pipeline(p, {});
  const pipeline_run be = run_backend_pipeline(p, on_cpu_backend);
  REQUIRE(be.losses.size() == host.losses.size());
  REQUIRE(host.losses.size() == 20);
  double loss = 0;
  for (size_t i = 0; i < host.losses.size(); ++i)
    loss = std::max(loss, std::abs(be.losses[i] - host.losses[i]) / std::abs(host.losses[i]));
  const double params = relative_diff(be.params, host.params);
  double state = 0;
  for (size_t s = 0; s < S; ++s) {
    CHECK(be.checkpoints[s].opt_steps == host.checkpoints[s].opt_steps);
    REQUIRE(be.checkpoints[s].opt_state.size() == host.checkpoints[s].opt_state.size());
    state = std::max(state, relative_diff(be.checkpoints[s].opt_state, host.checkpoints[s].opt_state));
  }
  std::printf("pipeline stages on the CPU backend vs the host, %s S %u M %u %s cuts '%s' %s: worst relative "
              "difference: loss %.1e, params %.1e, optimizer state %.1e\n",
              opt.c_str(), S, M, to_string(kind), cuts.c_str(), model.c_str(), loss, params, state);
  // As tests/tensor/test_backend_stage.cpp: the same code on the CPU, up to
  // a conv's weight-gradient summation order (Adam amplifies it on single
  // near-cancelling elements: its bound is the scale-relative one).
  CHECK(loss < 1e-5);
  CHECK(params < (opt == "adam" ? 1e-4 : 1e-5));
  CHECK(state < (opt == "adam" ? 1e-3 : 1e-5));
}

TEST_CASE("a host write between steps (gossip's mix) reaches a stage on a backend", "[pipeline][backend]") {
  pipeline_run_settings p;
  p.stages = 3;
  auto data = std::make_shared<const Dataset>(make_synthetic(500, 10, 8, 3));
  const auto shard = shard_iid(500, 1, 7)[0];
  std::vector<float> got[2];
  for (int backend = 0; backend < 2; ++backend) {
    auto st = make_pipeline(p, data, shard);
    if (backend)
      for (auto& s : st) s->use_backend(make_cpu_backend());
    run_pipeline_until(st, 5);
    // As a mix: every master parameter halved, then the stage told.
    for (auto& s : st) {
      float* w = s->model()->params();
      for (int64_t i = 0; i < s->model()->param_count(); ++i) w[i] *= 0.5f;
      s->mark_host_params_written();
    }
    run_pipeline_until(st, 10);
    for (auto& s : st) got[backend].insert(got[backend].end(), s->model()->params(),
                                           s->model()->params() + s->model()->param_count());
  }
  CHECK(relative_diff(got[1], got[0]) < 1e-6);
}

TEST_CASE("a stage on a backend restored from its checkpoint continues exactly as before", "[pipeline][backend]") {
  pipeline_run_settings p;
  p.stages = 3;
  p.optimizer = GENERATE(std::string("sgd"), std::string("adam"));
  INFO(p.optimizer);
  auto data = std::make_shared<const Dataset>(make_synthetic(500, 10, 8, 3));
  const auto shard = shard_iid(500, 1, 7)[0];
  auto a = make_pipeline(p, data, shard);
  for (auto& s : a) s->use_backend(make_cpu_backend());
  run_pipeline_until(a, 6);
  std::vector<checkpoint> at6;
  for (auto& s : a) at6.push_back(s->make_checkpoint(1));
  run_pipeline_until(a, 12);
  // A fresh pipeline on backends: from the step-6 checkpoints to step 12.
  auto b = make_pipeline(p, data, shard);
  for (size_t s = 0; s < b.size(); ++s) {
    b[s]->use_backend(make_cpu_backend());
    b[s]->restore(at6[s], 0);
    CHECK(b[s]->steps_done() == 6);
  }
  run_pipeline_until(b, 12);
  for (size_t s = 0; s < a.size(); ++s) {
    const auto& ma = *a[s]->model();
    const auto& mb = *b[s]->model();
    CHECK(std::vector<float>(ma.params(), ma.params() + ma.param_count()) ==
          std::vector<float>(mb.params(), mb.params() + mb.param_count()));
    CHECK(a[s]->make_checkpoint(1).opt_state == b[s]->make_checkpoint(1).opt_state);
  }
}

TEST_CASE("a stage moves to a backend only between steps", "[pipeline][backend]") {
  pipeline_run_settings p;
  auto data = std::make_shared<const Dataset>(make_synthetic(500, 10, 8, 3));
  auto st = make_pipeline(p, data, shard_iid(500, 1, 7)[0]);
  REQUIRE(st[0]->ready());
  st[0]->run_next();  // the first forward of step 1
  CHECK_THROWS_WITH(st[0]->use_backend(make_cpu_backend()), Catch::Contains("in flight"));
  CHECK_FALSE(st[0]->on_backend());
}
