// peer_device: the device a peer of a run trains on (train.device, resolved
// for its peer index) and how a run names its peers' devices.
//  - Resolved when a run starts, before data loads: train.device = cuda or
//    cuda:N without a usable GPU throws std::runtime_error
//    "train.device = cuda: <why>" (gpu/device_choice.hpp).
//  - auto and cuda train on the GPU whatever else the run does: step
//    transcripts (verify.rate > 0), the simulated compute cheats and
//    pipeline stages run on either. Except segment verification
//    (verify.scheme = segment), whose replays run on the CPU and must match
//    the prover bit for bit: auto takes the CPU, cuda is refused.
//  - Offload (run/offload_setup.hpp): a peer that offloads (offload.peers)
//    is a weak peer by definition, and its step hands out products from the
//    host model: it trains on the CPU whatever train.device says (murmur
//    sim with cuda: the offloaders on the CPU, the others on GPUs). murmur
//    peer refuses an explicit cuda on an offloading peer instead
//    (check_offloader_device). The helper and the other peers train where
//    train.device says; a helper on a GPU answers products there.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gpu/device_choice.hpp"
#include "run/run_config.hpp"

namespace murmur {

resolved_device peer_device_of(const RunConfig& c, uint32_t peer_index, bool offloads = false);

// murmur peer: ConfigError, one line naming train.device and offload.peers,
// when this peer offloads and train.device is cuda or cuda:N.
void check_offloader_device(const RunConfig& c, bool offloads);

// One line for several peers: "cpu" when all share one device, else each
// device with its count in first-use order: "cuda:0 (NVIDIA H100) x4, cuda:1 (NVIDIA H100) x4".
std::string devices_label(const std::vector<resolved_device>& devices);

}  // namespace murmur
