// Rng: a small deterministic generator (xoshiro256**, seeded by splitmix64).
// Unlike std:: distributions, every draw here is defined bit for bit, so the
// same seed gives the same numbers on every platform and library version,
// which the simulation's determinism rests on.
#pragma once
#include <cmath>
#include <cstdint>
#include <utility>

namespace murmur {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed) {
    for (auto& w : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }
  // Derive an independent stream, e.g. per peer: Rng(seed).fork(peer_id).
  Rng fork(uint64_t stream) const { return Rng(s_[0] ^ (stream * 0xd1b54a32d192ed03ULL + 1)); }

  uint64_t next_u64() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t; s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0, without modulo bias.
  uint64_t below(uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next_u64(); while (x >= limit);
    return x % n;
  }
  // Standard normal (Box-Muller, one value per call for simplicity).
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Gamma(shape, 1) by Marsaglia-Tsang; used for Dirichlet sharding.
  double gamma(double shape) {
    if (shape < 1.0) return gamma(shape + 1.0) * std::pow(uniform() + 1e-300, 1.0 / shape);
    double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = normal(), v = 1.0 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      double u = uniform();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u + 1e-300) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
    }
  }
  template <class It>
  void shuffle(It first, It last) {
    auto n = last - first;
    for (auto i = n - 1; i > 0; --i) std::swap(first[i], first[static_cast<decltype(n)>(below(static_cast<uint64_t>(i) + 1))]);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace murmur
