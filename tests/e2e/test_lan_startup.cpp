// The start of a LAN run (issue 11): peers that wait for each other, and
// mistakes reported at once, naming what is wrong. Real `murmur peer`
// processes on loopback; every wait has a generous deadline (a loaded
// 2-core machine), and no check depends on how fast anything is, only on
// the order of events.
#include <netinet/in.h>
#include <sys/socket.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>

#include "lan_harness.hpp"

using namespace murmur_e2e;

namespace {

// The number after `key` on the line of `log` that contains `marker`, or -1.
int64_t number_after(const std::string& log, const std::string& marker, const std::string& key) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(marker) == std::string::npos) continue;
    auto p = line.find(key);
    if (p != std::string::npos) return std::stoll(line.substr(p + key.size()));
  }
  return -1;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Non-empty lines of a text.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> r;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) r.push_back(line);
  return r;
}

// A data directory that does not exist: a peer that loaded its data before
// checking its --join would fail with a data error instead.
const std::vector<std::string> no_data{"--set", "data.dir=/nonexistent/murmur-test-data"};

}  // namespace

TEST_CASE("three peers started 5 s apart wait for each other and train together", "[slow][e2e][lan][startup]") {
  lan net("lan-start-apart", 3);
  const std::vector<std::string> cfg{"--set", "train.epochs=1"};
  std::vector<pid_t> pids;
  std::vector<int64_t> started;
  for (int i = 0; i < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::seconds(5));
    started.push_back(unix_ms());
    pids.push_back(net.start(i, 3, cfg));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  for (int i = 0; i < 3; ++i) {
    INFO("peer " << i << " log:\n" << net.log(i));
    REQUIRE(wait_until(pids[static_cast<size_t>(i)], deadline) == 0);
  }
  for (int i = 0; i < 3; ++i) {
    const std::string log = net.log(i);
    INFO("peer " << i << " log:\n" << log);
    // Nobody trains before the last peer is even started, and each starts with all three live.
    CHECK_THAT(log, Catch::Contains("peers: 3 of 3 live"));
    // Logs name peers by their authorized_peers label (the harness labels peer i host-a, host-b, ...).
    const std::string me = "peer " + std::to_string(i) + " (host-" + static_cast<char>('a' + i) + ")";
    CHECK_THAT(log, Catch::Contains("membership: " + me + " sees live peers"));
    CHECK_THAT(log, Catch::Contains(me + ": test accuracy"));
    const int64_t training = number_after(log, "training starts", "unix_ms ");
    const int64_t gossip = number_after(log, "first gossip sent", "unix_ms ");
    CHECK(training >= started[2]);
    CHECK(gossip >= training);
    CHECK(json_number(net.summary(i), "bytes_received_total") > 0);
    CHECK(json_number(net.summary(i), "final_test_accuracy") >= 0.70);
    // Each link as this peer measured it (actors/link_stats.hpp): both
    // others, traffic both ways, heartbeat round trips ordered.
    const auto links = nlohmann::json::parse(net.summary(i)).at("links");
    CHECK(links.size() == 2);
    for (const auto& l : links) {
      INFO(l.dump());
      CHECK(l.at("peer").get<int>() != i);
      CHECK(l.at("bytes_sent").get<uint64_t>() > 0);
      CHECK(l.at("bytes_received").get<uint64_t>() > 0);
      CHECK(l.at("frames_received").get<uint64_t>() > 0);
      CHECK(l.at("rtt_samples").get<uint64_t>() > 0);
      CHECK(l.at("rtt_ms_min").get<double>() > 0);
      CHECK(l.at("rtt_ms_min").get<double>() <= l.at("rtt_ms_median").get<double>());
      CHECK(l.at("rtt_ms_median").get<double>() <= l.at("rtt_ms_max").get<double>());
    }
    std::cout << "peer " << i << " (started at +" << (started[static_cast<size_t>(i)] - started[0])
              << " ms): training at +" << (training - started[0]) << " ms, first gossip at +" << (gossip - started[0])
              << " ms, i.e. " << (gossip - started[static_cast<size_t>(i)]) << " ms after its own start" << std::endl;
  }
  // Joiners got their state from those present once everyone was there.
  for (int i = 1; i < 3; ++i) CHECK_THAT(net.log(i), Catch::Contains("state transfer: 235146 of 235146"));
}

TEST_CASE("a peer whose peer.min_peers never come exits non-zero at the timeout, naming them",
          "[slow][e2e][lan][startup]") {
  lan net("lan-start-alone", 3);
  const auto t0 = std::chrono::steady_clock::now();
  pid_t p = net.start(0, 3, {"--set", "peer.start_timeout_ms=4000", "--set", "train.epochs=1"});
  const int rc = wait_until(p, std::chrono::steady_clock::now() + std::chrono::seconds(120));
  const double took = seconds_since(t0);
  const std::string log = net.log(0);
  INFO("log:\n" << log);
  CHECK(rc == 1);
  CHECK(took >= 4.0);  // it waited
  CHECK_THAT(log, Catch::Contains("1 of 3 peers live in 4 s") &&
                      Catch::Contains("missing peer 1 (" + net.endpoint(1) + ", host-b), peer 2 (" +
                                      net.endpoint(2) + ", host-c)"));
  CHECK_THAT(log, Catch::Contains("waiting for peers: 1 of 3 live"));
  CHECK(!fs::exists(net.dir / "run0" / "summary.json"));  // it never trained

  // With peer.on_start_timeout = start it trains with those present, saying whom it lacks.
  p = net.start(0, 3, {"--set", "peer.start_timeout_ms=2000", "--set", "peer.on_start_timeout=start", "--set",
                       "train.epochs=0.2"});
  CHECK(wait_until(p, std::chrono::steady_clock::now() + std::chrono::seconds(120)) == 0);
  const std::string log2 = net.log(0);
  INFO("log with on_start_timeout = start:\n" << log2);
  CHECK_THAT(log2, Catch::Contains("training without peer 1 (" + net.endpoint(1) + ", host-b), peer 2"));
  CHECK(fs::exists(net.dir / "run0" / "summary.json"));
}

TEST_CASE("a peer with --join to an endpoint not in authorized_peers fails before data loading, naming it",
          "[slow][e2e][lan][startup]") {
  lan net("lan-start-stranger", 2);
  const std::string stranger = "tcp://127.0.0.1:" + std::to_string(free_port());
  std::vector<std::string> extra = no_data;
  extra.insert(extra.end(), {"--join", stranger});
  const auto t0 = std::chrono::steady_clock::now();
  pid_t p = net.start(1, 2, extra);
  const int rc = wait_until(p, std::chrono::steady_clock::now() + std::chrono::seconds(60));
  const double took = seconds_since(t0);
  const std::string log = net.log(1);
  INFO("log:\n" << log << "(took " << took << " s)");
  CHECK(rc == 2);
  const auto lines = lines_of(log);
  REQUIRE(lines.size() == 1);  // one line, no unhandled exception
  CHECK_THAT(lines[0], Catch::Contains("--join " + stranger) && Catch::Contains("authorized_peers"));
  CHECK_THAT(log, !Catch::Contains("data error") && !Catch::Contains("listening on"));
  CHECK(!fs::exists(net.dir / "run1"));  // nothing written, nothing loaded
  CHECK(took < 30);
}

TEST_CASE("a peer with --join to a port with nothing listening fails within peer.start_timeout_ms, naming it",
          "[slow][e2e][lan][startup]") {
  lan net("lan-start-nobody", 2);  // peer 0 is never started: nothing listens at its endpoint
  std::vector<std::string> extra = no_data;
  extra.insert(extra.end(), {"--set", "peer.start_timeout_ms=3000"});
  const auto t0 = std::chrono::steady_clock::now();
  pid_t p = net.start(1, 2, extra);  // joins through peer 0
  const int rc = wait_until(p, std::chrono::steady_clock::now() + std::chrono::seconds(60));
  const double took = seconds_since(t0);
  const std::string log = net.log(1);
  INFO("log:\n" << log << "(took " << took << " s)");
  CHECK(rc == 1);
  CHECK(took >= 3.0);
  CHECK(took < 45);
  CHECK_THAT(log, Catch::Contains("no --join contact could be reached in 3 s") &&
                      Catch::Contains(net.endpoint(0) + " (connection refused)"));
  CHECK_THAT(log, Catch::Contains("waiting for a --join contact to listen: " + net.endpoint(0)));
  CHECK_THAT(log, !Catch::Contains("data error") && !Catch::Contains("unhandled"));
}

TEST_CASE("a peer with --listen on a port in use fails naming the endpoint", "[slow][e2e][lan][startup]") {
  lan net("lan-start-port-in-use", 1);
  // Someone else listens on peer 0's port.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(net.ports[0]));
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(s, 4) == 0);
  pid_t p = net.start(0, 1, no_data);
  const int rc = wait_until(p, std::chrono::steady_clock::now() + std::chrono::seconds(60));
  close(s);
  const std::string log = net.log(0);
  INFO("log:\n" << log);
  CHECK(rc == 1);
  CHECK_THAT(log, Catch::Contains("cannot listen on " + net.endpoint(0)) &&
                      Catch::Contains("Address already in use"));
  CHECK_THAT(log, !Catch::Contains("data error"));  // before data loading
  CHECK(lines_of(log).size() == 1);
}

TEST_CASE("a pipeline node with --listen on a port in use fails before data loading and names the endpoint",
          "[slow][e2e][lan][startup][pipeline]") {
  lan net("lan-start-pipeline-port-in-use", 2);
  // Someone else listens on node 1's port.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(net.ports[1]));
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(listen(s, 4) == 0);
  // Fashion-MNIST from a directory that does not exist: a node that loaded
  // its data before binding would fail with a data error instead. Not
  // --quiet: data loading would say so.
  auto start_node = [&] {
    return spawn_murmur({"peer", "--config", std::string(MURMUR_SOURCE_DIR) + "/configs/pipeline-lan.toml",
                         "--listen", net.endpoint(1), "--out", (net.dir / "node1").string(), "--set",
                         "peer.index=1", "--set", "peer.count=2", "--set", "pipeline.spares=0", "--set",
                         "peer.keys=" + (net.dir / "keys1").string(), "--set",
                         "peer.authorized_peers=" + (net.dir / "authorized_peers").string(), "--set",
                         "data.dataset=fashion-mnist", "--set", "data.dir=/nonexistent/murmur-test-data"},
                        net.dir / "node1.log");
  };
  auto t0 = std::chrono::steady_clock::now();
  int rc = wait_until(start_node(), std::chrono::steady_clock::now() + std::chrono::seconds(60));
  double took = seconds_since(t0);
  close(s);
  std::string log = slurp(net.dir / "node1.log");
  {
    INFO("log:\n" << log << "(took " << took << " s)");
    CHECK(rc == 1);
    CHECK_THAT(log, Catch::Contains("cannot listen on " + net.endpoint(1)) && Catch::Contains("Address already in use"));
    CHECK_THAT(log, !Catch::Contains("data error") && !Catch::Contains("loading") && !Catch::Contains("unhandled"));
    CHECK(lines_of(log).size() == 1);
    CHECK(took < 30);
  }
  // The port free: it binds, then the data fails to load; the bound bridge
  // must not hold the exit up (an actor system with live actors would).
  t0 = std::chrono::steady_clock::now();
  rc = wait_until(start_node(), std::chrono::steady_clock::now() + std::chrono::seconds(60));
  took = seconds_since(t0);
  log = slurp(net.dir / "node1.log");
  INFO("log with the port free:\n" << log << "(took " << took << " s)");
  CHECK(rc == 1);
  CHECK_THAT(log, Catch::Contains("data error") && !Catch::Contains("cannot listen"));
  CHECK(took < 30);
}

TEST_CASE("a pipeline node waits peer.start_timeout_ms for a node that starts late", "[slow][e2e][lan][startup]") {
  // Two stages, no spare. Once running, a node gives up after 5 s + 10 x
  // (heartbeat + suspect + dead) = 15.5 s without progress; at the start it
  // waits peer.start_timeout_ms (default 120 s) instead: node 1 comes 25 s late.
  lan net("lan-start-pipeline", 2);
  auto start_node = [&](int i) {
    const std::string run = "node" + std::to_string(i);
    return spawn_murmur({"peer", "--config", std::string(MURMUR_SOURCE_DIR) + "/configs/pipeline-lan.toml",
                         "--listen", net.endpoint(i), "--out", (net.dir / run).string(), "--quiet", "--set",
                         "peer.index=" + std::to_string(i), "--set", "peer.count=2", "--set", "pipeline.spares=0",
                         "--set", "peer.keys=" + (net.dir / ("keys" + std::to_string(i))).string(), "--set",
                         "peer.authorized_peers=" + (net.dir / "authorized_peers").string(), "--set",
                         "peer.suspect_ms=500", "--set", "peer.dead_ms=500"},
                        net.dir / (run + ".log"));
  };
  pid_t p0 = start_node(0);
  std::this_thread::sleep_for(std::chrono::seconds(25));
  pid_t p1 = start_node(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  const int rc0 = wait_until(p0, deadline), rc1 = wait_until(p1, deadline);
  const std::string log0 = slurp(net.dir / "node0.log"), log1 = slurp(net.dir / "node1.log");
  INFO("node 0 log:\n" << log0 << "\nnode 1 log:\n" << log1);
  CHECK(rc0 == 0);
  CHECK(rc1 == 0);
  CHECK_THAT(log0, Catch::Contains("done: replica 0 stage 0, 300/300 steps") && !Catch::Contains("stalled"));
}
