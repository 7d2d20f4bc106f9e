// replay_fingerprint: what decides whether two processes compute a segment
// bit for bit alike (verify.scheme = segment, docs/trust.md "Replays across
// machines"): 64-bit prefixes of SHA-256 over the build (version, commit,
// compiler, float-relevant flags), the float kernel path (BLAS build, core
// type, threads) and the config keys a peer's steps depend on.
// run/host_fingerprint.hpp computes this process's. A prover states its own
// in every segment commitment; a verifier replays only an equal one.
// All zero: not stated (unit tests; the simulation, one process, states
// its own for every peer).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace murmur {

struct replay_fingerprint {
  uint64_t build = 0, kernel = 0, config = 0;
  bool operator==(const replay_fingerprint&) const = default;
};

// "build 0123456789abcdef kernel 0123456789abcdef config 0123456789abcdef".
inline std::string to_string(const replay_fingerprint& f) {
  char text[80];
  std::snprintf(text, sizeof text, "build %016llx kernel %016llx config %016llx",
                static_cast<unsigned long long>(f.build), static_cast<unsigned long long>(f.kernel),
                static_cast<unsigned long long>(f.config));
  return text;
}

}  // namespace murmur
