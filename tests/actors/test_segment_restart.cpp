// Restarts under verify.scheme = segment (segment_verifier.hpp, "Chains and
// restarts"; murmur peer --resume): a prover's commitment stating a higher
// incarnation starts a new chain of segments, wherever it starts; its
// earlier incarnation's challenges still open are counted as misses at
// their deadline, and an answer to them from the new incarnation is not
// taken; an earlier incarnation's late commitment is refused; a prover that
// goes back without a new incarnation breaks its chain and is quarantined.
// A scripted prover (peer 0) in front of one verifier actor (peer 1) on a
// hand-driven clock, and the same rules on segment_verifier alone.
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
#include "actors/segment_messages.hpp"
#include "actors/segment_verifier.hpp"
#include "actors/trainer.hpp"
#include "actors/verifier_actor.hpp"
#include "tests/actors/stub_gossip.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:16,relu,linear:10";
constexpr uint64_t kLife1 = 1765000000000ULL, kLife2 = 1765000090000ULL;  // wall-clock ms at start

digest mark(uint8_t x) {
  digest d{};
  d[0] = x;
  return d;
}

segment_commit_msg commit_of(uint64_t incarnation, uint64_t start, uint64_t end, uint8_t from, uint8_t to) {
  segment_commit_msg c;
  c.prover = 0, c.start_step = start, c.end_step = end, c.start = mark(from), c.end = mark(to);
  c.incarnation = incarnation;
  return c;
}

struct sent_log {
  std::mutex mu;
  std::vector<segment_request_msg> requests;  // what the verifier asked the prover
};

transport_actor::behavior_type to_prover(transport_actor::pointer, std::shared_ptr<sent_log> log) {
  return {[=](send_atom, uint32_t, uint32_t to, const wire_frame& w) {
    segment_request_msg rq;
    if (to != 0 || decode_segment_request(*w.bytes, 1 << 20, rq) != frame_error::none) return;
    std::lock_guard<std::mutex> l(log->mu);
    log->requests.push_back(rq);
  }};
}

// Peer 1 verifies peer 0 and challenges every segment of it (rate 1 with
// no layers: q = 1); deadlines of 1 s on the clock below; 3 misses quarantine.
struct restart_net {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(200, 10, 8, 11));
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<sent_log> sent = std::make_shared<sent_log>();
  std::shared_ptr<quarantine_log> quarantines = std::make_shared<quarantine_log>();
  std::shared_ptr<std::atomic<double>> clock = std::make_shared<std::atomic<double>>(100.0);
  transport_actor transport = sys.spawn(to_prover, sent);
  verifier_actor verifier;

  restart_net() {
    verifier_context ctx{1, {0}, [](uint32_t) { return std::vector<uint32_t>{0, 1}; }, {}, data, nullptr, {},
                         [c = clock] { return c->load(); }, {}};
    verifier_settings s;
    s.rate = 1;
    s.seed = 3;
    s.deadline_s = 1.0;
    s.max_misses = 3;
    s.segment_steps = 4;
    verifier = spawn_verifier(sys, std::move(ctx), s, transport, sys.spawn(recording_gossip, quarantines));
  }
  ~restart_net() {
    caf::anon_send_exit(verifier, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
  }
  // Delivers a frame from peer 0 and waits until the verifier has handled it.
  verifier_stats deliver(const std::vector<std::byte>& frame) {
    caf::scoped_actor self{sys};
    self->send(verifier, deliver_atom::value, uint32_t{0}, wire_frame{std::make_shared<const std::vector<std::byte>>(frame)});
    return stats(self);
  }
  verifier_stats commit(const segment_commit_msg& c) {
    std::vector<std::byte> f;
    encode_segment_commit(c, f);
    return deliver(f);
  }
  verifier_stats stats(caf::scoped_actor& self) {
    verifier_stats out;
    self->request(verifier, caf::infinite, stats_atom::value)
        .receive([&](const verifier_stats& st) { out = st; }, [](caf::error&) {});
    return out;
  }
  // Membership's neighbour list (empty: the prover was declared dead).
  verifier_stats neighbours(std::vector<uint32_t> ids) {
    caf::scoped_actor self{sys};
    self->send(verifier, nbrs_atom::value, ids, std::vector<uint64_t>(ids.size(), kLife1));
    return stats(self);
  }
  verifier_stats advance(double dt) {
    clock->store(clock->load() + dt);
    caf::scoped_actor self{sys};
    self->send(verifier, deadline_atom::value);
    return stats(self);
  }
  // The requests reach the transport after the verifier answered stats:
  // wait (bounded) for `expect` of them.
  std::vector<segment_request_msg> requests(size_t expect) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> l(sent->mu);
        if (sent->requests.size() >= expect) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::lock_guard<std::mutex> l(sent->mu);
    return sent->requests;
  }
  // The quarantine order travels on to the gossip actor: wait for it.
  std::vector<std::pair<uint32_t, quarantine_cause>> quarantined(size_t expect) {
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> l(quarantines->mu);
        if (quarantines->orders.size() >= expect) return quarantines->orders;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::lock_guard<std::mutex> l(quarantines->mu);
    return quarantines->orders;
  }
};

// A reply of peer 0's for its segment from step 0: a fresh trainer's state
// (what a new incarnation that trained from step 0 again could send).
std::vector<std::byte> reply_from_step_0(const std::shared_ptr<const Dataset>& data, uint64_t nonce) {
  train_settings t;
  t.batch = 8;
  t.total_steps = 10;
  std::vector<int64_t> shard(100);
  for (int64_t i = 0; i < 100; ++i) shard[static_cast<size_t>(i)] = i;
  trainer tr(t, kModel, data, shard, data);
  segment s;
  auto b = std::make_shared<segment_boundary>();
  tr.save_checkpoint(b->trainer, 0, 0);
  s.start = b;
  s.end_step = 4;
  std::vector<std::byte> f;
  encode_segment_reply(0, nonce, s, f);
  return f;
}

}  // namespace

TEST_CASE("a restarted prover starts a new chain of segments; its earlier incarnation's open challenges still count",
          "[verify][segment][restart]") {
  restart_net net;
  // The first incarnation: two segments, both challenged, neither answered.
  net.commit(commit_of(kLife1, 0, 4, 0, 1));
  auto s = net.commit(commit_of(kLife1, 4, 8, 1, 2));
  REQUIRE(s.segments_challenged == 2);
  const auto old = net.requests(2);
  REQUIRE(old.size() == 2);
  CHECK(old[0].start_step == 0);

  // It restarts from its step-6 checkpoint: a new incarnation, another
  // state at step 6, before the end (8) of its last segment. A new chain,
  // challenged as any; nobody is accused.
  s = net.commit(commit_of(kLife2, 6, 8, 50, 51));
  CHECK(s.segment_chains_restarted == 1);
  CHECK(s.segments_challenged == 3);
  CHECK(s.segments_failed == 0);
  s = net.commit(commit_of(kLife2, 8, 12, 51, 52));
  CHECK(s.segments_challenged == 4);
  CHECK(s.segments_failed == 0);

  // The new incarnation answers the first incarnation's challenge of its
  // segment from step 0: not taken (neither checked nor counted as answered).
  s = net.deliver(reply_from_step_0(net.data, old[0].nonce));
  CHECK(s.segment_frames_stale == 1);
  CHECK(s.replies_checked == 0);
  CHECK(s.challenges_completed == 0);
  CHECK(s.frames_rejected == 0);

  // A late commitment of the first incarnation: refused, not held, no accusation.
  s = net.commit(commit_of(kLife1, 8, 12, 2, 3));
  CHECK(s.segment_frames_stale == 2);
  CHECK(s.segments_challenged == 4);

  // At half the deadline the new chain's challenges are asked once more;
  // the first incarnation's are not (the process asked is gone).
  s = net.advance(0.6);
  CHECK(s.requests_resent == 2);
  // 4 first requests, 2 resent (the new chain's).
  size_t asked_for_0 = 0;
  const auto asked = net.requests(6);
  CHECK(asked.size() == 6);
  for (const auto& rq : asked) asked_for_0 += rq.start_step == 0;
  CHECK(asked_for_0 == 1);
  // Past the deadline: both challenges of the first incarnation are misses
  // (no waiting for it to move on: it is gone); the new chain's wait for
  // their prover to move on, as any.
  s = net.advance(0.9);
  CHECK(s.challenges_missed == 2);
  CHECK(s.misses_by_prover[0] == 2);
  CHECK(s.challenges_abandoned == 0);
  CHECK(s.challenges_expired == 0);
  CHECK(net.quarantined(0).empty());  // 2 of 3 misses

  // Going back within one incarnation (here to step 4, before 12) is no
  // restart: its chain breaks, and it is quarantined.
  s = net.commit(commit_of(kLife2, 4, 8, 60, 61));
  CHECK(s.segments_failed == 1);
  const auto q = net.quarantined(1);
  REQUIRE(q.size() == 1);
  CHECK(q[0] == std::make_pair(uint32_t{0}, quarantine_cause::evidence));
}

TEST_CASE("a prover declared dead while challenged is not charged, unless it comes back as a new incarnation",
          "[verify][segment][restart]") {
  const bool restarted = GENERATE(false, true);
  INFO((restarted ? "back as a new incarnation" : "back in the same incarnation"));
  restart_net net;
  auto s = net.commit(commit_of(kLife1, 0, 4, 0, 1));
  REQUIRE(s.segments_challenged == 1);
  // Membership drops it (a restart slower than the dead timeout, or a
  // partition): the open challenge is abandoned.
  s = net.neighbours({});
  CHECK(s.challenges_abandoned == 1);
  net.neighbours({0});
  if (restarted) {
    // Back from its step-2 checkpoint: the challenge it left open is a miss.
    s = net.commit(commit_of(kLife2, 2, 4, 40, 41));
    CHECK(s.segment_chains_restarted == 1);
    CHECK(s.challenges_abandoned == 0);
    CHECK(s.challenges_missed == 1);
    CHECK(s.misses_by_prover[0] == 1);
  } else {
    s = net.commit(commit_of(kLife1, 4, 8, 1, 2));
    CHECK(s.segment_chains_restarted == 0);
    CHECK(s.challenges_abandoned == 1);
    CHECK(s.challenges_missed == 0);
  }
  CHECK(s.segments_failed == 0);
  CHECK(net.quarantined(0).empty());
}

TEST_CASE("segment chains: a higher incarnation starts anew, a lower one is refused, a jump or a rewind within one "
          "breaks the chain",
          "[verify][segment][restart]") {
  segment_verifier v(1, 1.0, 2);  // q = 1: every commitment challenged
  Rng rng(1);
  using outcome = segment_verifier::commit_outcome;
  uint64_t nonce = 1;
  auto on = [&](const segment_commit_msg& c) { return v.on_commit(0, c, rng, nonce++); };

  auto o = on(commit_of(kLife1, 0, 4, 0, 1));
  CHECK(o.kind == outcome::held);
  REQUIRE(o.challenge);
  CHECK(o.challenge->start_step == 0);
  CHECK(on(commit_of(kLife1, 4, 8, 1, 2)).kind == outcome::held);
  CHECK(v.commits_seen(0) == 2);

  // A restart at step 2: a new chain; both open challenges are handed back.
  o = on(commit_of(kLife2, 2, 4, 20, 21));
  CHECK(o.kind == outcome::new_chain);
  CHECK(o.previous_incarnation == kLife1);
  CHECK(o.retired == std::vector<uint64_t>{1, 2});
  CHECK(o.challenge);
  CHECK(v.held(0, 4) == nullptr);  // the earlier chain's commitments are not held against the new one
  REQUIRE(v.held(0, 2) != nullptr);
  CHECK(v.commits_seen(0) == 3);  // counted across incarnations (misses wait on it)
  // A reply to a retired challenge is no longer one this verifier waits for.
  segment_reply_msg r;
  r.prover = 0, r.start_step = 0, r.nonce = 1;
  CHECK_FALSE(v.on_reply(0, std::move(r)));

  // The new chain continues; the earlier incarnation's late frames are refused.
  CHECK(on(commit_of(kLife2, 4, 8, 21, 22)).kind == outcome::held);
  o = on(commit_of(kLife1, 8, 12, 2, 3));
  CHECK(o.kind == outcome::stale);
  CHECK(!o.challenge);
  CHECK(v.held(0, 8) == nullptr);

  // Within one incarnation: a segment that does not start where the
  // previous one ended fails, and so does one that goes back.
  o = on(commit_of(kLife2, 8, 12, 99, 23));
  CHECK(o.kind == outcome::broken);
  CHECK(o.broken_chain.kind == segment_verifier::verdict::failed);
  CHECK_THAT(o.broken_chain.why, Catch::Contains("does not start where its previous segment ended"));
  o = on(commit_of(kLife2, 0, 4, 5, 6));
  CHECK(o.kind == outcome::broken);
  CHECK_THAT(o.broken_chain.why, Catch::Contains("without a restart"));

  // Quarantined and forgotten: whatever it commits next starts afresh.
  v.forget(0);
  CHECK(on(commit_of(kLife1, 0, 4, 0, 1)).kind == outcome::held);
}

TEST_CASE("segment gaps: one missing segment is implied and challenged always, a longer gap is one miss",
          "[verify][segment][gap]") {
  SECTION("segment_verifier") {
    segment_verifier v(1, 0.0, 2);  // q = 0: only implied commitments are challenged
    Rng rng(1);
    auto o = v.on_commit(0, commit_of(kLife1, 0, 4, 0, 1), rng, 1);
    CHECK(!o.implied_challenge);
    // Segment 4..8 withheld: implied from the held end (1) to this start (2).
    o = v.on_commit(0, commit_of(kLife1, 8, 12, 2, 3), rng, 2);
    CHECK(o.kind == segment_verifier::commit_outcome::held);
    REQUIRE(o.implied_challenge);
    CHECK(o.implied_challenge->start_step == 4);
    CHECK(o.implied_challenge->nonce == 2);
    const auto* h = v.held(0, 4);
    REQUIRE(h != nullptr);
    CHECK(h->implied);
    CHECK(h->c.start == mark(1));
    CHECK(h->c.end == mark(2));
    CHECK(h->c.end_step == 8);
    CHECK(!v.held(0, 8)->implied);
    // The next one continues the chain from 12; one that does not fit the
    // implied segment's end is still broken.
    CHECK(v.on_commit(0, commit_of(kLife1, 12, 16, 3, 4), rng, 3).kind == segment_verifier::commit_outcome::held);
    // Two segments (16..24) missing: not pinned, reported as a gap.
    o = v.on_commit(0, commit_of(kLife1, 24, 28, 6, 7), rng, 4);
    CHECK(o.kind == segment_verifier::commit_outcome::held);
    CHECK(!o.implied_challenge);
    CHECK(o.gap_from == 16);
    CHECK(o.gap_to == 24);
    CHECK(v.held(0, 16) == nullptr);
    // A commitment refused here (the actor's flood bound, for its load) in
    // a gap makes it no gap of the prover's, even with frames lost after it.
    v.passed_over(0, commit_of(kLife1, 28, 32, 7, 8));
    o = v.on_commit(0, commit_of(kLife1, 40, 44, 10, 11), rng, 5);
    CHECK(!o.implied_challenge);
    CHECK(o.gap_to == 0);
    // The next gap, with nothing refused in it, counts again.
    o = v.on_commit(0, commit_of(kLife1, 52, 56, 13, 14), rng, 6);
    CHECK(o.gap_from == 44);
    CHECK(o.gap_to == 52);
  }
  SECTION("verifier actor") {
    restart_net net;  // challenges every segment; 3 misses quarantine
    net.commit(commit_of(kLife1, 0, 4, 0, 1));
    // One segment withheld: the implied one and this one are both challenged.
    auto s = net.commit(commit_of(kLife1, 8, 12, 2, 3));
    CHECK(s.segment_gaps_implied == 1);
    CHECK(s.segment_gaps == 0);
    CHECK(s.segments_challenged == 3);
    const auto asked = net.requests(3);
    REQUIRE(asked.size() == 3);
    CHECK(asked[1].start_step == 4);
    CHECK(asked[2].start_step == 8);
    CHECK(asked[1].nonce != asked[2].nonce);
    CHECK(s.misses_by_prover[0] == 0);
    // Two segments withheld (12..20): one miss, nothing to challenge there.
    s = net.commit(commit_of(kLife1, 20, 24, 5, 6));
    CHECK(s.segment_gaps == 1);
    CHECK(s.segment_gaps_implied == 1);
    CHECK(s.segments_challenged == 4);
    CHECK(s.misses_by_prover[0] == 1);
    CHECK(s.challenges_missed == 0);
    CHECK(net.quarantined(0).empty());
    // Two more such gaps: max_misses (3), quarantined for missed answers.
    net.commit(commit_of(kLife1, 32, 36, 8, 9));
    CHECK(net.quarantined(0).empty());
    s = net.commit(commit_of(kLife1, 44, 48, 11, 12));
    CHECK(s.segment_gaps == 3);
    CHECK(s.misses_by_prover[0] == 3);
    const auto q = net.quarantined(1);
    REQUIRE(q.size() == 1);
    CHECK(q[0] == std::make_pair(uint32_t{0}, quarantine_cause::missed_answers));
  }
}
