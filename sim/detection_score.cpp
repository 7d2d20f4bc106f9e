#include "sim/detection_score.hpp"

#include <algorithm>
#include <cmath>

namespace murmur {

detection_summary score_detection(const std::vector<std::vector<uint32_t>>& neighbours,
                                  const std::vector<uint32_t>& attackers,
                                  const std::vector<std::vector<quarantine_record>>& quarantines,
                                  uint64_t start_step) {
  const size_t n = neighbours.size();
  auto attacks = [&](uint32_t p) { return std::binary_search(attackers.begin(), attackers.end(), p); };
  // When honest peer i quarantined peer p, or -1.
  auto quarantined_at = [&](size_t i, uint32_t p) -> int64_t {
    if (i >= quarantines.size()) return -1;
    for (const auto& q : quarantines[i])
      if (q.peer == p) return static_cast<int64_t>(q.step);
    return -1;
  };
  detection_summary d;
  std::vector<double> steps;
  for (uint32_t a : attackers) {
    bool seen = false, all = true;
    int64_t last = 0;
    for (size_t i = 0; i < n; ++i) {
      if (attacks(static_cast<uint32_t>(i))) continue;
      if (std::find(neighbours[i].begin(), neighbours[i].end(), a) == neighbours[i].end()) continue;
      seen = true;
      int64_t at = quarantined_at(i, a);
      if (at < 0) all = false;
      last = std::max(last, at);
    }
    if (seen && all) {
      ++d.tp;
      steps.push_back(static_cast<double>(std::max<int64_t>(0, last - static_cast<int64_t>(start_step))));
    } else {
      ++d.fn;
    }
  }
  std::vector<uint8_t> flagged(n, 0);
  for (size_t i = 0; i < n && i < quarantines.size(); ++i) {
    if (attacks(static_cast<uint32_t>(i))) continue;
    for (const auto& q : quarantines[i])
      if (q.peer < n && !attacks(q.peer)) {
        ++d.honest_quarantined;
        flagged[q.peer] = 1;
      }
  }
  for (uint8_t f : flagged) d.fp += f;
  const double nan = std::nan("");
  d.precision = d.tp + d.fp ? static_cast<double>(d.tp) / static_cast<double>(d.tp + d.fp) : nan;
  d.recall = d.tp + d.fn ? static_cast<double>(d.tp) / static_cast<double>(d.tp + d.fn) : nan;
  d.f1 = d.tp ? 2 * d.precision * d.recall / (d.precision + d.recall) : (d.fp + d.fn ? 0.0 : nan);
  d.steps_to_quarantine_median = d.steps_to_quarantine_p95 = nan;
  if (!steps.empty()) {
    std::sort(steps.begin(), steps.end());
    const size_t m = steps.size();
    d.steps_to_quarantine_median = m % 2 ? steps[m / 2] : 0.5 * (steps[m / 2 - 1] + steps[m / 2]);
    // Nearest rank: the smallest value with at least 95% of them at or below it.
    d.steps_to_quarantine_p95 = steps[static_cast<size_t>(std::ceil(0.95 * static_cast<double>(m))) - 1];
  }
  return d;
}

}  // namespace murmur
