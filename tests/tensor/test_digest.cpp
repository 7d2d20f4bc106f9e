// digest_builder is what every commitment is made of: SHA-256 known answers
// (FIPS 180-2 examples), and a tensor hashed in pieces has the digest of
// the whole (step transcripts hash chunk by chunk, verifiers in one piece).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tensor/digest.hpp"

using namespace murmur;

TEST_CASE("SHA-256 known answers, reusing one builder", "[digest]") {
  digest_builder h;
  CHECK(to_hex(h.add("abc", 3).finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(h.finish()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(to_hex(h.add(two.data(), two.size()).finish()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256("abc", 3) == sha256("abc", 3));
}

TEST_CASE("a tensor hashed chunk by chunk has the digest of the whole", "[digest]") {
  std::vector<float> v(10000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.001f * static_cast<float>(i) - 3.f;
  digest_builder h;
  const digest whole = h.add(v).finish();
  for (size_t chunk : {1u, 7u, 4096u, 9999u}) {
    for (size_t o = 0; o < v.size(); o += chunk) h.add(v.data() + o, 4 * std::min(chunk, v.size() - o));
    CHECK(h.finish() == whole);
  }
  v[1234] = std::nextafter(v[1234], 1e9f);
  CHECK(h.add(v).finish() != whole);
}
