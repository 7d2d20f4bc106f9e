// segment_recorder: one peer's segment_log (verify.scheme = segment), fed
// by two actors: the gossip actor records every gossip state change
// (receive, on_sent, mix, publish, quarantine) and the shard actor every
// step, which closes a segment every K steps by hashing the trainer and the
// gossip state. The mutex orders the two: a boundary is taken while no
// frame is being applied, and each record follows its state change
// atomically. (The trainer needs no lock: it is the shard actor's, and mix
// and publish run while the shard actor waits for them.)
#pragma once
#include <memory>
#include <chrono>
#include <condition_variable>
#include <stdexcept>
#include <mutex>

#include "actors/segment_log.hpp"

namespace murmur {

class segment_recorder {
 public:
  // step_digests: also hash the state after every step (the prover's
  // answers to a bisection; segment_log); store: where the boundary states
  // go (null: memory).
  segment_recorder(uint64_t steps_per_segment, bool step_digests, std::shared_ptr<boundary_store> store = nullptr)
      : log_(steps_per_segment, step_digests, std::move(store)) {}
  // By the gossip actor once its gossip state exists (the trainer idle):
  // opens the first segment (segment_log::start's errors).
  void start(const trainer& t, const gossip_state& g) {
    {
      std::lock_guard lock(mu_);
      log_.start(t, g);
      g_ = &g;
    }
    started_.notify_all();
  }
  // The gossip actor holds this around each state change and its record.
  std::unique_lock<std::mutex> lock() { return std::unique_lock(mu_); }
  segment_log& log() { return log_; }  // under lock()
  // By the shard actor after each step: the segment it closed, or null.
  // (Waits for start(): the gossip actor may initialise on another thread.)
  std::shared_ptr<const segment> stepped(const trainer& t) {
    std::unique_lock lock(mu_);
    if (!started_.wait_for(lock, std::chrono::seconds(60), [this] { return g_ != nullptr; }))
      throw std::logic_error("segment_recorder: a step recorded before the gossip actor opened the first segment");
    const size_t before = log_.boundaries().size();
    log_.stepped(t, *g_);
    return log_.boundaries().size() > before ? log_.closed_shared() : nullptr;
  }

 private:
  std::mutex mu_;
  std::condition_variable started_;
  segment_log log_;
  const gossip_state* g_ = nullptr;
};

}  // namespace murmur
