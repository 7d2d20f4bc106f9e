#include "sim/ring_allreduce.hpp"

#include <algorithm>
#include <stdexcept>

namespace murmur {

ring_allreduce::ring_allreduce(uint32_t peers, int64_t params) : n_(peers), params_(params) {
  if (peers == 0) throw std::invalid_argument("ring_allreduce: no peers");
  if (params < 0) throw std::invalid_argument("ring_allreduce: negative parameter count");
}

uint32_t ring_allreduce::chunk_sent(uint32_t peer, uint32_t phase) const {
  // Reduce-scatter: chunk i - s; all-gather: chunk i + 1 - s (mod n).
  const uint32_t s = phase < n_ - 1 ? phase : phase - (n_ - 1);
  const uint32_t offset = phase < n_ - 1 ? 0 : 1;
  return (peer + offset + n_ - s % n_) % n_;
}

uint64_t ring_allreduce::chunk_bytes(uint32_t chunk) const {
  const auto p = static_cast<uint64_t>(params_);
  return 4 * (p / n_ + (chunk < p % n_ ? 1 : 0));
}

double ring_allreduce::seconds(const link_model& links, double now) const {
  if (n_ < 2) return 0;
  if (links.peers().size() < n_) throw std::invalid_argument("ring_allreduce: the link model has fewer peers");
  double t = now;
  for (uint32_t phase = 0; phase < 2 * (n_ - 1); ++phase) {
    double phase_s = 0;
    for (uint32_t i = 0; i < n_; ++i)
      phase_s = std::max(phase_s, links.direct_time(i, (i + 1) % n_, static_cast<double>(chunk_bytes(chunk_sent(i, phase))), t));
    t += phase_s;
  }
  return t - now;
}

uint64_t ring_allreduce::bytes_sent(uint32_t peer) const {
  uint64_t b = 0;
  if (n_ < 2) return 0;
  for (uint32_t phase = 0; phase < 2 * (n_ - 1); ++phase) b += chunk_bytes(chunk_sent(peer, phase));
  return b;
}

void ring_allreduce::average(const std::vector<float*>& params, int64_t dim) {
  if (params.size() < 2) return;
  const double inv = 1.0 / static_cast<double>(params.size());
  for (int64_t k = 0; k < dim; ++k) {
    double s = 0;
    for (const float* x : params) s += x[k];
    const auto m = static_cast<float>(s * inv);
    for (float* x : params) x[k] = m;
  }
}

}  // namespace murmur
