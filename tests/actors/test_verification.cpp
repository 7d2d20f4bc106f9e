// Step transcripts and their checks: honest steps pass every check, each
// compute cheat is caught by the check it targets, tampered tensors fail the
// commitment, and verifier actors over a loopback transport credit honest
// work, quarantine on evidence they re-checked, and never use a wrong
// offloaded product.
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <thread>

#include "actors/gossip_actor.hpp"
#include "actors/transcript_check.hpp"
#include "actors/verifier_actor.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/gemm.hpp"
#include "tests/actors/stub_gossip.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:32,relu,linear:16,relu,linear:10";

struct fixture {
  std::shared_ptr<const Dataset> data =
      std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<std::vector<int64_t>> shards = shard_iid(600, 3, 5);

  train_settings settings(uint64_t peer) const {
    train_settings t;
    t.batch = 16;
    t.total_steps = 100;
    t.data_seed = 100 + peer;
    t.init_seed = 1;
    return t;
  }
  std::shared_ptr<trainer> make_trainer(uint32_t peer) const {
    return std::make_shared<trainer>(settings(peer), kModel, data, shards[peer], data);
  }
  std::vector<int64_t> sorted_shard(uint32_t peer) const {
    auto s = shards[peer];
    std::sort(s.begin(), s.end());
    return s;
  }
};

// Where the prover steps and where the verifier checks (tensor/backend.hpp:
// the CPU backend, the path a GPU peer's trainer and verifier take).
struct placement {
  bool prover_on_backend = false;
  compute_backend* verifier_backend = nullptr;
};

// Steps a prover `steps` times with the given cheat and checks every layer
// of every step; returns the outcomes per layer of the last step.
std::vector<check_outcome> check_all_layers(const fixture& f, cheat_settings cheat, uint64_t steps,
                                            uint64_t seed, placement where = {}) {
  auto t = f.make_trainer(0);
  if (where.prover_on_backend) t->use_backend(make_cpu_backend());
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
  t->enable_transcripts(log, cheat, f.shards[1], seed);
  transcript_checker checker(committed_layers(*t->model()), f.data, 8, {}, where.verifier_backend);
  Rng rng(seed);
  auto shard = f.sorted_shard(0);
  std::vector<check_outcome> out;
  for (uint64_t s = 1; s <= steps; ++s) {
    t->step();
    REQUIRE(t->last_commit());
    transcript_commit c = *t->last_commit();
    out.clear();
    for (uint16_t l = 0; l < c.layers.size(); ++l) {
      tensor_reply r;
      REQUIRE(log->reply(s, l, 7, r));
      out.push_back(checker.check(c.layers[l], r, shard, rng));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("honest steps pass every check of every layer", "[verify]") {
  fixture f;
  auto t = f.make_trainer(0);
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
  t->enable_transcripts(log, {}, {}, 1);
  auto layers = committed_layers(*t->model());
  REQUIRE(layers.size() == 3);
  CHECK(layers[0].data_input);
  CHECK_FALSE(layers[1].data_input);
  CHECK(layers[2].logits);
  transcript_checker checker(layers, f.data, 8);
  Rng rng(3);
  auto shard = f.sorted_shard(0);
  for (uint64_t s = 1; s <= 30; ++s) {
    t->step();
    const transcript_commit c = *t->last_commit();
    CHECK(c.step == s);
    for (uint16_t l = 0; l < 3; ++l) {
      tensor_reply r;
      REQUIRE(log->reply(s, l, 1, r));
      CHECK(checker.check(c.layers[l], r, shard, rng) == check_outcome::passed);
    }
  }
  // Only the last `keep` steps are kept.
  tensor_reply r;
  CHECK(log->reply(30, 0, 1, r));
  CHECK(log->reply(27, 0, 1, r));
  CHECK_FALSE(log->reply(26, 0, 1, r));
  CHECK_FALSE(log->reply(30, 3, 1, r));
}

TEST_CASE("augmented batches: a verifier redoes the prover's crop and flip; one that does not, fails the first layer", "[verify]") {
  fixture f;
  train_settings ts = f.settings(0);
  ts.augment.crop_padding = 2;
  ts.augment.flip = true;
  ts.augment.seed = 77;
  auto t = std::make_shared<trainer>(ts, kModel, f.data, f.shards[0], f.data);
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
  t->enable_transcripts(log, {}, {}, 1);
  auto layers = committed_layers(*t->model());
  REQUIRE(layers[0].data_input);
  transcript_checker same(layers, f.data, 8, ts.augment), blind(layers, f.data, 8);
  Rng rng(4);
  auto shard = f.sorted_shard(0);
  int blind_failed = 0;
  for (uint64_t s = 1; s <= 10; ++s) {
    t->step();
    const transcript_commit c = *t->last_commit();
    for (uint16_t l = 0; l < 3; ++l) {
      tensor_reply r;
      REQUIRE(log->reply(s, l, 1, r));
      CHECK(same.check(c.layers[l], r, shard, rng) == check_outcome::passed);
      const check_outcome b = blind.check(c.layers[l], r, shard, rng);
      if (l == 0) blind_failed += b != check_outcome::passed;
      else CHECK(b == check_outcome::passed);
    }
  }
  CHECK(blind_failed == 10);
}

TEST_CASE("each compute cheat fails the check it targets", "[verify]") {
  fixture f;
  cheat_settings c;
  c.start_step = 1;
  c.every = 1;
  using o = check_outcome;
  SECTION("skipping the product") {
    c.kind = compute_cheat::skip_product;
    auto r = check_all_layers(f, c, 3, 1);
    CHECK(r[0] == o::forward_product);
  }
  SECTION("one perturbed element of the weight gradient, 1e-2 of its row") {
    c.kind = compute_cheat::perturb;
    c.eps = 1e-2;
    for (uint64_t seed = 1; seed <= 20; ++seed) CHECK(check_all_layers(f, c, 1, seed)[0] == o::weight_grad_product);
  }
  SECTION("half the batch") {
    c.kind = compute_cheat::half_batch;
    CHECK(check_all_layers(f, c, 2, 1)[0] == o::bias_grad);  // db is checked before the products
  }
  SECTION("replaying another peer's batch") {
    c.kind = compute_cheat::replay;
    auto r = check_all_layers(f, c, 2, 1);
    CHECK(r[0] == o::foreign_samples);
  }
  // The other layers of a cheating step are honest and pass.
  c.kind = compute_cheat::perturb;
  auto r = check_all_layers(f, c, 1, 9);
  CHECK(r[1] == o::passed);
  CHECK(r[2] == o::passed);
}

TEST_CASE("a prover on a backend: honest steps pass, each compute cheat fails the check it targets, on a host or "
          "a backend verifier",
          "[verify][backend]") {
  fixture f;
  auto be = make_cpu_backend();
  const bool verifier_on_backend = GENERATE(false, true);
  INFO("verifier on " << (verifier_on_backend ? "the CPU backend" : "the host"));
  const placement where{true, verifier_on_backend ? be.get() : nullptr};
  using o = check_outcome;
  for (uint64_t seed = 1; seed <= 3; ++seed)
    CHECK(check_all_layers(f, {}, 10, seed, where) == std::vector<o>{o::passed, o::passed, o::passed});
  cheat_settings c;
  c.start_step = 1;
  c.every = 1;
  SECTION("skipping the product") {
    c.kind = compute_cheat::skip_product;
    CHECK(check_all_layers(f, c, 3, 1, where)[0] == o::forward_product);
  }
  SECTION("one perturbed element of the weight gradient, 1e-2 of its row") {
    c.kind = compute_cheat::perturb;
    c.eps = 1e-2;
    for (uint64_t seed = 1; seed <= 20; ++seed)
      CHECK(check_all_layers(f, c, 1, seed, where)[0] == o::weight_grad_product);
  }
  SECTION("half the batch") {
    c.kind = compute_cheat::half_batch;
    CHECK(check_all_layers(f, c, 2, 1, where)[0] == o::bias_grad);
  }
  SECTION("replaying another peer's batch") {
    c.kind = compute_cheat::replay;
    CHECK(check_all_layers(f, c, 2, 1, where)[0] == o::foreign_samples);
  }
  c.kind = compute_cheat::perturb;
  auto r = check_all_layers(f, c, 1, 9, where);
  CHECK(r[1] == o::passed);
  CHECK(r[2] == o::passed);
}

TEST_CASE("a verifier on a backend gives the host verifier's verdicts, honest or cheated", "[verify][backend]") {
  fixture f;
  auto be = make_cpu_backend();
  cheat_settings c;
  c.start_step = 2;
  c.every = 2;
  for (compute_cheat kind : {compute_cheat::none, compute_cheat::skip_product, compute_cheat::perturb,
                             compute_cheat::half_batch, compute_cheat::replay})
    for (uint64_t seed = 1; seed <= 4; ++seed)
      for (uint64_t steps = 1; steps <= 2; ++steps) {  // step 2 cheats, step 1 does not
        c.kind = kind;
        INFO("cheat " << static_cast<int>(kind) << " seed " << seed << " steps " << steps);
        const auto host = check_all_layers(f, c, steps, seed, {false, nullptr});
        CHECK(check_all_layers(f, c, steps, seed, {false, be.get()}) == host);
        CHECK(check_all_layers(f, c, steps, seed, {true, be.get()}) == host);
        if (kind == compute_cheat::none || steps == 1)
          CHECK(host == std::vector<check_outcome>(3, check_outcome::passed));
        else
          CHECK(host[0] != check_outcome::passed);
      }
}

TEST_CASE("cheats only from their start step, every n-th step", "[verify]") {
  cheat_settings c;
  c.kind = compute_cheat::perturb;
  c.start_step = 5;
  c.every = 3;
  CHECK_FALSE(c.active(4));
  CHECK(c.active(5));
  CHECK_FALSE(c.active(6));
  CHECK(c.active(8));
  c.kind = compute_cheat::none;
  CHECK_FALSE(c.active(5));
}

TEST_CASE("tensors that differ from the commitment fail, whatever they are", "[verify]") {
  fixture f;
  auto t = f.make_trainer(0);
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 2);
  t->enable_transcripts(log, {}, {}, 1);
  transcript_checker checker(committed_layers(*t->model()), f.data, 8);
  Rng rng(1);
  auto shard = f.sorted_shard(0);
  t->step();
  const transcript_commit c = *t->last_commit();
  tensor_reply good;
  REQUIRE(log->reply(1, 1, 1, good));
  for (int which = 0; which < 8; ++which) {
    tensor_reply r = good;
    switch (which) {
      case 0: r.input[3] += 1e-6f; break;
      case 1: r.weight[5] = std::nextafter(r.weight[5], 1.f); break;
      case 2: r.bias[0] += 1.f; break;
      case 3: r.output[2] *= 2; break;
      case 4: r.output_grad[1] = 0; break;
      case 5: r.weight_grad[7] += 1; break;
      case 6: r.bias_grad[0] -= 1; break;
      case 7: std::swap(r.indices[0], r.indices[1]); break;
    }
    CHECK(checker.check(c.layers[1], r, shard, rng) == check_outcome::hash_mismatch);
  }
  // The right tensors against another step's commitment fail too.
  t->step();
  const transcript_commit c2 = *t->last_commit();
  CHECK(checker.check(c2.layers[1], good, shard, rng) == check_outcome::hash_mismatch);
  // Shapes that do not fit the verifier's model.
  tensor_reply bad = good;
  bad.out = 17;
  CHECK(checker.check(c.layers[1], bad, shard, rng) == check_outcome::bad_shape);
  bad = good;
  bad.layer = 9;
  CHECK(checker.check(c.layers[1], bad, shard, rng) == check_outcome::bad_shape);
}

namespace {

// A transport that hands every frame straight to the destination's verifier
// (or gossip actor for gossip frames, which these tests do not send).
using registry = std::map<uint32_t, verifier_actor>;

transport_actor::behavior_type loopback(transport_actor::pointer, std::shared_ptr<registry> peers) {
  return {[=](send_atom, uint32_t from, uint32_t to, const wire_frame& w) {
    auto it = peers->find(to);
    if (it != peers->end()) caf::anon_send(it->second, deliver_atom::value, from, w);
  }};
}

struct verifier_net {
  fixture f;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<registry> peers = std::make_shared<registry>();
  transport_actor transport = sys.spawn(loopback, peers);
  std::vector<std::shared_ptr<trainer>> trainers;
  std::vector<std::shared_ptr<quarantine_log>> quarantines;

  // Three peers, all neighbours of each other; peer 0 may cheat. on_backends:
  // every peer trains and checks on the CPU backend (as GPU peers on theirs).
  verifier_net(double rate, cheat_settings cheat, compute_cheat matmul_cheat = compute_cheat::none,
               bool on_backends = false) {
    for (uint32_t i = 0; i < 3; ++i) {
      auto t = f.make_trainer(i);
      if (on_backends) t->use_backend(make_cpu_backend());
      auto log = std::make_shared<step_transcript_log>(i, *t->model(), 64);
      t->enable_transcripts(log, i == 0 ? cheat : cheat_settings{}, f.shards[1], 7);
      std::vector<uint32_t> nb;
      for (uint32_t j = 0; j < 3; ++j)
        if (j != i) nb.push_back(j);
      verifier_context ctx{i, nb, [nb3 = std::vector<uint32_t>{0, 1, 2}](uint32_t) { return nb3; },
                           [sh = f.shards](uint32_t p) { return sh[p]; }, f.data, log,
                           committed_layers(*t->model()), nullptr, {},
                           on_backends ? std::shared_ptr<compute_backend>(make_cpu_backend()) : nullptr};
      verifier_settings s;
      s.rate = rate;
      s.seed = 42;
      if (i == 0) {
        s.matmul_cheat = matmul_cheat;
        s.matmul_cheat_eps = 1e-2;
      }
      auto q = std::make_shared<quarantine_log>();
      quarantines.push_back(q);
      (*peers)[i] = spawn_verifier(sys, std::move(ctx), s, transport, sys.spawn(recording_gossip, q));
      trainers.push_back(t);
    }
  }
  // Each peer steps and hands its commitment to its verifier actor.
  void step_all() {
    for (uint32_t i = 0; i < 3; ++i) {
      trainers[i]->step();
      auto buf = std::make_shared<std::vector<std::byte>>();
      encode_transcript_commit(*trainers[i]->last_commit(), *buf);
      caf::anon_send((*peers)[i], vcommit_atom::value, wire_frame{std::move(buf)});
    }
    // Let the verifiers finish before the transcripts move on.
    caf::scoped_actor self{sys};
    for (uint32_t i = 0; i < 3; ++i) self->request((*peers)[i], caf::infinite, stats_atom::value).receive(
        [](const verifier_stats&) {}, [](caf::error&) {});
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  verifier_stats stats(uint32_t i) {
    caf::scoped_actor self{sys};
    // Frames hop between three actors: wait until the counters stop moving.
    verifier_stats out;
    auto key = [](const verifier_stats& s) {
      return std::make_tuple(s.commits_received, s.challenges, s.replies_checked, s.evidence_received,
                             s.requests_answered, s.offloads_verified + s.offloads_rejected, s.frames_rejected);
    };
    int still = 0;
    for (int poll = 0; poll < 200 && still < 3; ++poll) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      verifier_stats now;
      self->request((*peers)[i], caf::infinite, stats_atom::value)
          .receive([&](const verifier_stats& s) { now = s; }, [](caf::error&) {});
      still = poll > 0 && key(now) == key(out) ? still + 1 : 0;
      out = now;
    }
    return out;
  }
  std::vector<uint32_t> quarantined_by(uint32_t i) {
    return quarantines[i]->peers();
  }
  ~verifier_net() {
    for (auto& [id, v] : *peers) caf::anon_send_exit(v, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
  }
};

// Peer 0's reply to a challenge of step 1, layer 0, as an honest peer 0
// gives it. Its log is inside its verifier; the same reply comes from a
// twin trainer with the same seeds (the steps are deterministic).
tensor_reply honest_reply_of_peer0(verifier_net& net) {
  auto twin = net.f.make_trainer(0);
  auto log = std::make_shared<step_transcript_log>(0, *twin->model(), 4);
  twin->enable_transcripts(log, {}, {}, 7);
  twin->step();
  REQUIRE(*twin->last_commit() == *net.trainers[0]->last_commit());
  tensor_reply r;
  REQUIRE(log->reply(1, 0, 5, r));
  return r;
}

}  // namespace

TEST_CASE("verifier actors: honest peers check each other, earn credit, quarantine nobody", "[verify][actors]") {
  verifier_net net(1.0, {});
  for (int s = 0; s < 10; ++s) net.step_all();
  for (uint32_t i = 0; i < 3; ++i) {
    auto st = net.stats(i);
    CHECK(st.commits_received == 20);
    CHECK(st.challenges == 20);
    CHECK(st.passed == 20);
    CHECK(st.failed == 0);
    CHECK(st.frames_rejected == 0);
    for (uint32_t j = 0; j < 3; ++j)
      if (j != i) CHECK(st.ledger[j].verified_flops > 0);
    CHECK(net.quarantined_by(i).empty());
  }
}

TEST_CASE("verifier actors: a cheat is caught, the evidence re-checked, the cheat quarantined by all", "[verify][actors]") {
  cheat_settings cheat;
  cheat.kind = compute_cheat::skip_product;
  cheat.start_step = 3;
  cheat.every = 1;
  // Peers check layer 0 with probability 1/3 per challenge: 10 steps leave
  // (2/3)^16 ~ 0.2 % chance that nobody looked at layer 0 of a cheating step.
  verifier_net net(1.0, cheat);
  for (int s = 0; s < 10; ++s) net.step_all();
  auto s1 = net.stats(1), s2 = net.stats(2);
  CHECK(s1.failed + s2.failed >= 1);
  CHECK(s1.failed + s2.failed + s1.evidence_confirmed + s2.evidence_confirmed >= 2);
  CHECK(s1.evidence_rejected + s2.evidence_rejected == 0);
  for (uint32_t i : {1u, 2u}) CHECK(net.quarantined_by(i) == std::vector<uint32_t>{0});
  // Nobody caught anything before the cheat started.
  for (auto& [peer, step] : s1.caught) CHECK(step >= 3);
  CHECK(net.quarantined_by(0).empty());
}

TEST_CASE("verifier actors on backends: a backend prover's cheat is caught and quarantined, honest ones are not",
          "[verify][actors][backend]") {
  cheat_settings cheat;
  cheat.kind = compute_cheat::perturb;
  cheat.eps = 1e-2;
  cheat.start_step = 3;
  cheat.every = 1;
  verifier_net net(1.0, cheat, compute_cheat::none, true);
  for (int s = 0; s < 10; ++s) net.step_all();
  auto s1 = net.stats(1), s2 = net.stats(2);
  CHECK(s1.failed + s2.failed >= 1);
  CHECK(s1.evidence_rejected + s2.evidence_rejected == 0);
  for (uint32_t i : {1u, 2u}) CHECK(net.quarantined_by(i) == std::vector<uint32_t>{0});
  for (auto& [peer, step] : s1.caught) CHECK(step >= 3);
  // The honest backend peers' checks of each other all passed.
  CHECK(s1.ledger[2].checks_failed == 0);
  CHECK(s1.ledger[2].checks_passed >= 1);
  CHECK(s2.ledger[1].checks_failed == 0);
  CHECK(net.quarantined_by(0).empty());
}

TEST_CASE("verifier actors: evidence against honest work is rejected on re-check", "[verify][actors]") {
  verifier_net net(0.0, {});
  net.step_all();
  // Peer 2 forges an accusation against peer 0 with peer 0's real tensors.
  tensor_reply r = honest_reply_of_peer0(net);
  std::vector<std::byte> reply_frame, ev_frame;
  encode_tensor_reply(r, reply_frame);
  encode_evidence({2, 0, 1, 0, 1, reply_frame}, ev_frame);
  caf::anon_send((*net.peers)[1], deliver_atom::value, uint32_t{2},
                 wire_frame{std::make_shared<const std::vector<std::byte>>(ev_frame)});
  auto s1 = net.stats(1);
  CHECK(s1.evidence_received == 1);
  CHECK(s1.evidence_rejected == 1);
  CHECK(s1.evidence_confirmed == 0);
  CHECK(net.quarantined_by(1).empty());
  // Evidence claiming to come from someone other than the sender is dropped.
  encode_evidence({0, 0, 1, 0, 1, reply_frame}, ev_frame);
  caf::anon_send((*net.peers)[1], deliver_atom::value, uint32_t{2},
                 wire_frame{std::make_shared<const std::vector<std::byte>>(ev_frame)});
  CHECK(net.stats(1).frames_rejected == 1);
}

TEST_CASE("verifier actors: evidence whose tensors do not hash to the receiver's commitment is rejected, never acted on",
          "[verify][actors]") {
  verifier_net net(0.0, {});
  net.step_all();
  // Peer 2 forges evidence against honest peer 0: its real reply of step 1
  // with one weight changed (which fails Freivalds too, were it checked).
  tensor_reply r = honest_reply_of_peer0(net);
  REQUIRE(!r.weight.empty());
  r.weight[0] += 1.f;
  std::vector<std::byte> reply_frame, ev_frame;
  encode_tensor_reply(r, reply_frame);
  encode_evidence({2, 0, 1, 0, 1, reply_frame}, ev_frame);
  caf::anon_send((*net.peers)[1], deliver_atom::value, uint32_t{2},
                 wire_frame{std::make_shared<const std::vector<std::byte>>(ev_frame)});
  auto s1 = net.stats(1);
  CHECK(s1.evidence_received == 1);
  CHECK(s1.evidence_rejected == 1);
  CHECK(s1.evidence_confirmed == 0);
  CHECK(s1.ledger[0].checks_failed == 0);
  CHECK(net.quarantined_by(1).empty());
}

TEST_CASE("offloaded products: verified and credited, or rejected and recomputed, on the host or a backend",
          "[verify][actors][backend]") {
  const bool on_backends = GENERATE(false, true);
  INFO("checked on " << (on_backends ? "the CPU backend" : "the host"));
  auto job = std::make_shared<matmul_job>();
  job->m = 96;
  job->n = 80;
  job->k = 128;
  Rng rng(5);
  job->a.resize(size_t{job->m} * job->k);
  job->b.resize(size_t{job->k} * job->n);
  for (auto& v : job->a) v = static_cast<float>(rng.normal());
  for (auto& v : job->b) v = static_cast<float>(rng.normal());
  std::vector<float> want(size_t{job->m} * job->n);
  gemm(false, false, job->m, job->n, job->k, 1.f, job->a.data(), job->b.data(), 0.f, want.data());
  auto run = [&](compute_cheat worker_cheat) {
    verifier_net net(0.0, {}, worker_cheat, on_backends);
    caf::scoped_actor self{net.sys};
    matmul_outcome out;
    self->request((*net.peers)[1], std::chrono::seconds(10), offload_atom::value, uint32_t{0},
                  std::shared_ptr<const matmul_job>(job))
        .receive([&](matmul_outcome& o) { out = std::move(o); }, [](caf::error& e) { FAIL(caf::to_string(e)); });
    REQUIRE(out.c.size() == want.size());
    double max_err = 0;
    for (size_t i = 0; i < want.size(); ++i) max_err = std::max<double>(max_err, std::fabs(out.c[i] - want[i]));
    CHECK(max_err < 1e-3);  // the caller never gets a wrong product
    return std::make_pair(out, net.stats(1));
  };
  auto [honest, hs] = run(compute_cheat::none);
  CHECK(honest.verified);
  CHECK(hs.offloads_verified == 1);
  CHECK(hs.ledger[0].verified_flops == 2.0 * 96 * 80 * 128);
  for (auto cheat : {compute_cheat::skip_product, compute_cheat::perturb}) {
    auto [bad, bs] = run(cheat);
    CHECK_FALSE(bad.verified);
    CHECK(bs.offloads_rejected == 1);
    CHECK(bs.ledger[0].checks_failed == 1);
  }
}

TEST_CASE("verifier actors: evidence of a real cheat is confirmed on re-check and acted on", "[verify][actors]") {
  cheat_settings cheat;
  cheat.kind = compute_cheat::perturb;
  cheat.eps = 1e-2;
  cheat.start_step = 2;
  verifier_net net(0.0, cheat);  // nobody challenges: peer 1 learns of the cheat only from evidence
  net.step_all();
  net.step_all();
  auto twin = net.f.make_trainer(0);
  auto log = std::make_shared<step_transcript_log>(0, *twin->model(), 4);
  twin->enable_transcripts(log, cheat, net.f.shards[1], 7);
  twin->step();
  twin->step();
  REQUIRE(*twin->last_commit() == *net.trainers[0]->last_commit());
  tensor_reply r;
  REQUIRE(log->reply(2, 0, 5, r));
  std::vector<std::byte> reply_frame, ev_frame;
  encode_tensor_reply(r, reply_frame);
  encode_evidence({2, 0, 2, 0, 1, reply_frame}, ev_frame);
  auto frame = wire_frame{std::make_shared<const std::vector<std::byte>>(ev_frame)};
  caf::anon_send((*net.peers)[1], deliver_atom::value, uint32_t{2}, frame);
  caf::anon_send((*net.peers)[1], deliver_atom::value, uint32_t{2}, frame);  // a repeat is not re-checked
  auto s1 = net.stats(1);
  CHECK(s1.evidence_received == 2);
  CHECK(s1.evidence_confirmed == 1);
  CHECK(net.quarantined_by(1) == std::vector<uint32_t>{0});
  // Peer 0 cannot accuse itself away, and its own evidence about itself is ignored.
  CHECK(net.quarantined_by(0).empty());
}
