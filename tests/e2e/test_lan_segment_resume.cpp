// murmur peer --resume with verify.scheme = segment (docs/trust.md,
// "Restarts and --resume"): a peer killed mid-run (SIGKILL: no leave, no
// last checkpoint) restarts from its last periodic checkpoint while its
// neighbour runs on. It states a new incarnation in its segment
// commitments, so its neighbour starts a new chain of its segments instead
// of finding its chain broken: nobody is quarantined, and the resumed
// peer's segments are still challenged and replayed.
#include <catch2/catch.hpp>
#include <signal.h>

#include <iostream>

#include "lan_harness.hpp"
#include "protocols/checkpoint_file.hpp"

using namespace murmur_e2e;

namespace {

// The step of peer 1's checkpoint in `run` (0: none yet).
uint64_t checkpoint_step(const fs::path& run) {
  const auto p = run / "checkpoints" / "peer-1.ckpt";
  if (!fs::exists(p)) return 0;
  try {
    return murmur::read_checkpoint_file(p.string()).step;
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

TEST_CASE("a peer killed and resumed with --resume starts a new chain of segments; nobody is quarantined",
          "[slow][e2e][lan][segment][resume]") {
  lan net("lan-segments-resume", 2);
  // K = 32 and a checkpoint every 20 steps: the restart goes back to a
  // checkpoint that may be earlier than its last committed segment's end.
  // q = 1 - (1 - 0.1/3)^32 = 0.66 per segment. Both peers run the same
  // config (the replay fingerprint covers it), 1876 steps each (4 epochs):
  // peer 0 is still training when peer 1 comes back from step 100 (with 2
  // epochs peer 0 finished its 938 steps in 3.5 s, before the restarted
  // peer 1 had joined, which then found nobody to join).
  const std::vector<std::string> common{"--set", "verify.scheme=segment", "--set", "verify.segment=32",
                                        "--set", "verify.rate=0.1",       "--set", "train.eval_every=400",
                                        "--set", "gossip.topology=complete", "--set", "train.epochs=4",
                                        "--set", "checkpoint.every=20"};
  const pid_t p0 = net.start(0, 2, common);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const fs::path run1 = net.dir / "run1";
  const pid_t p1 = net.start(1, 2, common);
  // Killed once it has checkpointed step 100 (three segments committed).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(4);
  while (checkpoint_step(run1) < 100 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t killed_at = checkpoint_step(run1);
  INFO("peer 1 log before the kill:\n" << net.log(1));
  REQUIRE(killed_at >= 100);
  kill(p1, SIGKILL);
  int status = 0;
  waitpid(p1, &status, 0);

  auto again = common;
  again.insert(again.end(), {"--resume", run1.string()});
  const pid_t p1b = net.start(1, 2, again);
  const auto end = std::chrono::steady_clock::now() + std::chrono::minutes(6);
  CHECK(wait_until(p1b, end) == 0);
  CHECK(wait_until(p0, end) == 0);

  const auto s0 = net.summary(0), s1 = net.summary(1), log0 = net.log(0);
  INFO("peer 0 summary:\n" << s0 << "\nlog:\n" << log0 << "\npeer 1 summary:\n" << s1 << "\nlog:\n" << net.log(1));
  CHECK(json_number(s1, "resumed_from_step") >= 100);
  // Peer 0 saw the restart as one and holds nothing against it.
  CHECK(log0.find("restarted (incarnation") != std::string::npos);
  CHECK(json_number(s0, "segment_chains_restarted") == 1);
  CHECK(log0.find("does not start where") == std::string::npos);
  CHECK(log0.find("without a restart") == std::string::npos);
  CHECK(occurrences(s0, "\"cause\"") == 0);
  CHECK(occurrences(s1, "\"cause\"") == 0);
  CHECK(json_number(s0, "segments_failed") == 0);
  CHECK(json_number(s1, "segments_failed") == 0);
  CHECK(json_number(s1, "segment_commits_sent") > 0);
  std::cout << "killed after checkpoint " << killed_at << ", resumed from " << json_number(s1, "resumed_from_step")
            << "; peer 0: segments challenged " << json_number(s0, "segments_challenged") << ", passed "
            << json_number(s0, "segments_passed") << ", missed " << json_number(s0, "challenges_missed") << std::endl;
}
