// device_choice: what train.device names (auto | cpu | cuda | cuda:N) and
// which device a peer then uses. `auto` takes GPU (peer_index mod count)
// when a CUDA device is usable, else the CPU; `cuda` / `cuda:N` on a machine
// without a usable GPU is an error that says why (no driver, no device,
// built without CUDA, N out of range).
#pragma once
#include <cstdint>
#include <string>

namespace murmur {

struct device_choice {
  enum class kind : uint8_t { auto_select, cpu, cuda } type = kind::auto_select;
  int index = -1;  // cuda:N; -1: not given
};

// Throws std::invalid_argument: "train.device: 'gpu' is not auto, cpu, cuda or cuda:N".
device_choice parse_device(const std::string& text);

struct resolved_device {
  bool cuda = false;
  int index = 0;
  std::string label;  // "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)"
};
// Throws std::runtime_error with the reason when cuda was asked for and
// cannot be had. peer_index spreads `auto` / `cuda` peers over devices.
resolved_device resolve_device(const device_choice& c, uint32_t peer_index);

}  // namespace murmur
