// murmur split: where to cut a model into pipeline stages. Prints every
// layer's modelled cost (sim.gflops, what `murmur sim` balances), its cost
// measured on this machine, and its output size, then the balanced cut for
// each: every peer of a LAN pipeline must use the same cut, so measure once
// and put the printed pipeline.split into the config. When the nodes
// differ (sim.speed_spread, sim.slow_peers, sim.link_classes, sim.link_file)
// it also prints the layout pipeline.placement = auto chooses
// (run/stage_placement.hpp) next to the index one, with their predicted
// makespans of a batch.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "run/config_schema.hpp"
#include "run/link_model.hpp"
#include "run/run_data.hpp"
#include "run/stage_placement.hpp"
#include "tensor/gemm.hpp"
#include "tensor/stage_split.hpp"

namespace murmur {

namespace {

std::string cuts_of(const std::vector<stage_range>& r) {
  std::string s;
  for (size_t i = 1; i < r.size(); ++i) {
    if (i > 1) s.push_back(',');
    s.append(std::to_string(r[i].begin));
  }
  return s;
}

double max_stage_seconds(const std::vector<layer_cost>& c, const std::vector<stage_range>& r, double bps) {
  double worst = 0;
  for (size_t k = 0; k < r.size(); ++k) {
    double t = 0;
    for (size_t i = r[k].begin; i < r[k].end; ++i) t += c[i].seconds;
    if (k + 1 < r.size()) t += static_cast<double>(c[r[k].end - 1].out_bytes) / bps;
    worst = std::max(worst, t);
  }
  return worst;
}

std::string machines_of(const std::vector<uint32_t>& m) {
  std::string s;
  for (size_t i = 0; i < m.size(); ++i) s += (i ? "," : "") + std::to_string(m[i]);
  return s;
}

// Replica 0's layout on the config's machines: index (stage s on node s,
// the cut balanced for identical nodes) against the placement's choice.
void print_placement(const RunConfig& c, const char* what, const std::vector<layer_cost>& costs,
                     const std::vector<stage_range>& balanced) {
  const auto nodes = static_cast<uint32_t>(c.replicas * c.stages + c.spares);
  const auto problem = placement_problem_of(c, costs, nodes);
  std::vector<uint32_t> index(static_cast<size_t>(c.stages));
  for (uint32_t s = 0; s < index.size(); ++s) index[s] = s;
  const auto by_index = predict_placement(problem, balanced, index);
  const auto best = place_stages(problem, index, c.split.empty() ? std::vector<stage_range>{} : balanced, balanced);
  std::printf("  %s costs:\n", what);
  std::printf("    index: pipeline.split = \"%s\" on nodes %s  predicted %.3f ms per batch (bottleneck %.3f ms per micro-batch)\n",
              cuts_of(balanced).c_str(), machines_of(index).c_str(), 1e3 * by_index.predicted_s,
              1e3 * by_index.bottleneck_s);
  std::printf("    auto:  pipeline.split = \"%s\" on nodes %s  predicted %.3f ms per batch (bottleneck %.3f ms per micro-batch)%s\n",
              cuts_of(best.ranges).c_str(), machines_of(best.machine).c_str(), 1e3 * best.predicted_s,
              1e3 * best.bottleneck_s, best.exact ? "" : " (heuristic search)");
}

struct split_args {
  std::string config;
  std::vector<std::string> overrides;
};

int run_split(const split_args& a) {
  if (a.config.empty()) throw UsageError("missing <config.toml>");
  const std::string& config = a.config;
  const std::vector<std::string>& overrides = a.overrides;
  const RunConfig c = load_config(config, overrides);
  set_blas_threads(1);
  const run_data data = load_run_data(c);
  auto model = build_model(c.model, data.train->sample_shape(), data.train->num_classes);
  model->init(c.seed);
  const auto modelled = modelled_layer_costs(*model, c.gflops);
  const int64_t mb = std::max<int64_t>(1, c.batch / c.microbatches);
  const auto measured = measured_layer_costs(*model, mb);
  const double bps = c.bandwidth_mbps > 0 ? c.bandwidth_mbps * 1e6 / 8 : 1e15;
  std::printf("%-4s %-28s %16s %16s %12s\n", "", "layer", "modelled us/smp", "measured us/smp", "out bytes");
  for (size_t i = 0; i < model->layer_count(); ++i)
    std::printf("%-4zu %-28s %16.3f %16.3f %12lld\n", i, model->layer(i).name().c_str(), 1e6 * modelled[i].seconds,
                1e6 * measured[i].seconds, static_cast<long long>(modelled[i].out_bytes));
  const auto s = static_cast<size_t>(c.stages);
  if (s > model->layer_count())
    throw std::invalid_argument("pipeline.stages = " + std::to_string(s) + ": the model has only " +
                                std::to_string(model->layer_count()) + " layers");
  if (s < 2) {
    std::printf("pipeline.stages = %zu: nothing to cut\n", s);
    return 0;
  }
  const auto by_model = balance_stages(modelled, s, bps), by_measure = balance_stages(measured, s, bps);
  std::printf("balanced for %zu stages (each stage: its layers plus sending its output at %.0f Mbit/s):\n", s,
              c.bandwidth_mbps);
  std::printf("  modelled (murmur sim's default):  pipeline.split = \"%s\"  slowest stage %.3f ms per micro-batch of %lld\n",
              cuts_of(by_model).c_str(), 1e3 * max_stage_seconds(modelled, by_model, bps) * static_cast<double>(mb),
              static_cast<long long>(mb));
  std::printf("  measured on this machine:         pipeline.split = \"%s\"  slowest stage %.3f ms per micro-batch of %lld\n",
              cuts_of(by_measure).c_str(), 1e3 * max_stage_seconds(measured, by_measure, bps) * static_cast<double>(mb),
              static_cast<long long>(mb));
  const auto nodes = static_cast<uint32_t>(c.replicas * c.stages + c.spares);
  const auto slowdown = machine_slowdowns(c, nodes);
  const bool same_speed = std::all_of(slowdown.begin(), slowdown.end(), [&](double f) { return f == slowdown[0]; });
  if (same_speed && link_model::from_config(c, nodes).uniform()) {
    std::printf("every node has the same speed and links: placement by index is as good as any\n");
    return 0;
  }
  std::printf("placement of replica 0's %zu stages on nodes 0..%zu (speeds: sim.speed_spread, sim.slow_peers; links: "
              "sim.link_classes, sim.link_file), batch %lld in %lld micro-batches, %s:\n",
              s, s - 1, static_cast<long long>(c.batch), static_cast<long long>(c.microbatches), c.schedule.c_str());
  std::printf("  node slowdowns:");
  for (uint32_t i = 0; i < s; ++i) std::printf(" %.2f", slowdown[i]);
  std::printf("\n");
  const auto fixed = [&](const std::vector<stage_range>& balanced) {
    return c.split.empty() ? balanced : parse_stage_split(c.split, model->layer_count(), s);
  };
  print_placement(c, "modelled (murmur sim's)", modelled, fixed(by_model));
  print_placement(c, "measured on this machine", measured, fixed(by_measure));
  std::printf("  (pipeline.placement = auto makes murmur sim and murmur peer use the modelled layout%s)\n",
              c.split.empty() ? "" : "; pipeline.split is set, so only the nodes are chosen");
  return 0;
}

}  // namespace

verb_run add_split_verb(CLI::App& murmur) {
  auto a = std::make_shared<split_args>();
  CLI::App* v = murmur.add_subcommand(
      "split", "per-layer cost (modelled and measured here) and the balanced pipeline.split for pipeline.stages");
  v->add_option("config", a->config, "the run's config")->type_name("CONFIG.toml");
  v->add_option("--set", a->overrides, "override a config key; repeatable")->type_name("KEY=VALUE");
  v->footer("Example:\n  murmur split configs/fmnist-pipeline.toml --set pipeline.stages=4");
  return [a] { return run_split(*a); };
}

}  // namespace murmur
