#include "tensor/sha256_lanes.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define MURMUR_SHA_LANES_X86 1
#endif

namespace murmur {

namespace {

constexpr std::array<uint32_t, 8> iv = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#if MURMUR_SHA_LANES_X86

// Only these functions use the SHA extensions; callers check the CPU first.
#pragma GCC push_options
#pragma GCC target("sha,sse4.1,ssse3")

alignas(16) constexpr uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// Compresses `blocks` 64-byte blocks of each of N messages into their
// states, the N streams' rounds interleaved so that they overlap in the
// pipeline. The round structure is the standard one for the SHA extensions
// (state as ABEF/CDGH, message schedule by sha256msg1/msg2).
// Rounds 4q..4q+3 of N streams, with the schedule words W[4q..4q+3] (read
// from the block for q < 4, else from the 16 words before them).
template <size_t N, int q>
__attribute__((always_inline)) inline void quad(__m128i* abef, __m128i* cdgh,
                                                                         __m128i (*w)[4], const std::byte* const* data,
                                                                         size_t b, __m128i bswap) {
  const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(round_constants + 4 * q));
#pragma GCC unroll 4
  for (size_t l = 0; l < N; ++l) {
    __m128i& x = w[l][q & 3];  // holds W[4q-16..4q-13] before it becomes W[4q..4q+3]
    if constexpr (q < 4) {
      x = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data[l] + 64 * b + 16 * q)), bswap);
    } else {
      const __m128i prev = w[l][(q + 3) & 3];  // W[4q-4..4q-1]
      x = _mm_sha256msg1_epu32(x, w[l][(q + 1) & 3]);
      x = _mm_add_epi32(x, _mm_alignr_epi8(prev, w[l][(q + 2) & 3], 4));  // + W[4q-7..4q-4]
      x = _mm_sha256msg2_epu32(x, prev);
    }
    const __m128i m = _mm_add_epi32(x, k);
    cdgh[l] = _mm_sha256rnds2_epu32(cdgh[l], abef[l], m);
    abef[l] = _mm_sha256rnds2_epu32(abef[l], cdgh[l], _mm_shuffle_epi32(m, 0x0E));
  }
}

template <size_t N>
void compress(uint32_t* const* state, const std::byte* const* data,
                                                         size_t blocks) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abef[N], cdgh[N];
  for (size_t l = 0; l < N; ++l) {
    __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state[l]));
    __m128i s1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state[l] + 4));
    t = _mm_shuffle_epi32(t, 0xB1);     // CDAB
    s1 = _mm_shuffle_epi32(s1, 0x1B);   // EFGH
    abef[l] = _mm_alignr_epi8(t, s1, 8);
    cdgh[l] = _mm_blend_epi16(s1, t, 0xF0);
  }
  for (size_t b = 0; b < blocks; ++b) {
    __m128i save0[N], save1[N], w[N][4];
    for (size_t l = 0; l < N; ++l) {
      save0[l] = abef[l];
      save1[l] = cdgh[l];
    }
    // Unrolled at compile time (q a constant), so that w's indices are
    // constants and the schedule stays in registers.
    [&]<int... Q>(std::integer_sequence<int, Q...>) {
      (quad<N, Q>(abef, cdgh, w, data, b, bswap), ...);
    }(std::make_integer_sequence<int, 16>{});
    for (size_t l = 0; l < N; ++l) {
      abef[l] = _mm_add_epi32(abef[l], save0[l]);
      cdgh[l] = _mm_add_epi32(cdgh[l], save1[l]);
    }
  }
  for (size_t l = 0; l < N; ++l) {
    const __m128i t = _mm_shuffle_epi32(abef[l], 0x1B);    // FEBA
    const __m128i s1 = _mm_shuffle_epi32(cdgh[l], 0xB1);   // DCHG
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state[l]), _mm_blend_epi16(t, s1, 0xF0));      // DCBA
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state[l] + 4), _mm_alignr_epi8(s1, t, 8));    // HGFE
  }
}

#pragma GCC pop_options

bool cpu_has_sha() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool ssse3 = c & (1u << 9), sse41 = c & (1u << 19);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ssse3 && sse41 && (b & (1u << 29));
}

void compress_lanes(size_t n, uint32_t* const* state, const std::byte* const* data, size_t blocks) {
  switch (n) {
    case 1: return compress<1>(state, data, blocks);
    case 2: return compress<2>(state, data, blocks);
    case 3: return compress<3>(state, data, blocks);
    default: return compress<4>(state, data, blocks);
  }
}

#endif

}  // namespace

bool sha256_lanes_accelerated() {
#if MURMUR_SHA_LANES_X86
  static const bool yes = cpu_has_sha();
  return yes;
#else
  return false;
#endif
}

void sha256_lanes(std::span<const std::span<const std::byte>> msgs, std::span<digest> out) {
  const size_t n = msgs.size();
  if (n != out.size() || n > sha256_max_lanes)
    throw std::invalid_argument("sha256_lanes: " + std::to_string(n) + " messages, " + std::to_string(out.size()) +
                                " outputs (at most " + std::to_string(sha256_max_lanes) + ", as many as messages)");
#if MURMUR_SHA_LANES_X86
  if (sha256_lanes_accelerated()) {
    std::array<std::array<uint32_t, 8>, sha256_max_lanes> st;
    std::array<uint32_t*, sha256_max_lanes> sp{};
    std::array<const std::byte*, sha256_max_lanes> dp{};
    size_t common = SIZE_MAX;
    for (size_t l = 0; l < n; ++l) {
      st[l] = iv;
      sp[l] = st[l].data();
      dp[l] = msgs[l].data();
      common = std::min(common, msgs[l].size() / 64);
    }
    if (n > 0 && common > 0) compress_lanes(n, sp.data(), dp.data(), common);
    for (size_t l = 0; l < n; ++l) {
      // This lane's own full blocks past the common ones, then the padding:
      // 0x80, zeros, the bit length big-endian, in one or two blocks.
      const size_t len = msgs[l].size(), full = len / 64;
      const std::byte* p = msgs[l].data() + 64 * common;
      if (full > common) compress_lanes(1, &sp[l], &p, full - common);
      alignas(16) std::byte tail[128] = {};
      const size_t rest = len - 64 * full;
      if (rest) std::memcpy(tail, msgs[l].data() + 64 * full, rest);
      tail[rest] = std::byte{0x80};
      const size_t tail_blocks = rest + 9 > 64 ? 2 : 1;
      const uint64_t bits = static_cast<uint64_t>(len) * 8;
      for (int i = 0; i < 8; ++i) tail[64 * tail_blocks - 1 - i] = static_cast<std::byte>(bits >> (8 * i));
      const std::byte* tp = tail;
      compress_lanes(1, &sp[l], &tp, tail_blocks);
      for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 4; ++j) out[l][4 * i + j] = static_cast<uint8_t>(st[l][i] >> (24 - 8 * j));
    }
    return;
  }
#endif
  for (size_t l = 0; l < n; ++l) out[l] = sha256(msgs[l].data(), msgs[l].size());
}

}  // namespace murmur
