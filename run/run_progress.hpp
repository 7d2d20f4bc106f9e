// run_progress: one progress report of a run, from either host (the
// simulator on its virtual clock, the LAN peer on the wall clock); the
// front end shows it (run/progress_printer.hpp). A host makes its first
// report when its first step starts, so that the ETA counts from there and
// not from data loading.
#pragma once
#include <cstdint>
#include <string>

namespace murmur {

struct run_progress {
  double fraction = 0;        // of all steps
  double epoch = 0;           // mean over peers
  uint64_t steps = 0;         // sum over peers
  double loss = 0;            // recent mean train loss
  double accuracy = -1;       // last mean test accuracy, -1 before the first evaluation
  uint64_t bytes_sent = 0;
  double virtual_s = 0, wall_s = 0;
  bool virtual_clock = true;  // false on the real-network host: virtual_s means nothing there
  bool evaluation = false;    // true when this report follows an evaluation
  std::string device;         // where the peers train (run/peer_device.hpp devices_label); "" = not said
};

}  // namespace murmur
