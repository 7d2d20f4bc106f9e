// Config schema: one table of every RunConfig key ("section.key", type,
// default, allowed values, one line of documentation) and all the operations
// driven by it. Contract:
//  - parse_config / load_config read TOML sections [run] [data] [model]
//    [train] [gossip] [detect] [attack] [sim] [peer] [net], then apply "key=value" overrides in order, then
//    run the cross-key checks (validate_config). Keys left out keep the
//    defaults of a default-constructed RunConfig.
//  - Every problem throws ConfigError whose message names the key, the value,
//    what is allowed and the source ("cfg.toml:LINE", "cfg.toml" or "--set").
//  - set_key checks one key (type, range, enum) but not cross-key rules; call
//    validate_config after a batch of set_key calls (sweeps do this).
//  - get_key gives the value as text; set_key(c, k, get_key(c, k)) is a no-op.
//  - to_toml lists every key; parse_config(to_toml(c), ...) reproduces c exactly.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

#include "run/run_config.hpp"

namespace murmur {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses TOML text (source_name appears in error messages), then applies the
// overrides ("key=value"; the value is read by the key's type, strings may be
// bare or quoted), then validate_config.
RunConfig parse_config(const std::string& toml_text, const std::string& source_name,
                       const std::vector<std::string>& overrides = {});

// Reads the file at path (ConfigError naming the path if unreadable) and
// calls parse_config with the path as source name.
RunConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Sets one key from text, checking its type and allowed values.
void set_key(RunConfig& cfg, const std::string& key, const std::string& value,
             const std::string& source = "--set");

// The value of one key as text (strings unquoted, floats in shortest exact form).
std::string get_key(const RunConfig& cfg, const std::string& key);

// Cross-key checks (topology vs peers/degree, Byzantine keys vs delta mode);
// source names where the values came from.
void validate_config(const RunConfig& cfg, const std::string& source);

// The resolved config: every key, grouped by section, in TOML.
std::string to_toml(const RunConfig& cfg);

// Markdown: the key-usage rule (run/key_usage.hpp), then the table
// key | type | default | allowed | used by | meaning.
std::string config_doc_markdown();

// All key names ("section.key") in table order.
std::vector<std::string> config_keys();

}  // namespace murmur
