// The start of a data-parallel `murmur peer`: nobody trains alone by
// accident. Contract:
//  - contact_lines: every --join endpoint must have a line in the allowlist
//    (its key comes from there); one that has none is a ConfigError naming it,
//    raised before data loading. Lines holding our own key are left out.
//  - wait_for_contacts: before data loading, waits (bounded by timeout_s)
//    until one contact accepts a TCP connection; past the deadline it throws
//    std::runtime_error naming every contact and why it could not be reached.
//  - wait_for_peers: once this peer's membership runs, polls the live set
//    until `required` members are live (itself included) and, after a
//    --join, at least one other member answered. Progress: one line a second
//    (only on changes when quiet) naming whom it waits for. At the deadline:
//    with start_anyway it returns the live set (warning on stderr) if another
//    member answered or there was no --join; otherwise it throws
//    std::runtime_error naming the missing peers by index, endpoint and label.
// Every wait ends early, returning interrupted, when `stop` turns non-zero
// (the SIGINT/SIGTERM number; the caller exits 128 + it).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "protocols/peer_identities.hpp"

namespace murmur {

std::vector<authorized_peer> contact_lines(const peer_identities& ids, const std::vector<std::string>& join,
                                           const std::string& self_key, const std::string& allowlist_path);

// "peer 2 (tcp://10.0.0.3:5555, lab-c)", or "peer 2" when the allowlist says neither.
std::string describe_peer(const peer_identities& ids, uint32_t index);

// Why no TCP connection to tcp://HOST:PORT could be made within `timeout`
// ("connection refused", ...), or "" when one could (it is closed at once).
std::string tcp_probe(const std::string& endpoint, std::chrono::milliseconds timeout);

// False when interrupted by `stop`; true when a contact listens (or there are none).
bool wait_for_contacts(const std::vector<std::string>& endpoints, double timeout_s, const std::atomic<int>& stop,
                       FILE* out);

struct peer_wait_settings {
  uint32_t count = 1;                 // peer.count: peers 0..count-1 are expected
  uint32_t required = 1;              // live members (self included) before training
  std::vector<std::string> contacts;  // --join endpoints other than ourselves
  double timeout_s = 120;
  bool start_anyway = false;          // peer.on_start_timeout = start
  bool quiet = false;
};

struct peer_wait_result {
  bool interrupted = false;
  std::vector<uint32_t> live;  // the live set it starts with
  double waited_s = 0;
};

peer_wait_result wait_for_peers(const std::function<std::vector<uint32_t>()>& live, const peer_identities& ids,
                                const peer_wait_settings& s, const std::atomic<int>& stop, FILE* out);

}  // namespace murmur
