// pipeline_plan: how a run config lays a pipeline cluster out (the same for
// `murmur sim` and for `murmur peer` processes): the stage cut, each
// replica's data shard, the step budget, and the settings of every node
// (stage s of replica r is node r * S + s; spares follow).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "actors/pipeline_stage.hpp"
#include "actors/stage_actor.hpp"
#include "run/initial_model.hpp"
#include "run/run_config.hpp"

namespace murmur {

struct pipeline_plan {
  uint16_t stages = 1, replicas = 1, spares = 0;
  std::vector<stage_range> ranges;           // per stage
  std::vector<std::vector<int64_t>> shards;  // per replica
  int64_t steps_per_epoch = 1, total_steps = 1;
  Shape input_shape;                         // per sample
  int64_t num_classes = 0;
  initial_params initial;                    // model.init_from's whole model (null: seeded init)
  // Node n (stage s of replica r is r * S + s) runs on machine
  // machine_of[n], whose declared speed (slowdown: compute seconds x this)
  // and links are the config's for that index: a simulated machine in
  // murmur sim, the process with peer.index = machine_of[n] in murmur peer.
  // Identity with pipeline.placement = index, and for spares.
  std::vector<uint32_t> machine_of;          // per node
  std::vector<double> slowdown;              // per machine (1 for LAN machines: they compute at their real speed)
  std::string placement = "index";           // how the cut and machines were chosen
  double predicted_batch_s = 0;              // stage_placement's prediction (slowest replica)
  double predicted_index_batch_s = 0;        // the same for stage s on node s with the index cut (split or balanced)
  uint32_t nodes() const { return uint32_t{replicas} * stages + spares; }
};

// Throws std::invalid_argument naming the key (pipeline.split, ...) on a
// layout that cannot work. The automatic cut balances modelled costs at
// sim.gflops and the link's bandwidth (sim.bandwidth_mbps). Reads
// model.init_from (run/initial_model.hpp): each stage's settings carry its slice.
// The machines' speeds and links are the config's declared ones
// (sim.speed_spread, sim.slow_peers x sim.slow_factor, sim.bandwidth_mbps,
// sim.latency_ms, sim.link_classes, sim.link_file: run/stage_placement.hpp);
// pipeline.placement = auto chooses the cut (unless pipeline.split gives it)
// and each replica's machines: replica 0's jointly, the others' for that
// cut. The layout depends on the config and the model alone, so every LAN
// process computes the same one, and murmur sim the same as murmur peer.
// `simulated` (murmur sim): each machine also computes at its declared
// slowdown; without it (LAN peers) at 1, its real speed.
pipeline_plan make_pipeline_plan(const RunConfig& c, const Dataset& train, bool simulated = false);

// train.device resolved for the stage's node (run/peer_device.hpp): throws
// std::runtime_error when cuda is asked for and cannot be had.
stage_settings stage_settings_for(const RunConfig& c, const pipeline_plan& p, uint16_t replica, uint16_t stage);
stage_node_settings stage_node_settings_for(const RunConfig& c, const pipeline_plan& p, uint32_t node,
                                            const std::string& checkpoint_dir);
// Gossip of stage s of replica r with stage s of the neighbouring replicas
// (gossip.topology over the replicas, mapped to node ids); valid when R > 1.
peer_settings stage_gossip_settings(const RunConfig& c, const pipeline_plan& p, uint16_t replica, uint16_t stage);

}  // namespace murmur
