#include "gpu/device_choice.hpp"

#include <stdexcept>

#include "gpu/cuda_backend.hpp"

namespace murmur {

device_choice parse_device(const std::string& text) {
  device_choice c;
  if (text == "auto") return c;
  if (text == "cpu") {
    c.type = device_choice::kind::cpu;
    return c;
  }
  if (text == "cuda") {
    c.type = device_choice::kind::cuda;
    return c;
  }
  if (text.rfind("cuda:", 0) == 0 && text.size() > 5 && text.size() <= 8 &&
      text.find_first_not_of("0123456789", 5) == std::string::npos) {
    c.type = device_choice::kind::cuda;
    c.index = std::stoi(text.substr(5));
    return c;
  }
  throw std::invalid_argument("train.device: '" + text + "' is not auto, cpu, cuda or cuda:N");
}

resolved_device resolve_device(const device_choice& c, uint32_t peer_index) {
  resolved_device r;
  r.label = "cpu";
  if (c.type == device_choice::kind::cpu) return r;
  const cuda_probe p = probe_cuda();
  if (p.device_count == 0) {
    if (c.type == device_choice::kind::auto_select) return r;
    throw std::runtime_error("train.device = cuda" + (c.index >= 0 ? ":" + std::to_string(c.index) : std::string()) +
                             ": " + p.reason);
  }
  int index = c.index >= 0 ? c.index : static_cast<int>(peer_index % static_cast<uint32_t>(p.device_count));
  if (index >= p.device_count)
    throw std::runtime_error("train.device = cuda:" + std::to_string(index) + ": this machine has " +
                             std::to_string(p.device_count) + " CUDA device" + (p.device_count == 1 ? "" : "s") +
                             " (cuda:0" + (p.device_count > 1 ? "..cuda:" + std::to_string(p.device_count - 1) : "") +
                             ")");
  r.cuda = true;
  r.index = index;
  r.label = "cuda:" + std::to_string(index) + " (" + p.names[static_cast<size_t>(index)] + ")";
  return r;
}

}  // namespace murmur
