// The "rewards" object of summary.json (simulation, LAN peer, murmur merge):
// per peer, keyed by its index as a string, what verification credited it
// with and its standing (actors/reputation.hpp):
//   {"1": {"verified_gflop": 0.52, "checks_passed": 4, "checks_failed": 0,
//          "misses": 1, "standing": 0.714}, ...}
// Every listed peer appears, with zeros and the prior's standing if nobody
// reported on it. Numbers only: json_number writes null for a non-finite
// value, and none of these can be one.
#pragma once
#include <string>
#include <vector>

#include "actors/reputation.hpp"

namespace murmur {

std::string rewards_json(const reputation& r, const std::vector<uint32_t>& peers);

}  // namespace murmur
