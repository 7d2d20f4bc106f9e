// The key table and the generic code that parses, sets, prints and documents
// RunConfig through it. Each key appears exactly once, in kTable below.
#include "run/config_schema.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <variant>

#include <toml++/toml.h>

#include "gpu/device_choice.hpp"
#include "run/key_usage.hpp"
#include "run/link_model.hpp"
#include "run/verification_choice.hpp"

namespace murmur {
namespace {

// ---------------------------------------------------------------- the table

// One side of a numeric range.
struct Bound {
  enum Kind : uint8_t { None, Incl, Excl } kind = None;
  double v = 0;
};
constexpr Bound unbounded{};
constexpr Bound ge(double v) { return {Bound::Incl, v}; }  // lower, inclusive
constexpr Bound gt(double v) { return {Bound::Excl, v}; }  // lower, exclusive
constexpr Bound le(double v) { return {Bound::Incl, v}; }  // upper, inclusive
constexpr Bound lt(double v) { return {Bound::Excl, v}; }  // upper, exclusive

using Field = std::variant<uint64_t RunConfig::*, int64_t RunConfig::*, double RunConfig::*,
                           std::string RunConfig::*>;

enum class Kind { Int, Float, String, Enum };

struct KeyDef {
  std::string name;                  // "section.key"
  Field field;                       // where the value lives in RunConfig
  Bound lo, hi;                      // numeric keys
  std::vector<std::string> choices;  // enum keys; empty otherwise
  bool non_empty = false;            // string keys
  std::string doc;                   // one line
  // Float keys that also take the word "auto" (a choice made when the run
  // starts): stored as this value, which lies outside the key's range.
  std::optional<double> auto_value;

  Kind kind() const {
    switch (field.index()) {
      case 0:
      case 1: return Kind::Int;
      case 2: return Kind::Float;
      default: return choices.empty() ? Kind::String : Kind::Enum;
    }
  }
  std::string section() const { return name.substr(0, name.find('.')); }
};

KeyDef num(std::string name, Field f, Bound lo, Bound hi, std::string doc) {
  return {std::move(name), f, lo, hi, {}, false, std::move(doc), std::nullopt};
}
// A float key that also takes "auto", stored as auto_value.
KeyDef num_or_auto(std::string name, double RunConfig::*f, double auto_value, Bound lo, Bound hi, std::string doc) {
  KeyDef d = num(std::move(name), f, lo, hi, std::move(doc));
  d.auto_value = auto_value;
  return d;
}
KeyDef choice(std::string name, std::string RunConfig::*f, std::vector<std::string> values,
              std::string doc) {
  return {std::move(name), f, {}, {}, std::move(values), false, std::move(doc), std::nullopt};
}
KeyDef text(std::string name, std::string RunConfig::*f, bool non_empty, std::string doc) {
  return {std::move(name), f, {}, {}, {}, non_empty, std::move(doc), std::nullopt};
}

// A constant in a doc line: 0.005, 64.
std::string number_text(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

const std::vector<KeyDef>& table() {
  using R = RunConfig;
  static const std::vector<KeyDef> t = {
      num("run.seed", &R::seed, ge(0), unbounded,
          "Master random seed of the run"),
      num("run.stop_after", &R::stop_after, ge(0), unbounded,
          "Stop the run after this step, as if it were killed (to test --resume; murmur peer: this peer stops); 0 = run to the end"),

      choice("data.dataset", &R::dataset, {"fashion-mnist", "synthetic", "files"},
             "Training data set; files = the four data.train_* / data.test_* files"),
      text("data.dir", &R::data_dir, false, "Directory holding the Fashion-MNIST files (dataset = fashion-mnist)"),
      text("data.train_features", &R::train_features, false,
           "dataset = files: training inputs, .npy (float32 or uint8; [N,C,H,W], [N,H,W] or [N,D]) or IDX "
           "images, raw or gzipped; uint8 is scaled by 1/255"),
      text("data.train_labels", &R::train_labels, false,
           "dataset = files: training labels, .npy (any integer dtype, shape [N]) or IDX labels"),
      text("data.test_features", &R::test_features, false,
           "dataset = files: test inputs, same sample shape as data.train_features"),
      text("data.test_labels", &R::test_labels, false, "dataset = files: test labels"),
      num("data.classes", &R::classes, ge(0), le(1 << 24),
          "dataset = files: number of classes; 0 = max label + 1 over train and test"),
      num("data.train_samples", &R::train_samples, ge(0), unbounded,
          "Training samples to use; 0 = all"),
      num("data.test_samples", &R::test_samples, ge(0), unbounded, "Test samples to use; 0 = all"),
      choice("data.partition", &R::partition, {"iid", "dirichlet"},
             "How the training samples are split across peers"),
      num("data.alpha", &R::alpha, gt(0), unbounded,
          "Dirichlet concentration for partition = dirichlet (smaller = more skewed)"),
      num("data.crop_padding", &R::crop_padding, ge(0), le(1 << 16),
          "Augmentation: pad training images by P zero pixels and crop back at a random offset "
          "(torchvision RandomCrop(padding=P)); 0 = off"),
      choice("data.flip", &R::flip, {"none", "horizontal"},
             "Augmentation: flip training images left-right with probability 1/2 (RandomHorizontalFlip)"),

      text("model.arch", &R::model, true,
           "Model: mlp, cnn, resnet9[:WIDTH] or a layer list (checked by the model builder; docs/models.md)"),
      text("model.init_from", &R::init_from, false,
           "Start from these weights instead of the seeded init: a model file (.safetensors, as runs write and murmur export writes) or a run directory; it must hold exactly model.arch's tensors; \"\" = seeded init"),

      choice("train.optimizer", &R::optimizer, {"sgd", "adam"}, "Local optimizer"),
      num("train.epochs", &R::epochs, gt(0), le(1000), "Epochs over each peer's shard"),
      num("train.batch", &R::batch, ge(1), le(65536), "Mini-batch size per peer"),
      num("train.lr", &R::lr, gt(0), le(10), "Learning rate (the peak for cosine)"),
      choice("train.lr_schedule", &R::lr_schedule, {"constant", "cosine"},
             "Learning-rate schedule"),
      num("train.momentum", &R::momentum, ge(0), lt(1), "SGD momentum / Adam beta1"),
      num("train.weight_decay", &R::weight_decay, ge(0), lt(1), "L2 weight decay"),
      num("train.eval_every", &R::eval_every, ge(0), unbounded,
          "Evaluate every N steps per peer; 0 = once per epoch"),
      num("train.eval_subset", &R::eval_subset, ge(0), unbounded,
          "murmur sim: test samples each intermediate evaluation uses, the same window for every peer, moving on "
          "by this many samples each time (0 = the whole test set). The final evaluation (summary.json) always "
          "uses the whole test set. 2000 costs a fifth of a full pass on Fashion-MNIST's 10000 and leaves "
          "about 0.8 points of sampling noise per evaluation"),
      text("train.device", &R::device, true,
           "Where each peer trains: auto (a GPU when one is usable, peer i on GPU i mod count; else the CPU), "
           "cpu, cuda (peer i on GPU i mod count) or cuda:N; cuda with no usable GPU is an error saying why. "
           "Offloading peers "
           "(offload.peers) train on the CPU (murmur peer: cuda there is an error); a GPU helper answers on the GPU. "
           "verify.scheme = segment replays on the CPU: auto takes the CPU there, cuda is refused (the default "
           "verification, verify.rate = auto, stays off on a GPU instead)"),

      choice("gossip.mode", &R::mode, {"threshold", "dense", "local_sgd", "delta", "allreduce"},
             "Gossip protocol; allreduce (murmur sim only) is the synchronous baseline: every step all peers "
             "average exactly by a ring all-reduce, each round waiting for the slowest peer and the ring's slowest "
             "link (docs/wan.md)"),
      num("gossip.threshold", &R::threshold, ge(0), unbounded, "Sparsification threshold tau"),
      num("gossip.link_tau_exponent", &R::link_tau_exponent, ge(0), le(4),
          "murmur sim, gossip.mode = threshold: peer i publishes with tau x (r_max / r_i)^exponent, r_i the slowest "
          "rate from i to a neighbour (its uplink, a link's cap, the neighbour's downlink; sim.link_*), r_max the "
          "fastest such rate of any peer: peers on slow links send fewer, coarser updates (docs/wan.md); 0 = the same "
          "tau for every peer"),
      choice("gossip.threshold_schedule", &R::threshold_schedule, {"constant", "lr"},
             "gossip.mode = threshold: constant: every publish uses gossip.threshold; lr (train.lr_schedule = "
             "cosine): a publish at step t uses tau x max(gossip.threshold_floor, (lr_t / lr_0)^gossip.threshold_power), "
             "so the dead band (disagreements below ~tau are never sent) shrinks with the steps late in training "
             "(a grid frame carries its scale: the ends of a link need not agree on tau) (docs/gossip_schedule.md)"),
      num("gossip.threshold_power", &R::threshold_power, gt(0), le(4),
          "gossip.threshold_schedule = lr: the exponent p of tau x (lr_t / lr_0)^p"),
      num("gossip.threshold_floor", &R::threshold_floor, gt(0), le(1),
          "gossip.threshold_schedule = lr: tau never falls below this fraction of gossip.threshold (the cosine lr "
          "reaches 0; a tau of 0 would send every coordinate)"),
      choice("gossip.compressor", &R::compressor, {"threshold", "grid"},
             "threshold: send |x - x_hat| >= tau exactly; grid: send |x - x_hat| >= 0.75 tau rounded to a shared tau-grid (1-byte values)"),
      num("gossip.trigger", &R::trigger, ge(0), unbounded,
          "Send nothing while the residual's squared norm ||r||^2 < trigger"),
      num("gossip.every", &R::every, ge(1), unbounded, "A gossip round every K local steps"),
      num("gossip.gamma", &R::gamma, gt(0), le(1), "Consensus step size"),
      num("gossip.max_staleness", &R::max_staleness, ge(0), unbounded,
          "Leave a neighbour out of mixing when not heard from for this many of our rounds (0 = never)"),
      choice("gossip.topology", &R::topology, {"ring", "torus", "exponential", "hypercube", "random", "complete"},
             "Peer graph (hypercube: i and i XOR 2^k, for ids below the peer count)"),
      choice("gossip.schedule", &R::gossip_schedule, {"all", "one_peer"},
             "all: every neighbour every round; one_peer (needs topology = hypercube): round r pairs i with "
             "i XOR 2^(r mod log2 n), one public estimate per link, pairwise mixing x += gamma/2 (x_j - x_i) "
             "(docs/gossip_schedule.md)"),
      choice("gossip.link_estimates", &R::link_estimates, {"fixed", "follow_mix"},
             "gossip.schedule = one_peer, gossip.robust = none: fixed: a link's two public estimates change only by "
             "its frames; follow_mix: a pair's mix also moves both estimates by its correction (both ends compute "
             "it), so a correction is applied once instead of again each round until a frame catches up (a link's "
             "pair is mixed once both its frames are here and the link sends nothing new until then, so late frames "
             "do not put the two copies apart) (docs/gossip_schedule.md)"),
      choice("gossip.publish", &R::publish_at, {"after_step", "before_step"},
             "When a cycle's gossip frames are made: after_step = mix, step, publish (frames carry the step's "
             "update and can leave only once it is done); before_step = mix, publish, step: frames carry the mixed "
             "parameters without this step's update and travel while it computes (communication overlapped with "
             "computation; the simulator sends them at the cycle's start whatever sim.frames_leave says). The "
             "mix x += gamma (x_hat_j - x_hat_self) keeps every update in the average either way "
             "(docs/gossip_schedule.md)"),
      choice("gossip.contribution", &R::contribution, {"uniform", "rate", "mixing"},
             "How much each neighbour pulls in a mix: uniform 1/(degree+1); rate: that times min(1, rho), rho the "
             "neighbour's steps x frames published over ours in the same window, as its frames' step and round "
             "fields show (Metropolis-Hastings weights: the average kept is the data-weighted one, so peers that "
             "mix less often, slow or on a busy uplink, no longer hold the others back); mixing: rho from frames "
             "published only (the plain average). A pull is never above the uniform one, whatever a neighbour "
             "claims. Not with gossip.mode = delta, gossip.schedule = one_peer, gossip.robust = median, "
             "trimmed_mean or krum, or verify.scheme = segment (docs/wan.md)"),
      num("gossip.contribution_window", &R::contribution_window, ge(1), le(1000000),
          "gossip.contribution = rate | mixing: a neighbour's rate is measured over at least this many of our "
          "steps, and each new measurement is averaged with the last"),
      num("gossip.link_period_max", &R::link_period_max, ge(1), le(1000),
          "gossip.contribution = rate | mixing, > 1: each neighbour gets its own frame, compressed against its own "
          "copy of our estimate (error feedback exact per link), every p published rounds, p = floor(rho x b) "
          "clamped to [1, this]: rho the neighbour's measured rate over ours (about 1 / its weight on our "
          "estimate), b the share of our recent rounds our uplink was still busy; neighbours that barely use our "
          "estimate get it less often when our uplink is the bottleneck (docs/wan.md); 1 = every neighbour every "
          "round. Not with gossip.mode = delta or allreduce, gossip.schedule = one_peer, detect.method, an update "
          "attack, or verify.scheme = segment"),
      num("gossip.degree", &R::degree, ge(1), unbounded,
          "Degree of the random d-regular graph (topology = random)"),
      choice("gossip.robust", &R::robust,
             {"clipped_gossip", "none", "median", "trimmed_mean", "krum", "centered_clip"},
             "How neighbours' estimates are mixed: clipped_gossip (default) bounds each neighbour's pull per round; "
             "none is the plain mean; the others mix toward a robust aggregate (docs/byzantine.md)"),
      num("gossip.robust_trim", &R::robust_trim, ge(0), lt(0.5),
          "trimmed_mean: fraction dropped at each end; krum: assumed Byzantine fraction f/n"),
      num("gossip.clip_radius", &R::clip_radius, ge(0), unbounded,
          "centered_clip / clipped_gossip: L2 radius of each neighbour's pull; 0 = adaptive (centered_clip: the "
          "median distance; clipped_gossip: clip_scale x the lower-median distance, bounded per round)"),
      num("gossip.clip_scale", &R::clip_scale, gt(0), le(1000),
          "clipped_gossip: the adaptive radius is this many times the lower-median distance to the neighbours "
          "(below 1, one hostile neighbour of two pulls less than the honest one: docs/byzantine.md)"),
      num("gossip.max_value", &R::max_value, ge(0), le(1e30),
          "Received values of larger magnitude are rejected (out_of_range); 0 = 1000 x max(1, largest initial "
          "parameter)"),

      choice("detect.method", &R::detect_method, {"none", "rank"},
             "Detection of poisoned updates: rank = MANDERA-like ranking of neighbours' updates against ours"),
      num("detect.window", &R::detect_window, ge(2), le(100000), "Rounds per detection check"),
      num("detect.span", &R::detect_span, ge(1), le(1000),
          "The ranked updates are the changes over the last span windows (a sliding span)"),
      num("detect.threshold", &R::detect_threshold, gt(0), le(2),
          "Flag a neighbour whose rank features differ by more than this both from ours and from the neighbourhood's median"),
      num("detect.patience", &R::detect_patience, ge(1), le(1000),
          "Consecutive flagged checks before a neighbour is quarantined"),
      num("detect.coords", &R::detect_coords, ge(0), unbounded,
          "Coordinates sampled (once, from the seed) for ranking; 0 = all"),

      choice("attack.kind", &R::attack_kind,
             {"none", "gaussian", "zero_gradient", "mean_shift", "sign_flip", "extreme", "ipm", "dissensus",
              "label_flip", "skip_product", "perturb", "half_batch", "replay", "silent_prover", "forged_evidence"},
             "What the attacking peers do: forged updates, flipped labels, a compute cheat, never answering "
             "verification challenges (silent_prover), or relaying tampered segment replies as evidence "
             "(forged_evidence, verify.scheme = segment)"),
      choice("attack.placement", &R::attack_placement, {"random", "cut"},
             "Which peers attack: random (from run.seed) or peers that cut the topology into two halves"),
      num("attack.fraction", &R::attack_fraction, ge(0), le(0.5),
          "Fraction of the peers that attack: round(fraction * peers), at least 1 if > 0, chosen from run.seed"),
      num("attack.start_step", &R::attack_start_step, ge(0), unbounded, "First step at which attackers act"),
      num("attack.every", &R::attack_every, ge(0), unbounded,
          "Attackers act every n steps from start_step; 0 = once (update attacks: their first publish from start_step)"),
      num("attack.scale", &R::attack_scale, ge(0), unbounded,
          "Attack strength; 0 = its default (gaussian 30, sign_flip 3, mean_shift ALIE's z, ipm 0.1, dissensus 1.5; "
          "extreme: the magnitude sent, 1e30)"),
      num("attack.noise", &R::attack_noise, ge(0), unbounded,
          "Each attacker's own noise, relative to the honest updates' spread, so attackers differ"),
      num("attack.eps", &R::attack_eps, ge(0), unbounded, "Size of the perturb compute cheat"),

      num("sim.peers", &R::peers, ge(1), le(1024), "Number of simulated peers"),
      num("sim.latency_ms", &R::latency_ms, ge(0), unbounded, "One-way latency per message, ms"),
      num("sim.bandwidth_mbps", &R::bandwidth_mbps, ge(0), unbounded,
          "Each peer's uplink bandwidth, Mbit/s; 0 = unlimited"),
      num("sim.loss", &R::loss, ge(0), lt(1), "Probability that a message is lost"),
      num("sim.speed_spread", &R::speed_spread, ge(0), le(10),
          "Peer heterogeneity: peer i's step costs step_ms * (1 + speed_spread * u_i)"),
      num("sim.step_ms", &R::step_ms, ge(0), unbounded,
          "Virtual cost of one local step, ms; 0 = modelled from FLOPs and sim.gflops"),
      num("sim.gflops", &R::gflops, gt(0), unbounded,
          "Modelled peer speed, GFLOP/s (used when sim.step_ms = 0)"),
      text("sim.slow_peers", &R::slow_peers, false,
           "Peers whose steps cost sim.slow_factor times as much (weak machines), e.g. \"3\" or \"1,5\"; \"\" = none"),
      num("sim.slow_factor", &R::slow_factor, ge(1), le(1e6), "How much slower the sim.slow_peers are"),
      text("sim.link_classes", &R::link_classes, false,
           "Peers' links by class, in index order: \"home:4,datacenter:4\" (datacenter 10000/10000 Mbit/s up/down, "
           "0.25 ms; office 1000/1000, 1 ms; home 10/50, 10 ms access latency, added to sim.latency_ms); \"\" = every "
           "uplink sim.bandwidth_mbps, downlinks unlimited"),
      text("sim.link_file", &R::link_file, false,
           "CSV of links: lines \"peer,i,up_mbps,down_mbps,access_ms\" and \"link,i,j,mbps,latency_ms\" (a directed "
           "link's own cap and latency); overrides sim.link_classes; \"\" = none"),
      text("sim.link_events", &R::link_events, false,
           "Bandwidth over virtual time: \"start_s-end_s:peer:factor,...\" multiplies the peer's up and down rates in "
           "the window (0 = an outage: frames wait for its end); \"\" = none"),
      choice("sim.uplink", &R::uplink, {"classes", "fifo"},
             "How an uplink shares itself: \"classes\" serves control (membership, heartbeats), then gossip, then "
             "verification, then bulk (state transfer) frames, a lower class's frame cut into 64 KiB chunks so that "
             "a higher one waits at most one chunk; \"fifo\" = one queue in send order"),
      choice("sim.frames_leave", &R::frames_leave, {"step_start", "step_end"},
             "When the frames a peer's cycle publishes (gossip, commitments) enter its uplink: \"step_end\" = once "
             "the step that made them has taken its modelled time, as on a real machine; \"step_start\" = at the "
             "cycle's start (the step's time is not waited for: frames made after the step leave one step early; "
             "the default before 2026-12-07, which the results measured then need, docs/traffic.md). Offloading "
             "peers always send at the start; "
             "with gossip.publish = before_step every frame of the cycle does (commitments too)"),

      num("peer.index", &R::peer_index, ge(0), lt(1024), "murmur peer: this process's peer id and data shard"),
      num("peer.count", &R::peer_count, ge(1), le(1024), "murmur peer: how many shards the training data is cut into"),
      text("peer.keys", &R::keys_dir, true, "murmur peer: directory holding peer.key and peer.pub (murmur keygen)"),
      text("peer.authorized_peers", &R::authorized_peers, true,
          "murmur peer: allowlist file, one 'PUBLIC_KEY [tcp://HOST:PORT] [label]' per line; the i-th key "
          "line is peer i, the only identity that key may claim"),
      num("peer.heartbeat_ms", &R::heartbeat_ms, ge(10), le(60000), "murmur peer: heartbeat period, ms"),
      num("peer.suspect_ms", &R::suspect_ms, ge(10), le(600000), "murmur peer: silence before a peer is suspected, ms"),
      num("peer.dead_ms", &R::dead_ms, ge(10), le(600000), "murmur peer: further silence before a suspect is dropped, ms"),
      num("peer.donors", &R::donors, ge(1), le(64), "murmur peer: peers a (re)joining peer pulls its parameters from"),
      num("peer.min_peers", &R::min_peers, ge(0), le(1024),
          "murmur peer: live peers (itself included) a data-parallel peer waits for before it trains; "
          "0 = peer.count, at most peer.count"),
      num("peer.start_timeout_ms", &R::start_timeout_ms, ge(100), le(86400000),
          "murmur peer: how long a peer waits, once its data is loaded, for peer.min_peers live peers "
          "(and, before loading, for a --join contact to listen); a pipeline node's wait for its first step"),
      choice("peer.on_start_timeout", &R::on_start_timeout, {"fail", "start"},
             "murmur peer: at peer.start_timeout_ms without peer.min_peers live peers: fail = exit 1 naming "
             "the missing peers; start = train with those present (never alone after a --join)"),
      num("net.max_frame_bytes", &R::max_frame_bytes, ge(4096), le(1 << 30),
          "Largest frame a peer accepts; larger ones are cut off unread"),

      num("pipeline.stages", &R::stages, ge(1), le(64),
          "Pipeline stages S each model is cut into; 1 = data parallel only"),
      text("pipeline.split", &R::split, false,
           "Layer indices where stages 1..S-1 begin, e.g. \"4,7\"; empty = balanced by modelled cost"),
      num("pipeline.microbatches", &R::microbatches, ge(1), le(4096), "Micro-batches M per batch"),
      choice("pipeline.schedule", &R::schedule, {"gpipe", "1f1b"},
             "gpipe: all forwards, then all backwards; 1f1b: one forward, one backward in the steady state"),
      choice("pipeline.placement", &R::placement, {"index", "auto"},
             "index = stage s on node s (murmur peer: the process with peer.index s), the cut balanced for "
             "identical nodes; auto = the cut and the node of each stage that minimise the predicted makespan of a "
             "batch under the nodes' declared speeds (sim.speed_spread, sim.slow_peers) and links "
             "(sim.link_classes, sim.link_file, sim.latency_ms), the same in murmur sim and murmur peer "
             "(run/stage_placement.hpp; docs/pipeline.md)"),
      num("pipeline.replicas", &R::replicas, ge(1), le(1024),
          "Pipeline replicas R (data parallel); stage s gossips with stage s of the others"),
      num("pipeline.spares", &R::spares, ge(0), le(64),
          "Spare peers that hold stage checkpoints and take over a dead stage"),
      num("pipeline.crash_stage", &R::crash_stage, ge(-1), le(63),
          "Fault injection: this stage's peer dies (-1 = none)"),
      num("pipeline.crash_replica", &R::crash_replica, ge(0), le(1023), "Fault injection: in this replica"),
      num("pipeline.crash_step", &R::crash_step, ge(0), unbounded, "Fault injection: during this step"),
      num("checkpoint.every", &R::checkpoint_every, ge(0), unbounded,
          "Checkpoint every K steps (to the spares, and into the run directory for --resume); 0 = never"),

      num_or_auto("verify.rate", &R::verify_rate, verify_rate_auto, ge(0), le(1),
                  "Probability that a peer checks one random layer of a neighbour's committed step; 0 = off; "
                  "auto = " + number_text(default_verify_rate) +
                      " (run/default_verification.hpp) with the segment scheme where it runs, off where it cannot "
                      "(the run prints why; summary.json \"verify\"; docs/trust.md, On by default)"),
      num("verify.rounds", &R::verify_rounds, ge(1), le(64), "Freivalds rounds per checked product (misses a wrong element with 2^-rounds)"),
      num("verify.keep_steps", &R::verify_keep_steps, ge(0), le(1024),
          "Own step transcripts kept for verifiers' requests (the retention every prover promises); "
          "0 = 2.5 deadlines at the modelled step rate"),
      num("verify.deadline_ms", &R::verify_deadline_ms, ge(0), le(3.6e6),
          "A challenge unanswered this long is a miss; 0 = twice the modelled round trip of the largest layer's "
          "reply behind one dense gossip round (on a LAN's wall clock at least 1 s, 10 s for a segment's reply)"),
      num("verify.max_misses", &R::verify_max_misses, ge(1), le(1000),
          "Unanswered challenges (own or re-checked) after which a verifier quarantines the prover"),
      num("verify.keep_commits", &R::verify_keep_commits, ge(1), le(100000),
          "Commitments kept per neighbour, to re-check evidence against"),
      choice("verify.scheme", &R::verify_scheme, {"auto", "step", "segment"},
             "step: a commitment per step, a challenge checks one layer of one step; segment (data-parallel, "
             "murmur sim and murmur peer): a commitment per verify.segment steps, a challenge replays the whole "
             "segment bit for bit; on a LAN only between peers of equal replay fingerprint (docs/trust.md, "
             "Amortised commitments); auto: segment where it runs, else step (with verify.rate = auto: else off)"),
      num("verify.segment", &R::verify_segment, ge(1), le(100000),
          "Steps per segment with verify.scheme = segment (commitment and replay unit)"),

      text("offload.to", &R::offload_to, false,
           "The helper the offload.peers hand their Linear products to: a peer index, or (murmur peer) an "
           "authorized_peers label; \"\" = no offload (docs/trust.md, Offload)"),
      text("offload.peers", &R::offload_peers, false,
           "Who offloads: peer indices, e.g. \"3\" or \"1,5\", or \"slowest\" (murmur sim: the peer with the "
           "largest modelled step cost)"),
      num("offload.min_flops", &R::offload_min_flops, ge(0), unbounded,
          "Only products of at least this many FLOPs (2 m n k) are offloaded; smaller ones run locally"),
      num("offload.rounds", &R::offload_rounds, ge(1), le(64),
          "Freivalds rounds on each answer (a wrong element gets through with 2^-rounds)"),
      num("offload.timeout_ms", &R::offload_timeout_ms, ge(0), le(3.6e6),
          "murmur peer: an answer not back by then is computed locally and offloading stops; 0 = wait forever"),
      choice("offload.cheat", &R::offload_cheat, {"none", "perturb", "skip_product"},
             "Attack: the helper answers offloaded products wrongly (perturb: one element by attack.eps of its "
             "row's norm; skip_product: random numbers)"),
  };
  return t;
}

const KeyDef* find_key(std::string_view name) {
  for (const auto& d : table())
    if (d.name == name) return &d;
  return nullptr;
}

// ---------------------------------------------------------------- text helpers

std::string shortest(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

// A float as a TOML float literal: 5 -> "5.0", 1e-05 stays (valid TOML float).
std::string toml_float(double d) {
  std::string s = shortest(d);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::string bound_text(Bound b, bool lower) {
  const char* op = lower ? (b.kind == Bound::Incl ? ">= " : "> ") : (b.kind == Bound::Incl ? "<= " : "< ");
  return op + shortest(b.v);
}

// What the key accepts, in words: ">= 1 and <= 65536", "one of sgd, adam".
std::string allowed_text(const KeyDef& d) {
  switch (d.kind()) {
    case Kind::Enum: return "one of " + join(d.choices, ", ");
    case Kind::String: return d.non_empty ? "a non-empty string" : "any string";
    default: break;
  }
  std::vector<std::string> parts;
  if (d.lo.kind != Bound::None) parts.push_back(bound_text(d.lo, true));
  if (d.hi.kind != Bound::None) parts.push_back(bound_text(d.hi, false));
  if (parts.empty()) return d.kind() == Kind::Int ? "any integer" : "any number";
  return (d.auto_value ? "auto, or " : "") + join(parts, " and ");
}

const char* type_name(Kind k) {
  switch (k) {
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "string";
    case Kind::Enum: return "enum";
  }
  return "?";
}

const char* expected_text(Kind k) {
  switch (k) {
    case Kind::Int: return "an integer";
    case Kind::Float: return "a number";
    default: return "a string";
  }
}

// ---------------------------------------------------------------- errors

[[noreturn]] void fail(const KeyDef& d, const std::string& shown, const std::string& source,
                       const std::string& what) {
  throw ConfigError(d.name + " = " + shown + " in " + source + ": " + what);
}

[[noreturn]] void fail_type(const KeyDef& d, const std::string& shown, const std::string& source,
                            const std::string& got) {
  fail(d, shown, source,
       std::string("expected ") + expected_text(d.kind()) + " (" + allowed_text(d) + "), got " + got);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string_view leaf(std::string_view name) {
  size_t dot = name.rfind('.');
  return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

[[noreturn]] void fail_unknown(const std::string& name, const std::string& source) {
  // Closest key by the whole name, or by the part after the section (so a key
  // put in the wrong section, e.g. train.seed, still finds run.seed).
  const KeyDef* best = nullptr;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& d : table()) {
    size_t dist = std::min(edit_distance(name, d.name), edit_distance(leaf(name), leaf(d.name)) + 1);
    if (dist < best_d) best_d = dist, best = &d;
  }
  std::string msg = "unknown key '" + name + "' in " + source;
  if (best && best_d <= std::max<size_t>(2, name.size() / 3))
    msg += " (did you mean '" + best->name + "'?)";
  else
    msg += " (see `murmur config-doc` for the known keys)";
  throw ConfigError(msg);
}

// ---------------------------------------------------------------- values

using Value = std::variant<int64_t, double, std::string>;

constexpr std::string_view auto_word = "auto";

// Checks range / enum / non-empty, then stores. shown is the value as the
// user wrote it, for messages.
void assign(RunConfig& cfg, const KeyDef& d, const Value& v, const std::string& shown,
            const std::string& source) {
  if (d.auto_value && std::holds_alternative<std::string>(v)) {
    // value_from_* give a string to a numeric key only for "auto".
    cfg.*std::get<double RunConfig::*>(d.field) = *d.auto_value;
    return;
  }
  if (d.kind() == Kind::Int || d.kind() == Kind::Float) {
    double x = std::holds_alternative<int64_t>(v) ? static_cast<double>(std::get<int64_t>(v))
                                                  : std::get<double>(v);
    if (!std::isfinite(x)) fail(d, shown, source, "must be a finite number (" + allowed_text(d) + ")");
    bool ok = true;
    if (d.lo.kind == Bound::Incl) ok = ok && x >= d.lo.v;
    if (d.lo.kind == Bound::Excl) ok = ok && x > d.lo.v;
    if (d.hi.kind == Bound::Incl) ok = ok && x <= d.hi.v;
    if (d.hi.kind == Bound::Excl) ok = ok && x < d.hi.v;
    if (!ok) fail(d, shown, source, "must be " + allowed_text(d));
  } else {
    const auto& s = std::get<std::string>(v);
    if (d.kind() == Kind::Enum && std::find(d.choices.begin(), d.choices.end(), s) == d.choices.end())
      fail(d, shown, source, "must be " + allowed_text(d));
    if (d.non_empty && s.empty()) fail(d, shown, source, "must be " + allowed_text(d));
  }
  std::visit(
      [&](auto member) {
        using T = std::remove_reference_t<decltype(cfg.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          cfg.*member = std::get<std::string>(v);
        } else if constexpr (std::is_same_v<T, double>) {
          cfg.*member = std::holds_alternative<double>(v) ? std::get<double>(v)
                                                          : static_cast<double>(std::get<int64_t>(v));
        } else {
          cfg.*member = static_cast<T>(std::get<int64_t>(v));
        }
      },
      d.field);
}

// Text (from --set or a sweep) -> Value of the key's type.
Value value_from_text(const KeyDef& d, const std::string& raw, const std::string& source) {
  std::string s = trim(raw);
  switch (d.kind()) {
    case Kind::Int: {
      std::string_view t = s;
      if (!t.empty() && t[0] == '+') t.remove_prefix(1);
      int64_t x = 0;
      auto r = std::from_chars(t.data(), t.data() + t.size(), x);
      if (r.ec == std::errc::result_out_of_range)
        fail(d, raw, source, "too large for a 64-bit integer (" + allowed_text(d) + ")");
      if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size())
        fail_type(d, raw, source, "'" + raw + "'");
      return x;
    }
    case Kind::Float: {
      if (d.auto_value && s == auto_word) return s;
      std::string_view t = s;
      if (!t.empty() && t[0] == '+') t.remove_prefix(1);
      double x = 0;
      auto r = std::from_chars(t.data(), t.data() + t.size(), x);
      if (r.ec == std::errc::result_out_of_range)
        fail(d, raw, source, "out of range of a double (" + allowed_text(d) + ")");
      if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size())
        fail_type(d, raw, source, "'" + raw + "'");
      return x;
    }
    default:
      if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
        s = s.substr(1, s.size() - 2);
      return s;
  }
}

std::string toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::string toml_shown(const toml::node& n) {
  if (n.is_table()) return "{...}";
  if (n.is_array()) return "[...]";
  if (auto s = n.as_string()) return toml_string(s->get());
  std::ostringstream os;
  n.visit([&](const auto& v) { os << v; });
  return os.str();
}

// TOML node -> Value of the key's type (TOML integers are fine for floats).
Value value_from_node(const KeyDef& d, const toml::node& n, const std::string& shown,
                      const std::string& source) {
  switch (d.kind()) {
    case Kind::Int:
      if (auto i = n.as_integer()) return i->get();
      break;
    case Kind::Float:
      if (auto f = n.as_floating_point()) return f->get();
      if (auto w = n.as_string(); w && d.auto_value && w->get() == auto_word) return w->get();
      if (auto i = n.as_integer()) return static_cast<double>(i->get());
      break;
    default:
      if (auto s = n.as_string()) return s->get();
      break;
  }
  fail_type(d, shown, source, toml_type_name(n));
}

std::string where(const std::string& source, const toml::source_region& r) {
  return r.begin.line ? source + ":" + std::to_string(r.begin.line) : source;
}

// The value of a key as a TOML literal (toml = true) or plain text.
std::string value_text(const RunConfig& cfg, const KeyDef& d, bool toml) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& v = cfg.*member;
        using T = std::remove_cvref_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) return toml ? toml_string(v) : v;
        else if constexpr (std::is_same_v<T, double>) {
          if (d.auto_value && v == *d.auto_value) return toml ? toml_string(std::string(auto_word)) : std::string(auto_word);
          return toml ? toml_float(v) : shortest(v);
        }
        else return std::to_string(v);
      },
      d.field);
}

}  // namespace

// ---------------------------------------------------------------- public API

void set_key(RunConfig& cfg, const std::string& key, const std::string& value,
             const std::string& source) {
  const KeyDef* d = find_key(trim(key));
  if (!d) fail_unknown(trim(key), source);
  const std::string shown = trim(value).empty() ? "\"\"" : value;
  assign(cfg, *d, value_from_text(*d, value, source), shown, source);
}

std::string get_key(const RunConfig& cfg, const std::string& key) {
  const KeyDef* d = find_key(key);
  if (!d) fail_unknown(key, "get_key");
  return value_text(cfg, *d, false);
}

void validate_config(const RunConfig& cfg, const std::string& source) {
  // train.device: its form here; whether a GPU is there, when a run starts (run/peer_device.hpp).
  try {
    (void)parse_device(cfg.device);
  } catch (const std::invalid_argument&) {
    throw ConfigError("train.device = " + cfg.device + " in " + source + ": expected auto, cpu, cuda or cuda:N");
  }
  if (cfg.dataset == "files")
    for (const char* key : {"data.train_features", "data.train_labels", "data.test_features", "data.test_labels"})
      if (get_key(cfg, key).empty())
        throw ConfigError(std::string(key) + " is empty with data.dataset = files in " + source +
                          ": name a .npy or IDX file for each of data.train_features, data.train_labels, "
                          "data.test_features, data.test_labels");
  if (cfg.mode == "delta") {
    // Delta broadcast keeps no public estimates to mix robustly, rank, or forge.
    const char* needs = nullptr;
    // The default clipping has nothing to clip in delta mode (it has the
    // max_value bound only); asking for a rule explicitly is an error.
    if (cfg.robust != "none" && cfg.robust != RunConfig{}.robust) needs = "gossip.robust";
    else if (cfg.detect_method != "none") needs = "detect.method";
    else if (cfg.attack_kind == "gaussian" || cfg.attack_kind == "zero_gradient" ||
             cfg.attack_kind == "mean_shift" || cfg.attack_kind == "sign_flip" || cfg.attack_kind == "extreme" ||
             cfg.attack_kind == "ipm" || cfg.attack_kind == "dissensus")
      needs = "attack.kind";
    if (needs)
      throw ConfigError(std::string(needs) + " = " + get_key(cfg, needs) + " with gossip.mode = delta in " +
                        source + ": needs public estimates (threshold, dense or local_sgd mode)");
  }
  if (cfg.threshold_schedule != "constant" && cfg.mode != "threshold")
    throw ConfigError("gossip.threshold_schedule = " + cfg.threshold_schedule + " with gossip.mode = " + cfg.mode +
                      " in " + source + ": it scales the threshold of gossip.mode = threshold");
  if (cfg.threshold_schedule == "lr" && cfg.lr_schedule != "cosine")
    throw ConfigError("gossip.threshold_schedule = lr with train.lr_schedule = " + cfg.lr_schedule + " in " + source +
                      ": tau follows the cosine learning rate; with a constant one set gossip.threshold_schedule = "
                      "constant");
  if (cfg.link_tau_exponent > 0 && cfg.mode != "threshold")
    throw ConfigError("gossip.link_tau_exponent = " + get_key(cfg, "gossip.link_tau_exponent") + " with gossip.mode = " +
                      cfg.mode + " in " + source + ": it scales the threshold of gossip.mode = threshold");
  if (cfg.mode == "allreduce") {
    // The synchronous baseline (sim/ring_allreduce.hpp): the simulator
    // averages the peers' parameters itself between steps.
    const char* bad = nullptr;
    if (cfg.stages > 1) bad = "pipeline.stages";
    else if (cfg.verify_rate != verify_rate_auto && cfg.verify_rate != 0) bad = "verify.rate";
    else if (cfg.detect_method != "none") bad = "detect.method";
    else if (cfg.attack_kind != "none") bad = "attack.kind";
    else if (cfg.gossip_schedule != "all") bad = "gossip.schedule";
    else if (cfg.checkpoint_every > 0) bad = "checkpoint.every";
    else if (!cfg.offload_to.empty()) bad = "offload.to";
    if (bad)
      throw ConfigError(std::string(bad) + " = " + get_key(cfg, bad) + " with gossip.mode = allreduce in " + source +
                        ": the all-reduce baseline averages every data-parallel peer exactly each step, with no "
                        "gossip frames to verify, attack or detect, no schedule, and no checkpoints");
  }
  if (cfg.contribution != "uniform") {
    const char* bad = nullptr;
    if (cfg.mode == "delta" || cfg.mode == "allreduce") bad = "gossip.mode";
    else if (cfg.gossip_schedule != "all") bad = "gossip.schedule";
    else if (cfg.robust == "median" || cfg.robust == "trimmed_mean" || cfg.robust == "krum") bad = "gossip.robust";
    if (bad)
      throw ConfigError(std::string(bad) + " = " + get_key(cfg, bad) + " with gossip.contribution = " + cfg.contribution +
                        " in " + source + ": contribution weights scale each neighbour's pull in a mix of public "
                        "estimates (threshold, dense or local_sgd mode, schedule all, robust none, clipped_gossip or "
                        "centered_clip)");
  }
  if (cfg.link_period_max > 1) {
    const char* bad = nullptr;
    if (cfg.contribution == "uniform") bad = "gossip.contribution";
    else if (cfg.mode == "delta" || cfg.mode == "allreduce") bad = "gossip.mode";
    else if (cfg.gossip_schedule != "all") bad = "gossip.schedule";
    else if (cfg.detect_method != "none") bad = "detect.method";
    if (bad)
      throw ConfigError(std::string(bad) + " = " + get_key(cfg, bad) + " with gossip.link_period_max = " +
                        get_key(cfg, "gossip.link_period_max") + " in " + source +
                        ": per-link send periods come from the contribution weights' measured rates (gossip.contribution "
                        "= rate or mixing) and need public estimates sent to every neighbour (threshold, dense or "
                        "local_sgd mode, schedule all), without a detector");
  }
  if (cfg.link_estimates != "fixed" && (cfg.gossip_schedule != "one_peer" || cfg.robust != "none"))
    throw ConfigError("gossip.link_estimates = " + cfg.link_estimates + " in " + source +
                      ": it moves a one-peer link's estimates with the pair's plain mix (needs gossip.schedule = "
                      "one_peer and gossip.robust = none)");
  if (cfg.gossip_schedule == "one_peer") {
    // The schedule pairs peers by link colour, a proper colouring only on the hypercube.
    if (cfg.topology != "hypercube")
      throw ConfigError("gossip.schedule = one_peer with gossip.topology = " + cfg.topology + " in " + source +
                        ": the one-peer schedule pairs i with i XOR 2^k (set gossip.topology = hypercube)");
    const char* needs = nullptr;
    if (cfg.mode == "delta") needs = "gossip.mode";
    else if (cfg.detect_method != "none") needs = "detect.method";
    else if (cfg.attack_kind == "gaussian" || cfg.attack_kind == "zero_gradient" ||
             cfg.attack_kind == "mean_shift" || cfg.attack_kind == "sign_flip" || cfg.attack_kind == "extreme" ||
             cfg.attack_kind == "ipm" || cfg.attack_kind == "dissensus")
      needs = "attack.kind";
    // clipped_gossip's adaptive radius is clip_scale x the lower-median
    // distance: with one partner, below 1 it shortens every pull.
    if (!needs && cfg.robust == "clipped_gossip" && cfg.clip_radius == 0 && cfg.clip_scale < 1)
      throw ConfigError("gossip.robust = clipped_gossip with gossip.clip_scale = " + get_key(cfg, "gossip.clip_scale") +
                        " and gossip.schedule = one_peer in " + source +
                        ": with one partner per round it shortens every pull (84.81 % against 87.43 %, "
                        "docs/gossip_schedule.md); set gossip.robust = none, or gossip.clip_scale >= 1");
    if (needs)
      throw ConfigError(std::string(needs) + " = " + get_key(cfg, needs) + " with gossip.schedule = one_peer in " +
                        source + ": the one-peer schedule supports threshold, dense and local_sgd modes without "
                        "detection or update attacks");
  }
  // Segments asked for where they cannot run (run/verification_choice.hpp;
  // --resume and murmur peer are refused when the run starts).
  if (cfg.verify_scheme == "segment" && cfg.verify_rate != 0)
    if (const auto o = segment_obstacle_of(cfg))
      throw ConfigError("verify.scheme = segment with " + o->setting + " in " + source + ": " + o->why);
  if (cfg.attack_kind == "forged_evidence" && (cfg.verify_scheme == "step" || cfg.verify_rate == 0))
    throw ConfigError("attack.kind = forged_evidence with verify.scheme = " + cfg.verify_scheme + ", verify.rate = " +
                      get_key(cfg, "verify.rate") + " in " + source +
                      ": it forges segment evidence; set verify.scheme = segment and verify.rate > 0");
  // Offload (run/offload_setup.hpp resolves the peers against the run's size).
  if (cfg.offload_to.empty()) {
    for (const char* key : {"offload.peers", "offload.cheat"})
      if (get_key(cfg, key) != get_key(RunConfig{}, key))
        throw ConfigError(std::string(key) + " = " + get_key(cfg, key) + " with offload.to = \"\" in " + source +
                          ": name the helper in offload.to (a peer index or label)");
  } else {
    if (cfg.stages > 1)
      throw ConfigError("offload.to = " + cfg.offload_to + " with pipeline.stages = " + std::to_string(cfg.stages) +
                        " in " + source + ": offload is for data-parallel peers (pipeline.stages = 1)");
    if (cfg.offload_peers.empty())
      throw ConfigError("offload.to = " + cfg.offload_to + " with offload.peers = \"\" in " + source +
                        ": name who offloads (peer indices, e.g. \"3\", or \"slowest\")");
  }
  if (cfg.peer_index >= cfg.peer_count)
    throw ConfigError("peer.index = " + std::to_string(cfg.peer_index) + " with peer.count = " +
                      std::to_string(cfg.peer_count) + " in " + source + ": must be < peer.count");
  if (cfg.min_peers > cfg.peer_count)
    throw ConfigError("peer.min_peers = " + std::to_string(cfg.min_peers) + " with peer.count = " +
                      std::to_string(cfg.peer_count) + " in " + source + ": must be <= peer.count (0 = peer.count)");
  if (!cfg.link_classes.empty() || !cfg.link_file.empty() || !cfg.link_events.empty()) {
    // A pipeline's peers are its nodes (run/pipeline_plan.hpp), not sim.peers.
    const int64_t nodes = cfg.stages > 1 ? cfg.replicas * cfg.stages + cfg.spares : cfg.peers;
    try {
      (void)link_model::from_config(cfg, static_cast<uint32_t>(std::max<int64_t>(nodes, 1)));
    } catch (const ConfigError& e) {
      const std::string pipeline = cfg.stages > 1 ? " (a pipeline's peers are its pipeline.replicas x pipeline.stages + "
                                                    "pipeline.spares = " + std::to_string(nodes) + " nodes)"
                                                  : "";
      throw ConfigError(std::string(e.what()) + pipeline + " (in " + source + ")");
    }
  }
  if (cfg.peers <= 1) return;  // a single peer has no neighbours: any topology works
  auto topo = [&](const std::string& what) {
    throw ConfigError("gossip.topology = " + cfg.topology + " with sim.peers = " +
                      std::to_string(cfg.peers) + " in " + source + ": " + what);
  };
  if (cfg.topology == "random") {
    if (cfg.degree >= cfg.peers)
      topo("a random d-regular graph needs gossip.degree < sim.peers, but gossip.degree = " +
           std::to_string(cfg.degree));
    if ((cfg.peers * cfg.degree) % 2 != 0)
      topo("a random d-regular graph needs sim.peers * gossip.degree to be even, but " +
           std::to_string(cfg.peers) + " * " + std::to_string(cfg.degree) + " = " +
           std::to_string(cfg.peers * cfg.degree));
  } else if (cfg.topology == "torus") {
    bool ok = false;
    for (int64_t r = 3; r * r <= cfg.peers && !ok; ++r) ok = cfg.peers % r == 0 && cfg.peers / r >= 3;
    if (!ok)
      topo("a torus needs sim.peers = r * c with r >= 3 and c >= 3 (e.g. 9, 12, 16, 20, 25)");
  }
}

RunConfig parse_config(const std::string& toml_text, const std::string& source_name,
                       const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw ConfigError("malformed TOML in " + source_name + ":" + std::to_string(b.line) + ":" +
                      std::to_string(b.column) + ": " + std::string(e.description()));
  }

  RunConfig cfg;
  for (const auto& [section_key, section_node] : root) {
    const std::string section(section_key.str());
    const bool known = std::any_of(table().begin(), table().end(),
                                   [&](const KeyDef& d) { return d.section() == section; });
    const toml::table* entries = section_node.as_table();
    if (!entries && known)
      throw ConfigError(section + " = " + toml_shown(section_node) + " in " +
                        where(source_name, section_node.source()) + ": expected a table [" +
                        section + "], got " + toml_type_name(section_node));
    if (!entries || (entries->empty() && !known))
      fail_unknown(section, where(source_name, section_key.source()));
    for (const auto& [key, node] : *entries) {
      const std::string name = section + "." + std::string(key.str());
      const KeyDef* d = find_key(name);
      if (!d) fail_unknown(name, where(source_name, key.source()));
      const std::string src = where(source_name, node.source());
      const std::string shown = toml_shown(node);
      assign(cfg, *d, value_from_node(*d, node, shown, src), shown, src);
    }
  }

  for (const auto& o : overrides) {
    size_t eq = o.find('=');
    if (eq == std::string::npos || trim(o.substr(0, eq)).empty())
      throw ConfigError("malformed override '" + o + "' in --set: expected key=value, e.g. " +
                        "gossip.threshold=0.01");
    set_key(cfg, o.substr(0, eq), o.substr(eq + 1), "--set");
  }

  validate_config(cfg, overrides.empty() ? source_name : source_name + " with --set overrides");
  return cfg;
}

RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError("cannot read config file '" + path + "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read config file '" + path + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw ConfigError("cannot read config file '" + path + "'");
  return parse_config(ss.str(), path, overrides);
}

std::string to_toml(const RunConfig& cfg) {
  std::string out, section;
  for (const auto& d : table()) {
    if (d.section() != section) {
      out += (section.empty() ? "[" : "\n[") + d.section() + "]\n";
      section = d.section();
    }
    out += std::string(leaf(d.name)) + " = " + value_text(cfg, d, true) + "\n";
  }
  return out;
}

std::string config_doc_markdown() {
  auto cell = [](std::string s) {  // a '|' would end the cell
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  };
  const RunConfig defaults;
  std::string out = key_usage_doc_header() +
                    "| key | type | default | allowed | used by | meaning |\n"
                    "|-----|------|---------|---------|---------|---------|\n";
  for (const auto& d : table()) {
    std::string allowed = d.kind() == Kind::Enum ? "`" + join(d.choices, "`, `") + "`"
                                                 : allowed_text(d);
    out += "| `" + d.name + "` | " + type_name(d.kind()) + " | `" +
           cell(value_text(defaults, d, true)) + "` | " + cell(allowed) + " | " + key_usage_text(d.name) + " | " + cell(d.doc) +
           " |\n";
  }
  return out;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& d : table()) keys.push_back(d.name);
  return keys;
}

}  // namespace murmur
