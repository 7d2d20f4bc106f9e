// run/sweep_plan and run/sweep_runner without simulations: the order rows
// go in, which clean runs share one, the parts of a sweep over machines, and
// N runs at once handing rows back in the plan's order, stopping the runs
// after a failure, passing a stop signal on.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "run/sweep_plan.hpp"
#include "run/sweep_runner.hpp"

using namespace murmur;

namespace {

const std::string kSmoke = std::string(MURMUR_SOURCE_DIR) + "/configs/synthetic-smoke.toml";

// n configurations run in index order, none sharing.
sweep_plan plain_plan(size_t n) {
  sweep_plan p;
  p.keys = {"k"};
  for (size_t i = 0; i < n; ++i) {
    p.values.push_back({std::to_string(i)});
    p.names.push_back("k=" + std::to_string(i));
    p.order.push_back(i);
    p.same_as.push_back(i);
  }
  p.runs.resize(n);
  p.mine.assign(n, true);
  return p;
}

// Waits (bounded) until `flag` holds; false if it never did.
template <class F>
bool eventually(F flag) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!flag()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

TEST_CASE("sweep_plan: clean runs first, clean runs that differ in attack keys alone share one, parts",
          "[sweep_jobs]") {
  const std::vector<swept_key> params{parse_swept_key("attack.kind=sign_flip,none"),
                                      parse_swept_key("attack.fraction=0.25,0.5")};
  const sweep_plan p = make_sweep_plan(kSmoke, params, {}, {});
  REQUIRE(p.runs.size() == 4);
  CHECK(p.names[0] == "attack.kind=sign_flip,attack.fraction=0.25");
  CHECK(p.order == std::vector<size_t>{2, 3, 0, 1});
  CHECK(p.same_as == std::vector<size_t>{0, 1, 2, 2});
  CHECK(p.mine == std::vector<bool>{true, true, true, true});
  CHECK(clean_run_of(p.keys, p.values, 1) == std::optional<size_t>(2));
  // Three simulations in the order 2, 0, 1: part 0 of 2 runs 2 (and 3, which shares it) and 1.
  const sweep_plan part0 = make_sweep_plan(kSmoke, params, {}, parse_sweep_part("0/2"));
  CHECK(part0.mine == std::vector<bool>{false, true, true, true});
  const sweep_plan part1 = make_sweep_plan(kSmoke, params, {}, parse_sweep_part("1/2"));
  CHECK(part1.mine == std::vector<bool>{true, false, false, false});
  CHECK_THROWS_WITH(make_sweep_plan(kSmoke, {parse_swept_key("train.lr=0.1,0.2,0.1")}, {}, {}),
                    Catch::Contains("lists '0.1' twice"));
}

TEST_CASE("sweep --part and --jobs values are parsed or refused by name", "[sweep_jobs]") {
  CHECK(parse_sweep_part("0/1").m == 1);
  CHECK(parse_sweep_part("3/4").k == 3);
  for (const char* bad : {"", "1", "/", "1/", "/2", "2/2", "0/0", "-1/2", "1/-2", "a/2", "1/2/3", " 1/2", "1.0/2"})
    CHECK_THROWS_WITH(parse_sweep_part(bad), Catch::Contains("--part needs K/M"));
  CHECK(sweep_jobs(1, 8, 4) == 1);
  CHECK(sweep_jobs(0, 8, 4) == 4);   // no more than the simulations
  CHECK(sweep_jobs(0, 2, 4) == 2);   // one per core
  CHECK(sweep_jobs(4, 2, 4) == 2);   // never two runs on one core
  CHECK(sweep_jobs(2, 1, 0) == 1);
  CHECK(cores_given() >= 1);
}

// The hooks' run() goes on the runner's threads: no Catch2 assertion there
// (Catch2 is not thread-safe), only flags checked afterwards.
TEST_CASE("run_sweep_jobs: two at once, rows handed back in the plan's order", "[sweep_jobs]") {
  sweep_plan p = plain_plan(4);
  std::atomic<int> stop{0};
  std::atomic<bool> zero_started{false}, one_done{false}, zero_waited{false}, one_waited{false};
  std::vector<size_t> finished, in_order;
  std::atomic<int> at_once{0}, most_at_once{0};
  sweep_job_hooks h;
  h.run = [&](size_t i, const std::atomic<int>&) {
    const int now = ++at_once;
    for (int m = most_at_once; now > m && !most_at_once.compare_exchange_weak(m, now);) {
    }
    if (i == 0) {
      zero_started = true;
      zero_waited = eventually([&] { return one_done.load(); });  // run 0 ends after run 1
    }
    if (i == 1) {
      // Run 1 ends only once run 0 has begun: on a loaded machine run 0's
      // thread may start late, and run 1 would otherwise be done before it.
      one_waited = eventually([&] { return zero_started.load(); });
      one_done = true;
    }
    --at_once;
    return false;
  };
  h.finished = [&](size_t i) { finished.push_back(i); };
  h.in_order = [&](size_t i) { in_order.push_back(i); };
  const sweep_outcome o = run_sweep_jobs(p, 2, stop, h);
  CHECK(zero_waited);
  CHECK(one_waited);
  CHECK(most_at_once == 2);
  REQUIRE(finished.size() == 4);
  CHECK(finished[0] == 1);
  CHECK(in_order == std::vector<size_t>{0, 1, 2, 3});
  CHECK_FALSE(o.interrupted);
  CHECK(o.done == std::vector<bool>{true, true, true, true});
}

TEST_CASE("run_sweep_jobs: a failed run stops those after it, those before it finish, its error comes back",
          "[sweep_jobs]") {
  sweep_plan p = plain_plan(5);
  std::atomic<int> stop{0};
  std::atomic<bool> two_started{false}, waits{true}, two_stopped{false};
  std::vector<size_t> in_order;
  std::atomic<int> started{0};
  sweep_job_hooks h;
  h.run = [&](size_t i, const std::atomic<int>& run_stop) {
    ++started;
    if (i == 0) {
      // Run 0 outlasts the failure of run 1 and still counts.
      if (!eventually([&] { return two_started.load(); })) waits = false;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return false;
    }
    if (i == 1) {
      if (!eventually([&] { return two_started.load(); })) waits = false;
      throw std::runtime_error("run 1 failed");
    }
    if (i == 2) {
      two_started = true;
      two_stopped = eventually([&] { return run_stop.load() != 0; });  // given up once run 1 failed
      return true;
    }
    return false;
  };
  h.finished = [](size_t) {};
  h.in_order = [&](size_t i) { in_order.push_back(i); };
  CHECK_THROWS_WITH(run_sweep_jobs(p, 3, stop, h), "run 1 failed");
  CHECK(waits);
  CHECK(two_stopped);
  CHECK(started == 3);  // runs 3 and 4 never started
  CHECK(in_order == std::vector<size_t>{0});
}

TEST_CASE("run_sweep_jobs: a stop signal reaches every run in progress; shared rows follow their run",
          "[sweep_jobs]") {
  sweep_plan p = plain_plan(4);
  p.same_as = {0, 0, 2, 3};  // row 1 shares row 0's run
  std::atomic<int> stop{0};
  std::atomic<int> running{0}, signalled{0};
  std::vector<size_t> finished, in_order;
  sweep_job_hooks h;
  h.run = [&](size_t i, const std::atomic<int>& run_stop) {
    if (i == 0) return false;
    ++running;
    if (eventually([&] { return run_stop.load() == 15; })) ++signalled;
    return true;
  };
  h.finished = [&](size_t i) {
    finished.push_back(i);
    if (i == 1 && eventually([&] { return running.load() == 2; })) stop = 15;  // SIGTERM, both runs started
  };
  h.in_order = [&](size_t i) { in_order.push_back(i); };
  const sweep_outcome o = run_sweep_jobs(p, 2, stop, h);
  CHECK(o.interrupted);
  CHECK(signalled == 2);
  REQUIRE(finished.size() == 4);
  CHECK(finished[0] == 0);
  CHECK(finished[1] == 1);
  CHECK(o.partway == std::vector<size_t>{2, 3});
  CHECK(in_order == std::vector<size_t>{0, 1, 2, 3});
}
