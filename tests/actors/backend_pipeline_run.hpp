// A pipeline of S stages run op by op as the stage actors run it (each op's
// output handed to its neighbour through accept()), every stage on the host
// or on a backend make_backend makes: what tests/actors (CPU backend) and
// tests/gpu (CUDA) run to show a backend pipeline trains as the host one.
#pragma once
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/pipeline_stage.hpp"

namespace murmur::testing {

struct pipeline_run {
  std::vector<float> params;  // every stage's, concatenated
  std::vector<double> losses;  // the last stage's batch loss, per step
  std::vector<checkpoint> checkpoints;  // each stage's, after the last step
};

struct pipeline_run_settings {
  std::string model = "flatten,linear:48,relu,linear:32,tanh,linear:24,relu,linear:10";
  std::string cuts;  // "" = balanced
  uint32_t stages = 2, microbatches = 4;
  pipeline_schedule_kind schedule = pipeline_schedule_kind::one_f_one_b;
  std::string optimizer = "sgd";
  int64_t batch = 30, steps = 12;
};

inline train_settings pipeline_train(const pipeline_run_settings& p) {
  train_settings t;
  t.optimizer = p.optimizer;
  t.lr = p.optimizer == "adam" ? 0.003 : 0.1;
  t.momentum = 0.9;
  t.weight_decay = 1e-4;
  t.batch = p.batch;
  t.total_steps = p.steps;
  t.data_seed = 42;
  t.init_seed = 9;
  return t;
}

inline std::vector<std::unique_ptr<pipeline_stage>> make_pipeline(const pipeline_run_settings& p,
                                                                  std::shared_ptr<const Dataset> data,
                                                                  const std::vector<int64_t>& shard) {
  auto whole = build_model(p.model, data->sample_shape(), data->num_classes);
  const auto ranges = p.cuts.empty() ? balance_stages(modelled_layer_costs(*whole, 50), p.stages, 1e9)
                                     : parse_stage_split(p.cuts, whole->layer_count(), p.stages);
  std::vector<std::unique_ptr<pipeline_stage>> st;
  for (uint32_t s = 0; s < p.stages; ++s) {
    stage_settings ss;
    ss.stage = static_cast<uint16_t>(s);
    ss.stages = static_cast<uint16_t>(p.stages);
    ss.microbatches = p.microbatches;
    ss.schedule = p.schedule;
    ss.model_spec = p.model;
    ss.range = ranges[s];
    ss.train = pipeline_train(p);
    st.push_back(std::make_unique<pipeline_stage>(ss, data, shard));
  }
  return st;
}

// Runs every stage until it has done `until` steps; fails on a deadlock.
inline void run_pipeline_until(std::vector<std::unique_ptr<pipeline_stage>>& st, uint64_t until,
                               std::vector<double>* losses = nullptr) {
  for (;;) {
    bool progress = false, all_done = true;
    for (size_t s = 0; s < st.size(); ++s) {
      while (st[s]->steps_done() < until && st[s]->ready()) {
        auto r = st[s]->run_next();
        progress = true;
        if (r.step_done && losses && s + 1 == st.size()) losses->push_back(st[s]->last_step_loss());
        if (r.out) {
          const size_t to = r.out->gradient ? s - 1 : s + 1;
          REQUIRE(st[to]->accept(std::move(*r.out)));
        }
      }
      all_done = all_done && st[s]->steps_done() >= until;
    }
    if (all_done) return;
    REQUIRE(progress);  // otherwise nobody can move: a deadlock
  }
}

// make_backend empty: the host stages.
inline pipeline_run run_backend_pipeline(const pipeline_run_settings& p,
                                         const std::function<std::unique_ptr<compute_backend>()>& make_backend) {
  auto data = std::make_shared<const Dataset>(make_synthetic(500, 10, 8, 3));
  const auto shard = shard_iid(500, 1, 7)[0];
  auto st = make_pipeline(p, data, shard);
  if (make_backend)
    for (auto& s : st) s->use_backend(make_backend());
  for (auto& s : st) REQUIRE(s->on_backend() == static_cast<bool>(make_backend));
  pipeline_run r;
  run_pipeline_until(st, static_cast<uint64_t>(p.steps), &r.losses);
  for (auto& s : st) {
    CHECK(s->stats().rejected == 0);
    r.params.insert(r.params.end(), s->model()->params(), s->model()->params() + s->model()->param_count());
    r.checkpoints.push_back(s->make_checkpoint(1));
  }
  return r;
}

// max_i |a_i - b_i| / max_i |b_i|.
inline double relative_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::abs(static_cast<double>(b[i])));
  }
  return den > 0 ? num / den : num;
}

}  // namespace murmur::testing
