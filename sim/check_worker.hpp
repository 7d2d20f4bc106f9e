// check_worker: where the simulator's verifiers run their segment checks
// (actors/segment_check_runner.hpp). The simulation is one thread (peers
// take turns on it); a check replays K steps of a neighbour. With a core to
// spare, the worker runs the checks on one thread of its own, in the order
// they came, while the simulation goes on; without one, each runs at once,
// on the simulation's thread. Either way the driver uses a check's result
// only at a virtual time fixed when it started (sim/simulation.cpp: the
// verifier replays at its own step rate), waiting for it if it is not done:
// the run's results do not depend on which, nor on how fast the check ran.
//
// Thread rule (tensor/cpu_threads.hpp): the worker is the only thread
// besides the simulation's, and only when the run has two cores or more to
// itself; its kernels run on that one thread (the replay's model keeps 1).
// A work that throws is rethrown by wait().
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "actors/segment_check_runner.hpp"

namespace murmur {

class check_worker {
 public:
  // threaded: run works on a thread of their own; else inline in submit.
  explicit check_worker(bool threaded);
  ~check_worker();  // finishes the work in progress, drops those not started
  check_worker(const check_worker&) = delete;
  check_worker& operator=(const check_worker&) = delete;

  bool threaded() const { return thread_.joinable(); }
  // Wall time the caller spent blocked in wait and wait_idle (a threaded
  // worker that fell behind the simulation, or replies that came together).
  double waited_s() const { return waited_s_; }
  // Queues work; returns its id (0, 1, 2, ... in submission order).
  uint64_t submit(std::function<void()> work);
  // Blocks until work `id` has returned; rethrows what it threw.
  void wait(uint64_t id);
  // Blocks until every work submitted has returned (errors stay for wait).
  void wait_idle();

 private:
  void loop();
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  uint64_t submitted_ = 0, finished_ = 0;  // works finish in submission order
  std::deque<std::pair<uint64_t, std::exception_ptr>> failed_;
  bool stop_ = false;
  double waited_s_ = 0;  // the caller's only
  std::thread thread_;
};

// A segment_check_runner that hands start to a function (the driver's).
class check_runner_of : public segment_check_runner {
 public:
  using start_fn = std::function<void(uint64_t steps, std::function<void()> work, std::function<void()> ready)>;
  explicit check_runner_of(start_fn f) : f_(std::move(f)) {}
  void start(uint64_t steps, std::function<void()> work, std::function<void()> ready) override {
    f_(steps, std::move(work), std::move(ready));
  }

 private:
  start_fn f_;
};

}  // namespace murmur
