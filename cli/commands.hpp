// The murmur command-line verbs. Each add_*_verb adds its verb to the
// command line (its options, a one-line description and an example for
// `murmur VERB --help`) and returns what runs the verb once the command line
// is parsed: a function returning the process exit code. Bad command lines
// the parser cannot see (a missing config, a malformed --param) throw
// UsageError, which main prints in one line and exits 2.
#pragma once
#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>

namespace CLI {
class App;
}

namespace murmur {

using verb_run = std::function<int()>;

// stop: the number of a SIGINT/SIGTERM once one came, else 0 (main owns the
// flag and the handler); sim, sweep and peer then wind down and return 128 + it.
verb_run add_sim_verb(CLI::App& murmur, const std::atomic<int>& stop);
verb_run add_sweep_verb(CLI::App& murmur, const std::atomic<int>& stop);
verb_run add_plot_verb(CLI::App& murmur);
verb_run add_split_verb(CLI::App& murmur);
verb_run add_config_doc_verb(CLI::App& murmur);
verb_run add_keygen_verb(CLI::App& murmur);
verb_run add_merge_verb(CLI::App& murmur);
verb_run add_peer_verb(CLI::App& murmur, const std::atomic<int>& stop);
verb_run add_serve_verb(CLI::App& murmur, const std::atomic<int>& stop);
verb_run add_infer_verb(CLI::App& murmur);
verb_run add_export_verb(CLI::App& murmur);
verb_run add_eval_verb(CLI::App& murmur);
verb_run add_predict_verb(CLI::App& murmur);

// A bad command line; main prints "murmur VERB: <what>; see murmur VERB --help".
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace murmur
