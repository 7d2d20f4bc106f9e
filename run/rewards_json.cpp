#include "run/rewards_json.hpp"

#include "run/json_text.hpp"

namespace murmur {

std::string rewards_json(const reputation& r, const std::vector<uint32_t>& peers) {
  std::string s = "{";
  for (size_t i = 0; i < peers.size(); ++i) {
    const auto& e = r.evidence(peers[i]);
    s += (i ? ", \"" : "\"") + std::to_string(peers[i]) + "\": {\"verified_gflop\": " + json_number(e.verified_flops / 1e9) +
         ", \"checks_passed\": " + std::to_string(e.checks_passed) + ", \"checks_failed\": " +
         std::to_string(e.checks_failed) + ", \"misses\": " + std::to_string(e.misses) +
         ", \"standing\": " + json_number(r.standing(peers[i])) + "}";
  }
  return s + "}";
}

}  // namespace murmur
