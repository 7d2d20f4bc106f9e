// A trainer's checkpoint: restored into a fresh trainer (through the file
// format's bytes), the following steps are bit-identical to those of the
// trainer that never stopped: parameters, optimizer state, learning rate
// (cosine schedule), batch order, train-loss mean. A checkpoint that does
// not fit is refused naming the mismatch, and changes nothing.
#include <catch2/catch.hpp>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "actors/trainer.hpp"
#include "protocols/checkpoint_file.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:16,relu,linear:10";

struct fixture {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<int64_t> shard = [] {
    std::vector<int64_t> s(500);
    std::iota(s.begin(), s.end(), 0);
    return s;
  }();

  train_settings settings(const std::string& opt, int64_t total = 40) const {
    train_settings s;
    s.optimizer = opt;
    s.lr = opt == "adam" ? 0.003 : 0.1;
    s.batch = 32;  // 16 steps an epoch, the last one partial
    s.total_steps = total;
    s.data_seed = 5;
    s.init_seed = 9;
    return s;
  }
  std::unique_ptr<trainer> make(const std::string& opt, const std::string& model = kModel, int64_t total = 40) const {
    return std::make_unique<trainer>(settings(opt, total), model, data, shard, data);
  }
};

std::vector<float> params(trainer& t) {
  const auto& m = *t.model();
  return {m.params(), m.params() + m.param_count()};
}

}  // namespace

TEST_CASE("a trainer restored from its checkpoint takes the same steps", "[trainer][resume]") {
  fixture f;
  auto opt = GENERATE(std::string("sgd"), std::string("adam"));
  INFO(opt);
  auto whole = f.make(opt);
  auto first = f.make(opt);
  for (int i = 0; i < 21; ++i) {  // into the second epoch
    whole->step();
    first->step();
  }
  const checkpoint ck = decode_checkpoint(encode_checkpoint(first->make_checkpoint(3, 77)), "test");
  CHECK(ck.kind == checkpoint_kind::peer);
  CHECK(ck.step == 21);
  CHECK(ck.replica == 3);
  CHECK(ck.seed == 77);
  CHECK(ck.model_spec == kModel);
  CHECK(ck.extra.size() == trainer::checkpoint_extra);

  auto resumed = f.make(opt);
  CHECK(resumed->learning_rate() != whole->learning_rate());
  resumed->restore(ck);
  CHECK(resumed->steps_done() == 21);
  CHECK(resumed->learning_rate() == whole->learning_rate());
  CHECK(params(*resumed) == params(*whole));
  for (int i = 0; i < 19; ++i) CHECK(resumed->step() == whole->step());
  CHECK(params(*resumed) == params(*whole));
  CHECK(resumed->learning_rate() == whole->learning_rate());
  const auto a = resumed->evaluate(), b = whole->evaluate();
  CHECK(a.train_loss == b.train_loss);  // the mean over all 40 steps, the first 21 from the checkpoint
  CHECK(a.test_accuracy == b.test_accuracy);
  CHECK(a.steps == 40);
}

TEST_CASE("a checkpoint that does not fit the trainer is refused and changes nothing", "[trainer][resume]") {
  fixture f;
  auto src = f.make("sgd");
  for (int i = 0; i < 5; ++i) src->step();
  const checkpoint ck = src->make_checkpoint(0, 1);

  auto check_refused = [&](trainer& t, const std::string& what) {
    const auto before = params(t);
    const auto steps = t.steps_done();
    CHECK_THROWS_WITH(t.restore(ck), Catch::Contains("checkpoint does not fit") && Catch::Contains(what));
    CHECK(params(t) == before);
    CHECK(t.steps_done() == steps);
  };
  check_refused(*f.make("sgd", "flatten,linear:16,tanh,linear:10"), "model 'flatten,linear:16,relu,linear:10'");
  check_refused(*f.make("sgd", kModel, 80), "learning-rate schedule over 40 steps, this run has 80");
  check_refused(*f.make("adam"), "adam state");

  checkpoint stage = ck;
  stage.kind = checkpoint_kind::stage;
  auto t = f.make("sgd");
  CHECK_THROWS_WITH(t->restore(stage), Catch::Contains("not a data-parallel peer's checkpoint"));
  checkpoint short_params = ck;
  short_params.params.pop_back();
  CHECK_THROWS_WITH(t->restore(short_params), Catch::Contains("parameters, this model has"));
  checkpoint past = ck;
  past.step = 41;
  CHECK_THROWS_WITH(t->restore(past), Catch::Contains("past this run's 40 steps"));
  CHECK(t->steps_done() == 0);
}

// The simulator's peers share one gradient buffer (trainer::share_gradients):
// trainers that take turns, step by step, train exactly as trainers with
// their own; a buffer of the wrong size is refused.
TEST_CASE("trainers sharing one gradient buffer take the steps of trainers with their own", "[trainer]") {
  fixture f;
  auto opt = GENERATE(std::string("sgd"), std::string("adam"));
  INFO(opt);
  auto own_a = f.make(opt), own_b = f.make(opt), shared_a = f.make(opt), shared_b = f.make(opt);
  // Different batches and parameters for the two peers of each pair.
  train_settings other = f.settings(opt);
  other.data_seed = 6;
  other.init_seed = 10;
  own_b = std::make_unique<trainer>(other, kModel, f.data, f.shard, f.data);
  shared_b = std::make_unique<trainer>(other, kModel, f.data, f.shard, f.data);
  const auto dim = static_cast<size_t>(shared_a->model()->param_count());
  CHECK_THROWS_AS(shared_a->share_gradients(std::make_shared<std::vector<float>>(dim + 1)), std::invalid_argument);
  auto buffer = std::make_shared<std::vector<float>>(dim, 0.f);
  REQUIRE(shared_a->share_gradients(buffer));
  REQUIRE(shared_b->share_gradients(buffer));
  CHECK(shared_a->model()->grads() == shared_b->model()->grads());
  for (int i = 0; i < 20; ++i) {
    CHECK(shared_a->step() == own_a->step());
    CHECK(shared_b->step() == own_b->step());
  }
  CHECK(params(*shared_a) == params(*own_a));
  CHECK(params(*shared_b) == params(*own_b));
  CHECK(params(*shared_a) != params(*shared_b));
}

// ... and their per-step buffers (trainer::share_activations: the batch,
// the loss gradient, the layers' outputs and input gradients): trainers
// that take turns train and evaluate exactly as trainers with their own,
// also when one of them grows the shared buffers (a larger batch, an
// evaluation chunk) and the other's handles must pick up the new storage.
TEST_CASE("trainers sharing their per-step buffers take the steps of trainers with their own", "[trainer]") {
  fixture f;
  const std::string model =
      GENERATE(as<std::string>{}, "flatten,linear:16,relu,linear:10", "conv2d:4:3,relu,maxpool2d:2,flatten,linear:10");
  INFO(model);
  train_settings a = f.settings("sgd"), b = f.settings("sgd");
  b.batch = 48;  // grows what a sized, and a's last batch of an epoch shrinks it again
  b.data_seed = 6;
  b.init_seed = 10;
  auto own_a = std::make_unique<trainer>(a, model, f.data, f.shard, f.data);
  auto own_b = std::make_unique<trainer>(b, model, f.data, f.shard, f.data);
  auto shared_a = std::make_unique<trainer>(a, model, f.data, f.shard, f.data);
  auto shared_b = std::make_unique<trainer>(b, model, f.data, f.shard, f.data);
  REQUIRE(shared_a->share_activations(*shared_a));
  REQUIRE(shared_b->share_activations(*shared_a));
  for (int i = 0; i < 20; ++i) {
    CHECK(shared_a->step() == own_a->step());
    CHECK(shared_b->step() == own_b->step());
    if (i % 7 == 6) {
      const auto ea = shared_a->evaluate(0, 100), eb = shared_b->evaluate(50, 100);
      const auto oa = own_a->evaluate(0, 100), ob = own_b->evaluate(50, 100);
      CHECK(ea.test_loss == oa.test_loss);
      CHECK(ea.test_accuracy == oa.test_accuracy);
      CHECK(eb.test_loss == ob.test_loss);
      CHECK(eb.test_accuracy == ob.test_accuracy);
    }
  }
  CHECK(params(*shared_a) == params(*own_a));
  CHECK(params(*shared_b) == params(*own_b));
  CHECK(params(*shared_a) != params(*shared_b));
  // Another model's layers cannot share.
  auto other = std::make_unique<trainer>(a, "flatten,linear:12,relu,linear:10", f.data, f.shard, f.data);
  CHECK_THROWS_WITH(other->share_activations(*shared_a), Catch::Contains("share_activations: "));
}

// A Tensor handle sharing storage that another handle grew is stale until
// its own resize, which then keeps the grown allocation (layer.hpp's
// ensure_shape relies on it).
TEST_CASE("a tensor handle sees storage grown through another handle as stale", "[trainer]") {
  Tensor owner(Shape{0}), mine = owner;
  CHECK_FALSE(mine.stale());
  owner.resize({4, 8});
  owner.fill(1.f);
  CHECK(mine.stale());
  ensure_shape(mine, {2, 8});
  CHECK_FALSE(mine.stale());
  CHECK(mine.data() == owner.data());
  CHECK(mine[15] == 1.f);
  CHECK(Tensor(Shape{3}).rows(1, 2).stale() == false);
  CHECK(Tensor::view(owner.data(), {4}).stale() == false);
}
