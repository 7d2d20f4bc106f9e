// RunConfig: every tunable of a run, with its default. One field per config
// key; the key table (name, type, range, documentation) that parses and
// validates TOML into this struct lives in run/config_schema.{hpp,cpp}.
#pragma once
#include <cstdint>
#include <string>

#include "run/default_verification.hpp"

namespace murmur {

struct RunConfig {
  // [run]
  uint64_t seed = 1;                 // run.seed
  int64_t stop_after = 0;            // run.stop_after: stop (as if killed) after this step; 0 = run to the end
  // [data]
  std::string dataset = "fashion-mnist";  // data.dataset: fashion-mnist | synthetic | files
  std::string data_dir = "/usr/share/datasets/fashion-mnist";  // data.dir
  std::string train_features;        // data.train_features: .npy or IDX file (dataset = files)
  std::string train_labels;          // data.train_labels
  std::string test_features;         // data.test_features
  std::string test_labels;           // data.test_labels
  int64_t classes = 0;               // data.classes: 0 = max label + 1 over train and test (dataset = files)
  int64_t train_samples = 0;         // data.train_samples: 0 = all
  int64_t test_samples = 0;          // data.test_samples: 0 = all
  std::string partition = "iid";     // data.partition: iid | dirichlet
  double alpha = 0.5;                // data.alpha (Dirichlet concentration)
  int64_t crop_padding = 0;          // data.crop_padding: random crop of training images, 0 = off
  std::string flip = "none";         // data.flip: none | horizontal
  // [model]
  std::string model = "mlp";         // model.arch: mlp | cnn | layer list
  std::string init_from = "";        // model.init_from: a model file (or run directory) to start from; "" = seeded init
  // [train]
  std::string optimizer = "sgd";     // train.optimizer: sgd | adam
  double epochs = 5;                 // train.epochs (over each peer's shard)
  int64_t batch = 64;                // train.batch (per peer)
  double lr = 0.1;                   // train.lr
  std::string lr_schedule = "cosine";  // train.lr_schedule: constant | cosine
  double momentum = 0.9;             // train.momentum (sgd) / beta1 (adam)
  double weight_decay = 0.0;         // train.weight_decay
  int64_t eval_every = 0;            // train.eval_every: steps per peer; 0 = once per epoch
  int64_t eval_subset = 2000;        // train.eval_subset: test samples per intermediate evaluation; 0 = all
  std::string device = "auto";       // train.device: auto | cpu | cuda | cuda:N (gpu/device_choice.hpp)
  // [gossip]
  std::string mode = "threshold";    // gossip.mode: threshold | dense | local_sgd | delta | allreduce (sim only)
  double threshold = 0.01;           // gossip.threshold (tau)
  double link_tau_exponent = 0.0;    // gossip.link_tau_exponent: per-peer tau from its links (run/link_tau.hpp); 0 = off
  std::string threshold_schedule = "constant";  // gossip.threshold_schedule: constant | lr
  double threshold_power = 1.0;      // gossip.threshold_power: tau x (lr_t / lr_0)^power (schedule lr)
  double threshold_floor = 0.1;      // gossip.threshold_floor: tau never below floor x threshold (schedule lr)
  std::string compressor = "grid";   // gossip.compressor: threshold | grid
  double trigger = 0.0;              // gossip.trigger: send nothing while ||r||^2 < trigger
  int64_t every = 1;                 // gossip.every: gossip round every K local steps
  double gamma = 0.5;                // gossip.gamma: consensus step size
  int64_t max_staleness = 100;       // gossip.max_staleness: rounds; 0 = unbounded
  std::string topology = "ring";     // gossip.topology: ring | torus | exponential | hypercube | random | complete
  std::string gossip_schedule = "all";  // gossip.schedule: all | one_peer
  std::string link_estimates = "fixed";  // gossip.link_estimates: fixed | follow_mix (one_peer)
  std::string publish_at = "before_step";  // gossip.publish: after_step | before_step (with the mixed parameters)
  std::string contribution = "uniform";  // gossip.contribution: uniform | rate | mixing (actors/contribution.hpp)
  int64_t contribution_window = 20;      // gossip.contribution_window: our steps per rate measurement
  int64_t link_period_max = 1;           // gossip.link_period_max: per-link send periods up to this (actors/link_budget.hpp)
  int64_t degree = 4;                // gossip.degree (random d-regular)
  std::string robust = "clipped_gossip";  // gossip.robust: clipped_gossip | none | median | trimmed_mean | krum | centered_clip
  double robust_trim = 0.2;          // gossip.robust_trim: trimmed fraction per end; krum's f = trim * n
  double clip_radius = 0.0;          // gossip.clip_radius: clipping L2 radius; 0 = adaptive
  double clip_scale = 0.5;           // gossip.clip_scale: clipped_gossip radius / lower-median distance
  double max_value = 0.0;            // gossip.max_value: largest accepted magnitude; 0 = from the model's scale
  // [detect]
  std::string detect_method = "none";  // detect.method: none | rank
  int64_t detect_window = 10;        // detect.window: rounds per check
  int64_t detect_span = 1;           // detect.span: ranked changes cover the last span windows
  double detect_threshold = 0.2;     // detect.threshold: rank-feature distance from ours that flags
  int64_t detect_patience = 3;       // detect.patience: consecutive flagged checks before quarantine
  int64_t detect_coords = 8192;      // detect.coords: coordinates ranked; 0 = all
  // [attack]
  std::string attack_kind = "none";  // attack.kind
  double attack_fraction = 0.0;      // attack.fraction of the peers, 0..0.5
  int64_t attack_start_step = 0;     // attack.start_step
  int64_t attack_every = 1;          // attack.every: act every n steps; 0 = once
  std::string attack_placement = "random";  // attack.placement: random | cut
  double attack_scale = 0.0;         // attack.scale: 0 = the attack's default
  double attack_noise = 0.1;         // attack.noise: each attacker's own noise, relative to the honest spread
  double attack_eps = 1e-3;          // attack.eps: size of the perturb cheat
  // [sim]
  int64_t peers = 8;                 // sim.peers
  double latency_ms = 1.0;           // sim.latency_ms (one way, per message)
  double bandwidth_mbps = 1000.0;    // sim.bandwidth_mbps (each peer's uplink); 0 = unlimited
  double loss = 0.0;                 // sim.loss: probability a message is lost
  double speed_spread = 0.0;         // sim.speed_spread: peer i's step costs step_ms * (1 + spread*u_i)
  double step_ms = 0.0;              // sim.step_ms: virtual cost of one step; 0 = model from FLOPs
  double gflops = 50.0;              // sim.gflops: modelled peer speed when step_ms = 0
  std::string slow_peers = "";      // sim.slow_peers: indices of weak peers
  double slow_factor = 8.0;          // sim.slow_factor: their steps cost this many times as much
  std::string link_classes = "";     // sim.link_classes: "home:4,datacenter:4" (run/link_model.hpp)
  std::string link_file = "";        // sim.link_file: per-peer and per-link rates and latencies
  std::string link_events = "";      // sim.link_events: "start_s-end_s:peer:factor,..."
  std::string uplink = "classes";    // sim.uplink: "classes" (by traffic class) or "fifo"
  std::string frames_leave = "step_end";  // sim.frames_leave: when a step's frames enter the uplink
  // [peer] (murmur peer: one process per machine)
  int64_t peer_index = 0;            // peer.index: this process's data shard and peer id
  int64_t peer_count = 1;            // peer.count: how many shards the data is cut into
  std::string keys_dir = "keys";     // peer.keys: directory with peer.key / peer.pub
  std::string authorized_peers = "authorized_peers";  // peer.authorized_peers: allowlist file
  int64_t heartbeat_ms = 250;        // peer.heartbeat_ms
  int64_t suspect_ms = 1500;         // peer.suspect_ms: silence before a peer is suspected
  int64_t dead_ms = 3000;            // peer.dead_ms: further silence before it is dropped
  int64_t donors = 2;                // peer.donors: peers a (re)joining peer pulls state from
  int64_t min_peers = 0;             // peer.min_peers: live peers (itself included) before training; 0 = peer.count
  int64_t start_timeout_ms = 120000; // peer.start_timeout_ms: how long to wait for them (and for a --join contact)
  std::string on_start_timeout = "fail";  // peer.on_start_timeout: fail | start (with the peers present)
  // [net]
  int64_t max_frame_bytes = 64 << 20;  // net.max_frame_bytes
  // [pipeline]
  int64_t stages = 1;                // pipeline.stages: 1 = no pipeline
  std::string split = "";            // pipeline.split: cut points "4,7"; "" = balanced automatically
  int64_t microbatches = 4;          // pipeline.microbatches (M per batch)
  std::string schedule = "1f1b";     // pipeline.schedule: gpipe | 1f1b
  std::string placement = "index";   // pipeline.placement: index | auto (run/stage_placement.hpp)
  int64_t replicas = 1;              // pipeline.replicas (R; stage s gossips with stage s of the others)
  int64_t spares = 0;                // pipeline.spares: peers standing by to take over a dead stage
  int64_t crash_stage = -1;          // pipeline.crash_stage: fault injection; -1 = none
  int64_t crash_replica = 0;         // pipeline.crash_replica
  int64_t crash_step = 0;            // pipeline.crash_step: the stage dies during this step
  // [checkpoint]
  int64_t checkpoint_every = 0;      // checkpoint.every: steps; 0 = no checkpoints
  // [verify]
  double verify_rate = verify_rate_auto;  // verify.rate: auto (run/verification_choice.hpp) | 0 = off | rate
  int64_t verify_rounds = 8;         // verify.rounds (Freivalds)
  int64_t verify_keep_steps = 0;     // verify.keep_steps: 0 = derived (run/verify_timing.hpp)
  double verify_deadline_ms = 0;     // verify.deadline_ms: 0 = derived from the link (run/verify_timing.hpp)
  int64_t verify_max_misses = 3;     // verify.max_misses
  int64_t verify_keep_commits = 4096;  // verify.keep_commits
  std::string verify_scheme = "auto";  // verify.scheme: auto | step | segment
  int64_t verify_segment = default_verify_segment;  // verify.segment: steps per segment (scheme segment)
  // [offload] (docs/trust.md, Offload)
  std::string offload_to = "";       // offload.to: helper index or label; "" = off
  std::string offload_peers = "";    // offload.peers: indices, or "slowest"
  double offload_min_flops = 1e6;    // offload.min_flops: smaller products stay local
  int64_t offload_rounds = 8;        // offload.rounds: Freivalds rounds per answer
  double offload_timeout_ms = 10000; // offload.timeout_ms: murmur peer's wait for an answer; 0 = forever
  std::string offload_cheat = "none";  // offload.cheat: none | perturb | skip_product (the helper cheats)
};

}  // namespace murmur
