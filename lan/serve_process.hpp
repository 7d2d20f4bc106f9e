// serve_process: `murmur serve` as one process: load the served model
// (served_model.hpp), cut it into `stages` ranges, build this stage's
// layers, read the keys and the allowlist, and run the stage
// (inference_host.hpp) until stop. Returns 128 + the signal. Bad input
// throws: std::invalid_argument (model spec, split, stage numbers) or
// std::runtime_error (key files, allowlist, endpoint), naming what is wrong.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "lan/served_model.hpp"

namespace murmur {

struct serve_process_options {
  served_model_source model;
  uint16_t stage = 0, stages = 1;
  std::string split;       // pipeline.split syntax; empty = balanced
  std::string keys_dir;    // peer.key, peer.pub
  std::string allowlist;   // authorized_peers: stages first, then clients
  std::string listen;      // empty: the stage's allowlist line
  bool quiet = false;
};

int run_serve_process(const serve_process_options& o, const std::atomic<int>& stop);

}  // namespace murmur
