// Segment commitments (actors/segment_log.hpp) and their replay
// (actors/segment_replay.hpp) in a small simulated run: four peers on a
// ring train with dropout and augmentation and gossip (grid threshold
// gossip, dense and delta), stepped in the order the shard actor uses (mix, step,
// publish, deliver). Peer 0 is the prover: it commits per step as today
// (step_transcript_log) and per segment. For an honest prover every closed
// segment replays to its committed end, and every regenerated step
// transcript hashes to the per-step commitment of the original run. A
// compute cheat in one step of a segment, wherever it falls, makes the
// replay's end differ; bisection names that step, and its honest transcript
// differs from the one committed. Relayed evidence (segment_verifier) is
// held to the receiving verifier's own commitment.
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>

#include "actors/segment_log.hpp"
#include "actors/segment_replay.hpp"
#include "actors/segment_verifier.hpp"
#include "actors/transcript_check.hpp"

using namespace murmur;

namespace {

const std::string kModel = "flatten,linear:32,relu,dropout:0.2,linear:10";
constexpr uint64_t K = 6;      // steps per segment
constexpr uint32_t P = 4;      // peers on the ring
constexpr int64_t shard_n = 80;  // 5 batches of 16: segments cross epochs

gossip_settings grid_gossip() {
  gossip_settings g;
  g.mode = gossip_mode::threshold;
  g.threshold = 0.01;
  g.grid = true;
  g.gamma = 0.5;
  return g;
}

gossip_settings dense_gossip() {
  gossip_settings g;
  g.mode = gossip_mode::dense;
  g.threshold = 0;
  g.gamma = 0.5;
  return g;
}

std::vector<uint32_t> ring_neighbours(uint32_t p) { return {(p + P - 1) % P, (p + 1) % P}; }

struct peer_node {
  std::unique_ptr<trainer> t;
  std::unique_ptr<gossip_state> g;
  std::map<uint64_t, transcript_commit> commits;  // the prover's per-step commitments
  std::unique_ptr<segment_log> seg;               // the prover's segments
  std::unique_ptr<segment_log> seg_stored;        // the same, boundaries in a boundary_store (when made)
  std::unique_ptr<segment_log> seg_chunked;       // the same, its records written in 100-byte chunks
  template <class F>
  void each_log(F f) {
    if (seg) f(*seg);
    if (seg_stored) f(*seg_stored);
    if (seg_chunked) f(*seg_chunked);
  }
};

struct ring_run {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(P * shard_n, 10, 8, 11));
  gossip_settings gs;
  std::vector<peer_node> peers;

  std::vector<int64_t> shard(uint32_t p) const {
    std::vector<int64_t> s(shard_n);
    std::iota(s.begin(), s.end(), static_cast<int64_t>(p) * shard_n);
    return s;
  }
  static train_settings settings(uint32_t p) {
    train_settings s;
    s.lr = 0.1;
    s.momentum = 0.9;
    s.batch = 16;
    s.total_steps = 40;
    s.data_seed = 100 + p;
    s.init_seed = 9;
    s.augment.flip = true;
    s.augment.crop_padding = 1;
    s.augment.seed = 3;
    return s;
  }

  // store: prover 0 also keeps a log whose boundaries go to it.
  // chunk_store: and one whose records go to it in 100-byte chunks.
  ring_run(const gossip_settings& g, const cheat_settings& cheat, std::shared_ptr<boundary_store> store = nullptr,
           std::shared_ptr<boundary_store> chunk_store = nullptr)
      : gs(g) {
    for (uint32_t p = 0; p < P; ++p) {
      peer_node n;
      n.t = std::make_unique<trainer>(settings(p), kModel, data, shard(p), data);
      const Sequential& m = n.t->synced_model();
      n.g = std::make_unique<gossip_state>(p, ring_neighbours(p), gs,
                                           std::span<const float>(m.params(), static_cast<size_t>(m.param_count())));
      if (p == 0) {
        // A replay cheat trains on peer 1's batches.
        n.t->enable_transcripts(std::make_shared<step_transcript_log>(0, *n.t->model(), 2), cheat, shard(1), 77);
        n.seg = std::make_unique<segment_log>(K, true);
        n.seg->start(*n.t, *n.g);
        if (store) {
          n.seg_stored = std::make_unique<segment_log>(K, true, store);
          n.seg_stored->start(*n.t, *n.g);
        }
        if (chunk_store) {
          n.seg_chunked = std::make_unique<segment_log>(K, true, chunk_store, 100);
          n.seg_chunked->start(*n.t, *n.g);
        }
      }
      peers.push_back(std::move(n));
    }
  }

  // One cycle of every peer, as the shard and gossip actors run it.
  void cycle() {
    for (uint32_t p = 0; p < P; ++p) {
      peer_node& n = peers[p];
      if (n.t->steps_done() > 0) {
        Sequential& m = *n.t->model();
        n.g->mix(std::span<float>(m.params(), static_cast<size_t>(m.param_count())));
        n.each_log([](segment_log& l) { l.mixed(); });
      }
      n.t->step();
      const uint64_t step = n.t->steps_done();
      if (n.seg) {
        n.commits[step] = *n.t->last_commit();
        n.each_log([&](segment_log& l) { l.stepped(*n.t, *n.g); });
      }
      const Sequential& m = n.t->synced_model();
      auto f = n.g->publish(std::span<const float>(m.params(), static_cast<size_t>(m.param_count())), step);
      n.each_log([&](segment_log& l) { l.published(step); });
      const std::vector<std::byte> frame(f.begin(), f.end());
      if (frame.empty()) continue;
      for (uint32_t q : n.g->neighbours()) {
        peer_node& to = peers[q];
        if (to.g->receive(p, frame)) to.each_log([&](segment_log& l) { l.received(p, frame); });
        n.g->on_sent();
        n.each_log([](segment_log& l) { l.sent(); });
      }
    }
  }

  segment_replay replay() const {
    return segment_replay(settings(0), kModel, data, shard(0), data, 0, ring_neighbours(0), gs, true);
  }
  // What a verifier's segment_checker builds its replays of prover 0 with.
  auto replay_factory(bool transcripts = true) const {
    return [this, transcripts](uint32_t) {
      return std::make_unique<segment_replay>(settings(0), kModel, data, shard(0), data, 0, ring_neighbours(0), gs,
                                              transcripts);
    };
  }
};

// Prover 0 perturbs one step of segment 1 (steps K+1 .. 2K); segment 0 is honest.
cheat_settings cheats_in_segment_1() {
  cheat_settings cheat;
  cheat.kind = compute_cheat::perturb;
  cheat.eps = 1e-2;
  cheat.start_step = K + 3;
  cheat.every = 1000;
  return cheat;
}

size_t count(const segment_records& r, segment_event::kind_t k) {
  size_t n = 0;
  for (const auto& e : r.events) n += e.kind == k;
  return n;
}

}  // namespace

gossip_settings delta_gossip() {
  gossip_settings g;
  g.mode = gossip_mode::delta;
  g.threshold = 0.01;
  return g;
}

TEST_CASE("an honest peer's segments replay to their committed ends, transcripts included", "[segment]") {
  const int mode = GENERATE(0, 1, 2);
  INFO((mode == 0 ? "grid threshold gossip" : mode == 1 ? "dense gossip" : "delta gossip"));
  ring_run run(mode == 0 ? grid_gossip() : mode == 1 ? dense_gossip() : delta_gossip(), {});
  segment_replay replay = run.replay();
  peer_node& prover = run.peers[0];
  int checked = 0;
  for (uint64_t s = 1; s <= 3 * K; ++s) {
    run.cycle();
    if (s % K != 0) continue;
    const segment* seg = prover.seg->closed();
    REQUIRE(seg != nullptr);
    REQUIRE(seg->end_step == s);
    const auto& b = prover.seg->boundaries();
    REQUIRE(b.size() == s / K + 1);
    CHECK(seg->start->d == b[b.size() - 2].second);
    CHECK(seg->end == b.back().second);
    CHECK(prover.seg->open().start->d == seg->end);
    // Gossip reached the prover in this segment, so the replay must apply it.
    CHECK(count(seg->records, segment_event::received) >= K);
    CHECK(count(seg->records, segment_event::mixed) >= K - 1);
    CHECK(count(seg->records, segment_event::stepped) == K);

    const auto r = replay.run(*seg, {true, 0});
    CHECK(r.first_step == s - K + 1);
    CHECK(r.last_step == s);
    CHECK(r.end == seg->end);
    CHECK(r.step_digests == seg->step_digests);
    CHECK(first_differing_step(r.first_step, seg->step_digests, r.step_digests) == 0);
    REQUIRE(r.transcripts.size() == K);
    for (uint64_t i = 0; i < K; ++i) {
      INFO("step " << r.first_step + i);
      CHECK(r.transcripts[i] == prover.commits.at(r.first_step + i));
    }
    // Any step's transcript alone: replay up to it, its tensors are there.
    const uint64_t mid = s - K / 2;
    const auto upto = replay.run(*seg, {false, mid});
    CHECK(upto.last_step == mid);
    CHECK(upto.transcripts.back() == prover.commits.at(mid));
    // Its tensors pass today's checks (Freivalds and the element-wise ones)
    // against the commitment of the original run.
    transcript_checker checker(replay.transcript_log().layers(), run.data, 8, ring_run::settings(0).augment);
    const auto shard = run.shard(0);  // sorted
    Rng rng(5);
    for (uint16_t l = 0; l < replay.transcript_log().layers().size(); ++l) {
      tensor_reply t;
      REQUIRE(replay.transcript_log().reply(mid, l, 1, t));
      CHECK(t.step == mid);
      CHECK(checker.check(prover.commits.at(mid), t, shard, rng) == check_outcome::passed);
    }

    // The records matter: without the frames the prover received, the same
    // steps end elsewhere.
    segment_records no_frames;
    for (const auto& e : seg->records.events)
      if (e.kind != segment_event::received) no_frames.events.push_back(e);
    CHECK(replay.run(*seg->start, no_frames, {}).end != seg->end);
    ++checked;
  }
  CHECK(checked == 3);
}

TEST_CASE("an honest peer's segments replay with robust mixing, clipped_gossip's reference distance included",
          "[segment]") {
  const robust_rule rule =
      GENERATE(robust_rule::clipped_gossip, robust_rule::centered_clip, robust_rule::median, robust_rule::trimmed_mean);
  INFO("robust rule " << static_cast<int>(rule));
  gossip_settings g = grid_gossip();
  g.robust.rule = rule;
  ring_run run(g, {});
  segment_replay replay = run.replay();
  peer_node& prover = run.peers[0];
  int checked = 0;
  for (uint64_t s = 1; s <= 3 * K; ++s) {
    run.cycle();
    if (s % K != 0) continue;
    const segment* seg = prover.seg->closed();
    REQUIRE(seg != nullptr);
    CHECK(count(seg->records, segment_event::mixed) >= K - 1);
    const auto r = replay.run(*seg, {false, 0});
    CHECK(r.end == seg->end);
    if (rule == robust_rule::clipped_gossip && s > K) {
      // By the second boundary the rule has a reference distance, and the
      // replay needs it: started without it, the same steps end elsewhere.
      REQUIRE(seg->start->gossip.robust_reference > 0);
      segment_boundary forgot = *seg->start;
      forgot.gossip.robust_reference = 0;
      CHECK(replay.run(forgot, seg->records, {}).end != seg->end);
    }
    ++checked;
  }
  CHECK(checked == 3);
}

TEST_CASE("a compute cheat in one step of a segment is caught by its replay and bisected to that step", "[segment]") {
  const auto kind = GENERATE(compute_cheat::perturb, compute_cheat::half_batch, compute_cheat::skip_product,
                             compute_cheat::replay);
  // Where the cheating step falls in segment 1 (steps K+1 .. 2K): mid-segment
  // once; right after every boundary (a cheater that guesses the boundary
  // steps are the committed ones and cheats only elsewhere); at the
  // boundary step itself.
  const int where = GENERATE(0, 1, 2);
  cheat_settings cheat;
  cheat.kind = kind;
  cheat.eps = 1e-2;
  cheat.start_step = where == 0 ? K + 3 : where == 1 ? K + 1 : 2 * K;
  cheat.every = where == 1 ? K : 1000;
  const uint64_t cheat_step = cheat.start_step;
  INFO("cheat " << static_cast<int>(kind) << " at step " << cheat_step << " every " << cheat.every);
  const bool dense = where == 2;
  ring_run run(dense ? dense_gossip() : grid_gossip(), cheat);
  segment_replay replay = run.replay();
  peer_node& prover = run.peers[0];
  for (uint64_t s = 1; s <= K; ++s) run.cycle();
  // Segment 0 is honest: it replays to its end (no honest segment is blamed).
  {
    const segment* seg = prover.seg->closed();
    REQUIRE(seg != nullptr);
    CHECK(replay.run(*seg, {}).end == seg->end);
  }
  for (uint64_t s = K + 1; s <= 2 * K; ++s) run.cycle();
  const segment* seg = prover.seg->closed();
  REQUIRE(seg != nullptr);
  REQUIRE(seg->end_step == 2 * K);
  const auto r = replay.run(*seg, {true, 0});
  CHECK(r.end != seg->end);
  // The prover's per-step digests (its answers to a bisection) against the replay's.
  REQUIRE(seg->step_digests.size() == K);
  CHECK(first_differing_step(r.first_step, seg->step_digests, r.step_digests) == cheat_step);
  for (uint64_t st = r.first_step; st <= r.last_step; ++st) {
    INFO("step " << st);
    const transcript_commit& regenerated = r.transcripts[st - r.first_step];
    if (st < cheat_step) CHECK(regenerated == prover.commits.at(st));
    if (st == cheat_step) {
      CHECK(regenerated != prover.commits.at(st));
      // The first committed layer is the one cheated on; its weight and
      // input are the honest state's, so they still agree.
      CHECK(regenerated.layers[0].d[static_cast<size_t>(committed::weight)] ==
            prover.commits.at(st).layers[0].d[static_cast<size_t>(committed::weight)]);
      CHECK(regenerated.layers[0].d[static_cast<size_t>(committed::weight_grad)] !=
            prover.commits.at(st).layers[0].d[static_cast<size_t>(committed::weight_grad)]);
    }
  }
}

TEST_CASE("bisection finds the first differing step in log2 comparisons", "[segment]") {
  std::vector<digest> a(13), b(13);
  for (size_t i = 0; i < a.size(); ++i) a[i][0] = b[i][0] = static_cast<uint8_t>(i);
  CHECK(first_differing_step(50, a, b) == 0);
  for (size_t from : {0u, 1u, 6u, 12u}) {
    auto c = b;
    for (size_t i = from; i < c.size(); ++i) c[i][1] = 1;
    CHECK(first_differing_step(50, a, c) == 50 + from);
  }
  CHECK_THROWS_AS(first_differing_step(1, a, std::span<const digest>(b).first(3)), std::invalid_argument);
}

TEST_CASE("a segment log refuses what it cannot replay", "[segment]") {
  ring_run run(grid_gossip(), {});
  peer_node& p = run.peers[1];
  CHECK_THROWS_AS(segment_log(0), std::invalid_argument);
  segment_log log(K);
  CHECK_THROWS_AS(log.stepped(*p.t, *p.g), std::logic_error);
  run.cycle();  // peer 1 at step 1: not a boundary; a first segment may start there
  CHECK_NOTHROW(log.start(*p.t, *p.g));
  for (uint64_t s = 2; s <= K; ++s) run.cycle();
  log.start(*p.t, *p.g);
  p.t->set_step(p.t->steps_done() + 3);  // a state install's step jump
  CHECK_THROWS_WITH(log.stepped(*p.t, *p.g), Catch::Contains("is not recorded"));

  // Records a replay cannot follow: a frame applied twice is stale the second time.
  const segment* seg = run.peers[0].seg->closed();
  REQUIRE(seg != nullptr);
  segment_records twice = seg->records;
  for (size_t i = 0; i < twice.events.size(); ++i)
    if (twice.events[i].kind == segment_event::received) {
      twice.events.insert(twice.events.begin() + static_cast<std::ptrdiff_t>(i), twice.events[i]);
      break;
    }
  segment_replay replay = run.replay();
  CHECK_THROWS_WITH(replay.run(*seg->start, twice, {}), Catch::Contains("is rejected (stale)"));
  CHECK(replay.run(*seg, {}).end == seg->end);

  gossip_settings detecting = grid_gossip();
  detecting.detect.enabled = true;
  const Sequential& m = p.t->synced_model();
  gossip_state g(1, ring_neighbours(1), detecting, std::span<const float>(m.params(), static_cast<size_t>(m.param_count())));
  segment_log other(K);
  CHECK_THROWS_AS(other.start(*run.peers[0].t, g), std::invalid_argument);
}

TEST_CASE("neighbour lists given mid-segment are recorded and replayed; a log restarted off a boundary closes at the next",
          "[segment]") {
  // As on a LAN: the prover opens its log afresh after two steps (its state
  // transfer), then peer 3 leaves, comes back with a new incarnation, and the
  // membership repeats an unchanged list (which still resets the frames in
  // flight).
  ring_run run(grid_gossip(), {});
  segment_replay replay = run.replay();
  peer_node& prover = run.peers[0];
  auto give = [&](std::vector<uint32_t> ids, std::vector<uint64_t> inc) {
    prover.g->set_neighbours(ids, inc);
    prover.seg->neighbours(ids, inc);
  };
  run.cycle();
  run.cycle();
  prover.seg->start(*prover.t, *prover.g);
  int checked = 0, with_lists = 0;
  for (uint64_t s = 3; s <= 3 * K; ++s) {
    if (s == K + 2) give({1}, {0});
    if (s == K + 4) give({1, 3}, {0, 7});
    if (s == 2 * K + 2) give({1, 3}, {0, 7});
    run.cycle();
    if (s % K != 0) continue;
    const segment* seg = prover.seg->closed();
    REQUIRE(seg != nullptr);
    CHECK(seg->start->step() == (s == K ? 2 : s - K));
    CHECK(replay.run(*seg, {}).end == seg->end);
    with_lists += count(seg->records, segment_event::neighbours) > 0;
    if (s == 2 * K) {
      // Peer 3 left and came back in this segment: without the lists the
      // same records end elsewhere, or do not replay. (The unchanged list of
      // the next segment changes nothing here: this run has no frames in
      // flight between cycles.)
      segment_records without;
      for (const auto& e : seg->records.events)
        if (e.kind != segment_event::neighbours) without.events.push_back(e);
      without.frames = seg->records.frames;
      bool differs = true;
      try {
        differs = replay.run(*seg->start, without, {}).end != seg->end;
      } catch (const std::runtime_error&) {
      }
      CHECK(differs);
    }
    ++checked;
  }
  CHECK(checked == 3);
  CHECK(with_lists == 2);
}

TEST_CASE("relayed segment evidence counts only if it hashes to the verifier's own commitment and its replay fails",
          "[segment][evidence]") {
  ring_run run(grid_gossip(), cheats_in_segment_1());
  auto replay_of = run.replay_factory();
  peer_node& prover = run.peers[0];
  segment_verifier as_prover(0, 0, 2);
  // Peer 2 holds the prover's own commitments; peer 3 holds none; peer 1
  // was sent another commitment of segment 1 (the prover equivocated).
  segment_verifier holder(2, 0, 2), stranger(3, 0, 2), equivocated(1, 0, 2);
  // The check each evidence makes (segment_check.hpp), run here rather than on a replay actor.
  segment_checker checker(replay_of, 1);
  auto on_evidence = [&checker](segment_verifier& v, segment_reply_msg r) {
    auto job = v.on_evidence(std::move(r));
    return job ? checker.run(*job) : segment_verdict{};
  };
  Rng rng(5);
  for (int seg = 0; seg < 2; ++seg) {
    for (uint64_t s = 1; s <= K; ++s) run.cycle();
    const auto c = as_prover.commit(prover.seg->closed_shared());
    CHECK(c.records_bytes == prover.seg->closed()->records.bytes());  // what a verifier sizes its deadline by
    CHECK(c.fingerprint == replay_fingerprint{});                     // the verifier actor states its own
    const auto held = holder.on_commit(0, c, rng, 1);
    CHECK(held.kind == segment_verifier::commit_outcome::held);
    CHECK(!held.challenge);  // q = 0: never challenges on its own
    auto other = c;
    if (seg == 1) other.records[0] ^= 1;
    const auto equivocal = equivocated.on_commit(0, other, rng, 1);
    CHECK(equivocal.kind == segment_verifier::commit_outcome::held);
    CHECK(!equivocal.challenge);
  }
  auto reply_of = [&](uint64_t start) {
    std::vector<std::byte> f;
    REQUIRE(as_prover.answer({1, 0, start, 7}, f));
    segment_reply_msg r;
    REQUIRE(decode_segment_reply(f, size_t{64} << 20, r) == frame_error::none);
    return r;
  };
  const auto honest = reply_of(0), cheated = reply_of(K);
  // The cheating segment, relayed as it was sent: confirmed by the holder's own replay.
  const auto v = on_evidence(holder, cheated);
  CHECK(v.kind == segment_verifier::verdict::failed);
  CHECK(v.prover == 0);
  CHECK(v.start_step == K);
  // Honest work relayed as evidence: replays to its end, a false accusation.
  CHECK(on_evidence(holder, honest).kind == segment_verifier::verdict::passed);
  // Tampered records, or a tampered start state: they do not hash to the
  // holder's commitment, whatever the replay would say.
  auto forged = cheated;
  REQUIRE(!forged.records.frames.empty());
  forged.records.frames[forged.records.frames.size() / 2] ^= std::byte{1};
  CHECK(on_evidence(holder, forged).kind == segment_verifier::verdict::mismatch);
  auto forged_start = honest;
  forged_start.start.trainer.params[0] += 1;
  CHECK(on_evidence(holder, forged_start).kind == segment_verifier::verdict::mismatch);
  // No commitment held: nothing to hold it to.
  CHECK(on_evidence(stranger, cheated).kind == segment_verifier::verdict::none);
  // Equivocation: the reply fits the commitment the accuser got, not this one's.
  CHECK(on_evidence(equivocated, cheated).kind == segment_verifier::verdict::mismatch);
  CHECK(on_evidence(equivocated, honest).kind == segment_verifier::verdict::passed);
}

TEST_CASE("a checker that keeps start states in a spill store during replays gives the same verdicts and hands jobs back whole",
          "[segment][store][spill]") {
  ring_run run(grid_gossip(), cheats_in_segment_1());
  auto replay_of = run.replay_factory();
  auto spill = std::make_shared<boundary_store>(std::filesystem::temp_directory_path().string());
  segment_checker in_memory(replay_of, 1), spilling(replay_of, 1, spill);
  peer_node& prover = run.peers[0];
  segment_verifier as_prover(0, 0, 2), verifier(1, 1, 2);  // q = 1: every segment challenged
  Rng rng(5);
  for (int seg = 0; seg < 2; ++seg) {
    for (uint64_t s = 1; s <= K; ++s) run.cycle();
    const auto outcome = verifier.on_commit(0, as_prover.commit(prover.seg->closed_shared()), rng, 10 + seg);
    REQUIRE(outcome.challenge);
    std::vector<std::byte> f;
    REQUIRE(as_prover.answer(*outcome.challenge, f));
    segment_reply_msg r;
    REQUIRE(decode_segment_reply(f, size_t{64} << 20, r) == frame_error::none);
    auto job = verifier.on_reply(0, std::move(r));
    REQUIRE(job);
    const segment_check original = *job;
    for (auto give_back : {segment_check::never, segment_check::when_failed, segment_check::always}) {
      INFO("segment " << seg << ", give_back " << int(give_back));
      segment_check a = original, b = original;
      a.give_back = b.give_back = give_back;
      const auto want = in_memory.run(a);
      const auto got = spilling.run(b);
      CHECK(want.kind == (seg == 0 ? segment_verdict::passed : segment_verdict::failed));
      CHECK(got.kind == want.kind);
      CHECK(got.first_bad_step == want.first_bad_step);
      CHECK(got.why == want.why);
      CHECK(got.flops == want.flops);
      CHECK(b.give_back == give_back);
      CHECK(spill->slots_in_use() == 0);  // nothing left in the store once a check is done
      // A job to hand back is as it came; one to drop has let its start state go.
      if (give_back == segment_check::always || (give_back == segment_check::when_failed && seg == 1))
        CHECK(b.reply == original.reply);
      else if (seg == 0)
        CHECK(b.reply.start.trainer.params.empty());
    }
    if (seg == 1) CHECK(in_memory.run(*job).first_bad_step == K + 3);
  }
  CHECK(spill->slots() >= 1);  // the start states went through it
}

TEST_CASE("a withheld commitment: its segment is challenged as implied, an honest one passes, a cheated one fails",
          "[segment][gap]") {
  // The prover withholds the commitment of segment 1 (steps K+1 .. 2K) from
  // the verifier; a cheater cheats in that segment only.
  const bool cheats = GENERATE(false, true);
  INFO((cheats ? "a cheater that withholds the segment it cheated in" : "an honest prover, one commitment lost"));
  ring_run run(grid_gossip(), cheats ? cheats_in_segment_1() : cheat_settings{});
  auto replay_of = run.replay_factory();
  peer_node& prover = run.peers[0];
  segment_verifier as_prover(0, 0, 3);
  segment_verifier verifier(1, 0, 3);  // q = 0: only an implied commitment is challenged
  segment_checker checker(replay_of, 1);
  Rng rng(5);
  segment_verifier::commit_outcome last;
  for (int seg = 0; seg < 3; ++seg) {
    for (uint64_t s = 1; s <= K; ++s) run.cycle();
    const auto c = as_prover.commit(prover.seg->closed_shared());
    if (seg == 1) continue;  // withheld (or lost)
    last = verifier.on_commit(0, c, rng, 10 + 2 * static_cast<uint64_t>(seg));
    CHECK(last.kind == segment_verifier::commit_outcome::held);
    CHECK(!last.challenge);
  }
  // The segment from step K is implied by its neighbours and always challenged.
  REQUIRE(last.implied_challenge);
  CHECK(last.implied_challenge->start_step == K);
  CHECK(last.implied_challenge->nonce == 14);
  CHECK(last.gap_to == 0);
  const auto* h = verifier.held(0, K);
  REQUIRE(h != nullptr);
  CHECK(h->implied);
  CHECK(h->challenged);
  CHECK(h->c.end_step == 2 * K);
  std::vector<std::byte> f;
  REQUIRE(as_prover.answer(*last.implied_challenge, f));
  segment_reply_msg r;
  REQUIRE(decode_segment_reply(f, size_t{64} << 20, r) == frame_error::none);
  // Relayed evidence is never held to an implied commitment (its records are not bound).
  CHECK(!verifier.on_evidence(segment_reply_msg(r)));
  auto job = verifier.on_reply(0, std::move(r));
  REQUIRE(job);
  CHECK(job->implied);
  const auto v = checker.run(*job);
  if (cheats) {
    CHECK(v.kind == segment_verdict::failed);
    CHECK(v.start_step == K);
    CHECK_THAT(v.why, Catch::Contains("another state than the committed one"));
  } else {
    CHECK(v.kind == segment_verdict::passed);
  }
  // The records are not bound, but the boundaries are: another start state fails.
  REQUIRE(as_prover.answer({1, 0, K, 15}, f));
  segment_reply_msg other;
  REQUIRE(decode_segment_reply(f, size_t{64} << 20, other) == frame_error::none);
  other.start.trainer.params[0] += 1;
  segment_check other_job{h->c, std::move(other), false, true};
  CHECK(checker.run(other_job).kind == segment_verdict::failed);
}

TEST_CASE("a prover whose boundaries are in a boundary store commits and answers exactly as one that keeps them in memory",
          "[segment][store]") {
  auto store = std::make_shared<boundary_store>(std::filesystem::temp_directory_path().string());
  ring_run run(grid_gossip(), {}, store);
  auto replay_of = run.replay_factory(false);
  peer_node& prover = run.peers[0];
  segment_verifier in_memory(0, 0, 2), on_disk(0, 0, 2), verifier(1, 1, 2);
  segment_checker checker(replay_of, 1);  // the replay actor's job, run here
  Rng rng(5);
  constexpr int segments = 6;  // 36 of the run's 40 steps
  for (int seg = 0; seg < segments; ++seg) {
    for (uint64_t s = 1; s <= K; ++s) run.cycle();
    REQUIRE(prover.seg_stored->closed() != nullptr);
    CHECK(prover.seg_stored->closed()->start == nullptr);  // not in memory
    CHECK(prover.seg_stored->closed()->records.events.empty());
    CHECK(prover.seg_stored->closed()->stored_records != nullptr);
    const auto c = in_memory.commit(prover.seg->closed_shared());
    CHECK(on_disk.commit(prover.seg_stored->closed_shared()) == c);
    // Two kept segments (start and records each) and the open one's start:
    // five slots in use; seven while a close has written its two before the
    // verifier drops its oldest segment. The file may hold a slot or two
    // more: a freed records slot too small (a smaller size class) for the
    // next segment's records.
    CHECK(store->slots_in_use() == 1 + 2 * static_cast<size_t>(std::min(seg + 1, 2)));
    CHECK(store->slots() <= 9);
    const auto outcome = verifier.on_commit(0, c, rng, 100 + seg);  // q = 1: challenged
    REQUIRE(outcome.challenge);
    const auto& rq = outcome.challenge;
    std::vector<std::byte> want, got;
    REQUIRE(in_memory.answer(*rq, want));
    REQUIRE(on_disk.answer(*rq, got));
    CHECK(got == want);  // byte for byte the reply the memory would have made
    segment_reply_msg r;
    REQUIRE(decode_segment_reply(got, size_t{64} << 20, r) == frame_error::none);
    auto job = verifier.on_reply(0, std::move(r));
    REQUIRE(job);
    CHECK(checker.run(*job).kind == segment_verifier::verdict::passed);
  }
  CHECK(prover.seg_stored->boundaries() == prover.seg->boundaries());
  // An older kept segment still answers from its slot after newer ones were written.
  std::vector<std::byte> want, got;
  REQUIRE(in_memory.answer({1, 0, (segments - 2) * K, 9}, want));
  REQUIRE(on_disk.answer({1, 0, (segments - 2) * K, 9}, got));
  CHECK(got == want);
  CHECK(!on_disk.answer({1, 0, (segments - 3) * K, 9}, got));  // dropped, as in memory
  CHECK(!in_memory.answer({1, 0, (segments - 3) * K, 9}, want));
}

TEST_CASE("a stored boundary is written from the live state: the bytes and digest of its saved copy, SGD and Adam",
          "[segment][store]") {
  auto store = std::make_shared<boundary_store>(std::filesystem::temp_directory_path().string());
  const auto data = std::make_shared<const Dataset>(make_synthetic(P * shard_n, 10, 8, 11));
  std::vector<int64_t> shard(shard_n);
  std::iota(shard.begin(), shard.end(), int64_t{0});
  for (const char* opt : {"sgd", "adam"}) {
    for (const gossip_settings& gs : {grid_gossip(), delta_gossip()}) {
      INFO(opt << (gs.mode == gossip_mode::delta ? ", delta gossip" : ", grid gossip"));
      train_settings ts = ring_run::settings(0);
      ts.optimizer = opt;
      trainer t(ts, kModel, data, shard, data);
      const Sequential& m = t.synced_model();
      gossip_state g(0, ring_neighbours(0), gs, std::span<const float>(m.params(), static_cast<size_t>(m.param_count())));
      segment_log log(2, false, store);
      log.start(t, g);  // step 0: SGD's momentum buffer still empty
      for (int s = 0; s < 3; ++s) {
        if (s > 0) {
          Sequential& mm = *t.model();
          g.mix(std::span<float>(mm.params(), static_cast<size_t>(mm.param_count())));
          log.mixed();
        }
        t.step();
        log.stepped(t, g);
        const Sequential& sm = t.synced_model();
        (void)g.publish(std::span<const float>(sm.params(), static_cast<size_t>(sm.param_count())), t.steps_done());
        log.published(t.steps_done());
      }
      // Steps 2 and 3 done: the open segment starts at step 2 (in the store),
      // the closed one at 0. The open one's start is the state now less step 3:
      // check the closed one's start against a fresh run's copy instead.
      segment_boundary want;
      {
        trainer t2(ts, kModel, data, shard, data);
        const Sequential& m2 = t2.synced_model();
        gossip_state g2(0, ring_neighbours(0), gs,
                        std::span<const float>(m2.params(), static_cast<size_t>(m2.param_count())));
        t2.save_checkpoint(want.trainer, 0, 0);
        g2.save_replay_state(want.gossip);
      }
      tree_digest h;
      const segment* closed = log.closed();
      REQUIRE(closed != nullptr);
      REQUIRE(closed->stored != nullptr);
      CHECK(closed->start_digest() == segment_state_digest(want.trainer, want.gossip, h));
      // Now, with the optimizer state saved (Adam's in two vectors): the view's
      // digest and bytes are those of the saved copy.
      segment_boundary now;
      t.save_checkpoint(now.trainer, 0, 0);
      g.save_replay_state(now.gossip);
      checkpoint_view tv;
      std::array<uint64_t, trainer::checkpoint_extra> extra{};
      REQUIRE(t.view_checkpoint(tv, extra, 0, 0));
      const auto gv = g.view_replay_state();
      CHECK(segment_state_digest(tv, gv, h) == segment_state_digest(now.trainer, now.gossip, h));
      CHECK(!now.trainer.opt_state.empty());
      byte_pieces pieces;
      encode_segment_start(tv, gv, pieces);
      std::vector<std::byte> from_view, from_copy;
      pieces.append_to(from_view);
      encode_segment_start(now, from_copy);
      CHECK(from_view == from_copy);
      // And what the store gives back is a reply that decodes to the saved
      // copy (the checkpoint reader checks the SHA-256 and the layout).
      std::vector<std::byte> frame;
      encode_segment_reply(0, 7, *closed, frame);
      segment_reply_msg r;
      REQUIRE(decode_segment_reply(frame, frame.size(), r) == frame_error::none);
      CHECK(r.start.trainer == want.trainer);
      CHECK(r.start.gossip == want.gossip);
      CHECK(r.records.events.size() == 4);  // stepped, published, mixed, stepped: read back from the store
    }
  }
}

TEST_CASE("segment_replay runs a segment whose boundary and records are in a boundary store", "[segment][store]") {
  auto store = std::make_shared<boundary_store>(std::filesystem::temp_directory_path().string());
  ring_run run(grid_gossip(), {}, store);
  auto replay = run.replay();
  for (int seg = 0; seg < 2; ++seg) {
    for (uint64_t s = 1; s <= K; ++s) run.cycle();
    const segment* stored = run.peers[0].seg_stored->closed();
    REQUIRE(stored != nullptr);
    REQUIRE(stored->start == nullptr);
    REQUIRE(stored->stored_records != nullptr);
    const auto r = replay.run(*stored, {true, 0});
    CHECK(r.end == stored->end);
    CHECK(r.step_digests == stored->step_digests);
    CHECK(r.end == run.peers[0].seg->closed()->end);  // as the log that keeps it in memory
  }
}

TEST_CASE("records written to the store in chunks while their segment is open read back as the whole records",
          "[segment][store]") {
  auto store = std::make_shared<boundary_store>(std::filesystem::temp_directory_path().string());
  auto chunks = std::make_shared<boundary_store>(std::filesystem::temp_directory_path().string());
  ring_run run(grid_gossip(), {}, store, chunks);
  auto replay = run.replay();
  peer_node& prover = run.peers[0];
  segment_verifier in_memory(0, 0, 2), chunked(0, 0, 2);
  for (int seg = 0; seg < 4; ++seg) {
    for (uint64_t s = 1; s <= K; ++s) {
      run.cycle();
      // A 100-byte chunk: at most two events and a frame's bytes in memory.
      CHECK(prover.seg_chunked->open().records.events.size() <= 100 / sizeof(segment_event) + 1);
    }
    const segment* c = prover.seg_chunked->closed();
    REQUIRE(c != nullptr);
    REQUIRE(c->stored_records != nullptr);
    CHECK(c->stored_records->whole == nullptr);  // written in chunks
    CHECK(c->stored_records->frame_chunks.size() > 1);
    CHECK(c->records_bytes() == prover.seg->closed()->records_bytes());
    CHECK(c->records_digest == prover.seg->closed()->records_digest);
    const auto commit = in_memory.commit(prover.seg->closed_shared());
    CHECK(chunked.commit(prover.seg_chunked->closed_shared()) == commit);
    std::vector<std::byte> want, got;
    REQUIRE(in_memory.answer({1, 0, commit.start_step, 5}, want));
    REQUIRE(chunked.answer({1, 0, commit.start_step, 5}, got));
    CHECK(got == want);  // byte for byte
    CHECK(replay.run(*c, {}).end == c->end);
  }
  CHECK(prover.seg_chunked->boundaries() == prover.seg->boundaries());
}
