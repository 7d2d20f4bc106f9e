// Settings a peer's actors need, derived from the run config by whoever
// spawns them (the simulation or a LAN peer process). Plain data, no CAF.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace murmur {

enum class gossip_mode : uint8_t { threshold, dense, local_sgd, delta };

struct gossip_settings {
  gossip_mode mode = gossip_mode::threshold;
  double threshold = 1e-3;   // tau; 0 sends every coordinate
  bool grid = false;         // publish values rounded to a shared tau-grid
  double trigger = 0.0;      // send nothing while ||x - x_hat||^2 < trigger
  double gamma = 0.5;        // consensus step size
  // A neighbour not heard from for this many of our rounds is left out of
  // mixing (a paused, joining or slow peer must not hold the others back);
  // 0 = never. Silent peers send an empty keepalive every keepalive_rounds.
  uint64_t max_staleness = 100;
  uint64_t keepalive_rounds = 10;
  size_t max_frame_bytes = 64u << 20;
};

struct train_settings {
  std::string optimizer = "sgd";
  double lr = 0.1;
  bool cosine = true;
  double momentum = 0.9;
  double weight_decay = 0.0;
  int64_t batch = 64;
  int64_t total_steps = 1;   // for the learning-rate schedule
  int64_t gossip_every = 1;  // mix/publish every K local steps
  uint64_t data_seed = 0;    // batch order
  uint64_t init_seed = 0;    // model init: the SAME for every peer
};

struct peer_settings {
  uint32_t id = 0;
  uint32_t peer_count = 1;
  std::vector<uint32_t> neighbours;  // who we publish to and mix with
  std::string model;                 // model spec for build_model
  gossip_settings gossip;
  train_settings train;
};

}  // namespace murmur
