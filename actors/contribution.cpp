#include "actors/contribution.hpp"

#include <algorithm>
#include <stdexcept>

namespace murmur {

contribution::contribution(contribution_rule rule, uint64_t window, size_t neighbours)
    : rule_(rule), window_(std::max<uint64_t>(1, window)), slots_(neighbours), pull_(neighbours, 1.f), ratio_(neighbours, 1.f) {}

void contribution::heard(size_t j, uint64_t their_step, uint64_t their_round, uint64_t our_step,
                         uint64_t our_round) {
  if (!weighted() || j >= slots_.size()) return;
  auto& s = slots_[j];
  // A counter that went back (the neighbour restarted, or we were resynced):
  // measure afresh from here.
  if (!s.anchored || their_step < s.their_step || their_round < s.their_round || our_step < s.our_step ||
      our_round < s.our_round) {
    s.anchored = true;
    s.our_step = our_step, s.our_round = our_round, s.their_step = their_step, s.their_round = their_round;
    return;
  }
  const uint64_t our_d = our_step - s.our_step;
  if (our_d < window_) return;
  const double d = static_cast<double>(their_step - s.their_step) / static_cast<double>(our_d);
  const uint64_t our_m = our_round - s.our_round;
  // We published nothing in the window (our uplink was busy throughout):
  // we are the one that holds back, so the neighbour pulls fully.
  double rho = 1.0;
  if (our_m > 0) {
    const double m = static_cast<double>(their_round - s.their_round) / static_cast<double>(our_m);
    rho = rule_ == contribution_rule::rate ? d * m : m;
  }
  const float now = static_cast<float>(std::clamp(rho, 0.0, 1.0));
  s.pull = 0.5f * (s.pull + now);
  pull_[j] = s.pull;
  s.ratio = 0.5f * (s.ratio + static_cast<float>(std::clamp(rho, 0.0, 1e6)));
  ratio_[j] = s.ratio;
  s.our_step = our_step, s.our_round = our_round, s.their_step = their_step, s.their_round = their_round;
}

void contribution::remap(std::span<const int> from) {
  std::vector<slot_state> slots(from.size());
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] >= 0 && static_cast<size_t>(from[i]) < slots_.size()) slots[i] = slots_[static_cast<size_t>(from[i])];
  slots_ = std::move(slots);
  pull_.resize(slots_.size());
  ratio_.resize(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) pull_[i] = slots_[i].pull, ratio_[i] = slots_[i].ratio;
}

}  // namespace murmur
