#include "run/verification_choice.hpp"

#include <cstdio>

#include "gpu/device_choice.hpp"
#include "run/config_schema.hpp"
#include "run/default_verification.hpp"
#include "run/json_text.hpp"

namespace murmur {

namespace {

// Attacks the segment replay models: compute cheats (the replay is honest,
// so the end state differs), a prover that does not answer, flipped labels
// (the data is the prover's own; nothing to replay differently) and a
// verifier that forges relayed evidence (its training is honest).
bool replay_models_attack(const std::string& kind) {
  for (const char* k :
       {"none", "skip_product", "perturb", "half_batch", "replay", "silent_prover", "label_flip", "forged_evidence"})
    if (kind == k) return true;
  return false;
}

// Whether train.device = auto would put this run's peers on a GPU. Peer 0
// stands for all: auto takes a GPU on every peer or on none.
std::optional<std::string> auto_device_gpu(const RunConfig& c) {
  device_choice d;
  try {
    d = parse_device(c.device);
  } catch (const std::invalid_argument&) {
    return std::nullopt;  // validate_config names the bad value
  }
  if (d.type != device_choice::kind::auto_select) return std::nullopt;
  const resolved_device r = resolve_device(d, 0);
  if (!r.cuda) return std::nullopt;
  return r.label;
}

std::string rate_text(double rate) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", rate);
  return b;
}

}  // namespace

// --resume is none: in the simulator every peer restarts together, each
// segment log opening at its resumed step and every verifier afresh; on a
// LAN a restarted peer states a new incarnation, which starts a new chain
// of its segments at its verifiers (actors/segment_verifier.hpp, "Chains
// and restarts").
std::optional<segment_obstacle> segment_obstacle_of(const RunConfig& c) {
  // What the segment replay reproduces bit for bit (actors/segment_replay.hpp).
  if (c.stages > 1) return segment_obstacle{"pipeline.stages = " + std::to_string(c.stages), "segments are for data-parallel peers"};
  device_choice device;
  try {
    device = parse_device(c.device);
  } catch (const std::invalid_argument&) {
  }
  if (device.type == device_choice::kind::cuda)
    return segment_obstacle{"train.device = " + c.device,
                            "the replay runs on the CPU and must match the prover bit for bit"};
  if (c.detect_method != "none")
    return segment_obstacle{"detect.method = " + c.detect_method,
                            "the replay does not model the detector; set detect.method = none"};
  if (!replay_models_attack(c.attack_kind))
    return segment_obstacle{"attack.kind = " + c.attack_kind, "the replay does not model update attacks"};
  if (!c.offload_to.empty()) return segment_obstacle{"offload.to = " + c.offload_to, "offloaded steps are not replayed"};
  if (c.link_tau_exponent > 0)
    return segment_obstacle{"gossip.link_tau_exponent > 0", "the replay does not know the peers' link-scaled thresholds"};
  if (c.gossip_schedule == "one_peer")
    return segment_obstacle{"gossip.schedule = one_peer", "the replay state does not carry per-link estimates"};
  if (c.contribution != "uniform")
    return segment_obstacle{"gossip.contribution = " + c.contribution,
                            "the replay state does not carry the neighbours' measured rates"};
  return std::nullopt;
}

verification_choice choose_verification(const RunConfig& c) {
  const bool rate_auto = c.verify_rate == verify_rate_auto;
  if (c.verify_scheme == "segment" && c.verify_rate != 0)
    if (const auto o = segment_obstacle_of(c))
      throw ConfigError("verify.scheme = segment with " + o->setting + ": " + o->why);
  // murmur sim and murmur peer alike: on a LAN the replays run on a replay
  // actor of their own (actors/segment_replay_actor.hpp), and peers whose
  // replay fingerprints differ refuse each other as partners at run time.
  const auto obstacle = segment_obstacle_of(c);
  verification_choice v;
  v.by_default = rate_auto;
  auto off = [&](std::string why) {
    v.off_reason = std::move(why);
    return v;
  };
  if (!rate_auto && c.verify_rate == 0) return off("verify.rate = 0");
  // validate_config refuses an explicit rate with it.
  if (c.mode == "allreduce") return off("gossip.mode = allreduce: the all-reduce baseline sends no frames to verify");
  if (rate_auto) {
    if (c.verify_scheme == "step")
      return off("verify.scheme = step without verify.rate (the default rate is for segments; set verify.rate to "
                 "check steps)");
    if (obstacle) return off(obstacle->setting + ": " + obstacle->why);
    if (default_verify_rate <= 0) return off("this build's default verification rate is 0 (set verify.rate)");
  }
  // Segments where they can run; the automatic scheme does not move a run
  // that auto puts on a GPU onto the CPU (explicit segment does).
  std::string scheme = c.verify_scheme;
  if (scheme == "auto") {
    if (obstacle) {
      scheme = "step";
    } else if (const auto gpu = auto_device_gpu(c)) {
      if (rate_auto)
        return off("train.device = auto trains on " + *gpu +
                   " and segment replays run on the CPU (verify.scheme = segment verifies there on the CPU)");
      scheme = "step";
    } else {
      scheme = "segment";
    }
  }
  v.scheme = scheme;
  v.rate = rate_auto ? default_verify_rate : c.verify_rate;
  if (scheme == "segment") v.segment_steps = c.verify_segment;
  return v;
}

RunConfig with_verification(RunConfig c, const verification_choice& v) {
  c.verify_rate = v.on() ? v.rate : 0.0;
  c.verify_scheme = v.on() ? v.scheme : "step";
  return c;
}

std::string verification_choice::line() const {
  if (!on()) return "verification off: " + off_reason;
  std::string s = "verification: " + scheme + " scheme, rate " + rate_text(rate);
  if (scheme == "segment") s += ", a commitment every " + std::to_string(segment_steps) + " steps";
  return s + (by_default ? " (the default; verify.rate = 0 turns it off)" : "");
}

std::string verification_choice::json() const {
  std::string s = "{\"scheme\": " + json_string(scheme) + ", \"rate\": " + json_number(rate);
  if (scheme == "segment") s += ", \"segment_steps\": " + std::to_string(segment_steps);
  if (!on()) s += ", \"off\": " + json_string(off_reason);
  return s + ", \"by_default\": " + (by_default ? "true" : "false") + "}";
}

}  // namespace murmur
