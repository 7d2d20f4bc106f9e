// Pipeline groundwork: parsing and balancing a stage split, building stages
// that are exact slices of the one-piece model, resuming a BatchIterator
// with seek, and optimizer state that survives a save/load.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tensor/dataset.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/sequential.hpp"
#include "tensor/stage_split.hpp"

using namespace murmur;

namespace murmur {
// Catch prints ranges on failure with this.
std::ostream& operator<<(std::ostream& os, const stage_range& r) {
  return os << "[" << r.begin << ", " << r.end << ")";
}
}  // namespace murmur

namespace {

using ranges = std::vector<stage_range>;

Tensor random_tensor(const Shape& s, Rng& rng) {
  Tensor t(s);
  for (auto& v : t) v = static_cast<float>(rng.uniform(-1, 1));
  return t;
}

bool bitwise_equal(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, sizeof(float) * static_cast<size_t>(n)) == 0;
}

std::vector<layer_cost> seconds_only(const std::vector<double>& s) {
  std::vector<layer_cost> c;
  for (double v : s) c.push_back({v, 0});
  return c;
}

}  // namespace

TEST_CASE("parse_stage_split: cut points become layer ranges", "[stage]") {
  CHECK(parse_stage_split("4,7", 10, 3) == ranges{{0, 4}, {4, 7}, {7, 10}});
  CHECK(parse_stage_split("", 10, 1) == ranges{{0, 10}});
  CHECK(parse_stage_split("  ", 3, 1) == ranges{{0, 3}});
  CHECK(parse_stage_split(" 2 , 5 ", 6, 3) == ranges{{0, 2}, {2, 5}, {5, 6}});
  CHECK(parse_stage_split("1,2,3", 4, 4) == ranges{{0, 1}, {1, 2}, {2, 3}, {3, 4}});
  CHECK(parse_stage_split("9", 10, 2) == ranges{{0, 9}, {9, 10}});
}

TEST_CASE("parse_stage_split: a bad split names the item and the rule", "[stage]") {
  using Catch::Contains;
  CHECK_THROWS_WITH(parse_stage_split("4,x", 10, 3), Contains("\"x\"") && Contains("not a layer index"));
  CHECK_THROWS_WITH(parse_stage_split("4.5", 10, 2), Contains("\"4.5\"") && Contains("not a layer index"));
  CHECK_THROWS_WITH(parse_stage_split("0", 10, 2), Contains("\"0\"") && Contains("[1, 10)"));
  CHECK_THROWS_WITH(parse_stage_split("10", 10, 2), Contains("\"10\"") && Contains("[1, 10)"));
  CHECK_THROWS_WITH(parse_stage_split("-3", 10, 2), Contains("\"-3\"") && Contains("[1, 10)"));
  CHECK_THROWS_WITH(parse_stage_split("7,4", 10, 3), Contains("\"4\"") && Contains("strictly increasing"));
  CHECK_THROWS_WITH(parse_stage_split("4,4", 10, 3), Contains("\"4\"") && Contains("strictly increasing"));
  CHECK_THROWS_WITH(parse_stage_split("4,,7", 10, 4), Contains("cut 2") && Contains("empty"));
  CHECK_THROWS_WITH(parse_stage_split("4", 10, 3), Contains("\"4\"") && Contains("need exactly 2"));
  CHECK_THROWS_WITH(parse_stage_split("2,4,6", 10, 2), Contains("\"2,4,6\"") && Contains("need exactly 1"));
  CHECK_THROWS_WITH(parse_stage_split("", 10, 2), Contains("need exactly 1"));
  CHECK_THROWS_WITH(parse_stage_split("", 10, 0), Contains("0 stages"));
  CHECK_THROWS_WITH(parse_stage_split("1,2,3,4", 4, 5), Contains("5 stages for 4 layers"));
  CHECK_THROWS_AS(parse_stage_split("4,x", 10, 3), std::invalid_argument);
}

TEST_CASE("balance_stages: minimises the slowest stage, bytes included", "[stage]") {
  // Compute only: {1,2,3 | 4} = max(6, 4) beats {1,2 | 3,4} = 7.
  CHECK(balance_stages(seconds_only({1, 2, 3, 4}), 2, 1.0) == ranges{{0, 3}, {3, 4}});
  // Sending layer 2's output costs 10 s: {1,2 | 3,4} = max(3, 7) wins now.
  // The last layer's bytes are never sent, however large.
  std::vector<layer_cost> c = {{1, 0}, {2, 0}, {3, 10}, {4, 1000000}};
  CHECK(balance_stages(c, 2, 1.0) == ranges{{0, 2}, {2, 4}});
  // A fast network makes the bytes negligible again.
  CHECK(balance_stages(c, 2, 1e9) == ranges{{0, 3}, {3, 4}});
  // One stage takes everything; as many stages as layers, one layer each.
  CHECK(balance_stages(c, 1, 1.0) == ranges{{0, 4}});
  CHECK(balance_stages(c, 4, 1.0) == ranges{{0, 1}, {1, 2}, {2, 3}, {3, 4}});
  CHECK(balance_stages(seconds_only({1, 1, 1, 1, 1, 1}), 3, 1.0) == ranges{{0, 2}, {2, 4}, {4, 6}});
}

TEST_CASE("balance_stages: ties go to the earliest cut", "[stage]") {
  // Cutting after layer 0 or 1 both give 2.
  CHECK(balance_stages(seconds_only({2, 0, 2}), 2, 1.0) == ranges{{0, 1}, {1, 3}});
  // Cuts 1, 2 and 3 all give 1.
  CHECK(balance_stages(seconds_only({1, 0, 0, 1}), 2, 1.0) == ranges{{0, 1}, {1, 4}});
  // The first cut is earliest, then the second is the earliest that still
  // keeps the optimum of 1 (cut 2 or 3 would leave 2 for the last stage).
  CHECK(balance_stages(seconds_only({1, 0, 0, 1, 0, 1}), 3, 1.0) == ranges{{0, 1}, {1, 4}, {4, 6}});
}

TEST_CASE("balance_stages: agrees with brute force on random costs", "[stage]") {
  Rng rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = 1 + rng.below(8);
    const size_t stages = 1 + rng.below(std::min<uint64_t>(n, 4));
    std::vector<layer_cost> costs(n);
    // Small integers make ties common.
    for (auto& c : costs) c = {static_cast<double>(rng.below(4)), static_cast<int64_t>(rng.below(3))};
    const double bps = 0.5 + static_cast<double>(rng.below(3));

    // Every cut set, in lexicographic order: the smallest slowest stage, then
    // among those within balance_tolerance of it the first with the smallest
    // sum of stage costs (the least sent).
    std::vector<std::pair<ranges, std::pair<double, double>>> all;  // split, (worst, total)
    std::vector<size_t> cut(stages - 1);
    for (size_t k = 0; k < cut.size(); ++k) cut[k] = k + 1;
    for (;;) {
      ranges split;
      size_t b = 0;
      for (size_t c : cut) split.push_back({b, c}), b = c;
      split.push_back({b, n});
      double worst = 0, total = 0;
      for (const auto& r : split) {
        double s = 0;
        for (size_t i = r.begin; i < r.end; ++i) s += costs[i].seconds;
        s += r.end < n ? static_cast<double>(costs[r.end - 1].out_bytes) / bps : 0.0;
        worst = std::max(worst, s);
        total += s;
      }
      all.push_back({split, {worst, total}});
      // Next combination of stages-1 cuts from [1, n).
      size_t k = cut.size();
      while (k > 0 && cut[k - 1] == n - (cut.size() - (k - 1))) --k;
      if (k == 0) break;
      ++cut[k - 1];
      for (size_t m = k; m < cut.size(); ++m) cut[m] = cut[m - 1] + 1;
    }
    double best = 1e300, best_total = 1e300;
    for (auto& a : all) best = std::min(best, a.second.first);
    ranges best_split;
    for (auto& a : all)
      if (a.second.first <= best * (1 + balance_tolerance) + 1e-12 && a.second.second < best_total - 1e-9)
        best_total = a.second.second, best_split = a.first;
    INFO("trial " << trial << ", " << n << " layers, " << stages << " stages");
    REQUIRE(balance_stages(costs, stages, bps) == best_split);
  }
}

TEST_CASE("balance_stages: rejects impossible requests", "[stage]") {
  auto c = seconds_only({1, 2, 3});
  CHECK_THROWS_WITH(balance_stages(c, 0, 1.0), Catch::Contains("0 stages"));
  CHECK_THROWS_WITH(balance_stages(c, 4, 1.0), Catch::Contains("4 stages for 3 layers"));
  CHECK_THROWS_AS(balance_stages({}, 1, 1.0), std::invalid_argument);
  CHECK_THROWS_WITH(balance_stages(c, 2, 0.0), Catch::Contains("bytes_per_second"));
  CHECK_THROWS_WITH(balance_stages(seconds_only({1, -1}), 1, 1.0), Catch::Contains("layer 1"));
}

TEST_CASE("modelled_layer_costs: 6 FLOPs per multiply-add, output bytes", "[stage]") {
  auto mlp = build_model("mlp", {1, 28, 28}, 10);
  auto c = modelled_layer_costs(*mlp, 1.0);
  REQUIRE(c.size() == 6);
  CHECK(c[0].seconds == 784 / 1e9);  // flatten: one FLOP per output element
  CHECK(c[1].seconds == 6.0 * 784 * 256 / 1e9);
  CHECK(c[2].seconds == 256 / 1e9);  // relu
  CHECK(c[5].seconds == 6.0 * 128 * 10 / 1e9);
  CHECK(c[0].out_bytes == 784 * 4);
  CHECK(c[1].out_bytes == 256 * 4);
  CHECK(c[5].out_bytes == 10 * 4);
  for (const auto& l : c) CHECK(l.seconds > 0);
  // Twice the speed, half the time.
  CHECK(modelled_layer_costs(*mlp, 2.0)[1].seconds == c[1].seconds / 2);
  CHECK_THROWS_AS(modelled_layer_costs(*mlp, 0.0), std::invalid_argument);

  auto cnn = build_model("cnn", {1, 28, 28}, 10);
  auto k = modelled_layer_costs(*cnn, 10.0);
  REQUIRE(k.size() == 10);
  double total = 0;
  for (const auto& l : k) {
    CHECK(l.seconds > 0);
    CHECK(l.out_bytes > 0);
    total += l.seconds;
  }
  // The convolutions (layers 0 and 3) dominate: each outweighs every other layer.
  for (size_t i : {1, 2, 4, 5, 6, 7, 8, 9}) {
    CHECK(k[0].seconds > k[i].seconds);
    CHECK(k[3].seconds > k[i].seconds);
  }
  CHECK(k[0].seconds + k[3].seconds > 0.8 * total);
  CHECK(k[0].out_bytes == 32 * 24 * 24 * 4);
  // Deterministic (the simulation depends on it).
  auto again = modelled_layer_costs(*cnn, 10.0);
  for (size_t i = 0; i < k.size(); ++i) CHECK(again[i].seconds == k[i].seconds);
}

TEST_CASE("measured_layer_costs: positive times, model left as it was", "[stage]") {
  auto model = build_model("cnn", {1, 28, 28}, 10);
  model->init(3);
  Rng rng(8);
  Tensor x = random_tensor({4, 1, 28, 28}, rng);
  const Tensor before_out = model->forward(x).clone();
  Tensor dy = random_tensor({4, 10}, rng);
  model->backward(dy);
  const std::vector<float> params(model->params(), model->params() + model->param_count());
  const std::vector<float> grads(model->grads(), model->grads() + model->param_count());
  std::vector<bool> need;
  for (size_t i = 0; i < model->layer_count(); ++i) need.push_back(model->layer(i).need_input_grad());
  CHECK_FALSE(need[0]);  // the first trainable layer skips dL/dx by default

  auto c = measured_layer_costs(*model, 8, 3);
  REQUIRE(c.size() == model->layer_count());
  auto modelled = modelled_layer_costs(*model, 1.0);
  for (size_t i = 0; i < c.size(); ++i) {
    CHECK(c[i].seconds > 0);
    CHECK(c[i].out_bytes == modelled[i].out_bytes);
    CHECK(model->layer(i).need_input_grad() == need[i]);
  }
  CHECK(bitwise_equal(model->params(), params.data(), model->param_count()));
  CHECK(bitwise_equal(model->grads(), grads.data(), model->param_count()));
  // Still the same model: the same input gives the same output.
  const Tensor& after_out = model->forward(x);
  CHECK(bitwise_equal(after_out.data(), before_out.data(), before_out.numel()));

  CHECK_THROWS_AS(measured_layer_costs(*model, 0, 3), std::invalid_argument);
  CHECK_THROWS_AS(measured_layer_costs(*model, 8, 0), std::invalid_argument);
}

TEST_CASE("build_stage: stages are exact slices of the whole model", "[stage]") {
  struct Case {
    std::string spec, cuts;
    size_t stages;
  };
  const std::vector<Case> cases = {{"mlp", "3", 2},   {"mlp", "2,4", 3}, {"mlp", "1", 2},
                                   {"cnn", "4", 2},   {"cnn", "3,7", 3}, {"cnn", "1,9", 3},
                                   {"mlp", "", 3},    {"cnn", "", 2},    // "": balanced
                                   // A residual block is one layer (7 and 16 here): cuts fall
                                   // on either side of it, never inside.
                                   {"resnet9:2", "7,8", 3}, {"resnet9:2", "16", 2}, {"resnet9:2", "", 3}};
  const Shape in = {1, 28, 28};
  const uint64_t seed = 17;
  const int64_t batch = 5;
  for (const auto& tc : cases) {
    auto whole = build_model(tc.spec, in, 10);
    whole->init(seed);
    const auto split = tc.cuts.empty()
                           ? balance_stages(modelled_layer_costs(*whole, 1.0), tc.stages, 1e9)
                           : parse_stage_split(tc.cuts, whole->layer_count(), tc.stages);
    INFO(tc.spec << " cut \"" << tc.cuts << "\" into " << tc.stages);
    REQUIRE(split.size() == tc.stages);

    std::vector<std::unique_ptr<Sequential>> stages;
    std::vector<float> concat;
    for (const auto& r : split) {
      stages.push_back(build_stage(tc.spec, in, 10, seed, r));
      Sequential& s = *stages.back();
      CHECK(s.layer_count() == r.end - r.begin);
      CHECK(s.input_shape() == whole->layer_input_shape(r.begin));
      CHECK(s.output_shape() == whole->layer_input_shape(r.end));
      CHECK(s.layer(0).name() == whole->layer(r.begin).name());
      concat.insert(concat.end(), s.params(), s.params() + s.param_count());
    }
    // Parameters: the concatenation is the whole model's buffer, bit for bit.
    REQUIRE(static_cast<int64_t>(concat.size()) == whole->param_count());
    CHECK(bitwise_equal(concat.data(), whole->params(), whole->param_count()));

    for (size_t s = 1; s < stages.size(); ++s) stages[s]->set_need_input_grad(true);

    // Forward: chaining the stages gives the whole model's logits exactly.
    Rng rng(99);
    Tensor x = random_tensor({batch, 1, 28, 28}, rng);
    const Tensor& logits = whole->forward(x);
    const Tensor* a = &x;
    for (auto& s : stages) a = &s->forward(*a);
    REQUIRE(a->shape() == logits.shape());
    CHECK(bitwise_equal(a->data(), logits.data(), logits.numel()));

    // Backward: each stage takes the next one's input gradient; together
    // they give the whole model's parameter gradients exactly.
    Tensor dlogits = random_tensor({batch, 10}, rng);
    whole->backward(dlogits);
    const Tensor* g = &dlogits;
    for (size_t s = stages.size(); s-- > 0;) {
      stages[s]->backward(*g);
      if (s > 0) {
        g = &stages[s]->input_grad();
        Shape want = stages[s]->input_shape();
        want.insert(want.begin(), batch);
        REQUIRE(g->shape() == want);
      }
    }
    std::vector<float> grads;
    for (auto& s : stages) grads.insert(grads.end(), s->grads(), s->grads() + s->param_count());
    CHECK(bitwise_equal(grads.data(), whole->grads(), whole->param_count()));
  }
}

TEST_CASE("build_stage: seed, range and spec errors", "[stage]") {
  const Shape in = {1, 28, 28};
  auto a = build_stage("mlp", in, 10, 1, {3, 6});
  auto b = build_stage("mlp", in, 10, 2, {3, 6});
  CHECK_FALSE(bitwise_equal(a->params(), b->params(), a->param_count()));
  // A parameter-free stage is allowed.
  auto relu = build_stage("mlp", in, 10, 1, {2, 3});
  CHECK(relu->param_count() == 0);
  CHECK(relu->input_shape() == Shape{256});

  CHECK_THROWS_WITH(build_stage("mlp", in, 10, 1, {3, 3}), Catch::Contains("[3, 3)"));
  CHECK_THROWS_WITH(build_stage("mlp", in, 10, 1, {0, 7}), Catch::Contains("6 layers"));
  CHECK_THROWS_WITH(build_stage("flatten,linear:10", in, 7, 1, {0, 1}), Catch::Contains("expected [7]"));
  CHECK_THROWS_WITH(build_stage("flatten,bogus", in, 10, 1, {0, 1}), Catch::Contains("'bogus'"));
}

namespace {

// What a BatchIterator hands out from some point on: every next() result.
struct Draw {
  int64_t b;
  int64_t epoch_after;
  Shape shape;
  std::vector<float> x;
  std::vector<int32_t> y;
  std::vector<int64_t> indices;
  bool operator==(const Draw&) const = default;
};

std::vector<Draw> draws(BatchIterator& it, int count) {
  std::vector<Draw> out;
  Tensor x;
  std::vector<int32_t> y;
  for (int i = 0; i < count; ++i) {
    Draw d;
    d.b = it.next(x, y);
    d.epoch_after = it.epoch();
    d.shape = x.shape();
    d.x.assign(x.begin(), x.end());
    d.y = y;
    d.indices = it.last_indices();
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

TEST_CASE("BatchIterator::seek continues as if next() had been called", "[data]") {
  Dataset d = make_synthetic(40, 4, 3, 11);
  const std::vector<int64_t> shard = {1, 3, 5, 7, 11, 13, 17, 19, 23, 29};
  // batch 4: a partial batch of 2 ends each epoch; 5: exact; 16: one step per epoch.
  for (int64_t batch : {4, 5, 16}) {
    for (int64_t k = 0; k <= 11; ++k) {
      INFO("batch " << batch << ", seek " << k);
      BatchIterator ref(d, shard, batch, 77);
      Tensor x;
      std::vector<int32_t> y;
      for (int64_t i = 0; i < k; ++i) ref.next(x, y);

      BatchIterator fresh(d, shard, batch, 77);
      fresh.seek(k);
      BatchIterator used(d, shard, batch, 77);
      draws(used, 5);  // somewhere else entirely, a partial batch included
      used.seek(k);

      for (BatchIterator* it : {&fresh, &used}) {
        CHECK(it->epoch() == ref.epoch());
        CHECK(it->last_indices() == ref.last_indices());
      }
      const auto want = draws(ref, 7);  // crosses at least two epoch boundaries
      CHECK(draws(fresh, 7) == want);
      CHECK(draws(used, 7) == want);
    }
  }
  // Seeking back to the start restarts the first epoch's order.
  BatchIterator it(d, shard, 4, 77);
  const auto first = draws(it, 4);
  it.seek(0);
  CHECK(it.epoch() == 0);
  CHECK(it.last_indices().empty());
  CHECK(draws(it, 4) == first);
  // A far seek needs no walk through the epochs before it.
  BatchIterator far(d, shard, 4, 77);
  far.seek(3 * 1000000 + 1);
  CHECK(far.epoch() == 1000000);
  CHECK_THROWS_AS(it.seek(-1), std::invalid_argument);
}

namespace {

// Gradients that depend on the parameters and the step, so every step differs.
void fake_grads(const std::vector<float>& p, std::vector<float>& g, int step) {
  for (size_t i = 0; i < p.size(); ++i)
    g[i] = std::sin(3.f * p[i] + static_cast<float>(step) + 0.1f * static_cast<float>(i));
}

void run_steps(Optimizer& opt, std::vector<float>& p, int from, int to) {
  std::vector<float> g(p.size());
  for (int s = from; s < to; ++s) {
    fake_grads(p, g, s);
    opt.step(p.data(), g.data(), 0.05f);
  }
}

}  // namespace

TEST_CASE("optimizer state: save, load, and later steps are identical", "[optim]") {
  const int64_t n = 7;
  struct Kind {
    const char* name;
    std::unique_ptr<Optimizer> (*make)(int64_t);
  };
  const Kind kinds[] = {
      {"sgd momentum", [](int64_t m) { return make_sgd(m, 0.9f, 0.01f); }},
      {"sgd plain", [](int64_t m) { return make_sgd(m, 0.f, 0.01f); }},
      {"adam", [](int64_t m) { return make_adam(m, 0.9f, 0.999f, 1e-8f, 0.01f); }},
  };
  for (const auto& kind : kinds) {
    INFO(kind.name);
    std::vector<float> p(n);
    for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = 0.3f * static_cast<float>(i) - 1.f;
    auto opt = kind.make(n);
    CHECK(opt->save_state().steps == 0);
    run_steps(*opt, p, 0, 3);
    const optimizer_state saved = opt->save_state();
    CHECK(saved.steps == 3);
    const std::vector<float> p3 = p;
    run_steps(*opt, p, 3, 5);

    auto resumed = kind.make(n);
    resumed->load_state(saved);
    std::vector<float> q = p3;
    run_steps(*resumed, q, 3, 5);
    CHECK(bitwise_equal(q.data(), p.data(), n));
    const optimizer_state a = opt->save_state(), b = resumed->save_state();
    CHECK(a.steps == 5);
    CHECK(b.steps == 5);
    CHECK(a.values == b.values);

    // Without the state the same steps land elsewhere (for the stateful
    // kinds), so the comparison above can fail.
    if (!saved.values.empty()) {
      auto blank = kind.make(n);
      std::vector<float> r = p3;
      run_steps(*blank, r, 3, 5);
      CHECK_FALSE(bitwise_equal(r.data(), p.data(), n));
    }
  }
}

TEST_CASE("optimizer state: Adam's step count matters and is restored", "[optim]") {
  const int64_t n = 4;
  std::vector<float> p = {0.5f, -0.25f, 1.f, 2.f};
  auto opt = make_adam(n, 0.9f, 0.999f, 1e-8f, 0.f);
  run_steps(*opt, p, 0, 3);
  optimizer_state s = opt->save_state();
  REQUIRE(s.values.size() == 2 * n);
  const std::vector<float> p3 = p;
  run_steps(*opt, p, 3, 4);
  // Same moments, another step count: another bias correction, another step.
  s.steps = 10;
  auto other = make_adam(n, 0.9f, 0.999f, 1e-8f, 0.f);
  other->load_state(s);
  std::vector<float> q = p3;
  run_steps(*other, q, 3, 4);
  CHECK_FALSE(bitwise_equal(q.data(), p.data(), n));
}

TEST_CASE("optimizer state: a state of the wrong size is refused with a message", "[optim]") {
  using Catch::Contains;
  auto sgd = make_sgd(5, 0.9f, 0.f);
  optimizer_state s;
  s.steps = 2;
  s.values.assign(6, 0.f);
  CHECK_THROWS_WITH(sgd->load_state(s), Contains("sgd state") && Contains("6 values") && Contains("expected 5"));
  s.values.clear();
  CHECK_THROWS_WITH(sgd->load_state(s), Contains("sgd state") && Contains("expected 5"));
  // Before the first step there is no momentum buffer to restore.
  s.steps = 0;
  CHECK_NOTHROW(sgd->load_state(s));
  s.values.assign(5, 0.f);
  CHECK_THROWS_WITH(sgd->load_state(s), Contains("sgd state") && Contains("expected 0"));
  // Plain SGD keeps nothing.
  auto plain = make_sgd(5, 0.f, 0.f);
  s.steps = 3;
  CHECK_THROWS_WITH(plain->load_state(s), Contains("sgd state") && Contains("expected 0"));

  auto adam = make_adam(5, 0.9f, 0.999f, 1e-8f, 0.f);
  CHECK_THROWS_WITH(adam->load_state(s), Contains("adam state") && Contains("5 values") && Contains("expected 10"));
  // An SGD state (n values) is not an Adam state (2n), and vice versa.
  std::vector<float> p(5, 1.f), g(5, 0.5f);
  sgd->step(p.data(), g.data(), 0.1f);
  CHECK_THROWS_AS(adam->load_state(sgd->save_state()), std::invalid_argument);
  adam->step(p.data(), g.data(), 0.1f);
  CHECK_THROWS_AS(sgd->load_state(adam->save_state()), std::invalid_argument);
}

TEST_CASE("a copy of a stage's layers shares the owner's parameters and gradient buffer", "[stage]") {
  const Shape in{1, 28, 28};
  const stage_range r{3, 7};
  auto owner = build_stage("cnn", in, 10, 5, r);
  auto copy = build_stage_layers("cnn", in, 10, r);
  REQUIRE(copy->param_count() == owner->param_count());
  CHECK(copy->input_shape() == owner->input_shape());
  copy->share_parameters(*owner);
  CHECK(copy->params() == owner->params());
  CHECK(copy->grads() == owner->grads());
  Rng rng(3);
  Tensor x(Shape{4, 32, 12, 12});
  for (auto& v : x) v = static_cast<float>(rng.uniform());
  const Tensor& a = owner->forward(x);
  std::vector<float> ya(a.begin(), a.end());
  const Tensor& b = copy->forward(x);
  CHECK(std::equal(ya.begin(), ya.end(), b.begin()));
  // A write through the owner is seen by the copy.
  owner->params()[0] += 1.f;
  CHECK(copy->params()[0] == owner->params()[0]);
  auto other = build_stage_layers("cnn", in, 10, {0, 3});
  CHECK_THROWS_WITH(other->share_parameters(*owner), Catch::Contains("layers differ"));
}
