// The murmur command-line verbs. Each takes the arguments after the verb and
// returns the process exit code; usage errors print a message naming the
// problem and return 2.
#pragma once
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

namespace murmur {

// stop: the number of a SIGINT/SIGTERM once one came, else 0 (main owns the
// flag and the handler); sim and peer then wind down and return 128 + it.
int sim_command(const std::vector<std::string>& args, const std::atomic<int>& stop);
int sweep_command(const std::vector<std::string>& args);
int plot_command(const std::vector<std::string>& args);
int config_doc_command(const std::vector<std::string>& args);
int keygen_command(const std::vector<std::string>& args);
int merge_command(const std::vector<std::string>& args);
int split_command(const std::vector<std::string>& args);
int peer_command(const std::vector<std::string>& args, const std::atomic<int>& stop);

// Thrown for bad command lines; main prints it with the verb's usage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace murmur
