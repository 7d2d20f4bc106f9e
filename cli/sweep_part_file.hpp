// sweep_part_file: one part of a sweep spread over machines (`murmur sweep
// --part K/M` writes DIR/sweep-part-K-of-M.jsonl) and their merge (`murmur
// sweep --merge`). JSON lines: a first line naming the sweep (its command,
// keys, configuration count and order) and the part, then one line per row
// this part ran: its configuration index, swept values and the numbers
// sweep.csv and sweep.md are made of, doubles in nlohmann's shortest exact
// form (NaN as null). Exact, so that the merge rebuilds the rows one process
// would have had (accuracy against the clean run, which may be another
// part's, included) and writes the same sweep.csv byte for byte.
#pragma once
#include <string>
#include <vector>

#include "cli/sweep_table.hpp"

namespace murmur {

struct sweep_part_header {
  std::string command;  // the config file's name and every --param/--set, as given: parts must agree
  std::vector<std::string> keys;
  size_t configs = 0;         // configurations in the whole sweep
  std::vector<size_t> order;  // the order rows go in sweep.csv
  size_t part = 0, parts = 1;
};

std::string sweep_part_header_line(const sweep_part_header& h);
std::string sweep_part_row_line(size_t index, const sweep_row& r);

// The whole sweep, read back from its parts' files.
struct merged_sweep {
  sweep_part_header header;         // part and parts: of the first file
  std::vector<sweep_row> rows;      // every configuration, in table order; clean_accuracy set
};

// Reads the parts' files (a directory stands for its sweep-part-*.jsonl).
// Throws std::runtime_error naming the file and what is wrong: not a part
// file, parts of different sweeps, a part given twice or missing, a row
// missing or twice, a row a stop signal ended partway.
merged_sweep merge_sweep_parts(const std::vector<std::string>& paths);

// "sweep-part-K-of-M.jsonl".
std::string sweep_part_file_name(size_t part, size_t parts);

}  // namespace murmur
