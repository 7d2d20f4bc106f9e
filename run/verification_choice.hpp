// Which verification a run applies, decided once when it starts, the same
// way for murmur sim, sweep and peer. Contract:
//  - segment_obstacle_of is the one predicate saying why the segment scheme
//    cannot run a config (pipeline, cuda, detect.method, update attacks,
//    offload, gossip.schedule = one_peer, gossip.link_tau_exponent); extend it there. It reads the config only: murmur sim,
//    sweep and peer choose alike (a peer replays on a replay actor of its
//    own), and validate_config refuses with it too.
//  - verify.rate = auto (the default): default_verify_rate with the segment
//    scheme where no obstacle stands; off, with the obstacle as the reason,
//    where one does; off too with verify.scheme = step (set a rate for
//    steps), and where train.device = auto would train on a GPU (segment
//    replays run on the CPU; verify.scheme = segment keeps such a run on it).
//  - An explicit rate is honoured: rate 0 is off; with verify.scheme = auto
//    a rate > 0 runs segments where they can run, else steps.
//  - verify.scheme = segment where an obstacle stands throws ConfigError
//    naming it (the user asked for segments).
//  - with_verification gives the config the run then reads: verify.rate
//    and verify.scheme resolved (rate 0 when off). The run directory's
//    config.toml keeps the requested "auto", so that --resume decides anew.
//  - --resume is no obstacle (segment_obstacle_of): a resumed run verifies
//    as a fresh one does.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "run/run_config.hpp"

namespace murmur {

// What stops the segment scheme: the setting ("pipeline.stages = 2") and why.
struct segment_obstacle {
  std::string setting, why;
};
std::optional<segment_obstacle> segment_obstacle_of(const RunConfig& c);

struct verification_choice {
  std::string scheme = "off";  // "off" | "step" | "segment"
  double rate = 0;
  int64_t segment_steps = 0;   // K (segment scheme)
  bool by_default = false;     // verify.rate = auto chose this
  std::string off_reason;      // when off: "pipeline.stages = 2: segments are for data-parallel peers"

  bool on() const { return scheme != "off"; }
  // One line for the run's output: "verification: segment scheme, rate 0.005, ..."
  // or "verification off: <why>".
  std::string line() const;
  // summary.json's "verify" object.
  std::string json() const;
};

verification_choice choose_verification(const RunConfig& c);
RunConfig with_verification(RunConfig c, const verification_choice& v);

}  // namespace murmur
