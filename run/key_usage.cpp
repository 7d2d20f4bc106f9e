#include "run/key_usage.hpp"

#include "run/config_schema.hpp"

namespace murmur {

namespace {

// One bit per kind of run: host x layout.
using kinds = uint8_t;
constexpr kinds bit(run_host h, run_layout l) {
  return static_cast<kinds>(1u << (static_cast<unsigned>(h) * 3 + static_cast<unsigned>(l)));
}
constexpr kinds SD = bit(run_host::sim, run_layout::data_parallel), SP = bit(run_host::sim, run_layout::pipeline),
                SH = bit(run_host::sim, run_layout::hybrid), PD = bit(run_host::peer, run_layout::data_parallel),
                PP = bit(run_host::peer, run_layout::pipeline), PH = bit(run_host::peer, run_layout::hybrid);
constexpr kinds SIM = SD | SP | SH, PEER = PD | PP | PH, DP = SD | PD, HYBRID = SH | PH, PIPES = SP | SH | PP | PH,
                ALL = SIM | PEER;

// Who reads each key, first match wins; a name ending in '.' or '_' is a
// prefix. Where it is read:
//  - data-parallel runs: sim/simulation.cpp, lan/peer_host.cpp, both via
//    run/peer_settings_from_config.cpp (gossip, detect, attack, verify);
//  - pipeline runs: run/pipeline_plan.cpp (layout, stage training settings,
//    stage nodes' failure detection, hybrid gossip through
//    stage_gossip_settings, which clears the attack), sim/pipeline_simulation.cpp
//    and lan/pipeline_host.cpp. Stages publish to their gossip every step
//    (no gossip.every), cut their data iid (no data.partition), and commit
//    to no step transcripts (no verify.*).
struct usage_rule {
  std::string_view name;
  kinds used;
};
constexpr usage_rule rules[] = {
    {"run.stop_after", SIM | PD},
    {"train.eval_subset", SD},  // sim/simulation.cpp; a LAN peer evaluates itself alone, on the whole test set
    {"data.partition", DP},
    {"data.alpha", DP},
    {"gossip.every", DP},
    {"gossip.link_tau_exponent", SD},  // sim/simulation.cpp: a LAN peer does not know its links' rates yet
    {"gossip.", DP | HYBRID},
    {"detect.", DP | HYBRID},
    {"attack.", DP},
    {"verify.", DP},
    {"sim.peers", SD},
    {"sim.step_ms", SD},
    // Pipelines: the nodes' declared speeds and links, from which
    // pipeline.placement = auto lays the stages out (run/stage_placement.hpp),
    // murmur peer's processes as the simulation's machines.
    {"sim.speed_spread", SD | PIPES},
    {"sim.slow_", SD | PIPES},
    {"sim.link_classes", SD | PIPES},
    {"sim.link_file", SD | PIPES},
    {"sim.latency_ms", SIM | PP | PH},
    {"sim.link_", SD | SP | SH},  // the simulated network (run/link_model.hpp), data-parallel and pipeline
    {"offload.timeout_ms", PD},
    {"offload.", DP},
    {"sim.bandwidth_mbps", SIM | PP | PH},  // also the automatic pipeline.split's link model
    {"sim.gflops", SIM | PP | PH},          // also the automatic pipeline.split's cost model
    {"sim.", SIM},
    {"peer.heartbeat_ms", PEER | SP | SH},  // simulated stage nodes detect failures the same way
    {"peer.suspect_ms", PEER | SP | SH},
    {"peer.dead_ms", PEER | SP | SH},
    {"peer.donors", PD},
    {"peer.min_peers", PD},         // pipeline nodes need every node: they wait for their first step
    {"peer.on_start_timeout", PD},  // a pipeline node that does not step by peer.start_timeout_ms stalls
    {"peer.", PEER},
    {"pipeline.stages", ALL},
    {"pipeline.crash_", SP | SH},
    // murmur peer refuses crash_stage: kill the process instead.
    {"pipeline.", PIPES},
    {"checkpoint.", ALL},
};

bool matches(std::string_view rule, std::string_view key) {
  const char last = rule.back();
  return (last == '.' || last == '_') ? key.substr(0, rule.size()) == rule : key == rule;
}

kinds used_by(std::string_view key) {
  for (const auto& r : rules)
    if (matches(r.name, key)) return r.used;
  return ALL;
}

kinds bit_of(run_kind k) { return bit(k.host, k.layout); }

const char* host_name(run_host h) { return h == run_host::sim ? "murmur sim" : "murmur peer"; }

const char* layout_name(run_layout l) {
  switch (l) {
    case run_layout::data_parallel: return "data-parallel";
    case run_layout::pipeline: return "pipeline";
    case run_layout::hybrid: return "hybrid";
  }
  return "?";
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

}  // namespace

run_kind run_kind_of(const RunConfig& c, run_host host) {
  if (c.stages <= 1) return {host, run_layout::data_parallel};
  return {host, c.replicas > 1 ? run_layout::hybrid : run_layout::pipeline};
}

std::string to_string(run_kind k) {
  std::string s = std::string(host_name(k.host)) + ", " + layout_name(k.layout);
  switch (k.layout) {
    case run_layout::data_parallel: return s + " (pipeline.stages = 1)";
    case run_layout::pipeline: return s + " (pipeline.stages > 1, pipeline.replicas = 1)";
    case run_layout::hybrid: return s + " (pipeline.stages > 1, pipeline.replicas > 1)";
  }
  return s;
}

bool key_used(std::string_view key, run_kind k) { return (used_by(key) & bit_of(k)) != 0; }

bool is_trust_key(std::string_view key) {
  for (std::string_view p : {"verify.", "attack.", "detect.", "gossip.robust", "gossip.clip"})
    if (key.substr(0, p.size()) == p) return true;
  return false;
}

namespace {

// A value that turns the protection or attack off: nothing is lost when a
// run does not apply it (defaults may turn detection or clipping on).
bool turns_off(std::string_view key, std::string_view value) {
  return value == "none" || (value == "0" && (key == "verify.rate" || key == "attack.fraction"));
}

}  // namespace

bool dataset_uses(std::string_view key, std::string_view dataset) {
  if (key == "data.dir") return dataset == "fashion-mnist";
  for (std::string_view k :
       {"data.train_features", "data.train_labels", "data.test_features", "data.test_labels", "data.classes"})
    if (key == k) return dataset == "files";
  return true;
}

unused_keys find_unused_keys(const RunConfig& c, run_kind k, const RunConfig& defaults) {
  unused_keys u;
  for (const auto& key : config_keys()) {
    const bool by_kind = key_used(key, k);
    if (by_kind && dataset_uses(key, c.dataset)) continue;
    const std::string v = get_key(c, key);
    if (v == get_key(defaults, key)) continue;
    const std::string item = key + " = " + (v.empty() ? "\"\"" : v);
    if (!by_kind)
      (is_trust_key(key) && !turns_off(key, v) ? u.refused : u.ignored).push_back(item);
    else
      u.ignored_by_dataset.push_back(item);
  }
  return u;
}

std::string check_key_usage(const RunConfig& c, run_host host, const std::string& source) {
  const run_kind k = run_kind_of(c, host);
  const unused_keys u = find_unused_keys(c, k, RunConfig{});
  if (!u.refused.empty()) {
    bool gossip_side = false;  // detect.*, gossip.robust*: a hybrid run would apply them
    for (const auto& key : u.refused)
      gossip_side = gossip_side || key.rfind("detect.", 0) == 0 || key.rfind("gossip.", 0) == 0;
    throw ConfigError(std::string(k.layout == run_layout::data_parallel ? "this run does" : "pipeline runs do") +
                      " not apply " + join(u.refused) + " (" + to_string(k) + ", set in " + source +
                      "): remove them or run data-parallel (pipeline.stages = 1)" +
                      (gossip_side && k.layout == run_layout::pipeline
                           ? "; detect.* and gossip.robust* also apply to a hybrid run's gossip (pipeline.replicas > 1)"
                           : ""));
  }
  std::string line;
  if (!u.ignored.empty())
    line = to_string(k) + " does not use " + join(u.ignored) + " (set in " + source + "); they have no effect";
  if (!u.ignored_by_dataset.empty())
    line += (line.empty() ? "" : "; ") + std::string("data.dataset = ") + c.dataset + " does not use " +
            join(u.ignored_by_dataset) + " (set in " + source + "); they have no effect";
  return line;
}

std::string key_usage_text(std::string_view key) {
  const kinds used = used_by(key);
  if (used == ALL) return "all";
  std::vector<std::string> parts;
  kinds left = used;
  for (run_host h : {run_host::sim, run_host::peer}) {  // a whole host: "sim", "peer"
    const kinds whole = h == run_host::sim ? SIM : PEER;
    if ((left & whole) == whole) parts.push_back(h == run_host::sim ? "sim" : "peer"), left &= ~whole;
  }
  for (run_layout l : {run_layout::data_parallel, run_layout::pipeline, run_layout::hybrid}) {  // both hosts
    const kinds both = bit(run_host::sim, l) | bit(run_host::peer, l);
    if ((left & both) == both) parts.push_back(layout_name(l)), left &= ~both;
  }
  for (run_host h : {run_host::sim, run_host::peer})
    for (run_layout l : {run_layout::data_parallel, run_layout::pipeline, run_layout::hybrid})
      if (left & bit(h, l)) parts.push_back(std::string(h == run_host::sim ? "sim " : "peer ") + layout_name(l));
  return join(parts);
}

std::string key_usage_doc_header() {
  return "The column *used by* names the kinds of run that read a key: `sim` is `murmur sim` and `murmur sweep`, "
         "`peer` is `murmur peer`; *data-parallel* has `pipeline.stages = 1`, *pipeline* `pipeline.stages > 1` "
         "with `pipeline.replicas = 1`, *hybrid* `pipeline.stages > 1` with `pipeline.replicas > 1`.\n\n"
         "No key is silently ignored. A key set (in the file or by `--set`) to a value other than its default "
         "that the run does not use is refused when it is a trust key (`verify.*`, `attack.*`, `detect.*`, "
         "`gossip.robust*`, `gossip.clip*`): a pipeline run with `verify.rate` or `attack.kind` set stops with a "
         "config error naming them, rather than run without the verification or the attack it was asked for. "
         "Any other such key gets a warning line on stderr naming it (e.g. `sim.*` keys in `murmur peer`, "
         "`peer.*` keys in a data-parallel `murmur sim`, `pipeline.*` keys in a data-parallel run), and so does a "
         "trust key set to `none` (or `verify.rate`, `attack.fraction` = 0) that the run does not apply. A key "
         "left at its default is never reported. Pipeline runs apply no step verification and simulate no "
         "attacks (docs/trust.md); a hybrid run applies `detect.*` and `gossip.robust*` to its gossip. The data keys "
         "also depend on `data.dataset`: `data.dir` is read for `fashion-mnist` only, `data.train_features`, "
         "`data.train_labels`, `data.test_features`, `data.test_labels` and `data.classes` for `files` only; set "
         "otherwise, they get the same warning.\n\n";
}

}  // namespace murmur
