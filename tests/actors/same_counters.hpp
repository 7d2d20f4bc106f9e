// Two gossip_states that ran the same rounds two ways (host and backend,
// mix then publish and mix_publish) must count alike.
#pragma once
#include <catch2/catch.hpp>

#include "actors/gossip_state.hpp"

namespace murmur::test {

inline void check_same_counters(const gossip_counters& a, const gossip_counters& b) {
  CHECK(a.rounds == b.rounds);
  CHECK(a.msgs_sent == b.msgs_sent);
  CHECK(a.bytes_sent == b.bytes_sent);
  CHECK(a.coords_sent == b.coords_sent);
  CHECK(a.silent_rounds == b.silent_rounds);
  CHECK(a.busy_rounds == b.busy_rounds);
  CHECK(a.msgs_received == b.msgs_received);
  CHECK(a.stale_skips == b.stale_skips);
  CHECK(a.clipped == b.clipped);
}

}  // namespace murmur::test
