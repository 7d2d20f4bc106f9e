// score_detection: precision, recall and time to quarantine of a run's
// statistical detection, from who neighboured whom, who attacked, and every
// peer's quarantine records (see detection_summary in simulation.hpp for the
// definitions). Quarantines made by attackers do not count.
#pragma once
#include <cstdint>
#include <vector>

#include "actors/gossip_state.hpp"
#include "sim/simulation.hpp"

namespace murmur {

detection_summary score_detection(const std::vector<std::vector<uint32_t>>& neighbours,
                                  const std::vector<uint32_t>& attackers,
                                  const std::vector<std::vector<quarantine_record>>& quarantines,
                                  uint64_t start_step);

}  // namespace murmur
