#include "actors/pipeline_schedule.hpp"

#include <algorithm>
#include <stdexcept>

namespace murmur {

pipeline_schedule_kind parse_pipeline_schedule(const std::string& name) {
  if (name == "gpipe") return pipeline_schedule_kind::gpipe;
  if (name == "1f1b") return pipeline_schedule_kind::one_f_one_b;
  throw std::invalid_argument("pipeline schedule '" + name + "': expected gpipe or 1f1b");
}

const char* to_string(pipeline_schedule_kind k) {
  return k == pipeline_schedule_kind::gpipe ? "gpipe" : "1f1b";
}

std::vector<pipeline_op> stage_schedule(pipeline_schedule_kind kind, uint32_t stages, uint32_t stage,
                                        uint32_t microbatches) {
  if (stages < 1 || stage >= stages || microbatches < 1)
    throw std::invalid_argument("stage_schedule: need stages >= 1, stage < stages, microbatches >= 1");
  const auto m = static_cast<uint16_t>(microbatches);
  std::vector<pipeline_op> ops;
  ops.reserve(2 * microbatches);
  if (kind == pipeline_schedule_kind::gpipe) {
    for (uint16_t i = 0; i < m; ++i) ops.push_back({false, i});
    for (uint16_t i = m; i-- > 0;) ops.push_back({true, i});
    return ops;
  }
  const auto warm = static_cast<uint16_t>(std::min<uint32_t>(stages - 1 - stage, microbatches));
  for (uint16_t i = 0; i < warm; ++i) ops.push_back({false, i});
  for (uint16_t i = 0; i + warm < m; ++i) {
    ops.push_back({false, static_cast<uint16_t>(i + warm)});
    ops.push_back({true, i});
  }
  for (uint16_t i = static_cast<uint16_t>(m - warm); i < m; ++i) ops.push_back({true, i});
  return ops;
}

size_t peak_in_flight(const std::vector<pipeline_op>& ops) {
  size_t now = 0, peak = 0;
  for (const auto& op : ops) {
    if (op.backward) {
      if (now) --now;
    } else {
      peak = std::max(peak, ++now);
    }
  }
  return peak;
}

}  // namespace murmur
