#include "actors/link_stats.hpp"

#include <algorithm>
#include <cmath>

namespace murmur {

void link_rtt::add(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return;
  if (samples_ == 0 || seconds < min_) min_ = seconds;
  if (samples_ == 0 || seconds > max_) max_ = seconds;
  last_[samples_ % keep] = seconds;
  ++samples_;
}

double link_rtt::median_s() const {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(samples_, keep));
  if (n == 0) return 0;
  std::array<double, keep> v = last_;
  std::sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void heartbeat_clock::sent(uint64_t seq, double now_s) {
  sent_at_[seq % window] = now_s;
  sent_seq_[seq % window] = seq;
}

bool heartbeat_clock::acked(uint32_t peer, uint64_t seq, double now_s, std::map<uint32_t, link_rtt>& rtt) {
  if (seq == 0 || sent_seq_[seq % window] != seq) return false;  // not one of ours, or too old
  auto [it, fresh] = last_acked_.try_emplace(peer, 0);
  if (!fresh && seq <= it->second) return false;  // counted already, or older than one counted
  it->second = seq;
  rtt[peer].add(now_s - sent_at_[seq % window]);
  return true;
}

}  // namespace murmur
