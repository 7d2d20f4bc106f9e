// sha256_lanes must be plain SHA-256 of each message (held to OpenSSL's),
// whatever the lengths and lane counts; tree_digest must bind every byte
// and every length, and copy what it is asked to copy.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "tensor/sha256_lanes.hpp"
#include "tensor/tree_digest.hpp"

using namespace murmur;

namespace {

std::vector<std::byte> random_bytes(std::mt19937& r, size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(r());
  return v;
}

}  // namespace

TEST_CASE("sha256_lanes equals OpenSSL's SHA-256 for every lane count and length", "[digest]") {
  INFO("SHA extensions in use: " << sha256_lanes_accelerated());
  std::mt19937 r(7);
  // Lengths around the padding edges (55, 56, 63, 64) and several blocks.
  const std::vector<size_t> lengths = {0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 16384, 16385};
  for (size_t lanes = 1; lanes <= sha256_max_lanes; ++lanes)
    for (size_t i = 0; i < lengths.size(); ++i) {
      std::vector<std::vector<std::byte>> m(lanes);
      std::vector<std::span<const std::byte>> s(lanes);
      for (size_t l = 0; l < lanes; ++l) {
        // Equal lengths (fully interleaved) and unequal ones (common blocks, then alone).
        m[l] = random_bytes(r, l % 2 ? lengths[(i + l) % lengths.size()] : lengths[i]);
        s[l] = m[l];
      }
      std::vector<digest> out(lanes);
      sha256_lanes(s, out);
      for (size_t l = 0; l < lanes; ++l) {
        INFO("lanes " << lanes << ", lane " << l << ", " << m[l].size() << " bytes");
        CHECK(out[l] == sha256(m[l].data(), m[l].size()));
      }
    }
  std::vector<std::span<const std::byte>> too_many(sha256_max_lanes + 1);
  std::vector<digest> out(sha256_max_lanes + 1);
  CHECK_THROWS_AS(sha256_lanes(too_many, out), std::invalid_argument);
}

TEST_CASE("tree_digest binds every byte and length, copies on request, and is reusable", "[digest]") {
  std::mt19937 r(11);
  const auto small = random_bytes(r, 100);
  const auto big = random_bytes(r, 5 * tree_digest::leaf_bytes + 123);  // leaves, the last one short
  tree_digest h;
  auto of = [&](const std::vector<std::byte>& a, const std::vector<std::byte>& b, uint64_t x) {
    return h.add_u64(x).add_vector(a).add_vector(b).finish();
  };
  const digest d = of(small, big, 3);
  CHECK(of(small, big, 3) == d);  // reused, same answer
  CHECK(of(small, big, 4) != d);
  for (size_t at : {size_t{0}, tree_digest::leaf_bytes - 1, tree_digest::leaf_bytes, big.size() - 1}) {
    auto flipped = big;
    flipped[at] ^= std::byte{1};
    INFO("byte " << at << " of the large buffer flipped");
    CHECK(of(small, flipped, 3) != d);
  }
  auto flipped = small;
  flipped[50] ^= std::byte{1};
  CHECK(of(flipped, big, 3) != d);
  // The same bytes split differently between the buffers hash differently.
  std::vector<std::byte> a = small, b = big;
  b.insert(b.begin(), a.back());
  a.pop_back();
  CHECK(of(a, b, 3) != d);

  // Copying: the copy holds the bytes, and the digest is the same as without.
  std::vector<std::byte> copy(big.size());
  const digest with_copy = h.add_u64(3).add_vector(small).add_buffer(big.data(), big.size(), copy.data()).finish();
  CHECK(with_copy == d);
  CHECK(copy == big);
  std::vector<std::byte> small_copy(small.size());
  h.add_buffer(small.data(), small.size(), small_copy.data()).finish();
  CHECK(small_copy == small);
}
