#include "actors/link_budget.hpp"

#include <algorithm>
#include <cmath>

namespace murmur {

link_budget::link_budget(uint32_t max_period, uint64_t window, size_t neighbours)
    : max_period_(std::max<uint32_t>(1, max_period)), window_(std::max<uint64_t>(1, window)),
      period_(neighbours, 1), last_sent_(neighbours, 0), frames_(neighbours, 0) {}

void link_budget::attempt(bool busy) {
  ++attempts_;
  if (busy) ++busy_attempts_;
  if (attempts_ < window_) return;
  const double now = static_cast<double>(busy_attempts_) / static_cast<double>(attempts_);
  busy_ = 0.5 * (busy_ + now);
  attempts_ = busy_attempts_ = 0;
}

void link_budget::plan(std::span<const float> ratios) {
  for (size_t j = 0; j < period_.size(); ++j) {
    const double r = j < ratios.size() && std::isfinite(ratios[j]) ? ratios[j] : 1.0;
    const double p = std::floor(std::clamp(r * busy_, 1.0, static_cast<double>(max_period_)));
    period_[j] = static_cast<uint32_t>(p);
  }
}

bool link_budget::due(size_t slot, uint64_t round) const {
  if (slot >= period_.size()) return false;
  return last_sent_[slot] == 0 || round >= last_sent_[slot] + period_[slot];
}

void link_budget::sent(size_t slot, uint64_t round) {
  if (slot < last_sent_.size()) last_sent_[slot] = round, ++frames_[slot];
}

void link_budget::remap(std::span<const int> from) {
  std::vector<uint32_t> period(from.size(), 1);
  std::vector<uint64_t> last(from.size(), 0), frames(from.size(), 0);
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] >= 0 && static_cast<size_t>(from[i]) < period_.size()) {
      period[i] = period_[static_cast<size_t>(from[i])];
      last[i] = last_sent_[static_cast<size_t>(from[i])];
      frames[i] = frames_[static_cast<size_t>(from[i])];
    }
  period_ = std::move(period);
  last_sent_ = std::move(last);
  frames_ = std::move(frames);
}

}  // namespace murmur
