// sweep_table: the results of `murmur sweep`, one row per run, as CSV and as
// a Markdown table. Runs under attack are compared with the clean run of the
// sweep that differs from them only in attack.* keys (attack.kind = none):
// "vs clean" is the honest peers' accuracy minus that run's, in points.
// A run a stop signal ended partway (summary.interrupted) is marked: 1 in
// the CSV's last column, "(interrupted)" after its values in Markdown.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "sim/simulation.hpp"

namespace murmur {

struct sweep_row {
  std::vector<std::string> values;        // one per swept key
  sim_summary summary;
  std::optional<double> clean_accuracy;   // honest accuracy of the matching clean run
};

std::string sweep_csv_header(const std::vector<std::string>& keys);
std::string sweep_csv_line(const sweep_row& r);
std::string sweep_markdown(const std::vector<std::string>& keys, const std::vector<sweep_row>& rows);
// For sweeps of pipeline runs: schedule efficiency against M/(M+S-1), peak
// micro-batches in flight and activation memory per stage, throughput.
std::string pipeline_markdown(const std::vector<std::string>& keys, const std::vector<sweep_row>& rows);

}  // namespace murmur
