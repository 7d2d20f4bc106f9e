#include "run/link_tau.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace murmur {

std::vector<double> link_scaled_taus(double tau, double exponent, const link_model& links,
                                     const std::vector<std::vector<uint32_t>>& overlay) {
  const size_t n = overlay.size();
  std::vector<double> taus(n, tau);
  if (exponent <= 0 || tau <= 0) return taus;
  constexpr double unlimited = std::numeric_limits<double>::infinity();
  std::vector<double> slowest(n, unlimited);
  double fastest = 0;
  for (size_t i = 0; i < n; ++i) {
    for (uint32_t j : overlay[i]) {
      const double r = links.rate_bps(static_cast<uint32_t>(i), j);
      if (r > 0) slowest[i] = std::min(slowest[i], r);
    }
    if (slowest[i] < unlimited) fastest = std::max(fastest, slowest[i]);
  }
  if (fastest <= 0) return taus;  // no finite rate anywhere
  for (size_t i = 0; i < n; ++i)
    if (slowest[i] < fastest) taus[i] = tau * std::pow(fastest / slowest[i], exponent);
  return taus;
}

}  // namespace murmur
