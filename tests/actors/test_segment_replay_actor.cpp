// Segment replays on the replay actor (actors/segment_replay_actor.hpp), on
// a 2-thread scheduler as murmur peer runs them. Peer 1 (the verifier under
// test) challenges every segment of peer 0 and replays it on its replay
// actor, whose replay is held at a gate (its replay factory waits until the
// test opens it): a replay that takes as long as the test likes. Meanwhile
// peer 1 must answer a challenge of its own segment (from peer 2, played by
// the test), and its answer to the stats request too; the reply it got
// counts as answered when it came. Once the gate opens the verdict comes
// back and the prover is credited; a prover quarantined while its replay
// was out is not.
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "actors/gossip_actor.hpp"
#include "actors/segment_log.hpp"
#include "actors/segment_messages.hpp"
#include "actors/segment_replay.hpp"
#include "actors/verifier_actor.hpp"
#include "protocols/membership_messages.hpp"
#include "tests/actors/stub_gossip.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:32,relu,linear:10";
constexpr uint64_t K = 3;  // steps per segment

gossip_settings dense() {
  gossip_settings g;
  g.mode = gossip_mode::dense;
  g.threshold = 0;
  return g;
}

train_settings prover_settings() {
  train_settings t;
  t.lr = 0.1;
  t.batch = 16;
  t.total_steps = 100;
  t.data_seed = 100;
  t.init_seed = 9;
  return t;
}

// The frames sent, as (from, to, type), for the test to wait on.
struct wire {
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint32_t, verifier_actor> peers;
  std::vector<std::tuple<uint32_t, uint32_t, message_type>> sent;
  std::vector<wire_frame> to_test;  // frames to peers the test plays (no actor), in order
  std::set<size_t> lost_commits;    // indices (from 0) of peer 0's commitment frames to peer 1 that are lost
  size_t commits_0_to_1 = 0;

  // Until `times` such frames were sent.
  bool wait_for(uint32_t from, uint32_t to, message_type t, std::chrono::seconds limit, size_t times = 1) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, limit, [&] {
      return static_cast<size_t>(std::count(sent.begin(), sent.end(), std::make_tuple(from, to, t))) >= times;
    });
  }
};

transport_actor::behavior_type logged_transport(transport_actor::pointer, std::shared_ptr<wire> net) {
  return {[=](send_atom, uint32_t from, uint32_t to, const wire_frame& w) {
    auto type = peek_type(*w.bytes);
    std::lock_guard<std::mutex> l(net->mu);
    if (type) net->sent.emplace_back(from, to, *type);
    net->cv.notify_all();
    if (from == 0 && to == 1 && type == message_type::segment_commit && net->lost_commits.count(net->commits_0_to_1++))
      return;
    auto it = net->peers.find(to);
    if (it != net->peers.end())
      caf::anon_send(it->second, deliver_atom::value, from, w);
    else
      net->to_test.push_back(w);
  }};
}

// Held shut until open(); tells whether a replay is waiting at it.
struct gate {
  std::promise<void> opened;
  std::shared_future<void> is_open = opened.get_future().share();
  std::atomic<int> waiting{0};
  void open() { opened.set_value(); }
};

struct replay_net {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(200, 10, 8, 11));
  std::vector<int64_t> shard0 = [] {
    std::vector<int64_t> s(64);
    for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<int64_t>(i);
    return s;
  }();
  std::shared_ptr<gate> g = std::make_shared<gate>();
  caf::actor_system_config cfg = [] {
    caf::actor_system_config c;
    c.set("scheduler.max-threads", 2);  // as murmur peer
    return c;
  }();
  caf::actor_system sys{cfg};
  std::shared_ptr<wire> net = std::make_shared<wire>();
  transport_actor transport = sys.spawn(logged_transport, net);
  std::vector<std::shared_ptr<const segment>> segments;  // peer 0's, honest

  // The deadline of every challenge, and peer 1's challenge rate.
  explicit replay_net(double deadline_s = 600, double rate = 1.0) {
    // Peer 0 trains alone (no frames reach it) and closes six segments.
    trainer t(prover_settings(), kModel, data, shard0, data);
    const Sequential& m0 = t.synced_model();
    gossip_state gs(0, {1}, dense(), std::span<const float>(m0.params(), static_cast<size_t>(m0.param_count())));
    segment_log log(K);
    log.start(t, gs);
    for (uint64_t s = 1; s <= 6 * K; ++s) {
      if (t.steps_done() > 0) {
        Sequential& m = *t.model();
        gs.mix(std::span<float>(m.params(), static_cast<size_t>(m.param_count())));
        log.mixed();
      }
      t.step();
      log.stepped(t, gs);
      const Sequential& m = t.synced_model();
      gs.publish(std::span<const float>(m.params(), static_cast<size_t>(m.param_count())), s);
      log.published(s);
      if (s % K == 0) segments.push_back(log.closed_shared());
    }
    for (uint32_t i = 0; i < 2; ++i) {
      verifier_context ctx;
      ctx.self = i;
      ctx.neighbours = i == 0 ? std::vector<uint32_t>{1} : std::vector<uint32_t>{0, 2};
      ctx.neighbours_of = [](uint32_t) { return std::vector<uint32_t>{0, 1, 2}; };
      ctx.data = data;
      // No committed layers: rate 1 over one layer challenges every segment.
      ctx.replay_of = [d = data, sh = shard0, gt = g](uint32_t) {
        ++gt->waiting;
        gt->is_open.wait();
        --gt->waiting;
        return std::make_unique<segment_replay>(prover_settings(), kModel, d, sh, d, 0, std::vector<uint32_t>{1},
                                                dense(), false);
      };
      ctx.step_flops = 1;
      verifier_settings s;
      s.rate = i == 1 ? rate : 0.0;
      s.seed = 42 + i;
      s.segment_steps = K;
      s.keep_segments = 2;
      s.deadline_s = deadline_s;
      auto v = spawn_verifier(sys, std::move(ctx), s, transport, sys.spawn(quiet_gossip));
      std::lock_guard<std::mutex> l(net->mu);
      net->peers[i] = v;
    }
  }
  ~replay_net() {
    if (g->is_open.wait_for(std::chrono::seconds(0)) != std::future_status::ready) g->open();
    for (auto& [id, v] : net->peers) caf::anon_send_exit(v, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
  }

  verifier_stats stats(uint32_t i) {
    caf::scoped_actor self{sys};
    verifier_stats out;
    self->request(net->peers.at(i), std::chrono::seconds(30), stats_atom::value)
        .receive([&](const verifier_stats& s) { out = s; }, [](caf::error&) { FAIL("no stats within 30 s"); });
    return out;
  }
  // Until pred(stats of peer i) holds, up to 60 s.
  template <class Pred>
  bool wait_stats(uint32_t i, Pred pred) {
    for (int k = 0; k < 6000; ++k) {
      if (pred(stats(i))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  void deliver(uint32_t from, uint32_t to, std::vector<std::byte> frame) {
    caf::anon_send(net->peers.at(to), deliver_atom::value, from,
                   wire_frame{std::make_shared<const std::vector<std::byte>>(std::move(frame))});
  }
  // Peer 1 commits a segment of its own, and peer 2 (the test) challenges it.
  void challenge_peer1() {
    caf::anon_send(net->peers.at(1), segcommit_atom::value, segments[1]);
    REQUIRE(net->wait_for(1, 2, message_type::segment_commit, std::chrono::seconds(30)));
    std::vector<std::byte> rq;
    encode_segment_request({2, 1, segments[1]->start->step(), 77}, rq);
    deliver(2, 1, std::move(rq));
  }
};

}  // namespace

TEST_CASE("a verifier actor answers its own segment challenge while a neighbour's replay is still running",
          "[segment][verify][actors]") {
  replay_net n;
  REQUIRE(n.segments.size() == 6);
  caf::anon_send(n.net->peers.at(0), segcommit_atom::value, n.segments[0]);
  // Peer 1 challenges it, peer 0 answers, peer 1's replay starts and waits.
  REQUIRE(n.net->wait_for(0, 1, message_type::segment_reply, std::chrono::seconds(30)));
  REQUIRE(n.wait_stats(1, [&](const verifier_stats&) { return n.g->waiting.load() == 1; }));
  // Answered at arrival, not yet judged.
  auto mid = n.stats(1);
  CHECK(mid.challenges_completed == 1);
  CHECK(mid.replies_checked == 0);
  CHECK(mid.segments_passed == 0);

  n.challenge_peer1();
  CHECK(n.net->wait_for(1, 2, message_type::segment_reply, std::chrono::seconds(30)));
  CHECK(n.g->waiting.load() == 1);  // the replay is still held
  CHECK(n.stats(1).segment_requests_answered == 1);

  n.g->open();
  REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.replies_checked == 1; }));
  const auto end = n.stats(1);
  CHECK(end.segments_passed == 1);
  CHECK(end.segments_failed == 0);
  CHECK(end.ledger.at(0).checks_passed == 1);
  CHECK(end.ledger.at(0).verified_flops == Approx(static_cast<double>(K)));
  CHECK(end.segment_replay_seconds > 0);
  CHECK(end.segment_checks_dropped == 0);
  CHECK(end.challenges_completed == 1);
  CHECK(end.challenges_missed == 0);
}

TEST_CASE("a verdict on a prover quarantined while its replay was out changes nothing", "[segment][verify][actors]") {
  replay_net n;
  caf::anon_send(n.net->peers.at(0), segcommit_atom::value, n.segments[0]);
  REQUIRE(n.wait_stats(1, [&](const verifier_stats&) { return n.g->waiting.load() == 1; }));
  // Peer 0 now states another replay fingerprint: peer 1 quarantines it.
  std::vector<std::byte> notice;
  encode_segment_commit({0, K, 2 * K, {}, {}, {}, replay_fingerprint{1, 2, 3}, 0}, notice);
  n.deliver(0, 1, std::move(notice));
  REQUIRE(n.net->wait_for(1, 0, message_type::segment_commit, std::chrono::seconds(30)));  // its own notice back
  n.g->open();
  REQUIRE(n.wait_stats(1, [&](const verifier_stats& s) { return n.g->waiting.load() == 0 && s.segment_replay_seconds > 0; }));
  const auto end = n.stats(1);
  CHECK(end.replies_checked == 0);
  CHECK(end.segments_passed == 0);
  CHECK(end.ledger.count(0) == 0);
}

TEST_CASE("replies to own challenges past the replay actor's bound wait and are replayed, none dropped",
          "[segment][verify][actors]") {
  replay_net n;
  // Six segments, each challenged and answered while the first replay waits
  // at the gate: it and three more are out on the replay actor, two wait
  // here. None is dropped: a reply dropped unreplayed would be a check a
  // cheater escaped.
  for (size_t i = 0; i < 6; ++i) {
    caf::anon_send(n.net->peers.at(0), segcommit_atom::value, n.segments[i]);
    REQUIRE(n.net->wait_for(0, 1, message_type::segment_reply, std::chrono::seconds(30), i + 1));
  }
  REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.challenges_completed == 6; }));
  const auto mid = n.stats(1);
  CHECK(mid.segment_checks_dropped == 0);
  CHECK(mid.segment_checks_waited == 2);
  CHECK(mid.segment_checks_waiting_max == 2);
  CHECK(mid.segment_commits_refused == 0);  // an honest prover, however its replays lag
  CHECK(n.g->waiting.load() == 1);
  n.g->open();
  REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.replies_checked == 6; }));
  const auto end = n.stats(1);
  CHECK(end.segments_passed == 6);
  CHECK(end.ledger.at(0).checks_passed == 6);
  CHECK(end.challenges_missed == 0);
}

namespace {

// Peer 2, played by the test: a commitment to segment i of its chain (the
// digests chain: each starts where the one before ended).
std::vector<std::byte> flood_commit(uint64_t i) {
  segment_commit_msg c{2, i * K, (i + 1) * K, digest{}, digest{}, digest{}};
  c.start[0] = static_cast<uint8_t>(i);
  c.end[0] = static_cast<uint8_t>(i + 1);
  std::vector<std::byte> f;
  encode_segment_commit(c, f);
  return f;
}

}  // namespace

TEST_CASE("a flooding prover: commitments past its open challenges or an honest pace are refused",
          "[segment][verify][actors]") {
  SECTION("its challenges open are bounded (keep_segments + 4), an honest neighbour's are not touched") {
    replay_net n;
    // Peer 1 has committed one segment of its own (its progress: K steps).
    caf::anon_send(n.net->peers.at(1), segcommit_atom::value, n.segments[0]);
    REQUIRE(n.net->wait_for(1, 2, message_type::segment_commit, std::chrono::seconds(30)));
    // Peer 2 commits 30 segments at once and answers none of the challenges.
    for (uint64_t i = 0; i < 30; ++i) n.deliver(2, 1, flood_commit(i));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_commits_received == 30; }));
    const auto s = n.stats(1);
    CHECK(s.segments_challenged == 6);  // keep_segments (2) + 4 open: then refused
    CHECK(s.segment_commits_refused == 24);
    // An honest neighbour meanwhile: all its segments challenged and checked.
    n.g->open();
    for (size_t i = 0; i < 6; ++i) {  // each answered before the next (it keeps 2)
      caf::anon_send(n.net->peers.at(0), segcommit_atom::value, n.segments[i]);
      REQUIRE(n.net->wait_for(0, 1, message_type::segment_reply, std::chrono::seconds(30), i + 1));
    }
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.ledger.count(0) && s.ledger.at(0).checks_passed == 6; }));
    CHECK(n.stats(1).segment_commits_refused == 24);
  }
  SECTION("its commitments may not run ahead of this peer's progress") {
    replay_net n(600, 0.0);  // no challenges: only the pace bounds it
    caf::anon_send(n.net->peers.at(1), segcommit_atom::value, n.segments[0]);
    REQUIRE(n.net->wait_for(1, 2, message_type::segment_commit, std::chrono::seconds(30)));
    for (uint64_t i = 0; i < 30; ++i) n.deliver(2, 1, flood_commit(i));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_commits_received == 30; }));
    // Its first ended at step K, this peer had made no progress since: up
    // to (keep_segments + 4) segments more, ending at 7K, are held.
    CHECK(n.stats(1).segment_commits_refused == 23);
    // This peer moves on 2 segments (to 3K): 4 x 2K more steps are allowed.
    caf::anon_send(n.net->peers.at(1), segcommit_atom::value, n.segments[1]);
    caf::anon_send(n.net->peers.at(1), segcommit_atom::value, n.segments[2]);
    // Frames: the first, then each with its predecessor's copy (1 + 2 + 2).
    REQUIRE(n.net->wait_for(1, 2, message_type::segment_commit, std::chrono::seconds(30), 5));
    for (uint64_t i = 7; i < 30; ++i) n.deliver(2, 1, flood_commit(i));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_commits_received == 53; }));
    CHECK(n.stats(1).segment_commits_refused == 23 + 23 - 8);
  }
  SECTION("a commitment that does not span one segment is refused") {
    replay_net n(600, 0.0);
    segment_commit_msg c{2, 1, 2 * K + 1, digest{}, digest{}, digest{}};
    std::vector<std::byte> f;
    encode_segment_commit(c, f);
    n.deliver(2, 1, std::move(f));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_commits_received == 1; }));
    CHECK(n.stats(1).segment_commits_refused == 1);
  }
}

namespace {

// Peer 1's challenge of peer 2's segment 0 (the frame it sent to the test).
segment_request_msg request_to_peer2(replay_net& n) {
  std::lock_guard<std::mutex> l(n.net->mu);
  for (const auto& w : n.net->to_test) {
    segment_request_msg rq;
    if (decode_segment_request(*w.bytes, 1u << 20, rq) == frame_error::none && rq.prover == 2 && rq.start_step == 0)
      return rq;
  }
  FAIL("no challenge of peer 2's first segment");
  return {};
}

std::vector<std::byte> unavailable(const segment_request_msg& rq, uint64_t last_end) {
  std::vector<std::byte> f;
  encode_segment_unavailable({2, rq.start_step, rq.nonce, last_end}, f);
  return f;
}

}  // namespace

TEST_CASE("an \"unavailable\" answer is excused exactly when the commitments it was dropped for arrived",
          "[segment][verify][actors]") {
  SECTION("keep_segments newer commitments reached the verifier: excused, no miss") {
    replay_net n(2.0);
    n.deliver(2, 1, flood_commit(0));
    REQUIRE(n.net->wait_for(1, 2, message_type::segment_request, std::chrono::seconds(30)));
    const auto rq = request_to_peer2(n);
    // The prover committed two more (keep_segments = 2), then the request
    // reached it: it had dropped segment 0, as promised.
    n.deliver(2, 1, flood_commit(1));
    n.deliver(2, 1, flood_commit(2));
    n.deliver(2, 1, unavailable(rq, 3 * K));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_unavailable_answers == 1; }));
    const auto s = n.stats(1);
    CHECK(s.challenges_expired == 1);
    CHECK(s.challenges_missed == 0);
  }
  SECTION("fewer arrived by the deadline (it dropped the segment early, or claims it did): a miss") {
    replay_net n(1.0);
    n.deliver(2, 1, flood_commit(0));
    REQUIRE(n.net->wait_for(1, 2, message_type::segment_request, std::chrono::seconds(30)));
    const auto rq = request_to_peer2(n);
    n.deliver(2, 1, flood_commit(1));
    n.deliver(2, 1, unavailable(rq, 3 * K));  // states a commitment that never came
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_unavailable_answers == 1; }));
    CHECK(n.stats(1).challenges_expired == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // past the deadline
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.challenges_missed >= 1; }));
    const auto s = n.stats(1);
    CHECK(s.misses_by_prover.at(2) >= 1);
    CHECK(s.challenges_expired == 0);
  }
  SECTION("the commitments arriving after the answer, within the deadline, excuse it then") {
    replay_net n(2.0);
    n.deliver(2, 1, flood_commit(0));
    REQUIRE(n.net->wait_for(1, 2, message_type::segment_request, std::chrono::seconds(30)));
    const auto rq = request_to_peer2(n);
    n.deliver(2, 1, unavailable(rq, 3 * K));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_unavailable_answers == 1; }));
    n.deliver(2, 1, flood_commit(1));
    n.deliver(2, 1, flood_commit(2));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.segment_commits_received == 3; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));
    REQUIRE(n.wait_stats(1, [](const verifier_stats& s) { return s.challenges_expired == 1; }));
    CHECK(n.stats(1).misses_by_prover.count(2) == 0);
  }
}

TEST_CASE("a commitment lost on the way is taken from the copy sent with the next one",
          "[segment][verify][actors][gap]") {
  // Peer 0's frames to peer 1: segment 0; then for each next segment the
  // previous one's copy and the segment (indices 1, 2; 3, 4; 5, 6).
  auto run = [](std::set<size_t> lost, size_t segments, uint64_t received) {
    replay_net n(600, 0.0);  // peer 1 challenges nothing of its own accord
    {
      std::lock_guard<std::mutex> l(n.net->mu);
      n.net->lost_commits = std::move(lost);
    }
    for (size_t i = 0; i < segments; ++i) caf::anon_send(n.net->peers.at(0), segcommit_atom::value, n.segments[i]);
    REQUIRE(n.net->wait_for(0, 1, message_type::segment_commit, std::chrono::seconds(30), 2 * segments - 1));
    REQUIRE(n.wait_stats(1, [&](const verifier_stats& s) { return s.segment_commits_received == received; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // nothing more on its way
    return n.stats(1);
  };
  SECTION("nothing lost: every copy finds its original") {
    const auto s = run({}, 4, 4);
    CHECK(s.segment_commits_repeated == 3);
    CHECK(s.segment_gaps_implied == 0);
    CHECK(s.segment_gaps == 0);
  }
  SECTION("one commitment lost: its copy stands in, no gap") {
    const auto s = run({2}, 4, 4);
    CHECK(s.segment_commits_repeated == 2);
    CHECK(s.segment_gaps_implied == 0);
    CHECK(s.segment_gaps == 0);
    CHECK(s.challenges_missed == 0);
  }
  SECTION("a commitment and its copy lost: one segment implied (and challenged), no miss") {
    const auto s = run({2, 3}, 4, 3);
    CHECK(s.segment_gaps_implied == 1);
    CHECK(s.segments_challenged == 1);
    CHECK(s.segment_gaps == 0);
  }
  SECTION("two commitments and their copies lost: a longer gap, one miss") {
    const auto s = run({2, 3, 4, 5}, 5, 3);
    CHECK(s.segment_gaps == 1);
  }
}
