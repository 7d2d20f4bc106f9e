// Replays the committed seed corpus of the decoder fuzzer through the same
// invariant checks as the fuzzer itself (tests/fuzz/decoder_checks.hpp), so
// every seed and every past crash reproducer is checked on each test run,
// without clang. File names say what is expected of which decoder:
// DECODER-valid-* decode with DECODER, DECODER-invalid-* are sound frames it
// rejects (undecodable, or unknown_type for another message type),
// frame-invalid-* by every decoder (DECODER: gossip, membership_join,
// membership_update, heartbeat, heartbeat_ack, leave, state_request,
// state_chunk, transcript_commit, tensor_request, tensor_reply, evidence,
// matmul_task, matmul_result, miss_claim, stage_tensor, stage_checkpoint, stage_heartbeat,
// stage_takeover, inference, checkpoint); crash-* files only have to hold the invariants.
// checkpoint-* files are checkpoint bytes, not frames: decode_checkpoint
// accepts the valid ones and refuses (checkpoint_error) the invalid ones.
#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
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

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

template <class M>
frame_error decode_with(frame_error (*decode)(std::span<const std::byte>, size_t, M&), std::span<const std::byte> b) {
  M m{};
  return decode(b, fuzz::max_frame_bytes, m);
}

frame_error decode_checkpoint_as_frame_error(std::span<const std::byte> b) {
  try {
    (void)decode_checkpoint(b, "corpus file");
    return frame_error::none;
  } catch (const checkpoint_error&) {
    return frame_error::undecodable;
  }
}

// The decoders the corpus names, by file name prefix.
struct named_decoder {
  std::string name;
  frame_error (*decode)(std::span<const std::byte>);
  int valid = 0, invalid = 0;
};

std::vector<named_decoder> named_decoders() {
  return {
      {"gossip", [](std::span<const std::byte> b) { return decode_with(decode_gossip, b); }},
      {"membership_join", [](std::span<const std::byte> b) { return decode_with(decode_membership_join, b); }},
      {"membership_update", [](std::span<const std::byte> b) { return decode_with(decode_membership_update, b); }},
      {"heartbeat", [](std::span<const std::byte> b) { return decode_with(decode_heartbeat, b); }},
      {"heartbeat_ack", [](std::span<const std::byte> b) { return decode_with(decode_heartbeat_ack, b); }},
      {"leave", [](std::span<const std::byte> b) { return decode_with(decode_leave, b); }},
      {"state_request", [](std::span<const std::byte> b) { return decode_with(decode_state_request, b); }},
      {"state_chunk", [](std::span<const std::byte> b) { return decode_with(decode_state_chunk, b); }},
      {"transcript_commit", [](std::span<const std::byte> b) { return decode_with(decode_transcript_commit, b); }},
      {"tensor_request", [](std::span<const std::byte> b) { return decode_with(decode_tensor_request, b); }},
      {"tensor_reply", [](std::span<const std::byte> b) { return decode_with(decode_tensor_reply, b); }},
      {"evidence", [](std::span<const std::byte> b) { return decode_with(fuzz::decode_evidence_only, b); }},
      {"matmul_task", [](std::span<const std::byte> b) { return decode_with(decode_matmul_task, b); }},
      {"matmul_result", [](std::span<const std::byte> b) { return decode_with(decode_matmul_result, b); }},
      {"miss_claim", [](std::span<const std::byte> b) { return decode_with(decode_miss_claim, b); }},
      {"stage_tensor", [](std::span<const std::byte> b) { return decode_with(decode_stage_tensor, b); }},
      {"stage_checkpoint", [](std::span<const std::byte> b) { return decode_with(decode_stage_checkpoint, b); }},
      {"stage_heartbeat", [](std::span<const std::byte> b) { return decode_with(decode_stage_heartbeat, b); }},
      {"stage_takeover", [](std::span<const std::byte> b) { return decode_with(decode_stage_takeover, b); }},
      {"inference", [](std::span<const std::byte> b) { return decode_with(decode_inference_message, b); }},
      {"segment_commit", [](std::span<const std::byte> b) { return decode_with(decode_segment_commit, b); }},
      {"segment_request", [](std::span<const std::byte> b) { return decode_with(decode_segment_request, b); }},
      {"segment_reply", [](std::span<const std::byte> b) { return decode_with(decode_segment_reply, b); }},
      {"segment_evidence", [](std::span<const std::byte> b) { return decode_with(decode_segment_evidence, b); }},
      {"segment_unavailable",
       [](std::span<const std::byte> b) { return decode_with(decode_segment_unavailable, b); }},
      // Not a frame decoder: accepted is none, refused (checkpoint_error) is undecodable.
      {"checkpoint", [](std::span<const std::byte> b) { return decode_checkpoint_as_frame_error(b); }},
  };
}

}  // namespace

TEST_CASE("the decoder fuzz corpus holds the fuzzer's invariants", "[protocols][fuzz]") {
  const auto files = corpus_files();
  INFO("corpus: " << corpus_dir.string());
  REQUIRE(!files.empty());
  auto decoders = named_decoders();
  int frame_invalid = 0, unnamed = 0;
  for (const auto& p : files) {
    const std::string name = p.filename().string();
    INFO("file: " << name);
    const auto bytes = read_bytes(p);
    const auto failure = fuzz::check_input(bytes);
    std::string what;
    if (failure) what = std::string(failure->decoder) + (failure->resealed ? " (resealed): " : ": ") + failure->what;
    CHECK(what == "");
    if (starts_with(name, "frame-invalid-")) {
      ++frame_invalid;
      for (const auto& d : decoders) {
        INFO("decoder: " << d.name);
        CHECK(d.decode(bytes) != frame_error::none);
      }
      continue;
    }
    bool named = false;
    for (auto& d : decoders) {
      if (starts_with(name, d.name + "-valid-")) {
        ++d.valid;
        CHECK(to_string(d.decode(bytes)) == to_string(frame_error::none));
      } else if (starts_with(name, d.name + "-invalid-")) {
        ++d.invalid;
        // Sound frames whose payload (or type) is wrong: frame damage is frame-invalid-*.
        const frame_error e = d.decode(bytes);
        CHECK((e == frame_error::undecodable || e == frame_error::unknown_type));
      } else {
        continue;
      }
      named = true;
    }
    if (!named && !starts_with(name, "crash-")) ++unnamed;
  }
  // Every decoder has valid and broken seeds (every gossip kind has a valid one),
  // and every file says what it is.
  CHECK(frame_invalid >= 10);
  CHECK(unnamed == 0);
  for (const auto& d : decoders) {
    INFO("decoder: " << d.name);
    CHECK(d.valid >= (d.name == "gossip" ? 4 : 2));
    CHECK(d.invalid >= 3);
  }
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

TEST_CASE("the fuzz membership and state checks catch broken messages", "[protocols][fuzz]") {
  membership_update u;
  u.peers = {peer_info{1, "tcp://a:1", "", 0, peer_status::alive}, peer_info{2, "tcp://b:1", "", 0, peer_status::dead}};
  CHECK(fuzz::update_invariants(u) == nullptr);
  u.peers[1].index = 1;
  CHECK(fuzz::update_invariants(u) != nullptr);  // duplicate index
  u.peers[1].index = 2;
  u.peers[1].endpoint = "tcp://b:0";
  CHECK(fuzz::update_invariants(u) != nullptr);  // bad port
  u.peers.assign(max_peers + 1, peer_info{});
  CHECK(fuzz::update_invariants(u) != nullptr);
  membership_join j{peer_info{1, "tcp://a:1", "", 0, peer_status::alive}};
  CHECK(fuzz::join_invariants(j) == nullptr);
  j.self.status = peer_status::suspect;
  CHECK(fuzz::join_invariants(j) != nullptr);

  CHECK(fuzz::state_request_invariants({1, 2, 0, 1}) == nullptr);
  CHECK(fuzz::state_request_invariants({1, 2, 0, 0}) != nullptr);
  CHECK(fuzz::state_request_invariants({1, 2, UINT32_MAX, 2}) != nullptr);
  state_chunk c;
  c.dim = 3;
  c.offset = 1;
  c.values = {1, 2};
  CHECK(fuzz::state_chunk_invariants(c) == nullptr);
  c.offset = 2;
  CHECK(fuzz::state_chunk_invariants(c) != nullptr);  // past dim
  c.offset = 1;
  c.values[1] = std::numeric_limits<float>::infinity();
  CHECK(fuzz::state_chunk_invariants(c) != nullptr);

  // A valid heartbeat passes every row; the same frame with a trailing byte
  // and a recomputed header is rejected by the decoder, which the check accepts.
  std::vector<std::byte> f;
  encode_heartbeat({1, 2, 3}, f);
  CHECK_FALSE(fuzz::check_input(f).has_value());
  CHECK(fuzz::check_peek_type(f) == nullptr);
  f.push_back(std::byte{0});
  CHECK_FALSE(fuzz::check_input(f).has_value());
}
