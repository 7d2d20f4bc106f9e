// The verification a run gets when its config does not ask for any
// (verify.rate = auto, the default; run/verification_choice.hpp decides
// where it can run). These two constants are the whole default: set
// default_verify_rate = 0 to turn it off everywhere.
//  - default_verify_rate: the probability per committed layer that a
//    neighbour challenges a step, as verify.rate; with the segment scheme a
//    segment of K steps over L layers is challenged with
//    q = 1 - (1 - rate/L)^K (docs/trust.md, Amortised commitments).
//  - default_verify_segment: K, the default of verify.segment (steps per
//    segment commitment and replay).
// Chosen by issue 14's cost goal (docs/trust.md, "Cost of commitments"):
// 0.001 is the highest rate whose modelled cost (replays 2K rate/3, the
// boundary 2.2 steps / K, records 2 %) stays under 10 % of the training;
// measured 1.01x CPU on configs/fmnist-gossip.toml. K = 64: K = 128 halves
// the boundaries but doubles the replays at the same rate.
#pragma once
#include <cstdint>

namespace murmur {

inline constexpr double default_verify_rate = 0.001;
inline constexpr int64_t default_verify_segment = 64;

// RunConfig::verify_rate's value for "auto": never a valid rate (0..1), so
// code that reads the field before the choice is made sees verification off.
inline constexpr double verify_rate_auto = -1.0;

}  // namespace murmur
