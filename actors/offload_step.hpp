// offload_step: a trainer's step whose large Linear products are computed
// by a helper peer. The step runs on a thread of its own; at each product
// of at least min_flops it stops and yields the product as a matmul_job,
// which the shard actor sends through its verifier (verifier_actor.hpp:
// the helper's answer is Freivalds-checked there, a wrong one is recomputed
// locally and the helper quarantined) and passes the outcome to resume().
// The actor thread and the step thread never run at once: start() and
// resume() hand control over and wait until the step yields its next job or
// finishes, so a run is exactly as deterministic as an all-local one.
// After a wrong answer or a timeout the helper is no longer trusted: every
// later product runs locally. Products below min_flops, and all products
// outside a step (evaluation), run locally as before.
// Between start() and the yield with done = true the model is mid-step
// (layer caches hold the step's activations): nobody else may use it.
#pragma once
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "actors/trainer.hpp"
#include "actors/verifier_actor.hpp"

namespace murmur {

struct offload_plan {
  uint32_t helper = 0;    // the peer that computes the products
  double min_flops = 0;   // products of fewer FLOPs (2 m n k) run locally
  int rounds = 8;         // Freivalds rounds per answer (the verifier's; for the cost model)
  double timeout_s = 0;   // an answer not back by then is computed locally, and offloading stops; 0 = wait
};

// FLOPs are 2 m n k per product; check_flops is the Freivalds work on the
// answers, (rounds + 1) * 2 (mk + kn + mn) each (the norms, then each round).
struct offload_counters {
  uint64_t steps = 0, offloaded = 0, verified = 0, rejected = 0, timed_out = 0, local = 0;
  double verified_flops = 0;  // products the helper computed correctly
  double rejected_flops = 0;  // products it answered wrongly (recomputed here by the verifier)
  double local_flops = 0;     // products run here: small ones, timed out ones, after distrust
  double check_flops = 0;
  void add(const offload_counters& o);
};

class offload_step {
 public:
  offload_step(std::shared_ptr<trainer> t, offload_plan p);
  ~offload_step();
  offload_step(const offload_step&) = delete;
  offload_step& operator=(const offload_step&) = delete;

  struct yield {
    std::shared_ptr<const matmul_job> job;  // the product to hand out (done = false)
    bool done = false;                      // the step has finished: loss is its loss
    float loss = 0;
  };
  // Begins the next step; rethrows what the step threw.
  yield start();
  // The outcome for the job last yielded (null: no answer in time).
  yield resume(const matmul_outcome* outcome);

  const offload_plan& plan() const { return plan_; }
  bool helper_trusted() const { return trusted_; }
  const offload_counters& last() const { return last_; }    // the last finished step
  const offload_counters& total() const { return total_; }  // over all steps

 private:
  class route;
  void loop();
  void on_product(const product_call& p);
  yield hand_over();

  std::shared_ptr<trainer> t_;
  offload_plan plan_;
  std::unique_ptr<route> route_;
  bool trusted_ = true;
  offload_counters cur_, last_, total_;
  std::mutex m_;
  std::condition_variable cv_;
  bool step_turn_ = false, quit_ = false, done_ = false;
  float loss_ = 0;
  std::shared_ptr<const matmul_job> job_;
  const matmul_outcome* answer_ = nullptr;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace murmur
