// sweep_runner: runs the simulations of a sweep (sweep_plan) on `jobs`
// threads at once, taking them in the plan's order. Threads, not processes:
// a simulation is one thread already (peers take turns on it; its BLAS and
// oneDNN kernels run on that thread, tensor/cpu_threads.hpp), it keeps its
// own CAF actor_system and writes only its own run directory, so N jobs
// compute on N cores, and the results stay in memory for the table.
// What a run is (run_simulation), and what is printed, is the caller's:
//  - run(i, stop) simulates configuration i on a job's thread and says
//    whether a stop ended it partway; `stop` turns nonzero on a stop signal
//    or when the sweep gives the run up (an earlier one failed);
//  - finished(i) is called on the calling thread as each row finishes, in
//    the order they finish (a row that shares a clean run right after it);
//  - in_order(i) is called on the calling thread once row i and every row
//    before it in the plan's order have finished: sweep.csv's rows.
// A failed run (run throws) ends the sweep as it does one at a time: no run
// starts after it, runs after it in the order are stopped, runs before it
// finish, and its exception is rethrown once the jobs are done (the first
// in the order if several fail). A stop signal stops every run in progress.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <vector>

#include "run/sweep_plan.hpp"

namespace murmur {

// The cores this process may run on (its CPU affinity), at least 1.
size_t cores_given();

// How many runs go at once: `requested` (0: one per core) but no more than
// the cores given, since each run computes on one thread of its own, and no
// more than there are simulations to run.
size_t sweep_jobs(size_t requested, size_t cores, size_t simulations);

// The cores each of `jobs` runs at once may use (run_simulation's cores):
// an equal share, at least 1. A run given one keeps verification's checks
// on its own thread (sim/check_worker.hpp), so N jobs stay on N cores.
size_t cores_per_job(size_t cores, size_t jobs);

struct sweep_job_hooks {
  std::function<bool(size_t i, const std::atomic<int>& stop)> run;
  std::function<void(size_t i)> finished;
  std::function<void(size_t i)> in_order;
};

struct sweep_outcome {
  std::vector<bool> done;      // per configuration: finished (complete or stopped partway)
  bool interrupted = false;    // a stop signal came
  std::vector<size_t> partway; // runs a stop signal ended partway, in the order
};

// Runs the plan's configurations in this process's part (plan.mine).
sweep_outcome run_sweep_jobs(const sweep_plan& plan, size_t jobs, const std::atomic<int>& stop,
                             const sweep_job_hooks& hooks);

}  // namespace murmur
