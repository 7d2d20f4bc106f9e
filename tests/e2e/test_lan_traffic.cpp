// Traffic classes on a LAN (protocols/traffic_class.hpp, zmq_transport.hpp):
// two `murmur peer` processes in network namespaces whose links are cut to
// 20 Mbit/s (tc tbf), gossiping dense models (tens of MB queued for the
// link) and verifying each other's segments (a 3.8 MB reply per challenge:
// 1.5 s on that link). Heartbeats travel on their own connection: their
// round trips stay far below the failure detector's suspicion threshold,
// and nobody is suspected or quarantined. (With one connection per peer
// they queued behind all of it: docs/traffic.md.)
#include <iostream>
#include <nlohmann/json.hpp>

#include "lan_harness.hpp"

using namespace murmur_e2e;

TEST_CASE("heartbeats keep their pace on a 20 Mbit/s link busy with segment replies and gossip",
          "[slow][e2e][netns][traffic]") {
  const netns_hosts hosts("mt", 2);
  const std::string& prefix = hosts.prefix;
  for (int i = 0; i < 2; ++i) {
    const std::string tc = "/usr/sbin/tc -n " + prefix + "-h" + std::to_string(i) +
                           " qdisc add dev eth0 root tbf rate 20mbit burst 32kbit latency 50ms";
    if (std::system(tc.c_str()) != 0) FAIL("could not limit the namespace's link: " << tc);
  }
  lan net("lan-traffic", 2, prefix);
  const int suspect_ms = 1500;
  // Dense gossip (a 0.94 MB frame a round, 0.4 s on the link) keeps the
  // link full; 1500 steps a peer, 94 segments, about a third of them
  // challenged: replies of 3.8 MB (1.5 s each) on top.
  const std::vector<std::string> cfg{"--set", "gossip.mode=dense",       "--set", "verify.scheme=segment",
                                     "--set", "verify.segment=16",       "--set", "verify.rate=0.05",
                                     "--set", "train.epochs=4",
                                     "--set", "data.train_samples=48000", "--set", "data.test_samples=500",
                                     "--set", "train.eval_every=400",  "--set", "peer.heartbeat_ms=250",
                                     "--set", "peer.suspect_ms=" + std::to_string(suspect_ms)};
  std::vector<pid_t> pids{net.start(0, 2, cfg)};
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  pids.push_back(net.start(1, 2, cfg));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  for (int i = 0; i < 2; ++i) {
    INFO("peer " << i << " log:\n" << net.log(i));
    REQUIRE(wait_until(pids[static_cast<size_t>(i)], deadline) == 0);
  }
  double replies = 0;
  for (int i = 0; i < 2; ++i) {
    const auto s = net.summary(i);
    INFO("peer " << i << " summary:\n" << s << "\nlog:\n" << net.log(i));
    const auto js = nlohmann::json::parse(s);
    REQUIRE(js.at("links").size() == 1);
    const auto& l = js.at("links")[0];
    std::cout << "peer " << i << ": " << l.at("bytes_sent").get<uint64_t>() / 1e6 << " MB sent, "
              << l.at("sent_mbps_mean").get<double>() << " Mbit/s mean; heartbeat round trips "
              << l.at("rtt_samples").get<uint64_t>() << ", median " << l.at("rtt_ms_median").get<double>()
              << " ms, max " << l.at("rtt_ms_max").get<double>() << " ms; segment replies sent "
              << json_number(s, "segment_requests_answered") << std::endl;
    CHECK(l.at("bytes_sent").get<uint64_t>() > 20'000'000);  // the link was busy
    // 14-26 under load, 9 on a quiet machine (a shorter run: one sample per
    // 0.25 s tick at most); one connection for all: 1
    CHECK(l.at("rtt_samples").get<uint64_t>() >= 5);
    CHECK(l.at("rtt_ms_max").get<double>() < suspect_ms / 2.0);  // 54-326 ms here; one connection for all: 1182-1545
    CHECK(occurrences(s, "\"cause\"") == 0);
    CHECK(json_number(s, "segments_failed") == 0);
    replies += json_number(s, "segment_requests_answered");
    // Never declared dead and back: both were seen together once (a leave
    // at the end is the only change after that).
    CHECK(occurrences(net.log(i), "sees live peers [0,1]") == 1);
  }
  CHECK(replies >= 1);  // a 3.8 MB segment reply was sent into the busy link
}
