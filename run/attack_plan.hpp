// attack_plan: which peers of a run attack, and with what. A deterministic
// choice from run.seed: round(attack.fraction * peers) of them (at least one
// when the fraction is > 0), returned sorted; attack.placement = random: the
// first of a seeded permutation of the peer ids; cut: peers that cut the
// overlay into two halves (run/vertex_cut.hpp), where attackers sit on its
// bottleneck. The same config gives the same attackers in the simulation
// and for `murmur peer` processes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "actors/peer_settings.hpp"
#include "run/run_config.hpp"

namespace murmur {

std::vector<uint32_t> attacker_ids(const RunConfig& c, uint32_t peer_count);

// The overlay the simulation builds for a run (delta mode: complete).
std::vector<std::vector<uint32_t>> run_overlay(const RunConfig& c, uint32_t peer_count);

attack_kind attack_kind_of(const std::string& name);

// "A Little Is Enough" (Baruch et al. 2019): with n peers of which m attack,
// s = floor(n/2 + 1) - m honest peers must be won over, and the shift that
// still looks honest is z = Phi^-1((n - s) / n) standard deviations
// (0 when that is not above one half).
double alie_z(uint32_t n, uint32_t m);

// The attack settings of peer `id` (kind none unless it is an attacker). A
// dissensus attacker also gets its neighbours' neighbourhoods from the
// overlay (the attack assumes the attacker knows the topology).
attack_settings attack_settings_for(const RunConfig& c, uint32_t id, uint32_t peer_count);

}  // namespace murmur
