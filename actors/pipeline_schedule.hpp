// pipeline_schedule: the order in which one stage of an S-stage pipeline
// runs the forward (F) and backward (B) passes of M micro-batches in a step.
//  gpipe (fill-drain): F0 .. F(M-1), then B(M-1) .. B0.
//  1f1b (PipeDream-flush): w = min(S-1-s, M) warm-up forwards, then pairs
//    F(w+i), B(i), then the remaining backwards; a stage holds at most
//    min(S-s, M) micro-batches between their F and B, GPipe holds M.
// Every stage's first op is F0, and each stage finishes the step with a
// backward, so the optimizer step follows its last op.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace murmur {

enum class pipeline_schedule_kind : uint8_t { gpipe, one_f_one_b };

// "gpipe" | "1f1b"; std::invalid_argument otherwise.
pipeline_schedule_kind parse_pipeline_schedule(const std::string& name);
const char* to_string(pipeline_schedule_kind k);

struct pipeline_op {
  bool backward = false;
  uint16_t microbatch = 0;
  bool operator==(const pipeline_op&) const = default;
};

// stages >= 1, stage < stages, microbatches >= 1.
std::vector<pipeline_op> stage_schedule(pipeline_schedule_kind kind, uint32_t stages, uint32_t stage,
                                        uint32_t microbatches);

// Most micro-batches between their F and their B at any point of the order.
size_t peak_in_flight(const std::vector<pipeline_op>& ops);

// The bound on a pipeline's efficiency (busy fraction) with equal stages and
// free communication: M / (M + S - 1).
inline double pipeline_efficiency_bound(uint32_t stages, uint32_t microbatches) {
  return static_cast<double>(microbatches) / static_cast<double>(microbatches + stages - 1);
}

}  // namespace murmur
