// Replays the committed seed corpus of the decoder fuzzer through the same
// invariant checks as the fuzzer itself (tests/fuzz/decoder_checks.hpp), so
// every seed and every past crash reproducer is checked on each test run,
// without clang. File names say what is expected of the gossip decoder:
// gossip-valid-* decode, frame-invalid-* and gossip-invalid-* are rejected.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/decoder_checks.hpp"

using namespace murmur;

namespace {

const std::filesystem::path corpus_dir = std::filesystem::path(MURMUR_SOURCE_DIR) / "tests/fuzz/corpus/decoders";

std::vector<std::filesystem::path> corpus_files() {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(corpus_dir))
    for (const auto& e : std::filesystem::directory_iterator(corpus_dir))
      if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::byte> read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::transform(c.begin(), c.end(), b.begin(), [](char x) { return static_cast<std::byte>(x); });
  return b;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("the decoder fuzz corpus holds the fuzzer's invariants", "[protocols][fuzz]") {
  const auto files = corpus_files();
  INFO("corpus: " << corpus_dir.string());
  REQUIRE(!files.empty());
  int valid = 0, invalid = 0;
  for (const auto& p : files) {
    const std::string name = p.filename().string();
    INFO("file: " << name);
    const auto bytes = read_bytes(p);
    const auto failure = fuzz::check_input(bytes);
    std::string what;
    if (failure) what = std::string(failure->decoder) + (failure->resealed ? " (resealed): " : ": ") + failure->what;
    CHECK(what == "");
    gossip_update m;
    const frame_error e = decode_gossip(bytes, fuzz::max_frame_bytes, m);
    if (starts_with(name, "gossip-valid-")) {
      ++valid;
      CHECK(to_string(e) == to_string(frame_error::none));
    } else if (starts_with(name, "gossip-invalid-") || starts_with(name, "frame-invalid-")) {
      ++invalid;
      CHECK(e != frame_error::none);
    }
  }
  // Every gossip kind has a valid seed, and there are plenty of broken ones.
  CHECK(valid >= 4);
  CHECK(invalid >= 10);
}

TEST_CASE("the fuzz decoder checks catch a broken message", "[protocols][fuzz]") {
  gossip_update m;
  m.dim = 10;
  m.indices = {3, 2};
  m.values = {1, 2};
  CHECK(fuzz::gossip_invariants(m) != nullptr);
  m.indices = {2, 3};
  CHECK(fuzz::gossip_invariants(m) == nullptr);
  m.kind = update_kind::grid_set;
  m.scale = 0.5f;
  m.grid = {2, 5};
  CHECK(fuzz::gossip_invariants(m) != nullptr);  // 5 * 0.5 != 2
  m.values = {1, 2.5f};
  CHECK(fuzz::gossip_invariants(m) == nullptr);
}
