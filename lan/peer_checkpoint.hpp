// The data-parallel LAN peer's checkpoint: RUN_DIR/checkpoints/peer-N.ckpt,
// the checkpoint file format (protocols/checkpoint_file.hpp) and the path
// the simulation uses, written atomically. Extra values: the trainer's own
// (trainer::checkpoint_extra: schedule length, batch position, train-loss
// mean), then this host's: the peer's gossip bytes and messages sent and
// received, and its training wall time, so that a resumed peer's counters
// and metrics.jsonl's wall_s continue where they stopped. (A simulated
// peer's checkpoint carries virtual times instead; each host refuses the
// other's by the count of extra values.)
// Write it only between the peer's cycles: its parameters are then read by
// nobody else (shard_actor.cpp: state transfers only read them).
#pragma once
#include <cstdint>
#include <string>

#include "actors/trainer.hpp"
#include "protocols/checkpoint_file.hpp"

namespace murmur {

struct peer_checkpoint_counters {
  uint64_t bytes_sent = 0, msgs_sent = 0, bytes_received = 0, msgs_received = 0;
  double wall_s = 0;  // training wall time so far, earlier runs of this peer included
};

std::string peer_checkpoint_path(const std::string& run_dir, uint32_t peer);

// Throws checkpoint_error naming the file.
void write_peer_checkpoint(const std::string& run_dir, const trainer& t, uint32_t peer, uint64_t seed,
                           const peer_checkpoint_counters& counters);

// Reads run_dir's checkpoint of `peer` and checks what the trainer cannot
// (kind, whose, the seed, this host's extra values); trainer::restore checks
// the rest. Throws checkpoint_error naming the file and the problem.
struct peer_resume_point {
  checkpoint state;
  peer_checkpoint_counters counters;
};
peer_resume_point read_peer_checkpoint(const std::string& run_dir, uint32_t peer, uint64_t seed);

}  // namespace murmur
