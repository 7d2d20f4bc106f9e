// Pipeline schedules and stages: the op orders of GPipe and 1F1B, and the
// claim that an S-stage pipeline with M micro-batches trains the same
// parameters as one-stage training on the same batches (float tolerance),
// for both schedules, uneven micro-batches, SGD with momentum and Adam;
// messages that do not fit a stage are refused and change nothing.
#include <catch2/catch.hpp>
#include <cmath>

#include "actors/pipeline_stage.hpp"
#include "actors/trainer.hpp"

using namespace murmur;

namespace {

std::string show(const std::vector<pipeline_op>& ops) {
  std::string s;
  for (auto& o : ops) {
    s.push_back(o.backward ? 'B' : 'F');
    s.append(std::to_string(o.microbatch));
    s.push_back(' ');
  }
  return s;
}

const std::string kModel = "flatten,linear:48,relu,linear:32,tanh,linear:24,relu,linear:10";

struct pipeline_fixture {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(500, 10, 8, 3));
  std::vector<int64_t> shard = shard_iid(500, 1, 7)[0];

  train_settings train(const std::string& opt, int64_t batch, int64_t steps) const {
    train_settings t;
    t.optimizer = opt;
    t.lr = opt == "adam" ? 0.003 : 0.1;
    t.momentum = 0.9;
    t.weight_decay = 1e-4;
    t.batch = batch;
    t.total_steps = steps;
    t.data_seed = 42;
    t.init_seed = 9;
    return t;
  }

  // Runs the stages to the end, handing each op's output to its neighbour
  // through accept(); fails on a deadlock.
  static void run_all(std::vector<std::unique_ptr<pipeline_stage>>& st) {
    for (;;) {
      bool progress = false, all_done = true;
      for (size_t s = 0; s < st.size(); ++s) {
        while (st[s]->ready()) {
          auto r = st[s]->run_next();
          progress = true;
          if (r.out) {
            const size_t to = r.out->gradient ? s - 1 : s + 1;
            REQUIRE(st[to]->accept(std::move(*r.out)));
          }
        }
        all_done = all_done && st[s]->finished();
      }
      if (all_done) return;
      REQUIRE(progress);  // otherwise nobody can move: a deadlock
    }
  }
};

}  // namespace

TEST_CASE("gpipe runs every forward, then the backwards in reverse", "[pipeline]") {
  auto ops = stage_schedule(pipeline_schedule_kind::gpipe, 4, 1, 3);
  CHECK(show(ops) == "F0 F1 F2 B2 B1 B0 ");
  CHECK(peak_in_flight(ops) == 3);
}

TEST_CASE("1f1b warms up with S-1-s forwards, alternates, then drains", "[pipeline]") {
  CHECK(show(stage_schedule(pipeline_schedule_kind::one_f_one_b, 4, 0, 6)) == "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5 ");
  CHECK(show(stage_schedule(pipeline_schedule_kind::one_f_one_b, 4, 3, 6)) == "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 ");
  CHECK(show(stage_schedule(pipeline_schedule_kind::one_f_one_b, 4, 1, 2)) == "F0 F1 B0 B1 ");
  for (uint32_t S : {2u, 4u, 8u})
    for (uint32_t M : {1u, 4u, 8u, 16u})
      for (uint32_t s = 0; s < S; ++s) {
        auto g = stage_schedule(pipeline_schedule_kind::gpipe, S, s, M);
        auto f = stage_schedule(pipeline_schedule_kind::one_f_one_b, S, s, M);
        INFO("S " << S << " M " << M << " s " << s);
        CHECK(g.size() == 2 * M);
        CHECK(f.size() == 2 * M);
        CHECK(peak_in_flight(g) == M);
        CHECK(peak_in_flight(f) == std::min(S - s, M));
        // Each micro-batch: forward before backward, exactly once each.
        std::vector<int> seen(M, 0);
        for (auto& op : f) {
          CHECK(seen[op.microbatch] == (op.backward ? 1 : 0));
          ++seen[op.microbatch];
        }
        CHECK(f.front() == pipeline_op{false, 0});
        CHECK(f.back().backward);
      }
  CHECK_THROWS_AS(stage_schedule(pipeline_schedule_kind::gpipe, 2, 2, 1), std::invalid_argument);
  CHECK_THROWS_WITH(parse_pipeline_schedule("zigzag"), Catch::Contains("gpipe or 1f1b"));
  CHECK(pipeline_efficiency_bound(4, 8) == Approx(8.0 / 11.0));
}

TEST_CASE("an S-stage pipeline trains the parameters one-stage training does", "[pipeline]") {
  pipeline_fixture f;
  const int64_t steps = 20;  // past the end of the first epoch (17 steps, the last one partial)
  const std::string conv = "conv2d:4:3,relu,maxpool2d:2,conv2d:8:3,relu,flatten,linear:10";
  auto [opt, batch, S, M, kind, model, cuts] =
      GENERATE_COPY(table<std::string, int64_t, uint32_t, uint32_t, pipeline_schedule_kind, std::string, std::string>({
          {"sgd", 30, 2, 4, pipeline_schedule_kind::gpipe, kModel, ""},
          {"sgd", 30, 2, 4, pipeline_schedule_kind::one_f_one_b, kModel, ""},
          {"sgd", 32, 4, 8, pipeline_schedule_kind::one_f_one_b, kModel, ""},
          {"sgd", 32, 3, 1, pipeline_schedule_kind::gpipe, kModel, ""},
          {"adam", 27, 3, 5, pipeline_schedule_kind::one_f_one_b, kModel, ""},
          {"adam", 27, 4, 16, pipeline_schedule_kind::gpipe, kModel, ""},
          // Convolutions, and a stage that only flattens (no parameters).
          {"sgd", 30, 4, 3, pipeline_schedule_kind::one_f_one_b, conv, "3,5,6"},
          {"sgd", 30, 4, 1, pipeline_schedule_kind::gpipe, conv, "3,5,6"},
          {"sgd", 30, 3, 1, pipeline_schedule_kind::gpipe, conv, "3,6"},
          {"sgd", 30, 3, 1, pipeline_schedule_kind::gpipe, conv, "5,6"},
          {"sgd", 30, 2, 1, pipeline_schedule_kind::gpipe, conv, "6"},
          {"sgd", 30, 2, 1, pipeline_schedule_kind::gpipe, conv, "3"},
          {"sgd", 30, 2, 1, pipeline_schedule_kind::gpipe, conv, "4"},
      }));
  INFO(opt << " batch " << batch << " S " << S << " M " << M << " " << to_string(kind) << " cuts " << cuts << " " << model);
  const auto t = f.train(opt, batch, steps);
  // One stage: the ordinary trainer on the same batches.
  trainer ref(t, model, f.data, f.shard, f.data);
  for (int64_t i = 0; i < steps; ++i) ref.step();

  auto whole = build_model(model, f.data->sample_shape(), 10);
  const auto ranges = cuts.empty() ? balance_stages(modelled_layer_costs(*whole, 50), S, 1e9)
                                   : parse_stage_split(cuts, whole->layer_count(), S);
  std::vector<std::unique_ptr<pipeline_stage>> st;
  for (uint32_t s = 0; s < S; ++s) {
    stage_settings ss;
    ss.stage = static_cast<uint16_t>(s);
    ss.stages = static_cast<uint16_t>(S);
    ss.microbatches = M;
    ss.schedule = kind;
    ss.model_spec = model;
    ss.range = ranges[s];
    ss.train = t;
    st.push_back(std::make_unique<pipeline_stage>(ss, f.data, f.shard));
  }
  pipeline_fixture::run_all(st);

  std::vector<float> got;
  for (auto& s : st) {
    CHECK(s->steps_done() == static_cast<uint64_t>(steps));
    CHECK(s->stats().rejected == 0);
    got.insert(got.end(), s->model()->params(), s->model()->params() + s->model()->param_count());
  }
  const auto& want = *ref.model();
  REQUIRE(got.size() == static_cast<size_t>(want.param_count()));
  // Stated tolerance: micro-batch gradients add up in another order than one
  // batch GEMM, so parameters agree to float rounding, amplified over the
  // steps: |diff| <= 1e-5 * (1 + |p|) for every parameter.
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - double(want.params()[i])) / (1.0 + std::abs(double(want.params()[i]))));
  INFO("worst relative difference " << worst);
  CHECK(worst <= 1e-5);
  // And the parameters did move (the comparison is not trivially true).
  auto fresh = build_model(model, f.data->sample_shape(), 10);
  fresh->init(t.init_seed);
  double moved = 0;
  for (size_t i = 0; i < got.size(); ++i) moved = std::max(moved, std::abs(double(got[i]) - double(fresh->params()[i])));
  CHECK(moved > 1e-3);
}

TEST_CASE("1f1b holds fewer micro-batches in flight than gpipe", "[pipeline]") {
  pipeline_fixture f;
  auto run = [&](pipeline_schedule_kind kind) {
    auto whole = build_model(kModel, f.data->sample_shape(), 10);
    const auto ranges = balance_stages(modelled_layer_costs(*whole, 50), 4, 1e9);
    std::vector<std::unique_ptr<pipeline_stage>> st;
    for (uint16_t s = 0; s < 4; ++s) {
      stage_settings ss;
      ss.stage = s;
      ss.stages = 4;
      ss.microbatches = 8;
      ss.schedule = kind;
      ss.model_spec = kModel;
      ss.range = ranges[s];
      ss.train = f.train("sgd", 32, 3);
      st.push_back(std::make_unique<pipeline_stage>(ss, f.data, f.shard));
    }
    pipeline_fixture::run_all(st);
    std::vector<size_t> peak;
    for (auto& s : st) peak.push_back(s->stats().peak_slots);
    return peak;
  };
  auto g = run(pipeline_schedule_kind::gpipe), o = run(pipeline_schedule_kind::one_f_one_b);
  for (size_t s = 0; s < 4; ++s) {
    CHECK(g[s] == 8);
    CHECK(o[s] == 4 - s);
  }
}

TEST_CASE("a stage refuses messages that do not fit it, and stays as it was", "[pipeline]") {
  pipeline_fixture f;
  auto whole = build_model(kModel, f.data->sample_shape(), 10);
  const auto ranges = parse_stage_split("3", whole->layer_count(), 2);
  stage_settings ss;
  ss.stage = 1;
  ss.stages = 2;
  ss.microbatches = 4;
  ss.model_spec = kModel;
  ss.range = ranges[1];
  ss.train = f.train("sgd", 32, 5);
  pipeline_stage st(ss, f.data, f.shard);
  auto good = [&] {
    stage_tensor m;
    m.replica = 0;
    m.stage = 0;
    m.step = 1;
    m.microbatch = 0;
    m.batch = 8;
    m.total = 32;
    m.shape = {48};
    m.labels.assign(8, 3);
    m.values.assign(8 * 48, 0.5f);
    return m;
  };
  auto bad = [&](auto change) {
    auto m = good();
    change(m);
    return m;
  };
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.replica = 1; })));
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.stage = 1; })));           // not from the previous stage
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.step = 2; })));            // a future step
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.shape = {47}; })));
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.batch = 9; })));           // micro-batch 0 of 32/4 has 8
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.microbatch = 4; })));
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.labels[2] = 10; })));      // class out of range
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.labels.pop_back(); })));
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.gradient = true; })));     // gradients come from stage 2
  CHECK_FALSE(st.accept(bad([](stage_tensor& m) { m.generation = 1; })));
  CHECK(st.stats().rejected + st.stats().stale == 10);
  CHECK_FALSE(st.ready());
  CHECK(st.accept(good()));
  CHECK_FALSE(st.accept(good()));  // a duplicate
  CHECK(st.ready());
}

TEST_CASE("a stage restored from its checkpoint continues exactly as before", "[pipeline]") {
  pipeline_fixture f;
  auto whole = build_model(kModel, f.data->sample_shape(), 10);
  const auto ranges = balance_stages(modelled_layer_costs(*whole, 50), 2, 1e9);
  auto make = [&] {
    std::vector<std::unique_ptr<pipeline_stage>> st;
    for (uint16_t s = 0; s < 2; ++s) {
      stage_settings ss;
      ss.stage = s;
      ss.stages = 2;
      ss.microbatches = 3;
      ss.model_spec = kModel;
      ss.range = ranges[s];
      ss.train = f.train("adam", 20, 10);
      st.push_back(std::make_unique<pipeline_stage>(ss, f.data, f.shard));
    }
    return st;
  };
  auto a = make();
  pipeline_fixture::run_all(a);
  // Run b to step 4, checkpoint, scramble by running on, restore both stages, finish.
  auto b = make();
  std::vector<checkpoint> at4;
  for (;;) {
    bool moved = false;
    for (size_t s = 0; s < 2; ++s)
      while (b[s]->ready() && b[s]->steps_done() < 4) {
        auto r = b[s]->run_next();
        moved = true;
        if (r.out) REQUIRE(b[r.out->gradient ? s - 1 : s + 1]->accept(std::move(*r.out)));
      }
    if (!moved) break;
  }
  for (auto& s : b) {
    REQUIRE(s->steps_done() == 4);
    at4.push_back(s->make_checkpoint(1));
  }
  pipeline_fixture::run_all(b);
  for (size_t s = 0; s < 2; ++s) b[s]->restore(at4[s], 1);
  CHECK(b[0]->steps_done() == 4);
  pipeline_fixture::run_all(b);
  for (size_t s = 0; s < 2; ++s) {
    const auto* pa = a[s]->model()->params();
    const auto* pb = b[s]->model()->params();
    CHECK(std::equal(pa, pa + a[s]->model()->param_count(), pb));
  }
  // A checkpoint of another stage does not fit.
  CHECK_THROWS_WITH(b[1]->restore(at4[0], 2), Catch::Contains("stage 0 of 2"));
}
