// stage_placement: where a pipeline's cut falls and which machine runs
// which stage, when machines differ in speed and links differ in rate and
// latency. No actors, no sockets: a cost model and a search.
//
// The predicted makespan of one batch (M micro-batches of b samples) is a
// replay of the schedule (actors/pipeline_schedule.hpp: each stage runs its
// ops in that order, an op when its input has arrived): an op costs its
// layers' seconds (forward + backward per sample, split 1:2 into F and B, as
// the simulated stages cost them) x b x its machine's slowdown; its output
// leaves when the op is done and the sender's uplink is free, occupies the
// uplink for bytes / the link's rate, arrives a latency later and no
// earlier than the receiver's downlink (per direction) has taken it: the
// network of run/link_model.hpp. This is fill/drain + (M - 1) x the
// bottleneck where that closed form holds, and also covers what it misses:
// 1f1b holds at most min(S - s, M) micro-batches at stage s, so a long
// round trip (latency) throttles it, and outputs queue on a busy uplink.
// bottleneck_s reports the closed form's steady-state period per
// micro-batch: 1f1b max over stages of max(F + B, the two sends, the round
// trip from the stage / min(S - s, M)); gpipe max(F, the activation sent) +
// max(B, the gradient sent).
// Not modelled: frame headers, the optimizer step, a downlink's contention
// between the two directions, bandwidth windows (sim.link_events). Against
// murmur sim: docs/pipeline.md (Placement).
//
// Search (place_stages): every contiguous cut x every assignment of the
// machines to stages when C(L-1, S-1) x S! x S x M <= exact_budget replayed
// ops (exact); beyond, a stated heuristic: for an assignment, the cut that
// minimises the 1f1b bottleneck (DP), then pairwise swaps of machines from
// three starts (index order, fastest first, slowest first) while one
// lowers the predicted makespan. Ties keep the earlier candidate: the index
// assignment, then the earliest cuts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "actors/pipeline_schedule.hpp"
#include "run/run_config.hpp"
#include "tensor/stage_split.hpp"

namespace murmur {

struct placement_problem {
  std::vector<layer_cost> layers;  // per sample, on a machine of slowdown 1
  double samples = 1;              // per micro-batch
  uint32_t microbatches = 1;
  pipeline_schedule_kind schedule = pipeline_schedule_kind::one_f_one_b;
  std::vector<double> slowdown;                 // per machine: compute seconds x this (> 0)
  std::vector<std::vector<double>> bytes_per_s; // [from][to]: the sender's uplink and link cap; 0 = unlimited
  std::vector<double> down_bytes_per_s;         // per machine: its downlink; 0 = unlimited (empty: all)
  std::vector<std::vector<double>> latency_s;   // [from][to]
};

struct stage_placement {
  std::vector<stage_range> ranges;  // per stage
  std::vector<uint32_t> machine;    // per stage
  double predicted_s = 0;           // one batch
  double bottleneck_s = 0;          // per micro-batch in the steady state
  bool exact = true;                // false: the heuristic chose it
};

inline constexpr double exact_budget = 5e7;  // replayed ops

// The predicted makespan of one batch (and the bottleneck) of a layout.
// Throws std::invalid_argument on ranges that do not cover the layers or
// machines out of range.
stage_placement predict_placement(const placement_problem& p, const std::vector<stage_range>& ranges,
                                  const std::vector<uint32_t>& machine);

// The layout of `machines.size()` stages over exactly those machines with
// the smallest predicted makespan. With `fixed` non-empty the cut is given
// and only the assignment is searched. `preferred` (today's: the balanced
// cut, stage s on machines[s]) is kept unless the best predicts more than
// balance_tolerance (1 %) less: identical machines keep today's layout, and
// nothing moves for a gain the model cannot resolve. `budget`: exact_budget
// (tests lower it to compare the heuristic with the exact search).
stage_placement place_stages(const placement_problem& p, const std::vector<uint32_t>& machines,
                             const std::vector<stage_range>& fixed = {},
                             const std::vector<stage_range>& preferred = {}, double budget = exact_budget);

// Each machine's step cost: step_s x (1 + sim.speed_spread * u_i)
// (Rng(seed).fork(3)), times sim.slow_factor for sim.slow_peers; with
// step_s = 1, its slowdown. The simulator draws its peers' speeds here too.
std::vector<double> machine_slowdowns(const RunConfig& c, uint32_t machines, double step_s = 1.0);

// The problem for `machines` simulated machines: links from the sim's link
// model (sim.bandwidth_mbps / latency_ms, link_classes, link_file), speeds
// from machine_slowdowns, micro-batches of pipeline.microbatches.
// Throws ConfigError naming the key.
placement_problem placement_problem_of(const RunConfig& c, std::vector<layer_cost> layers, uint32_t machines);

// "auto" layouts are searched; "index" puts stage s on machine s.
bool placement_is_auto(const RunConfig& c);

}  // namespace murmur
