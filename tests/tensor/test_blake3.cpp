// blake3 must be BLAKE3: the official test vectors' input (byte i is
// i % 251) at lengths around the 1 KiB chunk and 16-chunk vector edges,
// whole and fed in uneven pieces; and, where the b3sum tool (the Rust
// implementation) is installed, the same digest as b3sum on random data.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "tensor/blake3.hpp"

using namespace murmur;

namespace {

std::vector<std::byte> official_input(size_t n) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i % 251);
  return v;
}

// b3sum's hex digest of a file, or "" where b3sum is not installed.
std::string b3sum_of(const std::string& path) {
  FILE* p = popen(("b3sum --no-names '" + path + "' 2>/dev/null").c_str(), "r");
  if (!p) return "";
  char line[128] = {};
  const bool read = std::fgets(line, sizeof line, p) != nullptr;
  const int rc = pclose(p);
  if (!read || rc != 0) return "";
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("blake3 gives the official BLAKE3 digests, whole and incrementally", "[digest]") {
  // The official test-vector input; digests from Debian's b3sum 1.2.0 (the
  // Rust implementation; the 0- and 1-byte ones are also in BLAKE3's
  // test_vectors.json).
  const std::vector<std::pair<size_t, std::string>> vectors = {
      {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
      {1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
      {1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
      {1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
      {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
      {2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
      {16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
      {31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
      {102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
  };
  blake3_builder b;
  for (const auto& [n, hex] : vectors) {
    INFO(n << " bytes");
    const auto in = official_input(n);
    CHECK(to_hex(blake3(in.data(), in.size())) == hex);
    CHECK(to_hex(b.add(in.data(), in.size()).finish()) == hex);
    // Uneven pieces: partial chunks, and a chunk counter off the vector width.
    for (size_t piece : {size_t{1}, size_t{63}, size_t{1000}, size_t{3 * 1024 + 5}}) {
      for (size_t o = 0; o < n; o += piece) b.add(in.data() + o, std::min(piece, n - o));
      CHECK(to_hex(b.finish()) == hex);
    }
  }
}

TEST_CASE("blake3 equals b3sum on random data of many lengths (where b3sum is installed)", "[digest]") {
  const std::string path = "/tmp/murmur_test_blake3_" + std::to_string(getpid());
  std::mt19937 r(5);
  const std::vector<size_t> lengths = {7, 1024 * 16 - 1, 1024 * 16 + 1, 1024 * 64 * 3 + 17, 4'700'000};
  bool installed = true;
  for (size_t n : lengths) {
    std::vector<std::byte> v(n);
    for (auto& x : v) x = static_cast<std::byte>(r());
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(n));
    const std::string want = b3sum_of(path);
    if (want.empty()) {
      installed = false;
      break;
    }
    INFO(n << " random bytes");
    CHECK(to_hex(blake3(v.data(), v.size())) == want);
  }
  std::remove(path.c_str());
  if (!installed) WARN("b3sum is not installed (apt-get install b3sum): checked against the hard-coded vectors only");
}
