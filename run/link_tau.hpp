// link_tau: each peer's gossip threshold from the links it publishes on
// (gossip.link_tau_exponent, issue 16's adaptive sharing per link).
//
// A peer publishes one frame per neighbour per round, all from one public
// estimate (x_hat_self), so one tau per peer: the one its slowest link
// carries. r_i = min over i's neighbours j of link_model::rate_bps(i, j);
// r_max = the largest r_i (an unlimited link counts as r_max); then
//   tau_i = tau x (r_max / r_i)^exponent.
// The peers on the fastest links keep tau; a peer whose slowest link is
// 100x slower publishes with tau x 10 at exponent 0.5: a coarser grid,
// fewer coordinates per frame, so its uplink frees up (and it mixes, which
// it skips while its frames are on the wire) more often. The error feedback
// stays exact (the residual x - x_hat_self keeps what was not sent), and a
// grid frame carries its own scale, so receivers need nothing new.
// Exponent 0, uniform links, or no finite rate: every peer keeps tau.
#pragma once
#include <cstdint>
#include <vector>

#include "run/link_model.hpp"

namespace murmur {

std::vector<double> link_scaled_taus(double tau, double exponent, const link_model& links,
                                     const std::vector<std::vector<uint32_t>>& overlay);

}  // namespace murmur
