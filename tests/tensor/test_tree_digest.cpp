// tree_digest must be the construction its header states (BLAKE3 of the
// top message, each large buffer as its BLAKE3 digest), bind every byte
// and every length, and copy what it is asked to copy.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/blake3.hpp"
#include "tensor/tree_digest.hpp"

using namespace murmur;

namespace {

std::vector<std::byte> random_bytes(std::mt19937& r, size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(r());
  return v;
}

}  // namespace

TEST_CASE("tree_digest is BLAKE3 of the top message with each large buffer's BLAKE3 in it", "[digest]") {
  std::mt19937 r(3);
  const auto small = random_bytes(r, tree_digest::inline_bytes);     // inline: the largest that is
  const auto big = random_bytes(r, tree_digest::inline_bytes + 1);   // hashed: the smallest that is
  const auto huge = random_bytes(r, 40 * tree_digest::copy_slice_bytes + 7);
  std::vector<std::byte> top;
  auto put = [&](const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    top.insert(top.end(), b, b + n);
  };
  const uint64_t x = 42, ns = small.size(), nb = big.size(), nh = huge.size();
  put(&x, 8);
  put(&ns, 8);
  put(small.data(), small.size());
  put(&nb, 8);
  put(blake3(big.data(), big.size()).data(), 32);
  put(&nh, 8);
  put(blake3(huge.data(), huge.size()).data(), 32);
  const digest want = blake3(top.data(), top.size());
  tree_digest h;
  CHECK(h.add_u64(x).add_vector(small).add_vector(big).add_vector(huge).finish() == want);
  std::vector<std::byte> copy(huge.size());
  CHECK(h.add_u64(x).add_vector(small).add_vector(big).add_buffer(huge.data(), huge.size(), copy.data()).finish() ==
        want);
  CHECK(copy == huge);
}

TEST_CASE("tree_digest binds every byte and length, copies on request, and is reusable", "[digest]") {
  std::mt19937 r(11);
  const auto small = random_bytes(r, 100);
  const auto big = random_bytes(r, 5 * tree_digest::copy_slice_bytes + 123);  // leaves, the last one short
  tree_digest h;
  auto of = [&](const std::vector<std::byte>& a, const std::vector<std::byte>& b, uint64_t x) {
    return h.add_u64(x).add_vector(a).add_vector(b).finish();
  };
  const digest d = of(small, big, 3);
  CHECK(of(small, big, 3) == d);  // reused, same answer
  CHECK(of(small, big, 4) != d);
  for (size_t at : {size_t{0}, tree_digest::copy_slice_bytes - 1, tree_digest::copy_slice_bytes, big.size() - 1}) {
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

TEST_CASE("a buffer given in pieces hashes as its concatenation, at every split", "[digest]") {
  std::mt19937 r(21);
  tree_digest h;
  for (size_t n : {size_t{0}, size_t{100}, tree_digest::inline_bytes, tree_digest::inline_bytes + 1, size_t{5000},
                   size_t{70000}}) {
    const auto whole = random_bytes(r, n);
    const auto after = random_bytes(r, 3000);  // a buffer after it: the pieces end where they should
    const digest want = h.add_u64(7).add_buffer(whole.data(), whole.size()).add_buffer(after.data(), after.size()).finish();
    for (size_t cut : {size_t{0}, std::min<size_t>(1, n), n / 3, n / 2, n > 0 ? n - 1 : 0, n}) {
      INFO("bytes " << n << ", cut at " << cut);
      const std::span<const std::byte> all(whole);
      const std::span<const std::byte> pieces[2] = {all.first(cut), all.subspan(cut)};
      CHECK(h.add_u64(7).add_buffer(pieces).add_buffer(after.data(), after.size()).finish() == want);
    }
    if (n > 0) {
      // Not the same as two buffers: the length is the whole's.
      const std::span<const std::byte> all(whole);
      CHECK(h.add_u64(7).add_buffer(all.data(), n / 2).add_buffer(all.data() + n / 2, n - n / 2)
                .add_buffer(after.data(), after.size()).finish() != want);
    }
  }
}
