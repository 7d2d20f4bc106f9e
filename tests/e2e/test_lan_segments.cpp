// Segment verification on a LAN (verify.scheme = segment, docs/trust.md
// "Replays across machines"): three `murmur peer` processes on loopback
// commit to segments of K steps and replay each other's challenged
// segments. Honest peers all pass; a peer cheating on its products is
// quarantined by both honest peers on their own replays; a peer whose
// training config differs (so its replay fingerprint differs) is refused as
// a partner, without an accusation either way.
#include <iostream>

#include "lan_harness.hpp"

using namespace murmur_e2e;

namespace {

// Peers 0, 1, 2 (peer 0 first, the others joining it), each with the common
// settings plus its own; every one must exit 0 within `limit`.
void run_three(const lan& net, const std::vector<std::string>& common, const std::vector<std::vector<std::string>>& own,
               std::chrono::seconds limit) {
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    auto cfg = common;
    cfg.insert(cfg.end(), own[static_cast<size_t>(i)].begin(), own[static_cast<size_t>(i)].end());
    pids.push_back(net.start(i, 3, cfg));
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (int i = 0; i < 3; ++i) {
    INFO("peer " << i << " log:\n" << net.log(i));
    CHECK(wait_until(pids[static_cast<size_t>(i)], deadline) == 0);
  }
}

// K = 32: a segment lasts long enough on a loaded machine for a verifier
// to draw its challenge before the prover drops it (it keeps two).
const std::vector<std::string> segments{"--set", "verify.scheme=segment", "--set", "verify.segment=32",
                                        "--set", "train.eval_every=400", "--set", "gossip.topology=complete"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("three honest peers on loopback verify each other's segments by replay, none quarantined",
          "[slow][e2e][lan][segment]") {
  lan net("lan-segments-honest", 3);
  // q = 1 - (1 - 0.06/3)^32 = 0.48 per segment and verifier: about 5 replays
  // per neighbour over the run's ~10 segments.
  run_three(net, with(segments, {"--set", "train.epochs=1", "--set", "verify.rate=0.06"}), {{}, {}, {}},
            std::chrono::seconds(400));
  double passed = 0;
  for (int i = 0; i < 3; ++i) {
    const auto s = net.summary(i);
    INFO("peer " << i << " summary:\n" << s << "\nlog:\n" << net.log(i));
    CHECK(json_number(s, "final_test_accuracy") >= 0.70);
    CHECK(occurrences(s, "\"cause\"") == 0);  // nobody quarantined anybody
    CHECK(json_number(s, "segments_failed") == 0);
    CHECK(json_number(s, "segment_commits_sent") > 0);
    CHECK(json_number(s, "segment_commits_received") > 0);
    passed += json_number(s, "segments_passed");
    std::cout << "peer " << i << ": segments challenged " << json_number(s, "segments_challenged") << ", passed "
              << json_number(s, "segments_passed") << ", replay " << json_number(s, "segment_replay_s") << " s"
              << std::endl;
  }
  CHECK(passed >= 1);
}

TEST_CASE("a peer cheating on its products is quarantined by both honest peers, on their own segment replays or relayed evidence",
          "[slow][e2e][lan][segment]") {
  lan net("lan-segments-cheat", 3);
  // attack.fraction 0.34 of 3: one cheater, the seed picks which; it perturbs
  // every step from step 1 on. q = 1 - (1 - 0.1/3)^32 = 0.66 per segment and
  // verifier. The cheater steps slower than the honest peers (it keeps the
  // per-step digests a bisection needs, and replays them), so the honest
  // ones see only its first segments before they finish: with 6 of them an
  // honest peer misses all with 0.34^6 = 2e-3.
  run_three(net,
            with(segments, {"--set", "train.epochs=2", "--set", "verify.rate=0.1", "--set", "attack.kind=perturb",
                            "--set", "attack.fraction=0.34", "--set", "attack.start_step=1", "--set",
                            "attack.eps=0.01"}),
            {{}, {}, {}}, std::chrono::seconds(400));
  int cheater = -1;
  for (int i = 0; i < 3; ++i)
    if (net.summary(i).find("\"attacker\": true") != std::string::npos) {
      CHECK(cheater == -1);
      cheater = i;
    }
  REQUIRE(cheater >= 0);
  int caught_directly = 0;
  for (int i = 0; i < 3; ++i) {
    if (i == cheater) continue;
    const auto s = net.summary(i);
    INFO("peer " << i << " summary:\n" << s << "\nlog:\n" << net.log(i));
    // The cheater and nobody else, on this peer's own replay.
    CHECK(occurrences(s, "{\"peer\": " + std::to_string(cheater) + ", ") == 1);
    CHECK(occurrences(s, "\"cause\": \"evidence\"") == 1);
    CHECK(occurrences(s, "\"cause\"") == 1);
    // On its own replay, or on the other's evidence, re-checked here
    // (relayed evidence counts only if it matches this peer's own commitment
    // and fails its own replay).
    CHECK(json_number(s, "segments_failed") + json_number(s, "evidence_confirmed") >= 1);
    caught_directly += json_number(s, "segments_failed") > 0;
  }
  CHECK(caught_directly >= 1);
  const auto cs = net.summary(cheater);
  INFO("cheater summary:\n" << cs << "\nlog:\n" << net.log(cheater));
  CHECK(occurrences(cs, "\"cause\"") == 0);  // its replays of the honest peers pass
  CHECK(json_number(cs, "segments_failed") == 0);
}

TEST_CASE("a peer whose replay fingerprint differs is refused as a verification partner, never accused",
          "[slow][e2e][lan][segment]") {
  lan net("lan-segments-fingerprint", 3);
  // Peer 2 trains with another learning rate: its config fingerprint differs,
  // so nobody can replay it, and it can replay nobody.
  run_three(net, with(segments, {"--set", "train.epochs=0.3", "--set", "verify.rate=0.06"}),
            {{}, {}, {"--set", "train.lr=0.05"}}, std::chrono::seconds(300));
  // Whichever side commits first is refused by the other, which answers with
  // a notice of its own fingerprint: each honest peer and peer 2 refuse each
  // other (replay_mismatch, a log line naming both fingerprints); peers 0
  // and 1 keep verifying each other.
  for (int i = 0; i < 3; ++i) {
    const auto s = net.summary(i);
    const auto log = net.log(i);
    INFO("peer " << i << " summary:\n" << s << "\nlog:\n" << log);
    CHECK(occurrences(s, "\"cause\": \"evidence\"") == 0);
    CHECK(occurrences(s, "\"cause\": \"missed_answers\"") == 0);
    CHECK(json_number(s, "segments_failed") == 0);
    CHECK(log.find("states replay fingerprint build") != std::string::npos);
    if (i < 2) {
      CHECK(occurrences(s, "{\"peer\": 2, ") == 1);
      CHECK(occurrences(s, "{\"peer\": " + std::to_string(1 - i) + ", ") == 0);
      CHECK(occurrences(s, "\"cause\": \"replay_mismatch\"") == 1);
    } else {
      CHECK(occurrences(s, "\"cause\": \"replay_mismatch\"") == 2);
    }
  }
}
