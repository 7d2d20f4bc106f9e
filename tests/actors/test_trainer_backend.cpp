// A trainer whose steps run on a compute backend (the path train.device =
// cuda takes), here on the CPU backend so that it runs on every machine:
// it takes the steps the host trainer takes (losses and parameters within
// float rounding), its host mirror follows the backend only at the sync
// points (model() / synced_model()), host writes (gossip's mix, a state
// install) reach the next step, checkpoints round-trip exactly and between
// the two paths, and a backend peer gossiping with a host peer moves as a
// pair of host peers does.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <numeric>

#include "actors/gossip_state.hpp"
#include "actors/trainer.hpp"
#include "actors/transcript_check.hpp"
#include "protocols/checkpoint_file.hpp"
#include "tensor/cpu_backend.hpp"

using namespace murmur;

namespace {

const std::string kMlp = "flatten,linear:16,relu,linear:10";
const std::string kCnn = "conv2d:4:3:1:1,relu,maxpool2d:2,flatten,linear:10";
const std::string kDropout = "flatten,linear:32,relu,dropout:0.5,linear:10";

struct fixture {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<int64_t> shard(int64_t from = 0) const {
    std::vector<int64_t> s(250);
    std::iota(s.begin(), s.end(), from);
    return s;
  }
  train_settings settings(const std::string& opt) const {
    train_settings s;
    s.optimizer = opt;
    s.lr = opt == "adam" ? 0.003 : 0.1;
    s.weight_decay = 1e-4;
    s.batch = 32;  // 8 steps an epoch, the last one partial
    s.total_steps = 40;
    s.data_seed = 5;
    s.init_seed = 9;
    return s;
  }
  std::unique_ptr<trainer> make(const std::string& opt, const std::string& model, bool backend,
                                int64_t shard_from = 0) const {
    auto t = std::make_unique<trainer>(settings(opt), model, data, shard(shard_from), data);
    if (backend) t->use_backend(make_cpu_backend());
    return t;
  }
};

std::vector<float> params(trainer& t) {
  const Sequential& m = t.synced_model();
  return {m.params(), m.params() + m.param_count()};
}

// Largest |a - b| relative to max(1, |b|).
double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]) / std::max(1.0, std::abs(static_cast<double>(b[i]))));
  return d;
}

}  // namespace

TEST_CASE("trainer on a backend takes the host trainer's steps", "[trainer][backend]") {
  fixture f;
  const auto opt = GENERATE(std::string("sgd"), std::string("adam"));
  const auto model = GENERATE(kMlp, kCnn, kDropout);
  INFO(opt << ", " << model);
  auto host = f.make(opt, model, false);
  auto dev = f.make(opt, model, true);
  CHECK_FALSE(host->on_backend());
  CHECK(dev->on_backend());
  CHECK(params(*dev) == params(*host));  // the backend starts from the host's parameters
  for (int i = 0; i < 20; ++i) {  // over two epochs, partial last batches included
    const float a = dev->step(), b = host->step();
    INFO("step " << i + 1);
    CHECK(a == Approx(b).epsilon(1e-4));
  }
  CHECK(max_rel_diff(params(*dev), params(*host)) < 1e-4);
  CHECK(dev->steps_done() == 20);
  const eval_report a = dev->evaluate(), b = host->evaluate();
  CHECK(a.test_loss == Approx(b.test_loss).epsilon(1e-4));
  CHECK(std::abs(a.test_accuracy - b.test_accuracy) <= 2.0f / static_cast<float>(f.data->size()));
  CHECK(a.train_loss == Approx(b.train_loss).epsilon(1e-4));
  CHECK(a.steps == b.steps);
}

TEST_CASE("trainer on a backend: the host mirror is synced only when asked, host writes reach the next step",
          "[trainer][backend]") {
  fixture f;
  auto host = f.make("sgd", kMlp, false);
  auto dev = f.make("sgd", kMlp, true);
  const std::vector<float> start = params(*dev);
  dev->step();
  host->step();
  {
    const auto& m = dev->synced_model();
    CHECK(std::vector<float>(m.params(), m.params() + m.param_count()) != start);
  }
  CHECK(max_rel_diff(params(*dev), params(*host)) < 1e-5);
  // A host write, as gossip's mix makes: both trainers' parameters halved.
  for (auto* t : {dev.get(), host.get()}) {
    auto& m = *t->model();
    for (int64_t k = 0; k < m.param_count(); ++k) m.params()[k] *= 0.5f;
  }
  for (int i = 0; i < 3; ++i) CHECK(dev->step() == Approx(host->step()).epsilon(1e-4));
  CHECK(max_rel_diff(params(*dev), params(*host)) < 1e-4);
  // Reading (synced_model) does not count as a write; a write after reading does.
  const std::vector<float> before = params(*dev);
  dev->synced_model();
  dev->step();
  host->step();
  CHECK(params(*dev) != before);
  CHECK(max_rel_diff(params(*dev), params(*host)) < 1e-4);
}

TEST_CASE("trainer on a backend: checkpoints round-trip exactly, and between the two paths", "[trainer][backend][resume]") {
  fixture f;
  const auto opt = GENERATE(std::string("sgd"), std::string("adam"));
  INFO(opt);
  auto whole = f.make(opt, kMlp, true);
  auto first = f.make(opt, kMlp, true);
  for (int i = 0; i < 13; ++i) {
    whole->step();
    first->step();
  }
  const checkpoint ck = decode_checkpoint(encode_checkpoint(first->make_checkpoint(1, 7)), "test");
  CHECK(ck.step == 13);
  CHECK(ck.params == params(*whole));  // make_checkpoint downloads what the backend holds
  CHECK(!ck.opt_state.empty());

  // Backend to backend: the same steps, bit for bit (same backend, same inputs).
  auto resumed = f.make(opt, kMlp, true);
  resumed->restore(ck);
  CHECK(resumed->steps_done() == 13);
  for (int i = 0; i < 7; ++i) CHECK(resumed->step() == whole->step());
  CHECK(params(*resumed) == params(*whole));

  // Backend to host and host to backend: within float rounding.
  auto on_host = f.make(opt, kMlp, false);
  on_host->restore(ck);
  auto host_whole = f.make(opt, kMlp, false);
  for (int i = 0; i < 13; ++i) host_whole->step();
  auto back = f.make(opt, kMlp, true);
  back->restore(decode_checkpoint(encode_checkpoint(host_whole->make_checkpoint(1, 7)), "test"));
  for (int i = 0; i < 7; ++i) {
    const float a = on_host->step(), b = back->step(), c = host_whole->step();
    CHECK(a == Approx(c).epsilon(1e-4));
    CHECK(b == Approx(c).epsilon(1e-4));
  }
  CHECK(max_rel_diff(params(*on_host), params(*host_whole)) < 1e-4);
  CHECK(max_rel_diff(params(*back), params(*host_whole)) < 1e-4);
}

TEST_CASE("trainer: moving onto a backend midway keeps the optimizer state", "[trainer][backend]") {
  fixture f;
  auto host = f.make("adam", kMlp, false);
  auto moved = f.make("adam", kMlp, false);
  for (int i = 0; i < 5; ++i) CHECK(moved->step() == host->step());
  moved->use_backend(make_cpu_backend());
  for (int i = 0; i < 5; ++i) CHECK(moved->step() == Approx(host->step()).epsilon(1e-4));
  CHECK(max_rel_diff(params(*moved), params(*host)) < 1e-4);
}

TEST_CASE("trainer on a backend records step transcripts a CPU verifier accepts",
          "[trainer][backend][verify]") {
  fixture f;
  for (const std::string& model : {kMlp, kCnn}) {
    INFO(model);
    auto dev = f.make("sgd", model, true);
    auto host = f.make("sgd", model, false);
    auto dev_log = std::make_shared<step_transcript_log>(0, *dev->model(), 8);
    auto host_log = std::make_shared<step_transcript_log>(0, *host->model(), 8);
    dev->enable_transcripts(dev_log, {}, {}, 1);
    host->enable_transcripts(host_log, {}, {}, 1);
    transcript_checker checker(committed_layers(*host->model()), f.data, 8);
    const auto shard = f.shard();
    Rng rng(3);
    for (int i = 0; i < 6; ++i) {
      dev->step();
      host->step();
      REQUIRE(dev->last_commit() != nullptr);
      const transcript_commit c = *dev->last_commit();
      // The MLP's backend path is bit-identical to the host's: so are the
      // commitments. (A conv's weight gradient sums in another order.)
      if (model == kMlp) CHECK(c == *host->last_commit());
      for (uint16_t l = 0; l < c.layers.size(); ++l) {
        tensor_reply r;
        REQUIRE(dev_log->reply(c.step, l, 99, r));
        CHECK(checker.check(c, r, shard, rng) == check_outcome::passed);
      }
    }
    // The recorded weights are those the step used, before the optimizer moved them.
    tensor_reply r;
    REQUIRE(dev_log->reply(6, 0, 1, r));
    const Sequential& m = dev->synced_model();
    CHECK(r.weight != std::vector<float>(m.params(), m.params() + r.weight.size()));
  }
}

TEST_CASE("trainer on a backend: a compute cheat changes what is committed and what the optimizer applies, as on "
          "the host",
          "[trainer][backend][verify]") {
  fixture f;
  const auto model = GENERATE(kMlp, kCnn);
  const auto kind = GENERATE(compute_cheat::skip_product, compute_cheat::perturb, compute_cheat::half_batch,
                             compute_cheat::replay);
  INFO(model << ", cheat " << static_cast<int>(kind));
  cheat_settings cheat;
  cheat.kind = kind;
  cheat.start_step = 2;
  cheat.every = 2;
  cheat.eps = 0.5;  // large enough to stand well above the two paths' rounding
  const auto replay_shard = f.shard(300);
  // Transcripts enabled before or after the move onto the backend: either order.
  auto dev = f.make("sgd", model, true);
  dev->enable_transcripts(std::make_shared<step_transcript_log>(0, *dev->model(), 4), cheat, replay_shard, 7);
  auto moved = f.make("sgd", model, false);
  moved->enable_transcripts(std::make_shared<step_transcript_log>(0, *moved->model(), 4), cheat, replay_shard, 7);
  moved->use_backend(make_cpu_backend());
  auto host = f.make("sgd", model, false);
  host->enable_transcripts(std::make_shared<step_transcript_log>(0, *host->model(), 4), cheat, replay_shard, 7);
  auto honest = f.make("sgd", model, true);
  honest->enable_transcripts(std::make_shared<step_transcript_log>(0, *honest->model(), 4), {}, {}, 7);
  for (int i = 0; i < 4; ++i) {  // steps 2 and 4 cheat
    INFO("step " << i + 1);
    dev->step();
    moved->step();
    host->step();
    honest->step();
    // The commitment covers the cheated tensors: the backend's equals the host's where the paths are bit-identical.
    if (model == kMlp) CHECK(*dev->last_commit() == *host->last_commit());
    CHECK(*moved->last_commit() == *dev->last_commit());
  }
  // Applied: the backend's parameters follow the cheating host trainer's,
  // and are far from the honest trainer's.
  const double to_host = max_rel_diff(params(*dev), params(*host));
  const double to_honest = max_rel_diff(params(*dev), params(*honest));
  INFO("max relative difference to the cheating host trainer " << to_host << ", to the honest one " << to_honest);
  CHECK(to_host < 1e-4);  // as the honest paths (first test case)
  CHECK(to_honest > 1e-4);
  CHECK(to_honest > 100 * to_host);
  CHECK(params(*moved) == params(*dev));
}

// Two peers, each a trainer and a gossip_state, in synchronous rounds with
// the shard actor's sync points (mix into model(), step, publish from
// synced_model()): a backend peer and a host peer stay within float
// rounding of two host peers doing the same.
TEST_CASE("a backend peer gossiping with a host peer moves as two host peers do", "[trainer][backend][gossip]") {
  fixture f;
  gossip_settings gs;
  gs.mode = gossip_mode::threshold;
  gs.threshold = 1e-3;
  gs.gamma = 0.5;
  struct pair {
    std::unique_ptr<trainer> t[2];
    std::unique_ptr<gossip_state> g[2];
  };
  auto make_pair = [&](bool backend0) {
    pair p;
    for (uint32_t i = 0; i < 2; ++i) {
      p.t[i] = f.make("sgd", kMlp, i == 0 && backend0, i == 0 ? 0 : 250);
      const Sequential& m = p.t[i]->synced_model();
      p.g[i] = std::make_unique<gossip_state>(
          i, std::vector<uint32_t>{1 - i}, gs, std::span<const float>(m.params(), static_cast<size_t>(m.param_count())));
    }
    return p;
  };
  auto round = [](pair& p, bool mix) {
    for (uint32_t i = 0; i < 2; ++i) {
      if (mix) {
        auto& m = *p.t[i]->model();
        p.g[i]->mix({m.params(), static_cast<size_t>(m.param_count())});
      }
      p.t[i]->step();
    }
    std::vector<std::byte> frames[2];
    for (uint32_t i = 0; i < 2; ++i) {
      const Sequential& m = p.t[i]->synced_model();
      auto f = p.g[i]->publish({m.params(), static_cast<size_t>(m.param_count())}, p.t[i]->steps_done());
      frames[i].assign(f.begin(), f.end());
      p.g[i]->on_sent();
    }
    for (uint32_t i = 0; i < 2; ++i)
      if (!frames[i].empty()) REQUIRE(p.g[1 - i]->receive(i, frames[i]));
  };
  pair mixed = make_pair(true), reference = make_pair(false);
  for (int r = 0; r < 15; ++r) {
    round(mixed, r > 0);
    round(reference, r > 0);
  }
  for (uint32_t i = 0; i < 2; ++i) {
    INFO("peer " << i);
    CHECK(max_rel_diff(params(*mixed.t[i]), params(*reference.t[i])) < 1e-3);
  }
  // And gossip did pull them together: closer than without it.
  auto alone0 = f.make("sgd", kMlp, false, 0), alone1 = f.make("sgd", kMlp, false, 250);
  for (int r = 0; r < 15; ++r) alone0->step(), alone1->step();
  CHECK(max_rel_diff(params(*mixed.t[0]), params(*mixed.t[1])) <
        max_rel_diff(params(*alone0), params(*alone1)));
}
