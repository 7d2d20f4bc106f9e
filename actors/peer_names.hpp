// peer_names: how log lines name a peer. "peer 3", or "peer 3 (alice)" where
// the allowlist (authorized_peers) gives line 3 a label; the index stays first
// so a line can still be matched to summary.json and to other peers' logs.
// Hosts fill the labels (the LAN host from its allowlist; the simulator has
// none); actors only print them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace murmur {

class peer_names {
 public:
  peer_names() = default;
  explicit peer_names(std::vector<std::string> labels) : labels_(std::move(labels)) {}

  std::string operator()(uint32_t index) const {
    std::string r = "peer " + std::to_string(index);
    if (index < labels_.size() && !labels_[index].empty()) r += " (" + labels_[index] + ")";
    return r;
  }

 private:
  std::vector<std::string> labels_;  // by peer index; empty: no label
};

}  // namespace murmur
