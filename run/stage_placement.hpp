// stage_placement: where a pipeline's cut falls and which machine runs
// which stage, when machines differ in speed and links differ in rate and
// latency. No actors, no sockets: a cost model and a search.
//
// The predicted makespan of one batch (M micro-batches of b samples):
//   fill/drain: one micro-batch's forward through every stage and its
//     backward back (all compute, every activation and gradient transfer
//     and both latencies of each boundary), plus
//   (M - 1) x the bottleneck. A stage computes its next op while its
//     uplink carries the last output, so a stage's period is the larger of
//     its compute and its uplink's time. 1f1b alternates F and B: the
//     largest max(F + B, activation sent on + gradient sent back), and at
//     least loop_s / min(S - s, M), where loop_s is the fill/drain of
//     stages s.. (1f1b holds at most S - s micro-batches in flight at stage
//     s, so latency throttles it). gpipe runs all forwards, then all
//     backwards: the largest max(F, activation sent) plus the largest
//     max(B, gradient sent).
// A layer's seconds (forward + backward, per sample) split 1:2 into F and B
// (as the simulated stages cost them) and scale by its machine's slowdown; a
// transfer takes bytes / the link's idle rate (sender uplink, link cap,
// receiver downlink). Not modelled: queueing on a downlink that receives
// from both sides, frame headers, the optimizer step, bandwidth windows
// (sim.link_events). Against murmur sim: docs/pipeline.md (Placement).
//
// Search (place_stages): every contiguous cut x every assignment of the
// machines to stages when C(L-1, S-1) x S! <= exact_budget evaluations
// (exact); beyond, a stated heuristic: for an assignment, the cut that
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
  std::vector<double> slowdown;                 // per machine: compute seconds x this (>= some > 0)
  std::vector<std::vector<double>> bytes_per_s; // [from][to]; 0 = unlimited
  std::vector<std::vector<double>> latency_s;   // [from][to]
};

struct stage_placement {
  std::vector<stage_range> ranges;  // per stage
  std::vector<uint32_t> machine;    // per stage
  double predicted_s = 0;           // one batch
  double bottleneck_s = 0;          // per micro-batch in the steady state
  bool exact = true;                // false: the heuristic chose it
};

inline constexpr double exact_budget = 2e6;

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

// Each machine's compute slowdown, as sim/simulation.cpp draws a peer's:
// 1 + sim.speed_spread * u_i (Rng(seed).fork(3)), times sim.slow_factor
// for sim.slow_peers.
std::vector<double> machine_slowdowns(const RunConfig& c, uint32_t machines);

// The problem for `machines` simulated machines: links from the sim's link
// model (sim.bandwidth_mbps / latency_ms, link_classes, link_file), speeds
// from machine_slowdowns, micro-batches of pipeline.microbatches.
// Throws ConfigError naming the key.
placement_problem placement_problem_of(const RunConfig& c, std::vector<layer_cost> layers, uint32_t machines);

// "auto" layouts are searched; "index" puts stage s on machine s.
bool placement_is_auto(const RunConfig& c);

}  // namespace murmur
