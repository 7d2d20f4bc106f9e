#include "run/sweep_runner.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

namespace murmur {

size_t cores_given() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::max(1u, std::thread::hardware_concurrency());
  return static_cast<size_t>(std::max(1, CPU_COUNT(&set)));
}

size_t sweep_jobs(size_t requested, size_t cores, size_t simulations) {
  size_t n = requested == 0 ? cores : requested;
  n = std::min(n, std::max<size_t>(cores, 1));
  n = std::min(n, std::max<size_t>(simulations, 1));
  return std::max<size_t>(n, 1);
}

size_t cores_per_job(size_t cores, size_t jobs) { return std::max<size_t>(1, cores / std::max<size_t>(jobs, 1)); }

namespace {

struct finished_run {
  size_t i;
  bool partway;
  std::exception_ptr error;
};

}  // namespace

sweep_outcome run_sweep_jobs(const sweep_plan& plan, size_t jobs, const std::atomic<int>& stop,
                             const sweep_job_hooks& hooks) {
  const size_t n = plan.runs.size();
  std::vector<size_t> pos(n), rows, tasks;  // position in the order; this part's rows and simulations, in order
  for (size_t p = 0; p < plan.order.size(); ++p) {
    const size_t i = plan.order[p];
    pos[i] = p;
    if (!plan.mine[i]) continue;
    rows.push_back(i);
    if (plan.same_as[i] == i) tasks.push_back(i);
  }
  jobs = std::max<size_t>(1, std::min(jobs, tasks.size()));

  std::vector<std::atomic<int>> run_stop(n);  // each run's stop flag
  std::mutex mu;
  std::condition_variable cv;
  std::deque<finished_run> events;
  std::set<size_t> running;
  size_t next_task = 0, active = jobs;
  bool halt = false;  // no run starts any more

  auto worker = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard lk(mu);
        if (halt || stop.load() != 0 || next_task == tasks.size()) {
          --active;
          cv.notify_all();
          return;
        }
        i = tasks[next_task++];
        running.insert(i);
      }
      finished_run f{i, false, nullptr};
      try {
        f.partway = hooks.run(i, run_stop[i]);
      } catch (...) {
        f.error = std::current_exception();
      }
      {
        std::lock_guard lk(mu);
        running.erase(i);
        halt = halt || f.error;  // one at a time, no run would start after it
        events.push_back(std::move(f));
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(jobs);
  for (size_t j = 0; j < jobs; ++j) threads.emplace_back(worker);

  sweep_outcome out;
  out.done.assign(n, false);
  size_t failed_at = plan.order.size();  // position of the first failed run in the order
  std::exception_ptr failure;
  size_t emitted = 0;  // rows handed to in_order
  auto emit_ready = [&] {
    while (emitted < rows.size() && out.done[rows[emitted]]) hooks.in_order(rows[emitted++]);
  };
  for (bool last = false; !last;) {
    std::deque<finished_run> now;
    {
      std::unique_lock lk(mu);
      // Wakes for a finished run, the last job's end, or every 50 ms to look at the stop flag.
      cv.wait_for(lk, std::chrono::milliseconds(50), [&] { return !events.empty() || active == 0; });
      now.swap(events);
      last = active == 0;
      if (const int sig = stop.load(); sig != 0 && !out.interrupted) {
        out.interrupted = true;
        halt = true;
        for (size_t i : running) run_stop[i].store(sig);
      }
      for (const auto& f : now)
        if (f.error && pos[f.i] < failed_at) {
          failed_at = pos[f.i];
          failure = f.error;
          halt = true;
          for (size_t i : running)
            if (pos[i] > failed_at) run_stop[i].store(1);  // given up: one at a time it would not have started
        }
    }
    for (const auto& f : now) {
      if (f.error || pos[f.i] > failed_at) continue;
      out.done[f.i] = true;
      hooks.finished(f.i);
      if (f.partway) {
        out.partway.push_back(f.i);
        continue;
      }
      for (size_t i : rows)
        if (plan.same_as[i] == f.i && i != f.i) {
          out.done[i] = true;
          hooks.finished(i);
        }
    }
    emit_ready();
  }
  for (auto& t : threads) t.join();
  // Rows after a gap (a shared clean row whose run a stop ended partway) still go in, in order; none after a failure.
  for (; emitted < rows.size(); ++emitted)
    if (pos[rows[emitted]] < failed_at && out.done[rows[emitted]]) hooks.in_order(rows[emitted]);
  if (failure) std::rethrow_exception(failure);
  std::sort(out.partway.begin(), out.partway.end(), [&](size_t a, size_t b) { return pos[a] < pos[b]; });
  return out;
}

}  // namespace murmur
