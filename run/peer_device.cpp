#include "run/peer_device.hpp"

#include <utility>

namespace murmur {

resolved_device peer_device_of(const RunConfig& c, uint32_t peer_index) {
  const device_choice choice = parse_device(c.device);
  const bool host_step_needed = !c.offload_to.empty() || c.stages > 1;
  if (choice.type == device_choice::kind::auto_select && host_step_needed) {
    resolved_device cpu;
    cpu.label = "cpu";
    return cpu;
  }
  return resolve_device(choice, peer_index);
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
