#include "cli/prediction_lines.hpp"

#include <cstdio>
#include <string>

#include "run/json_text.hpp"

namespace murmur {

void print_prediction_lines(const prediction_rows& p, int64_t first_row, bool table) {
  const auto k = static_cast<size_t>(p.classes);
  if (table && first_row == 0 && !p.label.empty())
    std::printf("%6s %5s %8s  probabilities of classes 0..%zu\n", "row", "class", "p", k - 1);
  for (size_t i = 0; i < p.label.size(); ++i) {
    const float* q = p.probabilities.data() + i * k;
    const long long row = first_row + static_cast<long long>(i);
    std::string line;
    if (table) {
      char head[64];
      std::snprintf(head, sizeof head, "%6lld %5d %8.4f ", row, p.label[i], static_cast<double>(q[p.label[i]]));
      line = head;
      for (size_t c = 0; c < k; ++c) {
        char cell[16];
        std::snprintf(cell, sizeof cell, " %.4f", static_cast<double>(q[c]));
        line += cell;
      }
    } else {
      line = "{\"row\": " + std::to_string(row) + ", \"class\": " + std::to_string(p.label[i]) + ", \"probabilities\": [";
      for (size_t c = 0; c < k; ++c) {
        if (c) line += ", ";
        line += json_number(q[c]);
      }
      line += "]}";
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace murmur
