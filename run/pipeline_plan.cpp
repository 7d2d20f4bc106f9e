#include "run/pipeline_plan.hpp"

#include <cmath>
#include <stdexcept>

#include "actors/topology.hpp"
#include "run/peer_device.hpp"
#include "run/peer_settings_from_config.hpp"
#include "run/stage_placement.hpp"
#include "tensor/rng.hpp"

namespace murmur {

namespace {

// The machine of every node and the predicted makespans (the header). The
// same for murmur sim and murmur peer: only what `simulated` keeps differs
// (a LAN machine computes at its own real speed, so its slowdown stays 1).
void place_machines(const RunConfig& c, const Sequential& whole, pipeline_plan& p, bool simulated) {
  const uint32_t n = p.nodes(), S = p.stages;
  p.machine_of.resize(n);
  for (uint32_t i = 0; i < n; ++i) p.machine_of[i] = i;
  const auto problem = placement_problem_of(c, modelled_layer_costs(whole, c.gflops), n);
  p.slowdown = simulated ? problem.slowdown : std::vector<double>(n, 1.0);
  auto block = [S](uint32_t r) {
    std::vector<uint32_t> m(S);
    for (uint32_t s = 0; s < S; ++s) m[s] = r * S + s;
    return m;
  };
  for (uint32_t r = 0; r < p.replicas; ++r)
    p.predicted_index_batch_s =
        std::max(p.predicted_index_batch_s, predict_placement(problem, p.ranges, block(r)).predicted_s);
  p.predicted_batch_s = p.predicted_index_batch_s;
  if (!placement_is_auto(c)) return;
  p.placement = "auto";
  p.predicted_batch_s = 0;
  for (uint32_t r = 0; r < p.replicas; ++r) {
    // Replica 0 chooses the cut (unless pipeline.split fixed it); every
    // replica's stage s holds the same layers, so the others keep it.
    // Today's layout (this cut, by index) stays unless the best gains > 1 %.
    const auto best = place_stages(problem, block(r), r == 0 && c.split.empty() ? std::vector<stage_range>{} : p.ranges,
                                   p.ranges);
    if (r == 0) p.ranges = best.ranges;
    for (uint32_t s = 0; s < S; ++s) p.machine_of[stage_node(static_cast<uint16_t>(r), static_cast<uint16_t>(s), p.stages)] = best.machine[s];
    p.predicted_batch_s = std::max(p.predicted_batch_s, best.predicted_s);
  }
}

}  // namespace

pipeline_plan make_pipeline_plan(const RunConfig& c, const Dataset& train, bool simulated) {
  pipeline_plan p;
  p.stages = static_cast<uint16_t>(c.stages);
  p.replicas = static_cast<uint16_t>(c.replicas);
  p.spares = static_cast<uint16_t>(c.spares);
  auto whole = build_model(c.model, train.sample_shape(), train.num_classes);
  if (static_cast<size_t>(c.stages) > whole->layer_count())
    throw std::invalid_argument("pipeline.stages = " + std::to_string(c.stages) + ": the model has only " +
                                std::to_string(whole->layer_count()) + " layers");
  if (c.split.empty()) {
    const double bw = c.bandwidth_mbps > 0 ? c.bandwidth_mbps * 1e6 / 8 : 1e15;
    p.ranges = balance_stages(modelled_layer_costs(*whole, c.gflops), p.stages, bw);
  } else {
    try {
      p.ranges = parse_stage_split(c.split, whole->layer_count(), p.stages);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("pipeline.split = \"") + c.split + "\": " + e.what());
    }
  }
  if (c.crash_stage >= c.stages)
    throw std::invalid_argument("pipeline.crash_stage = " + std::to_string(c.crash_stage) + ": only " +
                                std::to_string(c.stages) + " stages");
  if (c.crash_replica >= c.replicas)
    throw std::invalid_argument("pipeline.crash_replica = " + std::to_string(c.crash_replica) + ": only " +
                                std::to_string(c.replicas) + " replicas");
  p.shards = shard_iid(train.size(), p.replicas, c.seed);
  p.steps_per_epoch = (static_cast<int64_t>(p.shards[0].size()) + c.batch - 1) / c.batch;
  p.total_steps = std::max<int64_t>(1, std::llround(c.epochs * static_cast<double>(p.steps_per_epoch)));
  p.input_shape = train.sample_shape();
  p.num_classes = train.num_classes;
  p.initial = load_initial_parameters(c, p.input_shape, p.num_classes);
  place_machines(c, *whole, p, simulated);
  return p;
}

stage_settings stage_settings_for(const RunConfig& c, const pipeline_plan& p, uint16_t replica, uint16_t stage) {
  stage_settings s;
  s.replica = replica;
  s.stage = stage;
  s.stages = p.stages;
  s.microbatches = static_cast<uint32_t>(c.microbatches);
  s.schedule = parse_pipeline_schedule(c.schedule);
  s.model_spec = c.model;
  s.range = p.ranges[stage];
  // The node's machine computes at its own speed (1 on LAN: the real one).
  s.gflops = c.gflops / p.slowdown[p.machine_of[stage_node(replica, stage, p.stages)]];
  // The same training settings as a data-parallel peer with this replica's shard.
  s.train = peer_settings_from_config(c, replica, p.replicas, {}, p.total_steps).train;
  // train.device, resolved for the machine that hosts the stage by default
  // (on a LAN: the process whose peer.index that is).
  s.train.device = peer_device_of(c, p.machine_of[stage_node(replica, stage, p.stages)]);
  s.initial_params = stage_initial_parameters(p.initial, c, p.input_shape, p.num_classes, s.range);
  return s;
}

stage_node_settings stage_node_settings_for(const RunConfig& c, const pipeline_plan& p, uint32_t node,
                                            const std::string& checkpoint_dir) {
  stage_node_settings s;
  s.node = node;
  s.stages = p.stages;
  s.replicas = p.replicas;
  s.spares = p.spares;
  s.seed = c.seed;
  s.checkpoint_every = c.checkpoint_every;
  s.checkpoint_dir = checkpoint_dir;
  s.heartbeat_s = static_cast<double>(c.heartbeat_ms) / 1000.0;
  s.dead_ticks = std::max<int64_t>(1, (c.suspect_ms + c.dead_ms + c.heartbeat_ms - 1) / c.heartbeat_ms);
  s.total_steps = static_cast<uint64_t>(p.total_steps);
  s.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  if (c.crash_stage >= 0 && node == stage_node(static_cast<uint16_t>(c.crash_replica),
                                               static_cast<uint16_t>(c.crash_stage), p.stages))
    s.crash_step = static_cast<uint64_t>(std::max<int64_t>(1, c.crash_step));
  return s;
}

peer_settings stage_gossip_settings(const RunConfig& c, const pipeline_plan& p, uint16_t replica, uint16_t stage) {
  const auto overlay = make_topology(c.topology, p.replicas, static_cast<uint32_t>(c.degree),
                                     c.seed ^ 0x70706f6c6f6779ULL);
  std::vector<uint32_t> nbrs;
  for (uint32_t r : overlay[replica]) nbrs.push_back(stage_node(static_cast<uint16_t>(r), stage, p.stages));
  const uint32_t node = stage_node(replica, stage, p.stages);
  peer_settings s = peer_settings_from_config(c, node, p.nodes(), std::move(nbrs), p.total_steps);
  s.attack = {};
  return s;
}

}  // namespace murmur
