#include "run/verify_timing.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "actors/segment_verifier.hpp"
#include "actors/step_transcript.hpp"
#include "run/config_schema.hpp"
#include "run/link_model.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

namespace {
constexpr double frame_overhead = 64;     // header, fixed fields
constexpr double deadline_margin = 2.0;   // over the modelled round trip
constexpr double retention_deadlines = 2.5;
}  // namespace

verify_timing verify_timing_of(const RunConfig& c, const Dataset& data, uint32_t degree, uint32_t shards,
                               double min_deadline_s, double min_retention_s) {
  std::unique_ptr<Sequential> model;
  try {
    model = build_model(c.model, data.sample_shape(), data.num_classes);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("model.arch: ") + e.what());
  }
  verify_timing t;
  const double b = static_cast<double>(c.batch);
  const auto layers = committed_layers(*model);
  double reply_sum = 0;
  for (const auto& l : layers) {
    const double in = static_cast<double>(l.in), out = static_cast<double>(l.out);
    const double x_row = static_cast<double>(l.in_row), y_row = static_cast<double>(l.out_row);
    // What a tensor_reply carries and the transcript holds (step_transcript.hpp).
    const double floats = b + (l.data_input ? 0 : b * x_row) + 2 * in * out + 2 * out + 2 * b * y_row;
    t.largest_reply_bytes = std::max(t.largest_reply_bytes, 4 * floats + frame_overhead);
    t.transcript_bytes += 4 * floats;
    reply_sum += 4 * floats + frame_overhead;
  }
  const double commit_bytes = frame_overhead + static_cast<double>(layers.size() * committed_count * 32);
  const double flops = 6.0 * static_cast<double>(model->forward_flops()) * b;
  t.step_s = c.step_ms > 0 ? c.step_ms / 1000.0 : flops / (c.gflops * 1e9);
  // Bytes a prover's uplink must carry per step for verification alone.
  const double mean_reply = layers.empty() ? 0 : reply_sum / static_cast<double>(layers.size());
  double per_step = degree * (commit_bytes + c.verify_rate * mean_reply);
  const bool segments = c.verify_scheme == "segment";
  if (segments) {
    const auto k = static_cast<uint64_t>(c.verify_segment);
    const double params = static_cast<double>(model->param_count());
    const double opt_slots = c.optimizer == "adam" ? 2 : (c.momentum > 0 ? 1 : 0);
    t.segment_steps = k;
    t.boundary_bytes = 4 * params * (1 + opt_slots) + 4 * params * (1 + degree) + frame_overhead;
    const double q = segment_challenge_probability(c.verify_rate, layers.size(), k);
    const double segment_commit_bytes = frame_overhead + 4 + 16 + 3 * 32;
    per_step = degree * (segment_commit_bytes + q * t.boundary_bytes) / static_cast<double>(k);
  }
  // Per-peer links (sim.link_*): the deadline must cover the slowest rate
  // and the longest latency any challenge can meet.
  double bandwidth_mbps = c.bandwidth_mbps, latency_ms = c.latency_ms;
  if (!c.link_classes.empty() || !c.link_file.empty() || !c.link_events.empty()) {
    const auto links = link_model::from_config(c, static_cast<uint32_t>(std::max<int64_t>(c.peers, 1)));
    bandwidth_mbps = links.slowest_bps() / 1e6;
    latency_ms = links.largest_latency_s() * 1000.0;
  }
  const double bps = bandwidth_mbps * 1e6;
  t.uplink_load = bps > 0 && t.step_s > 0 ? 8 * per_step / (t.step_s * bps) : 0;
  const double dense_frame = 4.0 * static_cast<double>(model->param_count()) + frame_overhead;
  // A segment reply is the start state and the records: bounded by every
  // neighbour's frame, complete, at every one of the K steps (threshold
  // gossip sends far less: generous, not tight). Each of the degree
  // verifiers may challenge the same segment: their replies queue.
  double reply_bytes = t.largest_reply_bytes;
  if (segments) {
    t.segment_records_cap = static_cast<double>(t.segment_steps) * degree * (dense_frame + 32);
    t.segment_reply_bytes = t.boundary_bytes + t.segment_records_cap + frame_overhead;
    reply_bytes = degree * t.segment_reply_bytes;
  }
  const double bytes = frame_overhead + reply_bytes + degree * dense_frame;
  const double transfer_s = bps > 0 ? 8 * bytes / bps : 0;
  double backlog_s = 0;
  if (t.uplink_load >= 1) {
    const double shard = std::ceil(static_cast<double>(data.size()) / std::max<uint32_t>(shards, 1));
    const double run_s = c.epochs * std::ceil(shard / b) * t.step_s;
    backlog_s = (t.uplink_load - 1) * run_s;
    if (c.verify_deadline_ms <= 0 && segments)
      std::fprintf(stderr,
                   "warning: segment verification traffic (a commitment every verify.segment = %lld steps, and the "
                   "segment's start state, %.3g MB, to each challenger at verify.rate = %g) needs %.1f times a "
                   "peer's uplink (%g Mbit/s: sim.bandwidth_mbps, or the slowest sim.link_* rate) at the modelled step of %.3g ms: deadlines cover the "
                   "backlog, %.3g s by the run's end; lower verify.rate, raise verify.segment or the bandwidth\n",
                   static_cast<long long>(c.verify_segment), t.boundary_bytes / 1e6, c.verify_rate, t.uplink_load,
                   bandwidth_mbps, 1000 * t.step_s, backlog_s);
    else if (c.verify_deadline_ms <= 0)
      std::fprintf(stderr,
                   "warning: verification traffic (commitments, and replies at verify.rate = %g) needs %.1f times a "
                   "peer's uplink (%g Mbit/s: sim.bandwidth_mbps, or the slowest sim.link_* rate) at the modelled step of %.3g ms: deadlines cover the "
                   "backlog, %.3g s by the run's end; lower verify.rate or raise the bandwidth for timely answers\n",
                   c.verify_rate, t.uplink_load, bandwidth_mbps, 1000 * t.step_s, backlog_s);
  }
  const double queued = transfer_s / (1 - std::min(t.uplink_load, 0.9)) + backlog_s;
  const double link_deadline_s = deadline_margin * (2 * latency_ms / 1000.0 + queued);
  t.deadline_s = c.verify_deadline_ms > 0 ? c.verify_deadline_ms / 1000.0 : std::max(min_deadline_s, link_deadline_s);
  if (segments) {
    // The same deadline for records of 0 bytes (linear in them, so a
    // verifier interpolating between the two is never below the formula).
    const double transfer_min_s = bps > 0 ? 8 * (bytes - degree * t.segment_records_cap) / bps : 0;
    const double queued_min = transfer_min_s / (1 - std::min(t.uplink_load, 0.9)) + backlog_s;
    t.segment_deadline_min_s = c.verify_deadline_ms > 0
                                   ? t.deadline_s
                                   : std::max(min_deadline_s, deadline_margin * (2 * latency_ms / 1000.0 + queued_min));
  }
  const double retained_s =
      c.verify_deadline_ms > 0 ? t.deadline_s : std::max(min_retention_s, link_deadline_s);
  if (c.verify_keep_steps > 0) {
    t.keep_steps = static_cast<size_t>(c.verify_keep_steps);
  } else {
    const double steps = t.step_s > 0 ? std::ceil(retention_deadlines * retained_s / t.step_s) : 1;
    t.keep_steps = static_cast<size_t>(std::clamp(steps + 1, 2.0, 1024.0));
  }
  return t;
}

}  // namespace murmur
