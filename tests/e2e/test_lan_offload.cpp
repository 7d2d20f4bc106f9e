// Offload on a LAN: two `murmur peer` processes on loopback; peer 1 hands
// its Linear products to peer 0, named by its allowlist label (host-a),
// and checks every answer with Freivalds. Honest helper: every answer is
// verified and credited (but the one in flight if the helper finishes its
// own steps and leaves first: that one times out, offload.timeout_ms). Cheating helper (offload.cheat): its first answer
// is rejected, peer 1 quarantines it, computes locally from then on, and
// finishes training all the same.
#include "lan_harness.hpp"

using namespace murmur_e2e;

namespace {

const std::vector<std::string> kOffload{"--set", "data.train_samples=4000", "--set", "data.test_samples=1000",
                                        "--set", "train.epochs=2",          "--set", "offload.to=host-a",
                                        "--set", "offload.peers=1"};

// The helper must outlive the offloader (a helper that leaves is waited for
// offload.timeout_ms, then peer 1 computes locally) without getting many
// steps ahead of it: peer 1 joins by state transfer and continues at its
// donor's step, so a helper already past peer 1's last step (64) would end
// peer 1's run at once (a CI run saw both: a helper gone after 25 answers,
// and one 126 steps ahead). So the helper takes one step per epoch (its
// whole shard as the batch, 30-70 ms a step) for 600 epochs.
void run_pair(lan& net, std::vector<std::string> cfg) {
  std::vector<pid_t> pids;
  auto helper = cfg;
  helper.insert(helper.end(), {"--set", "train.epochs=600", "--set", "train.batch=2000"});
  pids.push_back(net.start(0, 2, helper));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  pids.push_back(net.start(1, 2, cfg));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  for (int i = 0; i < 2; ++i) {
    INFO("peer " << i << " log:\n" << net.log(i));
    REQUIRE(wait_until(pids[static_cast<size_t>(i)], deadline) == 0);
  }
}

}  // namespace

TEST_CASE("two peers on loopback: peer 1 offloads its products to an honest helper, every answer verified",
          "[slow][e2e][lan][offload]") {
  lan net("lan-offload", 2);
  run_pair(net, kOffload);
  const auto s0 = net.summary(0), s1 = net.summary(1);
  INFO("peer 0:\n" << s0 << "\npeer 1:\n" << s1 << "\nlog 1:\n" << net.log(1));
  const double offloads = json_number(s1, "offloads");
  CHECK(offloads > 0);
  // All verified, but at most the one in flight if peer 0 left first.
  CHECK(json_number(s1, "offloads_verified") >= offloads - 1);
  CHECK(json_number(s1, "offloads_verified") >= 10);
  CHECK(json_number(s1, "offloads_rejected") == 0);
  CHECK(json_number(s1, "helper_credit_gflop") > 0);
  CHECK(json_number(s0, "tasks_served") >= json_number(s1, "offloads_verified"));
  CHECK(json_number(s1, "final_test_accuracy") >= 0.5);
}

TEST_CASE("two peers on loopback: a helper cheating on offloaded products is caught on its first answer",
          "[slow][e2e][lan][offload]") {
  lan net("lan-offload-cheat", 2);
  auto cfg = kOffload;
  cfg.insert(cfg.end(), {"--set", "offload.cheat=skip_product"});
  run_pair(net, cfg);
  const auto s0 = net.summary(0), s1 = net.summary(1);
  INFO("peer 0:\n" << s0 << "\npeer 1:\n" << s1 << "\nlog 1:\n" << net.log(1));
  CHECK(json_number(s1, "offloads") == 1);
  CHECK(json_number(s1, "offloads_rejected") == 1);
  CHECK(json_number(s1, "offloads_verified") == 0);
  CHECK(s1.find("\"helper_trusted\": false") != std::string::npos);
  CHECK(s1.find("{\"peer\": 0, ") != std::string::npos);  // quarantined
  CHECK(s1.find("\"cause\": \"evidence\"") != std::string::npos);
  CHECK(json_number(s1, "final_test_accuracy") >= 0.5);
}
