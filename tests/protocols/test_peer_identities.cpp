// Peer i is the i-th key line of authorized_peers: the key -> index mapping
// and the errors that name the file and its lines.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "protocols/peer_identities.hpp"

using namespace murmur;
namespace fs = std::filesystem;

namespace {

fs::path scratch_file(const std::string& name, const std::string& text) {
  auto dir = fs::path(MURMUR_BINARY_DIR) / "test-runs" / "identities";
  fs::create_directories(dir);
  auto p = dir / name;
  std::ofstream(p) << text;
  return p;
}

}  // namespace

TEST_CASE("peer identities: key line i is peer i, comments and blank lines skipped", "[protocols][identity]") {
  const auto a = generate_curve_keys().public_key, b = generate_curve_keys().public_key,
             c = generate_curve_keys().public_key;
  auto file = scratch_file("ok", "# key endpoint label\n\n" + a + " tcp://10.0.0.1:5555 lab-a\n   \n# b next\n" + b +
                                     "\n" + c + " tcp://10.0.0.3:5555\n");
  auto ids = peer_identities::read(file.string());
  REQUIRE(ids.size() == 3);
  CHECK(ids.index_of(a) == 0u);
  CHECK(ids.index_of(b) == 1u);
  CHECK(ids.index_of(c) == 2u);
  CHECK_FALSE(ids.index_of(generate_curve_keys().public_key));
  CHECK(ids.owns(b, 1));
  CHECK_FALSE(ids.owns(b, 0));
  CHECK_FALSE(ids.owns(b, 7));
  REQUIRE(ids.find(2));
  CHECK(ids.find(2)->endpoint == "tcp://10.0.0.3:5555");
  CHECK(ids.find(2)->line == 7);
  CHECK(ids.find(1)->endpoint.empty());
  // The label: what follows the endpoint (start-up messages name peers by it).
  CHECK(ids.find(0)->label == "lab-a");
  CHECK(ids.find(1)->label.empty());
  CHECK(ids.find(2)->label.empty());
  CHECK_FALSE(ids.find(3));
  CHECK_NOTHROW(ids.check_self(1, b, "keys/peer.pub"));

  // The same mapping from a bare key list (what the bridge gets).
  auto bare = peer_identities::from_keys({a, b, c});
  CHECK(bare.index_of(c) == 2u);
}

TEST_CASE("peer identities: a key on two lines is an error naming both lines", "[protocols][identity]") {
  const auto a = generate_curve_keys().public_key, b = generate_curve_keys().public_key;
  auto file = scratch_file("dup", "# lab\n" + a + " one\n" + b + " two\n\n" + a + " three\n");
  CHECK_THROWS_WITH(peer_identities::read(file.string()),
                    Catch::Contains(file.string() + ":2 (key line 0)") &&
                        Catch::Contains(file.string() + ":5 (key line 2)") && Catch::Contains("same key"));
  CHECK_THROWS_WITH(peer_identities::from_keys({a, b, b}), Catch::Contains("key line 1") && Catch::Contains("key line 2"));
}

TEST_CASE("peer identities: our own key must be line peer.index", "[protocols][identity]") {
  const auto a = generate_curve_keys().public_key, b = generate_curve_keys().public_key,
             stranger = generate_curve_keys().public_key;
  auto file = scratch_file("self", a + "\n# comment\n" + b + "\n");
  auto ids = peer_identities::read(file.string());
  // b is line 3 of the file, key line 1: claiming index 0 is refused.
  CHECK_THROWS_WITH(ids.check_self(0, b, "keys1/peer.pub"),
                    Catch::Contains(file.string() + ":1 (key line 0)") && Catch::Contains("peer.index = 0") &&
                        Catch::Contains("keys1/peer.pub") && Catch::Contains(file.string() + ":3 (key line 1)"));
  CHECK_THROWS_WITH(ids.check_self(1, stranger, "k/peer.pub"), Catch::Contains("not in the file"));
  CHECK_THROWS_WITH(ids.check_self(2, a, "k/peer.pub"),
                    Catch::Contains("peer.index = 2") && Catch::Contains("only 2 key line(s)"));
  CHECK_NOTHROW(ids.check_self(0, a, "k/peer.pub"));
}
