#include "run/peer_settings_from_config.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "run/attack_plan.hpp"
#include "tensor/rng.hpp"

namespace murmur {

gossip_mode gossip_mode_of(const RunConfig& c) {
  // allreduce: the simulator gives its peers no neighbours and averages
  // them itself (sim/ring_allreduce.hpp); their gossip state idles as dense.
  if (c.mode == "dense" || c.mode == "allreduce") return gossip_mode::dense;
  if (c.mode == "local_sgd") return gossip_mode::local_sgd;
  if (c.mode == "delta") return gossip_mode::delta;
  return gossip_mode::threshold;
}

robust_rule robust_rule_of(const RunConfig& c) {
  if (c.robust == "median") return robust_rule::median;
  if (c.robust == "trimmed_mean") return robust_rule::trimmed_mean;
  if (c.robust == "krum") return robust_rule::krum;
  if (c.robust == "centered_clip") return robust_rule::centered_clip;
  if (c.robust == "clipped_gossip") return robust_rule::clipped_gossip;
  return robust_rule::none;
}

augment_settings augment_of(const RunConfig& c) {
  augment_settings a;
  a.crop_padding = c.crop_padding;
  a.flip = c.flip == "horizontal";
  a.seed = Rng(c.seed).fork(400).next_u64();  // run-wide: verifiers redo a prover's augmentation
  return a;
}

peer_settings peer_settings_from_config(const RunConfig& c, uint32_t id, uint32_t peer_count,
                                        std::vector<uint32_t> neighbours, int64_t total_steps) {
  const gossip_mode mode = gossip_mode_of(c);
  peer_settings s;
  s.id = id;
  s.peer_count = peer_count;
  s.neighbours = std::move(neighbours);
  s.model = c.model;
  s.gossip.mode = mode;
  // dense and local SGD send everything; local SGD replaces x by the average.
  s.gossip.threshold = (mode == gossip_mode::dense || mode == gossip_mode::local_sgd) ? 0.0 : c.threshold;
  s.gossip.trigger = c.trigger;
  if (c.gossip_schedule == "one_peer") {
    s.gossip.schedule = gossip_schedule::one_peer;
    uint32_t colours = 1;
    while ((uint64_t{1} << colours) < peer_count) ++colours;
    s.gossip.schedule_colours = colours;
    s.gossip.schedule_every = static_cast<uint64_t>(std::max<int64_t>(1, c.every));
    s.gossip.estimates_follow_mix = c.link_estimates == "follow_mix";
  }
  s.gossip.publish_first = c.publish_at == "before_step";
  s.gossip.grid = c.compressor == "grid" && s.gossip.threshold > 0 && mode != gossip_mode::delta;
  if (c.threshold_schedule == "lr" && c.lr_schedule == "cosine") {
    s.gossip.threshold_power = c.threshold_power;
    s.gossip.threshold_floor = c.threshold_floor;
    s.gossip.lr_total_steps = total_steps;
  }
  s.gossip.gamma = mode == gossip_mode::local_sgd ? 1.0 : c.gamma;
  s.gossip.max_staleness = static_cast<uint64_t>(c.max_staleness);
  s.gossip.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  s.gossip.robust.rule = robust_rule_of(c);
  s.gossip.robust.trim = c.robust_trim;
  s.gossip.robust.clip_radius = c.clip_radius;
  s.gossip.robust.clip_scale = c.clip_scale;
  s.gossip.max_value = c.max_value;
  s.gossip.contribution = c.contribution == "rate"     ? contribution_rule::rate
                          : c.contribution == "mixing" ? contribution_rule::mixing
                                                       : contribution_rule::uniform;
  s.gossip.contribution_window = static_cast<uint64_t>(c.contribution_window);
  s.gossip.link_period_max = static_cast<uint32_t>(c.link_period_max);
  s.gossip.detect.enabled = c.detect_method == "rank";
  s.gossip.detect.window = static_cast<uint64_t>(c.detect_window);
  s.gossip.detect.span = static_cast<uint64_t>(c.detect_span);
  s.gossip.detect.threshold = c.detect_threshold;
  s.gossip.detect.patience = static_cast<uint64_t>(c.detect_patience);
  s.gossip.detect.coords = static_cast<uint64_t>(c.detect_coords);
  s.gossip.detect.seed = Rng(c.seed).fork(300).next_u64();
  s.train.optimizer = c.optimizer;
  s.train.lr = c.lr;
  s.train.cosine = c.lr_schedule == "cosine";
  s.train.momentum = c.momentum;
  s.train.weight_decay = c.weight_decay;
  s.train.batch = c.batch;
  s.train.total_steps = total_steps;
  s.train.gossip_every = c.every;
  s.train.data_seed = Rng(c.seed).fork(100 + id).next_u64();
  s.train.init_seed = c.seed;  // the same initial model on every peer
  s.train.augment = augment_of(c);
  s.attack = attack_settings_for(c, id, peer_count);
  return s;
}

cheat_settings cheat_of(const peer_settings& s) {
  cheat_settings c;
  switch (s.attack.kind) {
    case attack_kind::skip_product: c.kind = compute_cheat::skip_product; break;
    case attack_kind::perturb: c.kind = compute_cheat::perturb; break;
    case attack_kind::half_batch: c.kind = compute_cheat::half_batch; break;
    case attack_kind::replay: c.kind = compute_cheat::replay; break;
    default: return c;
  }
  c.start_step = std::max<uint64_t>(1, s.attack.start_step);
  c.every = std::max<uint64_t>(1, s.attack.every);
  c.eps = s.attack.eps;
  return c;
}

std::optional<peer_verification> peer_verification_from_config(
    const RunConfig& c, const peer_settings& s, const std::vector<std::vector<int64_t>>& shards,
    std::function<std::vector<uint32_t>(uint32_t)> neighbours_of, uint64_t seed, const verify_timing& timing,
    std::function<double()> now_s) {
  if (c.verify_rate <= 0) return std::nullopt;
  return peer_verification_from_config(c, s, std::make_shared<const std::vector<std::vector<int64_t>>>(shards),
                                       std::move(neighbours_of), seed, timing, std::move(now_s));
}

std::optional<peer_verification> peer_verification_from_config(
    const RunConfig& c, const peer_settings& s, std::shared_ptr<const std::vector<std::vector<int64_t>>> shared,
    std::function<std::vector<uint32_t>(uint32_t)> neighbours_of, uint64_t seed, const verify_timing& timing,
    std::function<double()> now_s) {
  if (c.verify_rate <= 0) return std::nullopt;
  if (!shared) throw std::invalid_argument("peer_verification_from_config: no shards");
  const auto& shards = *shared;
  peer_verification v;
  v.settings.rate = c.verify_rate;
  v.settings.rounds = static_cast<int>(c.verify_rounds);
  v.settings.keep_commits = static_cast<size_t>(c.verify_keep_commits);
  v.settings.seed = seed;
  v.settings.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  v.settings.augment = s.train.augment;
  v.keep_steps = timing.keep_steps;
  v.settings.keep_steps = timing.keep_steps;
  v.settings.deadline_s = timing.deadline_s;
  v.settings.segment_deadline_min_s = timing.segment_deadline_min_s;
  v.settings.segment_records_cap = timing.segment_records_cap;
  v.settings.max_misses = static_cast<uint32_t>(c.verify_max_misses);
  v.settings.silent = s.attack.kind == attack_kind::silent_prover;
  v.settings.silent_from = std::max<uint64_t>(1, s.attack.start_step);
  v.settings.forge_segment_evidence = s.attack.kind == attack_kind::forged_evidence;
  v.now_s = std::move(now_s);
  v.neighbours_of = std::move(neighbours_of);
  // Per-step checks rebuild a prover's batch from its shard; segment
  // replays get theirs from replay_of: no copy of every shard held for them.
  if (c.verify_scheme != "segment")
    v.shard_of = [shared](uint32_t p) { return p < shared->size() ? (*shared)[p] : std::vector<int64_t>{}; };
  if (c.verify_scheme == "segment") {
    v.settings.segment_steps = static_cast<uint64_t>(c.verify_segment);
    v.boundary_dir = std::filesystem::temp_directory_path().string();
  }
  v.cheat = cheat_of(s);
  if (v.cheat.kind == compute_cheat::replay && !shards.empty()) v.replay_shard = shards[(s.id + 1) % shards.size()];
  return v;
}

}  // namespace murmur
