// Helpers of the multi-process tests: start `murmur peer` processes (on
// loopback or in network namespaces), wait for them with deadlines, read
// their outputs. Every wait is bounded; a process past its deadline is killed.
#pragma once
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "protocols/checkpoint_file.hpp"

namespace murmur_e2e {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// How many times `what` occurs in s (overlaps counted).
inline int occurrences(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

inline double json_number(const std::string& json, const std::string& key) {
  auto p = json.find("\"" + key + "\":");
  if (p == std::string::npos) return -1;
  return std::stod(json.substr(p + key.size() + 3));
}

// A free TCP port on 127.0.0.1, released at once, below the kernel's
// ephemeral range (ip_local_port_range starts at 32768 by default): a port
// from that range, picked here and bound later by a peer started seconds
// after, could meanwhile become the source port of any outgoing connection
// on the machine (another test's, under ctest -j2), and the peer would fail
// to listen. Below it, only a listener that chose the same port takes it:
// picked at random and checked free, unlikely.
inline int free_port() {
  static std::mt19937 pick(static_cast<unsigned>(getpid()) * 2654435761u ^
                           static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  static std::set<int> given;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = 20000 + static_cast<int>(pick() % 12000);  // 20000-31999
    if (!given.insert(port).second) continue;  // one this process handed out already
    int s = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
    if (free) return port;
  }
  FAIL("no free TCP port in 20000-31999 on 127.0.0.1 after 200 tries");
  return -1;
}

// Runs the program argv[0] with output to log; returns its pid.
inline pid_t spawn_logged(std::vector<std::string> argv_text, const fs::path& log) {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    FILE* f = fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Runs `[wrapper...] murmur ARGS...` with output to log; returns its pid
// (a wrapper such as `ip netns exec NS` execs murmur in its place).
inline pid_t spawn_murmur(const std::vector<std::string>& args, const fs::path& log,
                          const std::vector<std::string>& wrapper = {}) {
  std::vector<std::string> argv = wrapper;
  argv.push_back(std::string(MURMUR_BINARY_DIR) + "/murmur");
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_logged(std::move(argv), log);
}

// Ends a child still running and reaps it: SIGTERM first, so that a murmur
// process still writes its summary (what a failed test's reader needs),
// then SIGKILL after 5 s.
inline void terminate_and_reap(pid_t pid) {
  int status = 0;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}

// Waits for pid until the deadline; past it, ends it (terminate_and_reap)
// and reports -1.
inline int wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline) {
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  terminate_and_reap(pid);
  return -1;
}

// N peers' keys, allowlist and run directories. Without a netns prefix they
// listen on 127.0.0.1 ports; with one, peer i runs in namespace PREFIX-h<i>
// at 169.254.77.(10+i):5555 (see netns_hosts.sh).
struct lan {
  fs::path dir;
  std::vector<int> ports;
  std::string netns;
  lan(const std::string& name, int n, std::string netns_prefix = "")
      : dir(fs::path(MURMUR_BINARY_DIR) / "test-runs" / name), netns(std::move(netns_prefix)) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream auth(dir / "authorized_peers");
    for (int i = 0; i < n; ++i) {
      ports.push_back(netns.empty() ? free_port() : 5555);
      auto k = dir / ("keys" + std::to_string(i));
      REQUIRE(wait_until(spawn_murmur({"keygen", "--out", k.string()}, dir / "keygen.log"),
                         std::chrono::steady_clock::now() + std::chrono::seconds(10)) == 0);
      auth << slurp(k / "peer.pub").substr(0, 40) << " " << endpoint(i) << " host-" << static_cast<char>('a' + i) << "\n";
    }
  }
  std::string endpoint(int i) const {
    std::string host = netns.empty() ? "127.0.0.1" : "169.254.77." + std::to_string(10 + i);
    return "tcp://" + host + ":" + std::to_string(ports[static_cast<size_t>(i)]);
  }
  // Starts peer i (joining through peer 0 unless it is peer 0); `run` names
  // its run directory and log (default run<i>, peer<i>.log).
  pid_t start(int i, int n, std::vector<std::string> extra = {}, std::string run = "") const {
    if (run.empty()) run = "run" + std::to_string(i);
    std::vector<std::string> a{"peer",  "--config", std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml",
                               "--listen", endpoint(i), "--quiet", "--out", (dir / run).string(),
                               "--set", "peer.count=" + std::to_string(n), "--set", "peer.index=" + std::to_string(i),
                               "--set", "peer.keys=" + (dir / ("keys" + std::to_string(i))).string(),
                               "--set", "peer.authorized_peers=" + (dir / "authorized_peers").string()};
    if (i > 0) a.insert(a.end(), {"--join", endpoint(0)});
    a.insert(a.end(), extra.begin(), extra.end());
    std::vector<std::string> wrap;
    if (!netns.empty()) wrap = {"/usr/sbin/ip", "netns", "exec", netns + "-h" + std::to_string(i)};
    return spawn_murmur(a, dir / (run == "run" + std::to_string(i) ? "peer" + std::to_string(i) + ".log" : run + ".log"), wrap);
  }
  std::string summary(int i) const { return slurp(dir / ("run" + std::to_string(i)) / "summary.json"); }
  std::string log(int i) const { return slurp(dir / ("peer" + std::to_string(i) + ".log")); }
};

// Network namespaces <prefix>-h0 ... joined by veth pairs through a bridge
// (tests/e2e/netns_hosts.sh), prefix = tag + this process's id; those of a
// crashed earlier run are removed first, these when it goes out of scope.
// Fails the test (never skips it) when they cannot be made.
struct netns_hosts {
  std::string script = std::string(MURMUR_SOURCE_DIR) + "/tests/e2e/netns_hosts.sh";
  std::string prefix, down;
  netns_hosts(const std::string& tag, int n)
      : prefix(tag + std::to_string(getpid() % 1000000)), down("bash " + script + " down " + prefix + " >/dev/null 2>&1") {
    std::system(down.c_str());
    if (std::system(("bash " + script + " up " + prefix + " " + std::to_string(n) + " 2>&1").c_str()) != 0) {
      std::system(down.c_str());
      FAIL("could not create network namespaces (needs root and Debian's iproute2: `ip netns add`); "
           "this test does not pass without them");
    }
  }
  ~netns_hosts() { std::system(down.c_str()); }
  netns_hosts(const netns_hosts&) = delete;
  netns_hosts& operator=(const netns_hosts&) = delete;
};

inline int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The first time (unix ms) at or after `after` when `log` reports exactly `live`.
inline int64_t first_seen(const std::string& log, const std::string& live, int64_t after) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("sees live peers [" + live + "]") == std::string::npos) continue;
    int64_t t = std::stoll(line.substr(line.find("unix_ms ") + 8));
    if (t >= after) return t;
  }
  return -1;
}

// Two checkpoint files hold the same step, parameters (bit for bit) and
// optimiser state: a run with a fault ended as the run without it.
inline void same_final_state(const fs::path& a, const fs::path& b) {
  INFO(a << " vs " << b);
  REQUIRE(fs::exists(a));
  REQUIRE(fs::exists(b));
  const auto ca = murmur::read_checkpoint_file(a.string()), cb = murmur::read_checkpoint_file(b.string());
  CHECK(ca.step == cb.step);
  REQUIRE(ca.params.size() == cb.params.size());
  size_t differ = 0;
  for (size_t i = 0; i < ca.params.size(); ++i) differ += std::memcmp(&ca.params[i], &cb.params[i], sizeof(float)) != 0;
  CHECK(differ == 0);
  CHECK(ca.opt_steps == cb.opt_steps);
  CHECK(ca.opt_state == cb.opt_state);
}

}  // namespace murmur_e2e
