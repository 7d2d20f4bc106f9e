// Which config keys each kind of run uses, and the check that no key is
// silently ignored. Contract:
//  - A run's kind is its host (murmur sim and sweep: the simulation; murmur
//    peer: one LAN process) times its layout (data parallel:
//    pipeline.stages = 1; pipeline: stages > 1, pipeline.replicas = 1;
//    hybrid: stages > 1, replicas > 1).
//  - key_used says whether a run of that kind reads the key (from where the
//    code consumes RunConfig fields: sim/, cli/). A key of a section the
//    table does not name counts as used by every kind.
//  - Only keys whose value differs from the RunConfig default count as set:
//    a default is never reported (defaults may change; a config that leaves
//    a key out, or sets it to its default, always passes).
//  - Data keys also depend on data.dataset (dataset_uses): data.dir only
//    with fashion-mnist, the data files and data.classes only with files.
//  - check_key_usage throws ConfigError naming every set trust key (verify.*,
//    attack.*, detect.*, gossip.robust*, gossip.clip*) the run would not
//    apply, with the kind of run and the source; it returns one warning line
//    naming the other set keys the run does not use ("" when there are none),
//    trust keys set to "none" (or a verify.rate / attack.fraction of 0) among them.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "run/run_config.hpp"

namespace murmur {

enum class run_host : uint8_t { sim, peer };
enum class run_layout : uint8_t { data_parallel, pipeline, hybrid };
struct run_kind {
  run_host host = run_host::sim;
  run_layout layout = run_layout::data_parallel;
};

run_kind run_kind_of(const RunConfig& c, run_host host);
std::string to_string(run_kind k);  // "murmur sim, pipeline (pipeline.stages > 1, pipeline.replicas = 1)"

bool key_used(std::string_view key, run_kind k);
// Trust keys: a run that does not apply one must refuse it, not warn.
bool is_trust_key(std::string_view key);

// Keys set ("key = value", value != the one in defaults) that the run does
// not use. A trust key set to a value that turns it off ("none", a rate or
// fraction of 0) is only ignored: nothing the user asked for is lost.
struct unused_keys {
  std::vector<std::string> refused;  // trust keys
  std::vector<std::string> ignored;  // the rest
  // Used by the kind of run but not with this data.dataset (data.dir with
  // files, data.train_features with fashion-mnist, ...).
  std::vector<std::string> ignored_by_dataset;
};
// Whether data.dataset = dataset reads the key (true for every non-data key).
bool dataset_uses(std::string_view key, std::string_view dataset);
unused_keys find_unused_keys(const RunConfig& c, run_kind k, const RunConfig& defaults);

// Throws ConfigError for refused keys; returns the warning line, or "".
// source names where the values came from ("cfg.toml", "cfg.toml and --set").
std::string check_key_usage(const RunConfig& c, run_host host, const std::string& source);

// For docs/config.md: the kinds of run that use the key ("all",
// "data-parallel, hybrid", "sim", ...), and the paragraph that explains it.
std::string key_usage_text(std::string_view key);
std::string key_usage_doc_header();

}  // namespace murmur
