// One authorized peer must not be able to wreck, impersonate or dodge
// (issue 10): N honest `murmur peer` processes on loopback train with the
// default defences while tests/e2e/hostile/hostile_peer.cpp, holding the key
// on line H = N of authorized_peers (so it is peer H), joins like a peer and
// then sends extreme-but-finite gossip, identity claims against peer 1,
// floods, replays, and step commitments whose challenges it never answers.
// A clean run of the same honest peers (same allowlist, same peer.count,
// no hostile driver) runs alongside, on the same loaded machine.
//
// Asserted: every honest peer exits 0; honest accuracy within 1 point of the
// clean run while all honest peers train (at the last evaluation at least
// 100 steps before the end), each one's final accuracy within 2; no honest peer is dropped from any honest peer's live set while
// training; no honest table takes the hostile's claims about peer 1 (the
// driver reads the honest peers' membership updates); nobody but H is
// quarantined (and in the clean run nobody); the refusals are counted by
// reason in summary.json. The last block of checks needs issue 10's
// identity binding (identity_refused), missed-answer evidence
// (challenges_missed, quarantine of H) and the decode value bound
// (out_of_range); each fails, naming its counter, until that is on main.
// Runtime: 30-90 s (both runs at once, 2 loaded cores); watchdog 170 s.
//
// N honest peers: MURMUR_HOSTILE_HONEST (default 3; CI runs 3). With more
// than 4 honest peers the clean run goes first and the hostile run after it,
// so that 2N training processes do not share the cores at once.
//   MURMUR_HOSTILE_HONEST=5 build/test_e2e "[hostile]"
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "lan_harness.hpp"

using namespace murmur_e2e;

namespace {

int honest_count() {
  const char* e = std::getenv("MURMUR_HOSTILE_HONEST");
  if (!e || !*e) return 3;
  const int n = std::atoi(e);
  if (n < 2 || n > 16) FAIL("MURMUR_HOSTILE_HONEST=" << e << ": expected 2..16 honest peers");
  return n;
}

pid_t spawn_hostile(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv{HOSTILE_PEER_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_logged(std::move(argv), log);
}

struct finished {
  int rc = -1;
  int64_t at_unix_ms = 0;
};

// Waits for all pids together (so each one's exit time is known), killing
// what is still running at the deadline (rc -1).
std::vector<finished> wait_all(const std::vector<pid_t>& pids, std::chrono::steady_clock::time_point deadline) {
  std::vector<finished> out(pids.size());
  std::vector<bool> done(pids.size(), false);
  size_t left = pids.size();
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    for (size_t k = 0; k < pids.size(); ++k) {
      int status = 0;
      if (done[k] || waitpid(pids[k], &status, WNOHANG) != pids[k]) continue;
      done[k] = true;
      --left;
      out[k] = {WIFEXITED(status) ? WEXITSTATUS(status) : -2, unix_ms()};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (size_t k = 0; k < pids.size(); ++k)
    if (!done[k]) {
      kill(pids[k], SIGKILL);
      waitpid(pids[k], nullptr, 0);
      out[k] = {-1, unix_ms()};
    }
  return out;
}

// "membership: peer I sees live peers [a,b,c] at unix_ms T" lines of a log.
struct live_line {
  std::set<int> live;
  int64_t at = 0;
};
std::vector<live_line> live_lines(const std::string& log) {
  std::vector<live_line> out;
  static const std::regex re(R"(sees live peers \[([0-9,]*)\] at unix_ms ([0-9]+))");
  for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it) {
    live_line l;
    std::stringstream list((*it)[1].str());
    for (std::string x; std::getline(list, x, ',');) l.live.insert(std::stoi(x));
    l.at = std::stoll((*it)[2].str());
    out.push_back(l);
  }
  return out;
}

// The peers named in summary.json's "quarantined" list.
std::vector<int> quarantined(const std::string& summary) {
  std::vector<int> out;
  auto p = summary.find("\"quarantined\": [");
  if (p == std::string::npos) return out;
  const auto e = summary.find(']', p);
  static const std::regex re(R"(\{"peer": ([0-9]+))");
  const std::string list = summary.substr(p, e - p);
  for (std::sregex_iterator it(list.begin(), list.end(), re), end; it != end; ++it) out.push_back(std::stoi((*it)[1].str()));
  return out;
}

// A number in a JSON text, or -1 when the key is absent (so a CHECK on a
// counter that does not exist yet fails, naming it).
double counter(const std::string& json, const std::string& key) { return json_number(json, key); }

struct run_outcome {
  std::vector<finished> honest;
  finished hostile;
  std::vector<std::string> summaries, logs, metrics;
  std::string hostile_log;
};

// Per-step verification at a modest rate, so that challenges exist every
// few steps (the default, segments at rate 0.001, would draw few or none).
// MURMUR_HOSTILE_VERIFY_RATE=0 measures the gossip defences alone (clipping,
// value bound, identity): the checks that need challenges are then skipped,
// and the test says so.
std::string verify_rate() {
  const char* e = std::getenv("MURMUR_HOSTILE_VERIFY_RATE");
  return e ? e : "0.05";
}
const std::vector<std::string> run_cfg{"--set", "train.epochs=4", "--set", "train.eval_every=100",
                                       "--set", "verify.rate=" + verify_rate(), "--set", "verify.scheme=step"};

// Starts the honest peers of one run (peer 0 first, the others join through
// it). They start once the n honest peers are live: the clean run has no
// peer H, and the hostile one may come later.
std::vector<pid_t> start_honest(const lan& net, int n) {
  auto cfg = run_cfg;
  cfg.insert(cfg.end(), {"--set", "peer.min_peers=" + std::to_string(n)});
  std::vector<pid_t> pids;
  pids.push_back(net.start(0, n + 1, cfg));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 1; i < n; ++i) pids.push_back(net.start(i, n + 1, cfg));
  return pids;
}

void collect(const lan& net, int n, run_outcome& r) {
  for (int i = 0; i < n; ++i) {
    r.summaries.push_back(fs::exists(net.dir / ("run" + std::to_string(i)) / "summary.json") ? net.summary(i) : "");
    r.logs.push_back(net.log(i));
    r.metrics.push_back(slurp(net.dir / ("run" + std::to_string(i)) / "metrics.jsonl"));
  }
}

// Test accuracy at step `at` from a peer's metrics.jsonl (-1: no such row).
double accuracy_at(const std::string& metrics, uint64_t at) {
  std::stringstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"test_acc\"") != std::string::npos && json_number(line, "step") == static_cast<double>(at))
      return json_number(line, "test_acc");
  return -1;
}

// The honest peers' mean accuracy while all of them still train: at the last
// evaluation at least 100 steps before the end (eval_every = 100). The
// peers finish about a second apart; whoever finishes last trains its final
// steps with the neighbours membership has left it, which may be the
// hostile peer alone (docs/byzantine.md, "Known limits"). That tail is held
// to the per-peer bound on the final accuracy instead.
uint64_t training_eval_step(uint64_t steps_total) { return steps_total < 200 ? 0 : (steps_total - 100) / 100 * 100; }
double mean_accuracy_while_training(const run_outcome& r, uint64_t at) {
  double s = 0;
  for (auto& x : r.metrics) s += accuracy_at(x, at);
  return s / static_cast<double>(r.metrics.size());
}

double mean_final_accuracy(const run_outcome& r) {
  double s = 0;
  for (auto& x : r.summaries) s += json_number(x, "final_test_accuracy");
  return s / static_cast<double>(r.summaries.size());
}

double sum_counter(const run_outcome& r, const std::string& key) {
  double s = 0;
  for (auto& x : r.summaries) s += std::max(0.0, counter(x, key));
  return s;
}

}  // namespace

TEST_CASE("an authorized hostile peer cannot wreck, impersonate or dodge on loopback", "[slow][e2e][lan][hostile]") {
  const int n = honest_count();
  const int h = n;       // the hostile driver's key line, hence its peer index
  const int victim = 1;  // whose identity it claims
  const auto t0 = std::chrono::steady_clock::now();
  lan clean("lan-hostile-clean", n + 1), bad("lan-hostile", n + 1);
  const bool together = n <= 4;
  // The watchdog: every process of both runs is killed past this.
  const auto deadline = t0 + std::chrono::seconds(together ? 170 : 600);

  run_outcome c, b;
  std::vector<pid_t> clean_pids;
  auto run_clean = [&] { clean_pids = start_honest(clean, n); };
  auto finish_clean = [&] {
    c.honest = wait_all(clean_pids, deadline);
    collect(clean, n, c);
  };
  if (together) run_clean();
  else {
    run_clean();
    finish_clean();
  }

  std::vector<pid_t> bad_pids = start_honest(bad, n);
  // Seconds after the hostile peer's join; "1e9" = until the run ends.
  const std::vector<std::string> schedule{"commits:1:1e9", "extreme_once:1", "replay:2:1e9", "claims:3:1e9",
                                          "flood:4:12",    "bounded:6:1e9",  "extreme:10:1e9"};
  std::vector<std::string> args{"--keys",       (bad.dir / ("keys" + std::to_string(h))).string(),
                                "--authorized", (bad.dir / "authorized_peers").string(),
                                "--index",      std::to_string(h),
                                "--listen",     bad.endpoint(h),
                                "--join",       bad.endpoint(0),
                                "--victim",     std::to_string(victim),
                                "--flood-rate", "300",
                                "--bounded-value", "999",  // just inside gossip.max_value (1000 x max(1, max abs x0))
                                "--duration-s", "600",
                                "--log",        (bad.dir / "hostile.json").string()};
  for (auto& p : schedule) args.insert(args.end(), {"--phase", p});
  const pid_t hostile_pid = spawn_hostile(args, bad.dir / "hostile.log");
  b.honest = wait_all(bad_pids, deadline);
  // The driver stops by itself once every honest peer has left; SIGTERM makes
  // sure (it then writes its log and exits 0).
  kill(hostile_pid, SIGTERM);
  b.hostile = wait_all({hostile_pid}, std::chrono::steady_clock::now() + std::chrono::seconds(10))[0];
  collect(bad, n, b);
  b.hostile_log = slurp(bad.dir / "hostile.json");
  if (together) finish_clean();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // What happened, for the report.
  std::cout << "hostile test, " << n << " honest peers + hostile peer " << h << ", " << seconds << " s\n";
  for (int i = 0; i < n; ++i)
    std::cout << "  peer " << i << ": clean " << json_number(c.summaries[static_cast<size_t>(i)], "final_test_accuracy")
              << ", with hostile " << json_number(b.summaries[static_cast<size_t>(i)], "final_test_accuracy") << "\n";
  for (int i = 0; i < n; ++i) {
    const auto& s = b.summaries[static_cast<size_t>(i)];
    auto p = s.find("\"frames_rejected\"");
    std::cout << "  peer " << i << " (hostile run): "
              << (p == std::string::npos ? s : s.substr(p, s.find("\"steps\"") - p)) << "\n";
  }
  std::cout << "  hostile driver: " << b.hostile_log << std::endl;

  // Both runs ran to the end.
  for (int i = 0; i < n; ++i) {
    INFO("clean peer " << i << " log:\n" << c.logs[static_cast<size_t>(i)]);
    CHECK(c.honest[static_cast<size_t>(i)].rc == 0);
  }
  for (int i = 0; i < n; ++i) {
    INFO("peer " << i << " log (hostile run):\n" << b.logs[static_cast<size_t>(i)]);
    CHECK(b.honest[static_cast<size_t>(i)].rc == 0);
  }
  INFO("hostile driver log:\n" << slurp(bad.dir / "hostile.log") << b.hostile_log);
  INFO("hostile driver exit status " << b.hostile.rc << " (-1: killed at the deadline)");
  CHECK(b.hostile.rc == 0);

  // The attack really happened: the driver joined and sent every kind.
  CHECK_THAT(b.hostile_log, Catch::Contains("\"joined\": true"));
  const bool verifying = std::stod(verify_rate()) > 0;
  if (!verifying) WARN("verify.rate = 0: checks of challenges and missed answers skipped");
  for (const char* kind : {"extreme_once", "extreme", "bounded", "claim_join_max_incarnation",
                           "claim_join_next_incarnation", "claim_update_as_victim", "relay_victim_dead",
                           "relay_victim_left", "relay_victim_moved", "relay_victim_is_us", "heartbeat_as_victim",
                           "leave_as_victim", "flood_gossip", "flood_control", "replay_honest_gossip",
                           "replay_honest_control", "replay_own_old_round", "unbacked_commit", "heartbeat"})
    if (verifying || std::string(kind) != "unbacked_commit") CHECK(counter(b.hostile_log, kind) > 0);
  CHECK(counter(b.hostile_log, "flood_gossip") >= 500);
  if (verifying) CHECK(counter(b.hostile_log, "tensor_request") > 0);  // challenges it drew (and never answered)

  // Not wrecked: honest accuracy within 1 point of the clean run while
  // every honest peer trains, and each peer's final model within 2 points.
  const auto steps_total = static_cast<uint64_t>(std::max(0.0, json_number(c.summaries[0], "total_steps")));
  const uint64_t at = training_eval_step(steps_total);
  REQUIRE(at > 0);
  for (int i = 0; i < n; ++i) {
    INFO("peer " << i << " evaluated at step " << at << " of " << steps_total << " (metrics.jsonl)");
    CHECK(json_number(b.summaries[static_cast<size_t>(i)], "steps") == static_cast<double>(steps_total));
    CHECK(accuracy_at(c.metrics[static_cast<size_t>(i)], at) > 0);
    CHECK(accuracy_at(b.metrics[static_cast<size_t>(i)], at) > 0);
  }
  const double clean_acc = mean_accuracy_while_training(c, at), bad_acc = mean_accuracy_while_training(b, at);
  const double clean_final = mean_final_accuracy(c);
  std::cout << "  mean honest accuracy at step " << at << ": clean " << clean_acc << ", with hostile "
            << bad_acc << "; final: clean " << clean_final << ", with hostile " << mean_final_accuracy(b) << "\n";
  CHECK(clean_acc >= 0.75);
  CHECK(bad_acc >= clean_acc - 0.01);
  for (int i = 0; i < n; ++i) CHECK(json_number(b.summaries[static_cast<size_t>(i)], "final_test_accuracy") >= clean_final - 0.02);

  // Nobody honest evicted: from the moment a peer sees every honest peer
  // until the first honest peer's leave (it exits ~0.3 s after it), every
  // honest peer sees every other honest peer.
  int64_t first_exit = INT64_MAX;
  for (auto& f : b.honest) first_exit = std::min(first_exit, f.at_unix_ms);
  const int64_t cutoff = first_exit - 1500;
  for (int i = 0; i < n; ++i) {
    bool formed = false;
    int losses = 0;
    std::string first_loss;
    for (auto& l : live_lines(b.logs[static_cast<size_t>(i)])) {
      bool all = true;
      for (int j = 0; j < n; ++j) all = all && l.live.count(j);
      if (all) formed = true;
      if (formed && !all && l.at < cutoff && losses++ == 0) {
        for (int j = 0; j < n; ++j)
          if (!l.live.count(j)) first_loss += std::to_string(j) + " ";
        first_loss += "at unix_ms " + std::to_string(l.at) + ", " + std::to_string(cutoff - l.at) +
                      " ms before the first honest exit - 1.5 s";
      }
    }
    INFO("peer " << i << " saw honest peers drop " << losses << " time(s) while training; first: peer(s) " << first_loss);
    CHECK(formed);
    CHECK(losses == 0);
  }
  // Not impersonated, not slandered: no honest membership update the driver
  // received named peer 1 with the hostile's key or endpoint, or an honest
  // peer dead/left before the first honest leave.
  CHECK(counter(b.hostile_log, "impersonation_accepted") == 0);
  CHECK(counter(b.hostile_log, "honest_reported_down") == 0);
  CHECK_THAT(b.hostile_log, Catch::Contains("\"victim_incarnation_max\": false"));

  // Only the hostile peer is ever quarantined, and in the clean run nobody.
  for (int i = 0; i < n; ++i) {
    INFO("peer " << i << " (hostile run) quarantined an honest peer");
    for (int q : quarantined(b.summaries[static_cast<size_t>(i)])) CHECK(q == h);
  }
  for (int i = 0; i < n; ++i) {
    INFO("peer " << i << " (clean run) quarantined an honest peer");
    CHECK(quarantined(c.summaries[static_cast<size_t>(i)]).empty());
  }

  // Refusals, counted by reason (summed over the honest peers; only the
  // hostile's ring neighbours take its gossip).
  // Its own old rounds: stale, or refused as quarantined once it is.
  CHECK(sum_counter(b, "stale") + sum_counter(b, "quarantined") > 0);
  CHECK(sum_counter(b, "unknown_sender") > 0);  // honest gossip frames it replayed
  if (verifying) CHECK(sum_counter(b, "challenges") > 0);  // its unbacked commitments were challenged
  // Waiting for features landing on main (issue 10):
  // - per-frame value bound at decode (lead): the 1e30 frames are refused.
  CHECK(sum_counter(b, "out_of_range") > 0);
  // - identity bound to the key (branch identity): the claims are refused and
  //   counted, by kind (before it, only some were, as bad_control_frame).
  CHECK(sum_counter(b, "identity_refused") > 0);
  for (const char* kind : {"join", "update", "record", "heartbeat", "leave"}) {
    double refused = 0;
    for (auto& x : b.summaries) {
      auto p = x.find("\"identity_refused_by_kind\"");
      refused += p == std::string::npos ? 0 : std::max(0.0, counter(x.substr(p), kind));
    }
    INFO("identity claims of kind " << kind << " refused");
    CHECK(refused > 0);
  }
  // - missed-answer evidence (branch dodging): its unanswered challenges are
  //   misses, and its verifiers quarantine it for them.
  if (!verifying) return;
  CHECK(sum_counter(b, "challenges_missed") > 0);
  int quarantined_by = 0;
  for (int i = 0; i < n; ++i) {
    const auto q = quarantined(b.summaries[static_cast<size_t>(i)]);
    quarantined_by += std::count(q.begin(), q.end(), h) > 0;
  }
  CHECK(quarantined_by >= 1);
}
