#include "sim/verify_timing.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "actors/step_transcript.hpp"
#include "sim/config_schema.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

namespace {
constexpr double frame_overhead = 64;     // header, fixed fields
constexpr double deadline_margin = 2.0;   // over the modelled round trip
constexpr double retention_deadlines = 2.5;
}  // namespace

verify_timing verify_timing_of(const RunConfig& c, const Dataset& data, uint32_t degree, double min_deadline_s) {
  std::unique_ptr<Sequential> model;
  try {
    model = build_model(c.model, data.sample_shape(), data.num_classes);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("model.arch: ") + e.what());
  }
  verify_timing t;
  const double b = static_cast<double>(c.batch);
  for (const auto& l : committed_layers(*model)) {
    const double in = static_cast<double>(l.in), out = static_cast<double>(l.out);
    // What a tensor_reply carries and the transcript holds (step_transcript.hpp).
    const double floats = b + (l.data_input ? 0 : b * in) + 2 * in * out + 2 * out + 2 * b * out;
    t.largest_reply_bytes = std::max(t.largest_reply_bytes, 4 * floats + frame_overhead);
    t.transcript_bytes += 4 * floats;
  }
  const double dense_frame = 4.0 * static_cast<double>(model->param_count()) + frame_overhead;
  const double bytes = frame_overhead + t.largest_reply_bytes + degree * dense_frame;
  const double transfer_s = c.bandwidth_mbps > 0 ? 8 * bytes / (c.bandwidth_mbps * 1e6) : 0;
  t.deadline_s = c.verify_deadline_ms > 0
                     ? c.verify_deadline_ms / 1000.0
                     : std::max(min_deadline_s, deadline_margin * (2 * c.latency_ms / 1000.0 + transfer_s));
  const double flops = 6.0 * static_cast<double>(model->forward_flops()) * b;
  t.step_s = c.step_ms > 0 ? c.step_ms / 1000.0 : flops / (c.gflops * 1e9);
  if (c.verify_keep_steps > 0) {
    t.keep_steps = static_cast<size_t>(c.verify_keep_steps);
  } else {
    const double steps = t.step_s > 0 ? std::ceil(retention_deadlines * t.deadline_s / t.step_s) : 1;
    t.keep_steps = static_cast<size_t>(std::clamp(steps + 1, 2.0, 1024.0));
  }
  return t;
}

}  // namespace murmur
