#include "run/offload_setup.hpp"

#include <algorithm>
#include <charconv>

#include "run/config_schema.hpp"

namespace murmur {

bool offload_setup::offloads(uint32_t peer) const {
  return on && std::binary_search(offloaders.begin(), offloaders.end(), peer);
}

std::vector<uint32_t> peer_index_list(const std::string& key, const std::string& text, uint32_t peer_count) {
  std::vector<uint32_t> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size())
      throw ConfigError(key + " = " + text + ": '" + item + "' is not a peer index (e.g. \"3\" or \"1,5\")");
    if (v >= peer_count)
      throw ConfigError(key + " = " + text + ": peer " + item + " does not exist (the run has " +
                        std::to_string(peer_count) + " peers, 0.." + std::to_string(peer_count - 1) + ")");
    out.push_back(v);
    pos = end + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

offload_setup offload_setup_of(const RunConfig& c, uint32_t peer_count, const std::vector<std::string>& labels,
                               const std::vector<double>* step_costs) {
  offload_setup o;
  if (c.offload_to.empty()) return o;
  o.on = true;
  auto label = std::find(labels.begin(), labels.end(), c.offload_to);
  if (label != labels.end()) {
    o.helper = static_cast<uint32_t>(label - labels.begin());
  } else {
    try {
      o.helper = peer_index_list("offload.to", c.offload_to, peer_count).at(0);
    } catch (const ConfigError&) {
      throw ConfigError("offload.to = " + c.offload_to + ": not a peer index below " + std::to_string(peer_count) +
                        (labels.empty() ? std::string() : " nor a label in peer.authorized_peers"));
    }
    if (c.offload_to.find(',') != std::string::npos)
      throw ConfigError("offload.to = " + c.offload_to + ": one helper, not a list");
  }
  if (c.offload_peers == "slowest") {
    if (!step_costs)
      throw ConfigError("offload.peers = slowest in murmur peer: a process cannot know it is the slowest; "
                        "name the peer indices");
    const auto& s = *step_costs;
    o.offloaders = {static_cast<uint32_t>(std::max_element(s.begin(), s.end()) - s.begin())};
  } else {
    o.offloaders = peer_index_list("offload.peers", c.offload_peers, peer_count);
  }
  if (std::binary_search(o.offloaders.begin(), o.offloaders.end(), o.helper))
    throw ConfigError("offload.peers = " + c.offload_peers + " with offload.to = " + c.offload_to + ": peer " +
                      std::to_string(o.helper) + " cannot offload to itself");
  return o;
}

std::optional<peer_offload> peer_offload_of(const RunConfig& c, const offload_setup& o, uint32_t id, uint64_t seed,
                                            double timeout_s) {
  if (!o.on) return std::nullopt;
  peer_offload p;
  p.rounds = static_cast<int>(c.offload_rounds);
  p.seed = seed;
  p.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  if (id == o.helper) {
    p.cheat = c.offload_cheat == "perturb"        ? compute_cheat::perturb
              : c.offload_cheat == "skip_product" ? compute_cheat::skip_product
                                                  : compute_cheat::none;
    p.cheat_eps = c.attack_eps;
  }
  if (o.offloads(id)) p.plan = offload_plan{o.helper, c.offload_min_flops, p.rounds, timeout_s};
  return p;
}

}  // namespace murmur
