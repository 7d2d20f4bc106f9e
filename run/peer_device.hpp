// peer_device: the device a peer of a run trains on (train.device, resolved
// for its peer index) and how a run names its peers' devices.
//  - Resolved when a run starts, before data loads: train.device = cuda or
//    cuda:N without a usable GPU throws std::runtime_error
//    "train.device = cuda: <why>" (gpu/device_choice.hpp).
//  - auto takes the CPU where the run needs the host model's step
//    (offload.to, pipeline.stages > 1); validate_config refuses cuda there,
//    so such a run never probes for a GPU. Step transcripts (verify.rate >
//    0) and the simulated compute cheats run on either.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gpu/device_choice.hpp"
#include "run/run_config.hpp"

namespace murmur {

resolved_device peer_device_of(const RunConfig& c, uint32_t peer_index);

// One line for several peers: "cpu" when all share one device, else each
// device with its count in first-use order: "cuda:0 (NVIDIA H100) x4, cuda:1 (NVIDIA H100) x4".
std::string devices_label(const std::vector<resolved_device>& devices);

}  // namespace murmur
