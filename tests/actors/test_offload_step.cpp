// offload_step: a step whose Linear products are answered from outside
// (here: by the test, as a helper would) gives the step a local trainer
// takes; a wrong answer's recomputation is used instead, and from then on
// every product runs locally; products under min_flops never leave.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <numeric>

#include "actors/offload_step.hpp"
#include "tensor/gemm.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:32,relu,linear:10";

struct fixture {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<int64_t> shard = [] {
    std::vector<int64_t> s(500);
    std::iota(s.begin(), s.end(), 0);
    return s;
  }();
  std::shared_ptr<trainer> make() const {
    train_settings s;
    s.batch = 32;
    s.total_steps = 20;
    s.data_seed = 5;
    s.init_seed = 9;
    return std::make_shared<trainer>(s, kModel, data, shard, data);
  }
};

matmul_outcome honest(const matmul_job& j) {
  matmul_outcome o{true, 1, std::vector<float>(size_t{j.m} * j.n)};
  gemm(false, false, j.m, j.n, j.k, 1.f, j.a.data(), j.b.data(), 0.f, o.c.data());
  return o;
}

// Runs one step through o, answering each product with answer(job).
template <class Answer>
float offloaded_step(offload_step& o, Answer answer, int* products = nullptr) {
  auto y = o.start();
  int n = 0;
  while (!y.done) {
    REQUIRE(y.job);
    matmul_outcome out = answer(*y.job);
    y = o.resume(&out);
    ++n;
  }
  if (products) *products = n;
  return y.loss;
}

double max_diff(trainer& a, trainer& b) {
  double d = 0;
  for (int64_t i = 0; i < a.model()->param_count(); ++i)
    d = std::max(d, std::abs(double{a.model()->params()[i]} - b.model()->params()[i]));
  return d;
}

}  // namespace

TEST_CASE("offload_step: honestly answered products give the local step", "[offload][actors]") {
  fixture f;
  auto local = f.make();
  auto remote = f.make();
  offload_step o(remote, offload_plan{1, 0.0, 8, 0});
  for (int s = 0; s < 3; ++s) {
    int products = 0;
    const float l1 = local->step();
    const float l2 = offloaded_step(o, honest, &products);
    CHECK(l2 == Approx(l1).epsilon(1e-5));
    // forward of both layers, both weight gradients, the second layer's
    // input gradient (the first layer's is never computed)
    CHECK(products == 5);
    CHECK(o.last().offloaded == 5);
    CHECK(o.last().verified == 5);
    CHECK(o.last().local == 0);
  }
  CHECK(max_diff(*local, *remote) < 1e-5);
  CHECK(remote->steps_done() == 3);
  CHECK(o.helper_trusted());
  CHECK(o.total().steps == 3);
  CHECK(o.total().check_flops > 0);
  // Outside a step (evaluation) nothing is routed.
  CHECK(remote->evaluate().test_accuracy == Approx(local->evaluate().test_accuracy).margin(1e-3));
}

TEST_CASE("offload_step: small products stay local", "[offload][actors]") {
  fixture f;
  auto t = f.make();
  // The 32->10 layer's products (2*32*32*10 FLOPs and less) stay; the 64->32 ones go.
  offload_step o(t, offload_plan{1, 2.0 * 32 * 32 * 10 + 1, 8, 0});
  int products = 0;
  offloaded_step(o, honest, &products);
  CHECK(products == 2);
  CHECK(o.last().local == 3);
  CHECK(o.last().local_flops > 0);
}

TEST_CASE("offload_step: after a rejected answer every product runs locally", "[offload][actors]") {
  fixture f;
  auto local = f.make();
  auto t = f.make();
  offload_step o(t, offload_plan{1, 0.0, 8, 0});
  int products = 0;
  // The verifier rejected the helper's answer and recomputed it: the step
  // uses what the outcome carries; nothing more is handed out.
  offloaded_step(
      o, [](const matmul_job& j) { auto r = honest(j); r.verified = false; return r; }, &products);
  local->step();
  CHECK(products == 1);
  CHECK(o.last().rejected == 1);
  CHECK(o.last().verified == 0);
  CHECK(o.last().local == 4);
  CHECK_FALSE(o.helper_trusted());
  CHECK(max_diff(*local, *t) < 1e-5);
  offloaded_step(o, honest, &products);
  CHECK(products == 0);
}

TEST_CASE("offload_step: no answer (timeout) computes locally and stops offloading", "[offload][actors]") {
  fixture f;
  auto local = f.make();
  auto t = f.make();
  offload_step o(t, offload_plan{1, 0.0, 8, 0.5});
  auto y = o.start();
  REQUIRE_FALSE(y.done);
  y = o.resume(nullptr);
  REQUIRE(y.done);
  local->step();
  CHECK(o.last().timed_out == 1);
  CHECK_FALSE(o.helper_trusted());
  CHECK(max_diff(*local, *t) < 1e-5);
}

TEST_CASE("offload_step: destroyed mid-step, it stops its thread", "[offload][actors]") {
  fixture f;
  auto t = f.make();
  auto o = std::make_unique<offload_step>(t, offload_plan{1, 0.0, 8, 0});
  auto y = o->start();
  REQUIRE_FALSE(y.done);
  o.reset();  // must not hang
  SUCCEED();
}
