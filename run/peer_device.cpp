#include "run/peer_device.hpp"

#include <utility>

#include "run/config_schema.hpp"

namespace murmur {

resolved_device peer_device_of(const RunConfig& c, uint32_t peer_index, bool offloads) {
  const device_choice choice = parse_device(c.device);
  // Segment verification replays on the CPU and must match bit for bit:
  // auto keeps such a run on the CPU (validate_config refuses cuda).
  const bool segments = c.verify_scheme == "segment" && c.verify_rate > 0;
  if (offloads || (segments && choice.type == device_choice::kind::auto_select)) {
    resolved_device cpu;
    cpu.label = "cpu";
    return cpu;
  }
  return resolve_device(choice, peer_index);
}

void check_offloader_device(const RunConfig& c, bool offloads) {
  if (!offloads || parse_device(c.device).type != device_choice::kind::cuda) return;
  throw ConfigError("train.device = " + c.device + " with offload.peers = " + c.offload_peers +
                    " naming this peer (peer.index = " + std::to_string(c.peer_index) +
                    "): an offloading peer trains on the CPU and hands its products to offload.to; "
                    "set train.device = cpu or auto here, or take this peer out of offload.peers");
}

std::string devices_label(const std::vector<resolved_device>& devices) {
  std::vector<std::pair<std::string, size_t>> counts;
  for (const auto& d : devices) {
    const std::string& label = d.label.empty() ? std::string("cpu") : d.label;
    auto it = counts.begin();
    while (it != counts.end() && it->first != label) ++it;
    if (it == counts.end()) counts.emplace_back(label, 1);
    else ++it->second;
  }
  if (counts.size() == 1) return counts[0].first;
  std::string r;
  for (const auto& [label, n] : counts) r += (r.empty() ? "" : ", ") + label + " x" + std::to_string(n);
  return r;
}

}  // namespace murmur
