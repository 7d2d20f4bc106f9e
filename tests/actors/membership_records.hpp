// Membership records for tests: one endpoint per (index, incarnation), since
// a restarted peer may move; no keys (CURVE off).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "protocols/membership_messages.hpp"

namespace murmur::test {

inline std::string ep(uint32_t i, uint64_t inc = 0) {
  return "tcp://host" + std::to_string(i) + ":" + std::to_string(5000 + inc % 1000);
}

inline peer_info peer(uint32_t i, uint64_t inc = 0, peer_status s = peer_status::alive) {
  return peer_info{i, ep(i, inc), "", inc, s};
}

inline membership_update update_of(uint32_t sender, uint64_t sender_inc, std::vector<peer_info> peers) {
  return membership_update{sender, sender_inc, std::move(peers)};
}

}  // namespace murmur::test
