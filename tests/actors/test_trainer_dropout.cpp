// A trainer with dropout: evaluation runs in eval mode (dropout off, so two
// evaluations agree and differ from a train-mode pass), training resumes in
// train mode, and a trainer restored from a checkpoint draws the same masks
// as the one that never stopped (masks come from (data seed, step)).
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <numeric>

#include "actors/trainer.hpp"
#include "protocols/checkpoint_file.hpp"
#include "tensor/loss.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:32,relu,dropout:0.5,linear:10";

struct fixture {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<int64_t> shard = [] {
    std::vector<int64_t> s(500);
    std::iota(s.begin(), s.end(), 0);
    return s;
  }();
  std::unique_ptr<trainer> make() const {
    train_settings s;
    s.lr = 0.1;
    s.batch = 32;
    s.total_steps = 40;
    s.data_seed = 5;
    s.init_seed = 9;
    return std::make_unique<trainer>(s, kModel, data, shard, data);
  }
};

std::vector<float> params(trainer& t) {
  const auto& m = *t.model();
  return {m.params(), m.params() + m.param_count()};
}

}  // namespace

TEST_CASE("trainer: evaluation runs with dropout off, training with it on", "[trainer][dropout]") {
  fixture f;
  auto t = f.make();
  for (int i = 0; i < 5; ++i) t->step();
  const auto a = t->evaluate(), b = t->evaluate();
  CHECK(a.test_loss == b.test_loss);
  CHECK(a.test_accuracy == b.test_accuracy);
  CHECK(t->model()->training());
  // The same test set by hand: in eval mode the loss evaluate() gave, in
  // train mode (dropout on) a clearly different one.
  Tensor x = f.data->images.rows(0, f.data->size());
  const float train_mode = softmax_cross_entropy_eval(t->model()->forward(x), f.data->labels.data(), nullptr);
  t->model()->set_training(false);
  const float eval_mode = softmax_cross_entropy_eval(t->model()->forward(x), f.data->labels.data(), nullptr);
  t->model()->set_training(true);
  CHECK(eval_mode == Approx(a.test_loss).epsilon(1e-5));
  CHECK(std::fabs(train_mode - a.test_loss) > 1e-3);
}

TEST_CASE("trainer: a resumed run draws the same dropout masks", "[trainer][dropout][resume]") {
  fixture f;
  auto whole = f.make(), first = f.make();
  for (int i = 0; i < 13; ++i) {
    whole->step();
    first->step();
  }
  auto resumed = f.make();
  resumed->restore(decode_checkpoint(encode_checkpoint(first->make_checkpoint(0, 1)), "test"));
  for (int i = 0; i < 10; ++i) CHECK(resumed->step() == whole->step());
  CHECK(params(*resumed) == params(*whole));
}
