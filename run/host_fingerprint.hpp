// host_fingerprint: this process's replay fingerprint
// (actors/replay_fingerprint.hpp) and the text each part hashes, for the
// log line an operator reads when two peers disagree.
//   build:  the program (version, the commit at configure time, compiler,
//           compile flags and the float-relevant predefined macros) and the
//           SHA-256 of the executable itself: equal only for the same binary
//           (two machines compiling the same commit get two fingerprints;
//           that excludes peers, it never accuses one).
//   kernel: tensor/gemm.hpp's blas_kernel_description (BLAS build, core type,
//           threads): call it after the BLAS thread count is set; and
//           oneDNN's version and the ISA its JIT kernels chose (conv, pool).
//   config: every key of the sections a peer's steps depend on (run.seed,
//           data, model, train, gossip, detect, attack, peer.count,
//           verify.scheme, verify.segment), but paths and keys that change
//           no step (data.dir and the file keys, model.init_from, whose
//           parameters the start boundary carries, train.eval_every,
//           train.eval_subset, train.device). A peer's replay uses the shared config with its
//           peer.index, so peers whose configs differ there cannot replay
//           each other.
// Throws std::runtime_error when the executable cannot be read.
#pragma once
#include <string>

#include "actors/replay_fingerprint.hpp"
#include "run/run_config.hpp"

namespace murmur {

struct host_fingerprint {
  replay_fingerprint value;
  std::string build, kernel, config;  // what each part hashes (config: "key = value" lines)
};

host_fingerprint host_fingerprint_of(const RunConfig& c);

}  // namespace murmur
