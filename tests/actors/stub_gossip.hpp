// stub_gossip: the gossip actor a verifier test gives its verifiers. It
// answers every gossip message as a peer with nothing to mix would, and
// records the quarantine orders the verifier gives it (peer, cause) in a
// quarantine_log, when one is given.
#pragma once
#include <caf/typed_event_based_actor.hpp>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "actors/gossip_actor.hpp"

namespace murmur {

struct quarantine_log {
  std::mutex mu;
  std::vector<std::pair<uint32_t, quarantine_cause>> orders;
  std::vector<uint32_t> peers() {
    std::lock_guard<std::mutex> l(mu);
    std::vector<uint32_t> out;
    for (const auto& o : orders) out.push_back(o.first);
    return out;
  }
};

// q null: the orders are not recorded.
inline gossip_actor::behavior_type recording_gossip(gossip_actor::pointer, std::shared_ptr<quarantine_log> q) {
  return {
      [](mix_atom) { return true; },
      [](publish_atom, uint64_t) { return true; },
      [](mix_atom, uint64_t) { return true; },
      [](deliver_atom, uint32_t, const wire_frame&) {},
      [](sent_atom, uint32_t) {},
      [](nbrs_atom, const std::vector<uint32_t>&, const std::vector<uint64_t>&) {},
      [](resync_atom) {},
      [](segstart_atom) { return false; },
      [q](quarantine_atom, uint32_t peer, uint8_t cause) {
        if (!q) return;
        std::lock_guard<std::mutex> l(q->mu);
        q->orders.emplace_back(peer, static_cast<quarantine_cause>(cause));
      },
      [](watch_atom, caf::actor) {},
      [](stats_atom) { return gossip_counters{}; },
  };
}

inline gossip_actor::behavior_type quiet_gossip(gossip_actor::pointer self) { return recording_gossip(self, nullptr); }

}  // namespace murmur
