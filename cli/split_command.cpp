// murmur split: where to cut a model into pipeline stages. Prints every
// layer's modelled cost (sim.gflops, what `murmur sim` balances), its cost
// measured on this machine, and its output size, then the balanced cut for
// each: every peer of a LAN pipeline must use the same cut, so measure once
// and put the printed pipeline.split into the config.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "run/config_schema.hpp"
#include "run/run_data.hpp"
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
