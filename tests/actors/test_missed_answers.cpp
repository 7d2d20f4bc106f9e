// Deadlines on verification challenges (verifier_actor.hpp): a prover that
// never answers, or answers "unavailable" (silence) for a step inside the
// retention it promised, is charged a miss per challenge and quarantined
// after max_misses by every verifier (cause missed_answers), those that only
// heard a miss claim included, since they re-check it themselves; an honest
// prover on a slow link within the deadline is never charged; a false claim
// is rejected on re-check; a claim about a prover that left is ignored.
// Four verifier actors over a transport that can hold frames back, on a
// hand-driven clock.
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "actors/gossip_actor.hpp"
#include "actors/verifier_actor.hpp"
#include "protocols/membership_messages.hpp"
#include "tests/actors/stub_gossip.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:32,relu,linear:16,relu,linear:10";
constexpr uint32_t kPeers = 4;
constexpr double kDeadline = 1.0;

// What the transport carries, and what it holds back until released.
struct wire {
  std::mutex mu;
  std::map<uint32_t, verifier_actor> peers;
  std::function<bool(uint32_t from, uint32_t to, message_type)> hold;
  std::vector<std::tuple<uint32_t, uint32_t, wire_frame>> held;

  void release() {
    std::vector<std::tuple<uint32_t, uint32_t, wire_frame>> out;
    {
      std::lock_guard<std::mutex> l(mu);
      out.swap(held);
      hold = nullptr;
    }
    for (auto& [from, to, w] : out) caf::anon_send(peers.at(to), deliver_atom::value, from, w);
  }
};

transport_actor::behavior_type held_transport(transport_actor::pointer, std::shared_ptr<wire> net) {
  return {[=](send_atom, uint32_t from, uint32_t to, const wire_frame& w) {
    auto type = peek_type(*w.bytes);
    std::lock_guard<std::mutex> l(net->mu);
    if (net->hold && type && net->hold(from, to, *type)) {
      net->held.emplace_back(from, to, w);
      return;
    }
    auto it = net->peers.find(to);
    if (it != net->peers.end()) caf::anon_send(it->second, deliver_atom::value, from, w);
  }};
}

struct prover_setup {
  bool silent = false;
  size_t log_keep = 64;          // what peer 0 really keeps
  std::vector<double> rates = {1, 1, 1, 1};
  uint32_t moved_on = 0;         // commitments before a silence counts (0: at the deadline)
};

// Peer 0 is the prover under test; 1..3 verify it; all are neighbours.
struct deadline_net {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<std::vector<int64_t>> shards = shard_iid(600, kPeers, 5);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<wire> net = std::make_shared<wire>();
  std::shared_ptr<std::atomic<double>> clock = std::make_shared<std::atomic<double>>(100.0);
  transport_actor transport = sys.spawn(held_transport, net);
  std::vector<std::shared_ptr<trainer>> trainers;
  std::vector<std::shared_ptr<quarantine_log>> quarantines;

  explicit deadline_net(const prover_setup& p) {
    for (uint32_t i = 0; i < kPeers; ++i) {
      train_settings t;
      t.batch = 16;
      t.total_steps = 100;
      t.data_seed = 100 + i;
      t.init_seed = 1;
      auto tr = std::make_shared<trainer>(t, kModel, data, shards[i], data);
      auto log = std::make_shared<step_transcript_log>(i, *tr->model(), i == 0 ? p.log_keep : 64);
      tr->enable_transcripts(log, {}, {}, 7);
      std::vector<uint32_t> nb;
      for (uint32_t j = 0; j < kPeers; ++j)
        if (j != i) nb.push_back(j);
      verifier_context ctx{i,
                           nb,
                           [](uint32_t) { return std::vector<uint32_t>{0, 1, 2, 3}; },
                           [sh = shards](uint32_t q) { return sh[q]; },
                           data,
                           log,
                           committed_layers(*tr->model()),
                           [c = clock] { return c->load(); },
                           {}};
      verifier_settings s;
      s.rate = p.rates[i];
      s.seed = 42 + i;
      s.deadline_s = kDeadline;
      s.keep_steps = 8;  // the retention every prover promises
      s.max_misses = 3;
      s.moved_on_commits = p.moved_on;
      s.silent = i == 0 && p.silent;
      auto q = std::make_shared<quarantine_log>();
      quarantines.push_back(q);
      auto v = spawn_verifier(sys, std::move(ctx), s, transport, sys.spawn(recording_gossip, q));
      std::lock_guard<std::mutex> l(net->mu);
      net->peers[i] = v;
      trainers.push_back(tr);
    }
  }
  ~deadline_net() {
    for (auto& [id, v] : net->peers) caf::anon_send_exit(v, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
  }

  void step(uint32_t i) {
    trainers[i]->step();
    auto buf = std::make_shared<std::vector<std::byte>>();
    encode_transcript_commit(*trainers[i]->last_commit(), *buf);
    caf::anon_send(net->peers.at(i), vcommit_atom::value, wire_frame{std::move(buf)});
  }
  verifier_stats stats_now(uint32_t i) {
    caf::scoped_actor self{sys};
    verifier_stats out;
    self->request(net->peers.at(i), caf::infinite, stats_atom::value)
        .receive([&](const verifier_stats& s) { out = s; }, [](caf::error&) {});
    return out;
  }
  // Waits until no verifier's counters move any more.
  void settle() {
    auto key = [](const verifier_stats& s) {
      return std::make_tuple(s.commits_received, s.challenges, s.replies_checked, s.requests_answered,
                             s.requests_unavailable, s.requests_withheld, s.miss_claims_received, s.frames_rejected,
                             s.challenges_missed, s.misses_announced);
    };
    std::vector<decltype(key(verifier_stats{}))> last(kPeers);
    int still = 0;
    for (int poll = 0; poll < 300 && still < 3; ++poll) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      bool same = poll > 0;
      for (uint32_t i = 0; i < kPeers; ++i) {
        auto k = key(stats_now(i));
        same = same && k == last[i];
        last[i] = k;
      }
      still = same ? still + 1 : 0;
    }
  }
  // Moves the clock on and lets every verifier look at its deadlines.
  void advance(double dt) {
    clock->store(clock->load() + dt);
    for (auto& [id, v] : net->peers) caf::anon_send(v, deadline_atom::value);
    settle();
  }
  std::vector<std::pair<uint32_t, quarantine_cause>> quarantined_by(uint32_t i) {
    std::lock_guard<std::mutex> l(quarantines[i]->mu);
    return quarantines[i]->orders;
  }
  void deliver(uint32_t from, uint32_t to, const std::vector<std::byte>& frame) {
    caf::anon_send(net->peers.at(to), deliver_atom::value, from,
                   wire_frame{std::make_shared<const std::vector<std::byte>>(frame)});
  }
};

const std::vector<std::pair<uint32_t, quarantine_cause>> quarantined_0 = {{0, quarantine_cause::missed_answers}};

}  // namespace

TEST_CASE("a prover that never answers is quarantined after max_misses by each verifier", "[verify][actors][deadline]") {
  SECTION("every verifier challenges every step itself") {
    deadline_net n({.silent = true});
    for (int round = 1; round <= 3; ++round) {
      n.step(0);
      n.settle();
      n.advance(0.5 * kDeadline);
      for (uint32_t v = 1; v < kPeers; ++v) CHECK(n.stats_now(v).challenges_missed == uint64_t(round - 1));
      n.advance(kDeadline);
      for (uint32_t v = 1; v < kPeers; ++v) CHECK(n.stats_now(v).challenges_missed == uint64_t(round));
      if (round < 3)
        for (uint32_t v = 1; v < kPeers; ++v) CHECK(n.quarantined_by(v).empty());
    }
    for (uint32_t v = 1; v < kPeers; ++v) {
      auto s = n.stats_now(v);
      CHECK(s.challenges == 3);
      CHECK(s.challenges_completed == 0);
      CHECK(s.misses_by_prover[0] == 3);
      CHECK(s.misses_announced == 3 * 2);  // to the prover's two other verifiers
      CHECK(s.misses_confirmed == 0);      // claims about steps it challenged itself add nothing
      CHECK(n.quarantined_by(v) == quarantined_0);
    }
    // Each request twice: the verifiers ask again at half the deadline.
    for (uint32_t v = 1; v < kPeers; ++v) CHECK(n.stats_now(v).requests_resent == 3);
    CHECK(n.stats_now(0).requests_withheld == 2 * 9);
    CHECK(n.quarantined_by(0).empty());
  }
  SECTION("only peer 1 challenges: peers 2 and 3 act on their own re-checks of its claims") {
    deadline_net n({.silent = true, .rates = {0, 1, 0, 0}});
    for (int round = 1; round <= 3; ++round) {
      n.step(0);
      n.settle();
      n.advance(1.5 * kDeadline);  // peer 1's challenge is missed; 2 and 3 re-check
      for (uint32_t v : {2u, 3u}) CHECK(n.stats_now(v).challenges == uint64_t(round));
      n.advance(1.5 * kDeadline);  // their re-checks are missed too
    }
    CHECK(n.quarantined_by(1) == quarantined_0);
    for (uint32_t v : {2u, 3u}) {
      auto s = n.stats_now(v);
      CHECK(s.miss_claims_received == 3);
      CHECK(s.misses_confirmed == 3);
      CHECK(s.challenges_missed == 3);
      CHECK(s.misses_announced == 0);  // confirmations are not announced again
      CHECK(n.quarantined_by(v) == quarantined_0);
    }
  }
}

TEST_CASE("a prover that answers 'unavailable' inside its promised retention is quarantined alike",
          "[verify][actors][deadline]") {
  // Peer 0 promises 8 steps but keeps 1: by the time the challenges of a
  // step reach it, it has already dropped the step.
  deadline_net n({.log_keep = 1});
  for (int round = 1; round <= 3; ++round) {
    {
      std::lock_guard<std::mutex> l(n.net->mu);
      n.net->hold = [](uint32_t, uint32_t to, message_type t) { return to == 0 && t == message_type::tensor_request; };
    }
    n.step(0);
    n.step(0);
    n.settle();
    n.net->release();  // the challenges of both steps arrive now: the first step is gone
    n.settle();
    n.advance(1.5 * kDeadline);
  }
  CHECK(n.stats_now(0).requests_unavailable == 9);
  for (uint32_t v = 1; v < kPeers; ++v) {
    auto s = n.stats_now(v);
    CHECK(s.challenges == 6);
    CHECK(s.challenges_completed == 3);
    CHECK(s.challenges_missed == 3);
    CHECK(s.passed == 3);
    CHECK(n.quarantined_by(v) == quarantined_0);
  }
}

TEST_CASE("a silence for a step past the promised retention expires instead", "[verify][actors][deadline]") {
  // The prover committed keep_steps (8) steps before the deadline: it may
  // have dropped the step, as promised, so nothing is charged.
  deadline_net n({.silent = true, .rates = {0, 1, 0, 0}});
  n.step(0);
  n.settle();
  auto first = n.stats_now(1).challenges;
  REQUIRE(first == 1);
  {
    std::lock_guard<std::mutex> l(n.net->mu);  // no more challenges: only the first one counts
    n.net->hold = [](uint32_t, uint32_t, message_type t) { return t == message_type::tensor_request; };
  }
  for (int s = 0; s < 8; ++s) n.step(0);
  n.settle();
  n.advance(1.5 * kDeadline);
  auto s1 = n.stats_now(1);
  CHECK(s1.challenges_expired >= 1);
  CHECK(s1.misses_by_prover[0] + s1.challenges_expired == s1.challenges);
  // The first challenge expired; the others were held back (never reached
  // the prover), and those are misses: a lost request counts like a lost reply.
  CHECK(s1.challenges_expired == 1);
}

TEST_CASE("an honest prover on a slow link is never charged while the deadline is respected",
          "[verify][actors][deadline]") {
  deadline_net n({});
  for (int round = 0; round < 5; ++round) {
    {
      std::lock_guard<std::mutex> l(n.net->mu);
      n.net->hold = [](uint32_t from, uint32_t, message_type t) { return from == 0 && t == message_type::tensor_reply; };
    }
    n.step(0);
    n.settle();
    n.advance(0.9 * kDeadline);  // the replies are on the slow link this long
    n.net->release();
    n.settle();
    n.advance(5 * kDeadline);
  }
  for (uint32_t v = 1; v < kPeers; ++v) {
    auto s = n.stats_now(v);
    CHECK(s.challenges == 5);
    CHECK(s.challenges_completed == 5);
    CHECK(s.passed == 5);
    CHECK(s.challenges_missed == 0);
    CHECK(s.misses_announced == 0);
    CHECK(s.max_answer_s == Approx(0.9 * kDeadline));
    CHECK(n.quarantined_by(v).empty());
  }
  SECTION("a reply after the deadline is still checked, and the miss stands") {
    {
      std::lock_guard<std::mutex> l(n.net->mu);
      n.net->hold = [](uint32_t from, uint32_t, message_type t) { return from == 0 && t == message_type::tensor_reply; };
    }
    n.step(0);
    n.settle();
    n.advance(1.5 * kDeadline);
    n.net->release();
    n.settle();
    for (uint32_t v = 1; v < kPeers; ++v) {
      auto s = n.stats_now(v);
      CHECK(s.challenges_missed == 1);
      CHECK(s.challenges_late == 1);
      CHECK(s.passed == 6);  // checked all the same
      CHECK(s.misses_by_prover[0] == 1);
      CHECK(n.quarantined_by(v).empty());  // one miss is not max_misses
    }
  }
}

TEST_CASE("bare miss claims never change an honest prover's standing", "[verify][actors][deadline]") {
  deadline_net n({.rates = {0, 0, 0, 0}});
  for (int s = 0; s < 6; ++s) n.step(0);
  n.settle();
  // Peer 2 accuses peer 0 of six misses, more than max_misses: peer 1
  // re-checks each step, peer 0 answers, every claim is rejected.
  for (uint64_t step = 1; step <= 6; ++step) {
    std::vector<std::byte> f;
    encode_miss_claim({2, 0, step, 0}, f);
    n.deliver(2, 1, f);
    n.deliver(2, 1, f);  // a repeat is not re-checked again
  }
  n.settle();
  n.advance(2 * kDeadline);
  auto s1 = n.stats_now(1);
  CHECK(s1.miss_claims_received == 12);
  CHECK(s1.challenges == 6);
  CHECK(s1.misses_rejected == 6);
  CHECK(s1.misses_confirmed == 0);
  CHECK(s1.challenges_missed == 0);
  CHECK(s1.misses_by_prover.empty());
  CHECK(n.quarantined_by(1).empty());
  // A claim naming another accuser than its sender is dropped; one about
  // the receiver itself, or about a step it holds no commitment of, is ignored.
  std::vector<std::byte> f;
  encode_miss_claim({3, 0, 1, 0}, f);
  n.deliver(2, 1, f);
  encode_miss_claim({2, 1, 1, 0}, f);
  n.deliver(2, 1, f);
  encode_miss_claim({2, 0, 99, 0}, f);
  n.deliver(2, 1, f);
  n.settle();
  s1 = n.stats_now(1);
  CHECK(s1.frames_rejected == 1);
  CHECK(s1.misses_ignored == 1);
  CHECK(s1.challenges == 6);
  CHECK(n.quarantined_by(1).empty());
}

TEST_CASE("misses are not counted against a prover that left the neighbourhood", "[verify][actors][deadline]") {
  deadline_net n({.silent = true, .rates = {0, 1, 0, 0}});
  n.step(0);
  n.settle();
  REQUIRE(n.stats_now(1).challenges == 1);
  // Membership drops peer 0 (dead) before the deadline.
  for (uint32_t v = 1; v < kPeers; ++v) {
    std::vector<uint32_t> others;
    for (uint32_t j = 1; j < kPeers; ++j)
      if (j != v) others.push_back(j);
    caf::anon_send(n.net->peers.at(v), nbrs_atom::value, others, std::vector<uint64_t>(others.size(), 1));
  }
  n.settle();
  n.advance(3 * kDeadline);
  auto s1 = n.stats_now(1);
  CHECK(s1.challenges_abandoned == 1);
  CHECK(s1.challenges_missed == 0);
  CHECK(s1.misses_announced == 0);
  // A claim about it (from a peer that still had it) is ignored, not re-checked.
  std::vector<std::byte> f;
  encode_miss_claim({1, 0, 1, 0}, f);
  n.deliver(1, 2, f);
  n.settle();
  auto s2 = n.stats_now(2);
  CHECK(s2.miss_claims_received == 1);
  CHECK(s2.misses_ignored == 1);
  CHECK(s2.challenges == 0);
  for (uint32_t v = 1; v < kPeers; ++v) CHECK(n.quarantined_by(v).empty());
}

TEST_CASE("a request lost on the way is asked again, and the prover is not charged", "[verify][actors][deadline]") {
  deadline_net n({});
  {
    std::lock_guard<std::mutex> l(n.net->mu);  // the first request to peer 0 is lost
    n.net->hold = [](uint32_t, uint32_t to, message_type t) { return to == 0 && t == message_type::tensor_request; };
  }
  n.step(0);
  n.settle();
  {
    std::lock_guard<std::mutex> l(n.net->mu);
    n.net->held.clear();
    n.net->hold = nullptr;
  }
  n.advance(0.6 * kDeadline);  // past half the deadline: asked again
  n.advance(kDeadline);
  for (uint32_t v = 1; v < kPeers; ++v) {
    auto s = n.stats_now(v);
    CHECK(s.requests_resent == 1);
    CHECK(s.challenges_completed == 1);
    CHECK(s.challenges_missed == 0);
    CHECK(n.quarantined_by(v).empty());
  }
  CHECK(n.stats_now(0).requests_answered == 3);
  SECTION("the answer to both copies is checked once") {
    n.step(0);  // this time both copies arrive, the second after the first answer
    n.settle();
    n.advance(0.6 * kDeadline);
    n.advance(kDeadline);
    for (uint32_t v = 1; v < kPeers; ++v) {
      auto s = n.stats_now(v);
      CHECK(s.challenges_completed == 2);
      CHECK(s.replies_checked == 2);
      CHECK(s.frames_rejected == 0);
    }
  }
}

TEST_CASE("a silent prover that has not moved on is waited for; once it moves on, its silence is a miss",
          "[verify][actors][deadline]") {
  // Peer 0 never answers. With moved_on_commits = 3 its silence counts only
  // once it has committed 3 more steps: a stalled process is not a dodger.
  deadline_net n({.silent = true, .rates = {0, 1, 0, 0}, .moved_on = 3});
  n.step(0);
  n.settle();
  n.advance(3 * kDeadline);  // stalled: no commitments since the challenge
  auto s = n.stats_now(1);
  CHECK(s.challenges == 1);
  CHECK(s.challenges_missed == 0);
  CHECK(s.challenges_abandoned == 0);
  {
    std::lock_guard<std::mutex> l(n.net->mu);  // its next steps draw no challenges that reach it
    n.net->hold = [](uint32_t, uint32_t, message_type t) { return t == message_type::tensor_request; };
  }
  for (int k = 0; k < 3; ++k) n.step(0);  // it moves on, and still says nothing
  n.settle();
  n.advance(0.1 * kDeadline);
  s = n.stats_now(1);
  CHECK(s.challenges_missed >= 1);
  CHECK(s.misses_by_prover[0] >= 1);
  SECTION("a prover stalled past 8 deadlines is given up, not charged") {
    deadline_net m({.silent = true, .rates = {0, 1, 0, 0}, .moved_on = 3});
    m.step(0);
    m.settle();
    m.advance(9 * kDeadline);
    auto t = m.stats_now(1);
    CHECK(t.challenges_abandoned == 1);
    CHECK(t.challenges_missed == 0);
    CHECK(m.quarantined_by(1).empty());
  }
}
