// sweep_plan: what `murmur sweep` runs, decided before the first run starts.
// The swept keys' Cartesian product (the first key varying slowest: the
// table's order), one validated RunConfig and run directory name per
// configuration; the order the runs go in (clean runs, attack.kind = none,
// first, so that every attacked row can be compared with its clean run);
// which clean runs share one simulation (a clean run does not depend on the
// attack.* keys); and, for a sweep spread over machines (--part K/M), which
// configurations this process runs. Bad input throws std::invalid_argument
// (the command line) or ConfigError (a configuration).
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "run/run_config.hpp"

namespace murmur {

struct swept_key {
  std::string key;
  std::vector<std::string> values;
};

// "KEY=V1,V2,...".
swept_key parse_swept_key(const std::string& param);

// Part k of m (0 <= k < m): this process runs the simulations whose rank in
// the sweep's order (counting simulations, not rows that share one) is k
// modulo m; a row sharing a clean run goes with that run.
struct sweep_part {
  size_t k = 0, m = 1;
};
// "K/M".
sweep_part parse_sweep_part(const std::string& text);

struct sweep_plan {
  std::vector<std::string> keys;
  std::vector<std::vector<std::string>> values;  // per configuration, one per key, in table order
  std::vector<std::string> names;                // run directory names, "key=value,key=value"
  std::vector<RunConfig> runs;
  std::vector<size_t> order;    // the order the runs go in; sweep.csv's rows
  std::vector<size_t> same_as;  // i, or the earlier clean configuration whose simulation row i shares
  std::vector<bool> mine;       // in this process's part
  std::vector<std::string> warnings;  // unused keys, each once
};

// Loads and checks every configuration (config, then `overrides`, then one
// value of each swept key) before anything runs; a value listed twice for
// one key is refused (std::invalid_argument).
sweep_plan make_sweep_plan(const std::string& config, const std::vector<swept_key>& params,
                           const std::vector<std::string>& overrides, sweep_part part);

// Whether rows i and j differ only in attack.* keys (a clean run does not
// depend on them).
bool same_but_attack_keys(const std::vector<std::string>& keys, const std::vector<std::vector<std::string>>& values,
                          size_t i, size_t j);

// Index of the clean run matching row `i`, if the sweep has one (attack.kind
// is swept and a row with attack.kind = none differs from i only in attack.*
// keys).
std::optional<size_t> clean_run_of(const std::vector<std::string>& keys,
                                   const std::vector<std::vector<std::string>>& values, size_t i);

}  // namespace murmur
