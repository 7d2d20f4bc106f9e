// Writes the seed corpus of the decoder fuzzer: valid frames of every message
// type (gossip kinds, membership, state transfer, verify) and frames that are wrong
// in one specific way each. Run by hand when the wire format changes (the
// output is committed; the output directory is emptied of *.bin first, except
// crash-* files):
//   cmake --build build --target make_fuzz_corpus && build/make_fuzz_corpus tests/fuzz/corpus/decoders
// Names say what a file is: DECODER-valid-* must decode with that decoder,
// DECODER-invalid-* must be rejected by it and frame-invalid-* by every
// decoder, DECODER being gossip, membership_join, membership_update,
// heartbeat, heartbeat_ack, leave, state_request, state_chunk,
// transcript_commit, tensor_request, tensor_reply, evidence, matmul_task,
// matmul_result, miss_claim, stage_tensor, stage_checkpoint, stage_heartbeat,
// stage_takeover, inference or checkpoint (tests/protocols/test_fuzz_corpus.cpp checks
// all of it); crash-* files are reproducers of fixed bugs, kept by hand.
// checkpoint-* files are checkpoint bytes (protocols/checkpoint_file.hpp), not
// frames: decode_checkpoint must accept the valid ones and refuse the others.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "protocols/checkpoint_file.hpp"
#include "protocols/gossip_messages.hpp"
#include "protocols/inference_messages.hpp"
#include "actors/segment_messages.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/pipeline_messages.hpp"
#include "protocols/state_transfer_messages.hpp"
#include "protocols/verify_messages.hpp"
#include "tensor/digest.hpp"

using namespace murmur;
using bytes = std::vector<std::byte>;

namespace {

std::filesystem::path out_dir;
int written = 0;

void write(const std::string& name, const bytes& b) {
  std::ofstream f(out_dir / (name + ".bin"), std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) {
    std::fprintf(stderr, "make_fuzz_corpus: cannot write %s\n", name.c_str());
    std::exit(1);
  }
  ++written;
}

bytes encoded(const gossip_update& m) {
  bytes f;
  encode_gossip(m, f);
  return f;
}

template <class M>
bytes encoded_with(void (*encode)(const M&, bytes&), const M& m) {
  bytes f;
  encode(m, f);
  return f;
}

// Payload builder for frames the encoder would never write.
struct payload {
  bytes b;
  payload& u8(uint8_t v) { b.push_back(std::byte{v}); return *this; }
  payload& u32(uint32_t v) { for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  payload& u16(uint16_t v) { return u8(static_cast<uint8_t>(v)).u8(static_cast<uint8_t>(v >> 8)); }
  payload& u64(uint64_t v) { for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  payload& str(const std::string& s) { for (char c : s) u8(static_cast<uint8_t>(c)); return *this; }
  // A membership peer record whose length fields say what the strings hold.
  payload& peer(uint32_t index, uint64_t inc, uint8_t status, const std::string& ep, const std::string& key) {
    return u32(index).u64(inc).u8(status).u16(static_cast<uint16_t>(ep.size())).u8(static_cast<uint8_t>(key.size())).str(ep).str(key);
  }
  payload& f32(float v) { uint32_t u; std::memcpy(&u, &v, 4); return u32(u); }
  payload& raw(std::initializer_list<uint8_t> v) { for (auto x : v) u8(x); return *this; }
  // Cereal's endianness tag (1 = little) and the fixed fields.
  payload& head(uint32_t dim, uint8_t kind, uint32_t count, uint32_t gap_bytes) {
    return u8(1).u32(5).u64(9).u64(1000).u32(dim).u8(kind).u32(count).u32(gap_bytes);
  }
  bytes frame(message_type t = message_type::gossip_update) const {
    bytes f;
    encode_frame(t, b, f);
    return f;
  }
};

// The payload of a frame, to seal again under another type.
payload payload_of_frame(const bytes& f) {
  payload q;
  q.b.assign(f.begin() + frame_header_bytes, f.end());
  return q;
}

gossip_update sparse(update_kind kind = update_kind::sparse_set) {
  gossip_update m;
  m.sender = 3;
  m.round = 7;
  m.step = 42;
  m.dim = 1000;
  m.kind = kind;
  m.indices = {0, 1, 5, 127, 128, 999};
  m.values = {0.5f, -1.f, 3.25f, 1e-7f, -2e5f, 0.f};
  return m;
}

gossip_update grid(std::vector<uint32_t> idx, std::vector<int32_t> g, float scale, uint32_t dim = 100) {
  gossip_update m;
  m.sender = 2;
  m.round = 3;
  m.step = 4;
  m.dim = dim;
  m.kind = update_kind::grid_set;
  m.scale = scale;
  m.indices = std::move(idx);
  m.grid = std::move(g);
  for (int32_t v : m.grid) m.values.push_back(static_cast<float>(v) * scale);
  return m;
}

void valid() {
  write("gossip-valid-sparse_set", encoded(sparse()));
  write("gossip-valid-sparse_add", encoded(sparse(update_kind::sparse_add)));
  gossip_update e;
  e.dim = 10;
  write("gossip-valid-sparse_set-empty", encoded(e));
  e.dim = 0;
  write("gossip-valid-sparse_set-dim0", encoded(e));
  e.kind = update_kind::dense_set;
  write("gossip-valid-dense_set-dim0", encoded(e));
  gossip_update d;
  d.sender = 1;
  d.round = 1;
  d.step = 1;
  d.dim = 8;
  d.kind = update_kind::dense_set;
  d.values = {1, -2, 0.25f, 0, -0.f, FLT_MIN, FLT_MAX, -FLT_TRUE_MIN};
  write("gossip-valid-dense_set-dim8", encoded(d));
  gossip_update w = sparse();
  w.dim = UINT32_MAX;
  w.indices = {0, 1u << 31, UINT32_MAX - 1};  // gaps of 5 varint bytes
  w.values = {FLT_MAX, -FLT_MAX, FLT_TRUE_MIN};
  write("gossip-valid-sparse_set-huge-dim-wide-gaps", encoded(w));
  w.sender = UINT32_MAX;
  w.round = UINT64_MAX;
  w.step = UINT64_MAX;
  w.indices = {UINT32_MAX - 1};
  w.values = {-0.f};
  write("gossip-valid-sparse_add-max-fields", encoded(w));
  write("gossip-valid-grid_set", encoded(grid({1, 2, 50, 99}, {0, -1, 63, -100000}, 0.01f)));
  write("gossip-valid-grid_set-empty", encoded(grid({}, {}, 1.f)));
  write("gossip-valid-grid_set-int32-extremes",
        encoded(grid({0, 1, 2, 3}, {INT32_MAX, INT32_MIN, 64, -64}, 1e-3f)));
  write("gossip-valid-grid_set-tiny-scale", encoded(grid({7}, {1}, FLT_TRUE_MIN, 8)));
  // Accepted but not what encode_gossip writes.
  write("gossip-valid-nonminimal-varint",
        payload().head(10, 0, 2, 3).raw({0x80, 0x00, 0x02}).f32(1).f32(2).frame());
  write("gossip-valid-grid_set-nonminimal-varint",
        payload().head(10, 3, 1, 1).raw({0x04}).f32(0.5f).u32(2).raw({0x83, 0x00}).frame());
  {  // Cereal's tag says big-endian: the fixed fields are byte-swapped.
    payload p;
    p.u8(0).raw({0, 0, 0, 5}).raw({0, 0, 0, 0, 0, 0, 0, 9}).raw({0, 0, 0, 0, 0, 0, 3, 0xe8});
    p.raw({0, 0, 0, 10}).u8(0).raw({0, 0, 0, 1}).raw({0, 0, 0, 1}).raw({0x04}).f32(1.5f);
    write("gossip-valid-bigendian-tag", p.frame());
  }
}

void invalid_frames() {
  const bytes good = encoded(sparse());
  auto edit = [&](size_t at, uint8_t v) { bytes f = good; f[at] = std::byte{v}; return f; };
  write("frame-invalid-empty", {});
  write("frame-invalid-too_short-15", bytes(good.begin(), good.begin() + 15));
  write("frame-invalid-header-only", bytes(good.begin(), good.begin() + 16));
  write("frame-invalid-truncated-1", bytes(good.begin(), good.end() - 1));
  write("frame-invalid-truncated-half", bytes(good.begin(), good.begin() + good.size() / 2));
  bytes longer = good;
  longer.push_back(std::byte{0});
  write("frame-invalid-trailing-byte", longer);
  write("frame-invalid-bad_magic", edit(0, 'X'));
  write("frame-invalid-bad_magic-byteswapped", [&] { bytes f = good; std::swap(f[0], f[3]); std::swap(f[1], f[2]); return f; }());
  write("frame-invalid-bad_version-0", edit(4, 0));
  write("frame-invalid-bad_version-2", edit(4, 2));
  write("frame-invalid-unknown_type-0", edit(6, 0));
  write("frame-invalid-unknown_type-99", edit(6, 99));
  write("frame-invalid-unknown_type-ffff", [&] { bytes f = edit(6, 0xff); f[7] = std::byte{0xff}; return f; }());
  write("frame-invalid-length-plus-1", edit(8, static_cast<uint8_t>(std::to_integer<uint8_t>(good[8]) + 1)));
  write("frame-invalid-length-huge", [&] { bytes f = good; for (int i = 8; i < 12; ++i) f[i] = std::byte{0xff}; return f; }());
  write("frame-invalid-bad_checksum-header", edit(12, static_cast<uint8_t>(std::to_integer<uint8_t>(good[12]) ^ 1)));
  write("frame-invalid-bad_checksum-payload", [&] { bytes f = good; f.back() ^= std::byte{0x80}; return f; }());
  write("gossip-invalid-empty-payload", payload().frame());
  {  // A good gossip payload in a sound frame of another message type.
    const bytes p(good.begin() + frame_header_bytes, good.end());
    bytes f;
    encode_frame(message_type::membership_join, p, f);
    write("gossip-invalid-payload-in-membership_join-frame", f);
  }
}

void invalid_payloads() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  {
    const bytes f = encoded(sparse());
    payload q;
    q.b.assign(f.begin() + frame_header_bytes, f.begin() + frame_header_bytes + 37);
    write("gossip-invalid-truncated-fixed-fields", q.frame());
  }
  write("gossip-invalid-kind-4", payload().head(10, 4, 0, 0).frame());
  write("gossip-invalid-kind-255", payload().head(10, 255, 0, 0).frame());
  write("gossip-invalid-count-over-dim", payload().head(1, 0, 2, 2).raw({0, 0}).f32(1).f32(2).frame());
  write("gossip-invalid-count-lies-high", payload().head(1000, 0, 1000, 2).raw({0, 0}).f32(1).f32(2).frame());
  write("gossip-invalid-count-max", payload().head(UINT32_MAX, 0, UINT32_MAX, 2).raw({0, 0}).f32(1).f32(2).frame());
  write("gossip-invalid-count-max-grid", payload().head(UINT32_MAX, 3, UINT32_MAX, 1).raw({0}).f32(1).u32(1).raw({2}).frame());
  write("gossip-invalid-count-lies-low", payload().head(10, 0, 1, 2).raw({0, 0}).f32(1).f32(2).frame());
  write("gossip-invalid-gap_bytes-max", payload().head(10, 0, 1, UINT32_MAX).raw({0}).f32(1).frame());
  write("gossip-invalid-gap_bytes-short", payload().head(10, 0, 2, 1).raw({0, 0}).f32(1).f32(2).frame());
  write("gossip-invalid-gap_bytes-unused", payload().head(10, 0, 1, 2).raw({0, 0}).f32(1).frame());
  write("gossip-invalid-index-equals-dim", payload().head(10, 0, 1, 1).raw({10}).f32(1).frame());
  write("gossip-invalid-index-past-dim-by-gaps",
        payload().head(UINT32_MAX, 0, 2, 6).raw({0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00}).f32(1).f32(2).frame());
  write("gossip-invalid-index-overflow-u32",
        payload().head(UINT32_MAX, 0, 2, 10).raw({0xfe, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff, 0x0f}).f32(1).f32(2).frame());
  write("gossip-invalid-varint-6-bytes", payload().head(10, 0, 1, 6).raw({0x80, 0x80, 0x80, 0x80, 0x80, 0x00}).f32(1).frame());
  write("gossip-invalid-varint-over-u32", payload().head(UINT32_MAX, 0, 1, 5).raw({0xff, 0xff, 0xff, 0xff, 0x7f}).f32(1).frame());
  write("gossip-invalid-varint-truncated", payload().head(1000, 0, 1, 1).raw({0x81}).f32(1).frame());
  write("gossip-invalid-value-nan", payload().head(10, 0, 1, 1).raw({3}).f32(nan).frame());
  write("gossip-invalid-value-inf", payload().head(10, 2, 1, 1).raw({3}).f32(inf).frame());
  write("gossip-invalid-value-minus-inf", payload().head(2, 1, 2, 0).f32(1).f32(-inf).frame());
  write("gossip-invalid-missing-value-byte", payload().head(10, 0, 1, 1).raw({3, 0, 0, 0x80}).frame());
  write("gossip-invalid-trailing-byte", payload().head(10, 0, 1, 1).raw({3}).f32(1).u8(0).frame());
  write("gossip-invalid-dense-count-not-dim", payload().head(3, 1, 2, 0).f32(1).f32(2).frame());
  write("gossip-invalid-dense-with-gap_bytes", payload().head(1, 1, 1, 1).raw({0}).f32(1).frame());
  write("gossip-invalid-dense-short", payload().head(3, 1, 3, 0).f32(1).f32(2).frame());
  auto grid_with = [&](float scale, uint32_t value_bytes, std::initializer_list<uint8_t> z) {
    return payload().head(10, 3, 2, 2).raw({1, 1}).f32(scale).u32(value_bytes).raw(z).frame();
  };
  write("gossip-invalid-grid-scale-zero", grid_with(0.f, 2, {2, 3}));
  write("gossip-invalid-grid-scale-negative", grid_with(-0.5f, 2, {2, 3}));
  write("gossip-invalid-grid-scale-nan", grid_with(nan, 2, {2, 3}));
  write("gossip-invalid-grid-scale-inf", grid_with(inf, 2, {2, 3}));
  write("gossip-invalid-grid-value_bytes-high", grid_with(0.5f, 3, {2, 3}));
  write("gossip-invalid-grid-value_bytes-low", grid_with(0.5f, 1, {2, 3}));
  write("gossip-invalid-grid-value_bytes-max", grid_with(0.5f, UINT32_MAX, {2, 3}));
  write("gossip-invalid-grid-varint-truncated", grid_with(0.5f, 2, {2, 0x83}));
  write("gossip-invalid-grid-too-few-values", grid_with(0.5f, 1, {2}));
  write("gossip-invalid-grid-trailing-value", grid_with(0.5f, 3, {2, 3, 4}));
  write("gossip-invalid-grid-overflow-to-inf", grid_with(FLT_MAX / 2, 2, {2, 0x06}));
  write("gossip-invalid-grid-no-scale", payload().head(10, 3, 0, 0).u32(0).frame());
}

// ---- membership ----------------------------------------------------------------

const std::string key_a = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";  // ZeroMQ's test vector
const std::string key_punct = "Z.-:+=^!/*?&<>()[]{}@%$#0123456789abcdef";  // the rest of the Z85 alphabet

peer_info peer(uint32_t index, const std::string& endpoint, const std::string& key = key_a,
               peer_status status = peer_status::alive, uint64_t inc = 7) {
  return peer_info{index, endpoint, key, inc, status};
}

bytes join_frame(const peer_info& p) { return encoded_with(encode_membership_join, membership_join{p}); }
bytes update_frame(const membership_update& m) { return encoded_with(encode_membership_update, m); }

membership_update sample_update() {
  membership_update m;
  m.sender = 1;
  m.sender_incarnation = 99;
  m.peers = {peer(0, "tcp://10.0.0.1:5555"), peer(1, "tcp://[::1]:6000", "", peer_status::suspect, 3),
             peer(2, "tcp://node-2.lan:1", key_punct, peer_status::dead, 0),
             peer(3, "tcp://[fe80::1:2]:65535", "", peer_status::left, UINT64_MAX)};
  return m;
}

void membership_valid() {
  write("membership_join-valid-ipv4-key", join_frame(peer(3, "tcp://10.0.0.4:5555")));
  write("membership_join-valid-ipv6-nokey-max-fields",
        join_frame(peer(UINT32_MAX, "tcp://[::ffff:10.0.0.1]:80", "", peer_status::alive, UINT64_MAX)));
  write("membership_join-valid-hostname-punct-key", join_frame(peer(0, "tcp://host-a.lan:65535", key_punct)));
  write("membership_join-valid-longest-endpoint",
        join_frame(peer(9, "tcp://" + std::string(max_endpoint_bytes - 6 - 2, 'h') + ":1", "")));
  membership_update e;
  e.sender = 5;
  write("membership_update-valid-empty", update_frame(e));
  write("membership_update-valid-4-peers", update_frame(sample_update()));
  membership_update u;
  u.sender = UINT32_MAX;
  u.sender_incarnation = UINT64_MAX;
  u.peers = {peer(9, "tcp://a:9", ""), peer(2, "tcp://b:8", key_a, peer_status::suspect),
             peer(UINT32_MAX, "tcp://c:7", "", peer_status::dead), peer(0, "tcp://d:6", "", peer_status::left)};
  write("membership_update-valid-unsorted-indices", update_frame(u));
  write("heartbeat-valid-basic", encoded_with(encode_heartbeat, heartbeat{4, 5, 6}));
  write("heartbeat-valid-max-fields", encoded_with(encode_heartbeat, heartbeat{UINT32_MAX, UINT64_MAX, UINT64_MAX}));
  write("heartbeat_ack-valid-basic", encoded_with(encode_heartbeat_ack, heartbeat_ack{6, 7, 8}));
  write("heartbeat_ack-valid-zero", encoded_with(encode_heartbeat_ack, heartbeat_ack{}));
  write("leave-valid-basic", encoded_with(encode_leave, leave{2, 11}));
  write("leave-valid-max-fields", encoded_with(encode_leave, leave{UINT32_MAX, UINT64_MAX}));
}

void membership_invalid() {
  // Join: one record; each seed breaks one thing about it.
  auto join = [](const std::string& ep, const std::string& key, uint8_t status = 0) {
    return payload().u8(1).peer(3, 7, status, ep, key).frame(message_type::membership_join);
  };
  write("membership_join-invalid-empty-payload", payload().frame(message_type::membership_join));
  write("membership_join-invalid-status-suspect", join("tcp://10.0.0.4:5555", key_a, 1));
  write("membership_join-invalid-status-left", join("tcp://10.0.0.4:5555", "", 3));
  write("membership_join-invalid-status-4", join("tcp://10.0.0.4:5555", key_a, 4));
  write("membership_join-invalid-endpoint-empty", join("", ""));
  write("membership_join-invalid-endpoint-no-port", join("tcp://host", ""));
  write("membership_join-invalid-endpoint-port-0", join("tcp://host:0", ""));
  write("membership_join-invalid-endpoint-port-65536", join("tcp://host:65536", ""));
  write("membership_join-invalid-endpoint-port-leading-zero", join("tcp://host:05555", ""));
  write("membership_join-invalid-endpoint-udp", join("udp://host:5555", ""));
  write("membership_join-invalid-endpoint-host-underscore", join("tcp://host_a:1", ""));
  write("membership_join-invalid-endpoint-host-nul", join(std::string("tcp://ho\0st:1", 13), ""));
  write("membership_join-invalid-endpoint-ipv6-unclosed", join("tcp://[::1:5555", ""));
  write("membership_join-invalid-endpoint-ipv6-empty", join("tcp://[]:5555", ""));
  write("membership_join-invalid-endpoint-over-256", join("tcp://" + std::string(max_endpoint_bytes - 6 - 1, 'h') + ":1", ""));
  write("membership_join-invalid-key-39", join("tcp://h:1", key_a.substr(0, 39)));
  write("membership_join-invalid-key-41", join("tcp://h:1", key_a + "x"));
  write("membership_join-invalid-key-not-z85", join("tcp://h:1", std::string(39, 'a') + "~"));
  write("membership_join-invalid-endpoint_len-past-end",
        payload().u8(1).u32(3).u64(7).u8(0).u16(300).u8(0).str("tcp://h:1").frame(message_type::membership_join));
  write("membership_join-invalid-key_len-past-end",
        payload().u8(1).u32(3).u64(7).u8(0).u16(9).u8(40).str("tcp://h:1").str("abc").frame(message_type::membership_join));
  {
    const bytes good = join_frame(peer(3, "tcp://10.0.0.4:5555"));
    payload q;
    q.b.assign(good.begin() + frame_header_bytes, good.end());
    payload t = q;
    t.b[0] = std::byte{0};
    write("membership_join-invalid-bigendian-tag", t.frame(message_type::membership_join));
    t = q;
    t.u8(0);
    write("membership_join-invalid-trailing-byte", t.frame(message_type::membership_join));
    t = q;
    t.b.resize(10);
    write("membership_join-invalid-truncated-fixed-fields", t.frame(message_type::membership_join));
    t = q;
    t.b.pop_back();
    write("membership_join-invalid-truncated-key", t.frame(message_type::membership_join));
    write("membership_join-invalid-join-payload-in-update-frame", q.frame(message_type::membership_update));
  }

  // Update: fixed fields, then count records.
  auto update = [](uint32_t count) { return payload().u8(1).u32(1).u64(99).u32(count); };
  const auto mu = message_type::membership_update;
  write("membership_update-invalid-empty-payload", payload().frame(mu));
  write("membership_update-invalid-short-fixed-fields", payload().u8(1).u32(1).u64(99).u16(0).frame(mu));
  write("membership_update-invalid-bigendian-tag", payload().u8(0).u32(1).u64(99).u32(0).frame(mu));
  write("membership_update-invalid-trailing-byte", update(0).u8(0).frame(mu));
  write("membership_update-invalid-count-lies-high",
        update(3).peer(0, 1, 0, "tcp://a:1", "").peer(1, 1, 0, "tcp://b:1", "").frame(mu));
  write("membership_update-invalid-count-lies-low",
        update(1).peer(0, 1, 0, "tcp://a:1", "").peer(1, 1, 0, "tcp://b:1", "").frame(mu));
  write("membership_update-invalid-count-over-max_peers", update(static_cast<uint32_t>(max_peers) + 1).peer(0, 1, 0, "tcp://a:1", "").frame(mu));
  write("membership_update-invalid-count-max", update(UINT32_MAX).peer(0, 1, 0, "tcp://a:1", "").frame(mu));
  write("membership_update-invalid-duplicate-index",
        update(3).peer(4, 1, 0, "tcp://a:1", "").peer(2, 1, 1, "tcp://b:1", "").peer(4, 2, 2, "tcp://c:1", "").frame(mu));
  write("membership_update-invalid-status-4",
        update(2).peer(0, 1, 0, "tcp://a:1", "").peer(1, 1, 4, "tcp://b:1", "").frame(mu));
  write("membership_update-invalid-bad-endpoint",
        update(2).peer(0, 1, 0, "tcp://a:1", "").peer(1, 1, 0, "tcp://*:5555", "").frame(mu));
  write("membership_update-invalid-bad-key",
        update(2).peer(0, 1, 0, "tcp://a:1", key_a).peer(1, 1, 0, "tcp://b:1", std::string(40, ' ')).frame(mu));
  write("membership_update-invalid-truncated-record",
        [&] { payload p = update(1).peer(0, 1, 0, "tcp://a:1", key_a); p.b.resize(p.b.size() - 20); return p.frame(mu); }());

  // Fixed-field messages: wrong size or tag, or another message's payload.
  const auto hb = message_type::heartbeat, ack = message_type::heartbeat_ack, lv = message_type::leave;
  write("heartbeat-invalid-empty-payload", payload().frame(hb));
  write("heartbeat-invalid-short", payload().u8(1).u32(4).u64(5).u32(6).frame(hb));
  write("heartbeat-invalid-trailing-byte", payload().u8(1).u32(4).u64(5).u64(6).u8(0).frame(hb));
  write("heartbeat-invalid-bigendian-tag", payload().u8(0).u32(4).u64(5).u64(6).frame(hb));
  write("heartbeat-invalid-leave-payload", payload().u8(1).u32(4).u64(5).frame(hb));
  write("heartbeat_ack-invalid-short", payload().u8(1).u32(4).u64(5).frame(ack));
  write("heartbeat_ack-invalid-trailing-byte", payload().u8(1).u32(4).u64(5).u64(6).u8(0).frame(ack));
  write("heartbeat_ack-invalid-tag-2", payload().u8(2).u32(4).u64(5).u64(6).frame(ack));
  write("leave-invalid-heartbeat-payload", payload().u8(1).u32(4).u64(5).u64(6).frame(lv));
  write("leave-invalid-short", payload().u8(1).u32(4).u32(5).frame(lv));
  write("leave-invalid-bigendian-tag", payload().u8(0).u32(4).u64(5).frame(lv));
}

// ---- state transfer ----------------------------------------------------------

void state_valid() {
  write("state_request-valid-basic", encoded_with(encode_state_request, state_request{3, 17, 0, 1000}));
  write("state_request-valid-max-length",
        encoded_with(encode_state_request, state_request{UINT32_MAX, UINT64_MAX, 123, max_state_chunk_floats}));
  write("state_request-valid-ends-at-2^32",
        encoded_with(encode_state_request, state_request{1, 2, UINT32_MAX, 1}));
  state_chunk c;
  c.sender = 2;
  c.request_id = 77;
  c.step = 12345;
  c.dim = 1000;
  c.offset = 100;
  c.values = {-1, -0.75f, 0.5f, 0, 2.25f};
  write("state_chunk-valid-basic", encoded_with(encode_state_chunk, c));
  c.offset = 995;
  write("state_chunk-valid-ends-at-dim", encoded_with(encode_state_chunk, c));
  c.values = {FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, -0.f, FLT_MIN};
  c.dim = UINT32_MAX;
  c.offset = UINT32_MAX - 5;
  c.sender = UINT32_MAX;
  c.request_id = UINT64_MAX;
  c.step = UINT64_MAX;
  write("state_chunk-valid-extremes", encoded_with(encode_state_chunk, c));
  state_chunk e;
  write("state_chunk-valid-empty-dim0", encoded_with(encode_state_chunk, e));
  e.dim = 10;
  e.offset = 10;
  write("state_chunk-valid-empty-at-end", encoded_with(encode_state_chunk, e));
}

void state_invalid() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const auto rq = message_type::state_request, ch = message_type::state_chunk;
  auto request = [](uint32_t offset, uint32_t length) { return payload().u8(1).u32(3).u64(17).u32(offset).u32(length); };
  write("state_request-invalid-empty-payload", payload().frame(rq));
  write("state_request-invalid-length-0", request(0, 0).frame(rq));
  write("state_request-invalid-length-over-max", request(0, max_state_chunk_floats + 1).frame(rq));
  write("state_request-invalid-length-max", request(0, UINT32_MAX).frame(rq));
  write("state_request-invalid-past-2^32", request(UINT32_MAX, 2).frame(rq));
  write("state_request-invalid-trailing-byte", request(0, 10).u8(0).frame(rq));
  write("state_request-invalid-short", payload().u8(1).u32(3).u64(17).u32(0).frame(rq));
  write("state_request-invalid-bigendian-tag", payload().u8(0).u32(3).u64(17).u32(0).u32(10).frame(rq));
  // Chunk: sender, request_id, step, dim, offset, count, then the floats.
  auto chunk = [](uint32_t dim, uint32_t offset, uint32_t count) {
    return payload().u8(1).u32(2).u64(77).u64(12345).u32(dim).u32(offset).u32(count);
  };
  write("state_chunk-invalid-empty-payload", payload().frame(ch));
  write("state_chunk-invalid-short-fixed-fields", payload().u8(1).u32(2).u64(77).u64(12345).u32(10).u32(0).frame(ch));
  write("state_chunk-invalid-bigendian-tag", payload().u8(0).u32(2).u64(77).u64(12345).u32(10).u32(0).u32(1).f32(1).frame(ch));
  write("state_chunk-invalid-past-dim", chunk(10, 8, 3).f32(1).f32(2).f32(3).frame(ch));
  write("state_chunk-invalid-offset-past-dim-empty", chunk(10, 11, 0).frame(ch));
  write("state_chunk-invalid-offset-overflow-u32", chunk(UINT32_MAX, UINT32_MAX, 2).f32(1).f32(2).frame(ch));
  write("state_chunk-invalid-count-lies-high", chunk(10, 0, 3).f32(1).f32(2).frame(ch));
  write("state_chunk-invalid-count-lies-low", chunk(10, 0, 1).f32(1).f32(2).frame(ch));
  write("state_chunk-invalid-count-over-max", chunk(UINT32_MAX, 0, max_state_chunk_floats + 1).f32(1).frame(ch));
  write("state_chunk-invalid-count-max", chunk(UINT32_MAX, 0, UINT32_MAX).f32(1).frame(ch));
  write("state_chunk-invalid-partial-float", chunk(10, 0, 1).f32(1).u8(0).frame(ch));
  write("state_chunk-invalid-value-nan", chunk(10, 0, 2).f32(1).f32(nan).frame(ch));
  write("state_chunk-invalid-value-inf", chunk(10, 0, 1).f32(inf).frame(ch));
  write("state_chunk-invalid-value-minus-inf", chunk(10, 4, 3).f32(1).f32(2).f32(-inf).frame(ch));
  write("state_chunk-invalid-request-payload", payload().u8(1).u32(3).u64(17).u32(0).u32(10).frame(ch));
}

// ---- verify ------------------------------------------------------------------
// (Kept small: the fuzzer reads at most 4096 bytes of an input.)

transcript_commit sample_commit(uint16_t layers) {
  transcript_commit m;
  m.prover = 4;
  m.step = 321;
  m.layers.resize(layers);
  for (size_t l = 0; l < layers; ++l)
    for (size_t t = 0; t < committed_count; ++t)
      for (size_t i = 0; i < 32; ++i) m.layers[l].d[t][i] = static_cast<uint8_t>(l * 31 + t * 7 + i);
  return m;
}

tensor_reply sample_reply(bool has_input, uint32_t batch = 2, uint32_t in = 3, uint32_t out = 2) {
  tensor_reply m;
  m.prover = 4;
  m.step = 321;
  m.layer = 1;
  m.nonce = 0x0123456789abcdefULL;
  m.batch = batch;
  m.in = in;
  m.out = out;
  m.has_input = has_input;
  for (uint32_t i = 0; i < batch; ++i) m.indices.push_back(10 * i + 3);
  auto fill = [](std::vector<float>& v, size_t n, float base) {
    for (size_t i = 0; i < n; ++i) v.push_back(base + 0.25f * static_cast<float>(i));
  };
  if (has_input) fill(m.input, size_t{batch} * in, -1.f);
  fill(m.weight, size_t{out} * in, 0.5f);
  fill(m.bias, out, -0.125f);
  fill(m.output, size_t{batch} * out, 2.f);
  fill(m.output_grad, size_t{batch} * out, -0.5f);
  fill(m.weight_grad, size_t{out} * in, 0.75f);
  fill(m.bias_grad, out, 1.5f);
  return m;
}

evidence_msg sample_evidence(const tensor_reply& r) {
  evidence_msg e;
  e.accuser = 9;
  e.prover = r.prover;
  e.step = r.step;
  e.layer = r.layer;
  e.check = 2;
  encode_tensor_reply(r, e.reply);
  return e;
}

matmul_task sample_task(uint32_t m, uint32_t n, uint32_t k) {
  matmul_task t;
  t.requester = 6;
  t.task = 4242;
  t.m = m;
  t.n = n;
  t.k = k;
  for (size_t i = 0; i < size_t{m} * k; ++i) t.a.push_back(0.5f * static_cast<float>(i) - 1.f);
  for (size_t i = 0; i < size_t{k} * n; ++i) t.b.push_back(2.f - 0.25f * static_cast<float>(i));
  return t;
}

matmul_result sample_result(uint32_t m, uint32_t n) {
  matmul_result r;
  r.worker = 8;
  r.task = 4242;
  r.m = m;
  r.n = n;
  for (size_t i = 0; i < size_t{m} * n; ++i) r.c.push_back(0.125f * static_cast<float>(i) - 0.5f);
  return r;
}

void verify_valid() {
  write("transcript_commit-valid-1-layer", encoded_with(encode_transcript_commit, sample_commit(1)));
  auto c = sample_commit(3);
  c.prover = UINT32_MAX;
  c.step = UINT64_MAX;
  write("transcript_commit-valid-3-layers-max-fields", encoded_with(encode_transcript_commit, c));
  write("transcript_commit-valid-max-layers", encoded_with(encode_transcript_commit, sample_commit(max_commit_layers)));
  write("tensor_request-valid-basic", encoded_with(encode_tensor_request, tensor_request{1, 4, 321, 0, 77}));
  write("tensor_request-valid-max-fields",
        encoded_with(encode_tensor_request,
                     tensor_request{UINT32_MAX, UINT32_MAX, UINT64_MAX, max_commit_layers - 1, UINT64_MAX}));
  write("miss_claim-valid-basic", encoded_with(encode_miss_claim, miss_claim{1, 4, 321, 2}));
  write("miss_claim-valid-max-fields",
        encoded_with(encode_miss_claim, miss_claim{UINT32_MAX, UINT32_MAX, UINT64_MAX, max_commit_layers - 1}));
  write("tensor_reply-valid-with-input", encoded_with(encode_tensor_reply, sample_reply(true)));
  write("tensor_reply-valid-no-input", encoded_with(encode_tensor_reply, sample_reply(false)));
  {
    auto r = sample_reply(true, 1, 1, 1);
    r.layer = max_commit_layers - 1;
    r.indices = {UINT32_MAX};
    r.input = {FLT_MAX};
    r.weight = {-FLT_MAX};
    r.bias = {-0.f};
    r.output = {FLT_TRUE_MIN};
    r.output_grad = {-FLT_TRUE_MIN};
    r.weight_grad = {FLT_MIN};
    r.bias_grad = {0.f};
    write("tensor_reply-valid-batch-1-extremes", encoded_with(encode_tensor_reply, r));
  }
  {
    // A conv layer's reply: per-sample rows (flags bit 1) unlike the weight's in and out.
    auto r = sample_reply(false, 2, 4, 2);
    r.in_row = 9;
    r.out_row = 6;
    r.output.clear();
    r.output_grad.clear();
    for (size_t i = 0; i < 12; ++i) {
      r.output.push_back(0.5f * static_cast<float>(i));
      r.output_grad.push_back(-0.25f * static_cast<float>(i));
    }
    write("tensor_reply-valid-conv-rows", encoded_with(encode_tensor_reply, r));
    write("evidence-valid-conv-rows-reply", encoded_with(encode_evidence, sample_evidence(r)));
  }
  write("evidence-valid-basic", encoded_with(encode_evidence, sample_evidence(sample_reply(true))));
  {
    auto e = sample_evidence(sample_reply(false, 1, 2, 3));
    e.check = UINT8_MAX;
    e.accuser = UINT32_MAX;
    write("evidence-valid-no-input-reply", encoded_with(encode_evidence, e));
  }
  write("matmul_task-valid-2x4x3", encoded_with(encode_matmul_task, sample_task(2, 4, 3)));
  {
    auto t = sample_task(1, 1, 1);
    t.a = {FLT_MAX};
    t.b = {-0.f};
    write("matmul_task-valid-1x1x1-extremes", encoded_with(encode_matmul_task, t));
  }
  write("matmul_result-valid-3x2", encoded_with(encode_matmul_result, sample_result(3, 2)));
  {
    auto r = sample_result(1, 1);
    r.c = {-FLT_TRUE_MIN};
    r.worker = UINT32_MAX;
    r.task = UINT64_MAX;
    write("matmul_result-valid-1x1-extremes", encoded_with(encode_matmul_result, r));
  }
}

void verify_invalid() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const uint32_t over = max_verify_dim + 1;
  auto payload_of = [](const bytes& f) {
    payload q;
    q.b.assign(f.begin() + frame_header_bytes, f.end());
    return q;
  };
  // Transcript commit: prover, step, layers, then layers x 7 digests.
  const auto tc = message_type::transcript_commit;
  auto commit = [](uint16_t layers, size_t digest_bytes) {
    payload p = payload().u8(1).u32(4).u64(321).u16(layers);
    for (size_t i = 0; i < digest_bytes; ++i) p.u8(static_cast<uint8_t>(i));
    return p;
  };
  write("transcript_commit-invalid-empty-payload", payload().frame(tc));
  write("transcript_commit-invalid-layers-0", commit(0, 0).frame(tc));
  write("transcript_commit-invalid-layers-65", commit(max_commit_layers + 1, 224).frame(tc));
  write("transcript_commit-invalid-layers-max", commit(UINT16_MAX, 224).frame(tc));
  write("transcript_commit-invalid-layers-lies-high", commit(2, 224).frame(tc));
  write("transcript_commit-invalid-short-digest", commit(1, 223).frame(tc));
  write("transcript_commit-invalid-trailing-byte", commit(1, 225).frame(tc));
  write("transcript_commit-invalid-bigendian-tag", [&] { payload p = commit(1, 224); p.b[0] = std::byte{0}; return p.frame(tc); }());
  write("transcript_commit-invalid-short-fixed-fields", payload().u8(1).u32(4).u64(321).u8(1).frame(tc));

  // Tensor request: verifier, prover, step, layer, nonce.
  const auto rq = message_type::tensor_request;
  auto request = [](uint16_t layer) { return payload().u8(1).u32(1).u32(4).u64(321).u16(layer).u64(77); };
  write("tensor_request-invalid-layer-64", request(max_commit_layers).frame(rq));
  write("tensor_request-invalid-layer-ffff", request(UINT16_MAX).frame(rq));
  write("tensor_request-invalid-short", payload().u8(1).u32(1).u32(4).u64(321).u16(0).u32(77).frame(rq));
  write("tensor_request-invalid-trailing-byte", request(0).u8(0).frame(rq));
  write("tensor_request-invalid-bigendian-tag", payload().u8(0).u32(1).u32(4).u64(321).u16(0).u64(77).frame(rq));
  write("tensor_request-invalid-empty-payload", payload().frame(rq));

  // Miss claim: accuser, prover, step, layer.
  const auto mc = message_type::miss_claim;
  auto claim = [](uint16_t layer) { return payload().u8(1).u32(1).u32(4).u64(321).u16(layer); };
  write("miss_claim-invalid-layer-64", claim(max_commit_layers).frame(mc));
  write("miss_claim-invalid-short", payload().u8(1).u32(1).u32(4).u64(321).u8(0).frame(mc));
  write("miss_claim-invalid-trailing-byte", claim(0).u8(0).frame(mc));
  write("miss_claim-invalid-bigendian-tag", payload().u8(0).u32(1).u32(4).u64(321).u16(0).frame(mc));
  write("miss_claim-invalid-empty-payload", payload().frame(mc));
  write("miss_claim-invalid-request-payload", request(0).frame(mc));

  // Tensor reply: header, then indices and the arrays the header sizes.
  const auto rp = message_type::tensor_reply;
  auto reply_head = [](uint16_t layer, uint32_t batch, uint32_t in, uint32_t out, uint8_t has) {
    return payload().u8(1).u32(4).u64(321).u16(layer).u64(77).u32(batch).u32(in).u32(out).u8(has);
  };
  // A 1 x 1 x 1 reply's arrays: 1 index, [1 input], then 6 floats.
  auto reply_1 = [&](uint16_t layer, uint8_t has, float bad = 1.f, size_t bad_at = 0) {
    payload p = reply_head(layer, 1, 1, 1, has).u32(0);
    const size_t floats = has == 1 ? 7 : 6;
    for (size_t i = 0; i < floats; ++i) p.f32(i == bad_at ? bad : 0.5f);
    return p;
  };
  write("tensor_reply-invalid-empty-payload", payload().frame(rp));
  write("tensor_reply-invalid-short-fixed-fields", [&] { payload p = reply_head(0, 1, 1, 1, 0); p.b.pop_back(); return p.frame(rp); }());
  write("tensor_reply-invalid-has_input-2", reply_1(0, 2).frame(rp));
  // Flags bit 1: in_row, out_row follow; neither may be 0, and no other bit is known.
  write("tensor_reply-invalid-rows-in_row-0", [&] {
    payload p = reply_head(0, 1, 1, 1, 2).u32(0).u32(1).u32(0);
    for (int i = 0; i < 6; ++i) p.f32(0.5f);
    return p.frame(rp);
  }());
  write("tensor_reply-invalid-rows-cut-off", reply_head(0, 1, 1, 1, 2).u32(1).frame(rp));
  write("tensor_reply-invalid-flags-4", reply_1(0, 4).frame(rp));
  write("tensor_reply-invalid-has_input-ff", reply_1(0, 0xff).frame(rp));
  write("tensor_reply-invalid-layer-64", reply_1(max_commit_layers, 1).frame(rp));
  write("tensor_reply-invalid-batch-0", reply_head(0, 0, 1, 1, 0).f32(1).f32(1).f32(1).f32(1).frame(rp));
  write("tensor_reply-invalid-in-0", reply_head(0, 1, 0, 1, 0).u32(0).f32(1).f32(1).f32(1).f32(1).frame(rp));
  write("tensor_reply-invalid-out-0", reply_head(0, 1, 1, 0, 1).u32(0).f32(1).frame(rp));
  write("tensor_reply-invalid-batch-over-max", reply_head(0, over, 1, 1, 0).u32(0).f32(1).f32(1).frame(rp));
  write("tensor_reply-invalid-dims-max-verify-dim-few-bytes",
        reply_head(0, max_verify_dim, max_verify_dim, max_verify_dim, 1).u32(0).f32(1).frame(rp));
  write("tensor_reply-invalid-dims-u32-max", reply_head(0, UINT32_MAX, UINT32_MAX, UINT32_MAX, 1).u32(0).f32(1).frame(rp));
  write("tensor_reply-invalid-truncated-float", [&] { payload p = reply_1(0, 1); p.b.pop_back(); return p.frame(rp); }());
  write("tensor_reply-invalid-missing-float", [&] { payload p = reply_1(0, 1); p.b.resize(p.b.size() - 4); return p.frame(rp); }());
  write("tensor_reply-invalid-trailing-byte", reply_1(0, 1).u8(0).frame(rp));
  write("tensor_reply-invalid-input-present-but-flag-0", [&] { payload p = reply_1(0, 1); p.b[reply_head(0, 1, 1, 1, 0).b.size() - 1] = std::byte{0}; return p.frame(rp); }());
  write("tensor_reply-invalid-input-nan", reply_1(0, 1, nan, 0).frame(rp));
  write("tensor_reply-invalid-weight-inf", reply_1(0, 1, inf, 1).frame(rp));
  write("tensor_reply-invalid-bias_grad-minus-inf", reply_1(0, 0, -inf, 5).frame(rp));
  write("tensor_reply-invalid-bigendian-tag", [&] { payload p = reply_1(0, 1); p.b[0] = std::byte{0}; return p.frame(rp); }());
  write("tensor_reply-invalid-payload-in-tensor_request-frame",
        payload_of(encoded_with(encode_tensor_reply, sample_reply(true))).frame(rq));

  // Evidence: accuser, prover, step, layer, check, reply_bytes, nested reply frame.
  const auto ev = message_type::evidence;
  const tensor_reply good_reply = sample_reply(false, 1, 2, 1);
  const bytes nested = encoded_with(encode_tensor_reply, good_reply);
  auto evidence = [&](uint32_t prover, uint64_t step, uint16_t layer, const bytes& n, uint32_t len) {
    payload p = payload().u8(1).u32(9).u32(prover).u64(step).u16(layer).u8(2).u32(len);
    p.b.insert(p.b.end(), n.begin(), n.end());
    return p.frame(ev);
  };
  const auto n32 = [](const bytes& b) { return static_cast<uint32_t>(b.size()); };
  write("evidence-invalid-empty-payload", payload().frame(ev));
  write("evidence-invalid-other-prover", evidence(5, 321, 1, nested, n32(nested)));
  write("evidence-invalid-other-step", evidence(4, 322, 1, nested, n32(nested)));
  write("evidence-invalid-other-layer", evidence(4, 321, 0, nested, n32(nested)));
  write("evidence-invalid-reply_bytes-lies-high", evidence(4, 321, 1, nested, n32(nested) + 1));
  write("evidence-invalid-reply_bytes-lies-low", evidence(4, 321, 1, nested, n32(nested) - 1));
  write("evidence-invalid-reply_bytes-max", evidence(4, 321, 1, nested, UINT32_MAX));
  write("evidence-invalid-no-reply", evidence(4, 321, 1, {}, 0));
  {
    bytes bad_crc = nested;
    bad_crc.back() ^= std::byte{0x01};
    write("evidence-invalid-nested-bad-checksum", evidence(4, 321, 1, bad_crc, n32(bad_crc)));
    bytes truncated(nested.begin(), nested.end() - 1);
    write("evidence-invalid-nested-truncated", evidence(4, 321, 1, truncated, n32(truncated)));
    bytes trailing = nested;
    trailing.push_back(std::byte{0});
    write("evidence-invalid-nested-trailing-byte", evidence(4, 321, 1, trailing, n32(trailing)));
    const bytes req = encoded_with(encode_tensor_request, tensor_request{9, 4, 321, 1, 77});
    write("evidence-invalid-nested-tensor_request", evidence(4, 321, 1, req, n32(req)));
    // A sound nested frame whose payload has a NaN (resealed, so only the payload is wrong).
    bytes nan_reply = nested;
    const float v = nan;
    std::memcpy(nan_reply.data() + nan_reply.size() - 4, &v, 4);
    payload q;
    q.b.assign(nan_reply.begin() + frame_header_bytes, nan_reply.end());
    const bytes sealed = q.frame(message_type::tensor_reply);
    write("evidence-invalid-nested-nan", evidence(4, 321, 1, sealed, n32(sealed)));
  }

  // Matmul task: requester, task, m, n, k, then m x k A and k x n B.
  const auto mt = message_type::matmul_task;
  auto task = [](uint32_t m, uint32_t n, uint32_t k, size_t floats, float bad = 1.f, size_t bad_at = SIZE_MAX) {
    payload p = payload().u8(1).u32(6).u64(4242).u32(m).u32(n).u32(k);
    for (size_t i = 0; i < floats; ++i) p.f32(i == bad_at ? bad : 0.5f);
    return p;
  };
  write("matmul_task-invalid-empty-payload", payload().frame(mt));
  write("matmul_task-invalid-m-0", task(0, 2, 2, 4).frame(mt));
  write("matmul_task-invalid-n-0", task(2, 0, 2, 4).frame(mt));
  write("matmul_task-invalid-k-0", task(2, 2, 0, 0).frame(mt));
  write("matmul_task-invalid-k-over-max", task(1, 1, over, 2).frame(mt));
  write("matmul_task-invalid-dims-max-verify-dim-few-bytes", task(max_verify_dim, max_verify_dim, max_verify_dim, 2).frame(mt));
  write("matmul_task-invalid-dims-u32-max", task(UINT32_MAX, UINT32_MAX, UINT32_MAX, 2).frame(mt));
  write("matmul_task-invalid-b-short", task(2, 2, 2, 7).frame(mt));
  write("matmul_task-invalid-trailing-float", task(2, 2, 2, 9).frame(mt));
  write("matmul_task-invalid-trailing-byte", task(1, 1, 1, 2).u8(0).frame(mt));
  write("matmul_task-invalid-a-nan", task(2, 2, 2, 8, nan, 1).frame(mt));
  write("matmul_task-invalid-b-inf", task(2, 2, 2, 8, inf, 7).frame(mt));
  write("matmul_task-invalid-bigendian-tag", [&] { payload p = task(1, 1, 1, 2); p.b[0] = std::byte{0}; return p.frame(mt); }());

  // Matmul result: worker, task, m, n, then m x n C.
  const auto mr = message_type::matmul_result;
  auto result = [](uint32_t m, uint32_t n, size_t floats, float bad = 1.f, size_t bad_at = SIZE_MAX) {
    payload p = payload().u8(1).u32(8).u64(4242).u32(m).u32(n);
    for (size_t i = 0; i < floats; ++i) p.f32(i == bad_at ? bad : 0.5f);
    return p;
  };
  write("matmul_result-invalid-empty-payload", payload().frame(mr));
  write("matmul_result-invalid-m-0", result(0, 3, 0).frame(mr));
  write("matmul_result-invalid-n-0", result(3, 0, 0).frame(mr));
  write("matmul_result-invalid-n-over-max", result(1, over, 1).frame(mr));
  write("matmul_result-invalid-product-overflows-u32", result(1u << 16, 1u << 16, 1).frame(mr));
  write("matmul_result-invalid-dims-u32-max", result(UINT32_MAX, UINT32_MAX, 1).frame(mr));
  write("matmul_result-invalid-c-short", result(2, 2, 3).frame(mr));
  write("matmul_result-invalid-c-extra", result(2, 2, 5).frame(mr));
  write("matmul_result-invalid-partial-float", result(1, 1, 1).u8(0).frame(mr));
  write("matmul_result-invalid-c-minus-inf", result(2, 2, 4, -inf, 3).frame(mr));
  write("matmul_result-invalid-c-nan", result(1, 1, 1, nan, 0).frame(mr));
  write("matmul_result-invalid-task-payload", task(1, 1, 1, 2).frame(mr));
}

// ---- pipeline ------------------------------------------------------------------

stage_tensor sample_stage_tensor(bool gradient, uint32_t batch, std::vector<uint32_t> shape) {
  stage_tensor m;
  m.gradient = gradient;
  m.replica = 1;
  m.stage = 2;
  m.step = 17;
  m.generation = 3;
  m.microbatch = 4;
  m.batch = batch;
  m.total = 4 * batch;
  m.shape = std::move(shape);
  uint64_t n = batch;
  for (uint32_t d : m.shape) n *= d;
  if (!gradient)
    for (uint32_t i = 0; i < batch; ++i) m.labels.push_back(static_cast<int32_t>(i % 10));
  for (uint64_t i = 0; i < n; ++i) m.values.push_back(0.125f * static_cast<float>(i) - 1.f);
  return m;
}

checkpoint sample_ckpt() {
  checkpoint c;
  c.kind = checkpoint_kind::stage;
  c.step = 40;
  c.replica = 1;
  c.stage = 2;
  c.stages = 3;
  c.layer_begin = 4;
  c.layer_end = 6;
  c.seed = 77;
  c.model_spec = "mlp 8-4-2";
  c.params = {0.5f, -1.f, 0.25f, 2.f, -0.f, 1e-3f};
  c.opt_steps = 39;
  c.opt_state = {0.1f, 0.2f, -0.3f};
  c.extra = {1, 2};
  return c;
}

void pipeline_valid() {
  write("stage_tensor-valid-activation-1d", encoded_with(encode_stage_tensor, sample_stage_tensor(false, 3, {4})));
  write("stage_tensor-valid-activation-4d", encoded_with(encode_stage_tensor, sample_stage_tensor(false, 2, {2, 1, 3, 2})));
  write("stage_tensor-valid-gradient-2d", encoded_with(encode_stage_tensor, sample_stage_tensor(true, 2, {3, 2})));
  {
    auto m = sample_stage_tensor(true, 1, {1});
    m.replica = m.stage = UINT16_MAX;
    m.step = UINT64_MAX;
    m.generation = UINT32_MAX;
    m.microbatch = max_microbatches;
    m.total = UINT32_MAX;
    m.values = {-FLT_MAX};
    write("stage_tensor-valid-gradient-max-fields", encoded_with(encode_stage_tensor, m));
    m = sample_stage_tensor(false, 2, {1});
    m.total = 2;
    m.microbatch = 0;
    m.labels = {0, INT32_MAX};
    m.values = {FLT_TRUE_MIN, -0.f};
    write("stage_tensor-valid-activation-batch-is-total", encoded_with(encode_stage_tensor, m));
  }
  stage_checkpoint_msg c;
  c.replica = 1;
  c.stage = 2;
  c.step = 40;
  c.generation = 3;
  c.blob = encode_checkpoint(sample_ckpt());
  write("stage_checkpoint-valid-checkpoint-blob", encoded_with(encode_stage_checkpoint, c));
  c.blob = {std::byte{0}};
  c.step = UINT64_MAX;
  c.generation = UINT32_MAX;
  write("stage_checkpoint-valid-1-byte-blob", encoded_with(encode_stage_checkpoint, c));
  write("stage_heartbeat-valid-basic", encoded_with(encode_stage_heartbeat, stage_heartbeat{1, 2, 3, 40, 5}));
  write("stage_heartbeat-valid-max-fields",
        encoded_with(encode_stage_heartbeat, stage_heartbeat{UINT16_MAX, UINT16_MAX, UINT32_MAX, UINT64_MAX, UINT32_MAX}));
  write("stage_takeover-valid-basic", encoded_with(encode_stage_takeover, stage_takeover{1, 2, 9, 41, 6}));
  write("stage_takeover-valid-zero", encoded_with(encode_stage_takeover, stage_takeover{}));
}

void pipeline_invalid() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const auto act = message_type::stage_activation, grad = message_type::stage_gradient;
  // Stage tensor: replica, stage, step, generation, microbatch, batch, total,
  // dims, shape, [labels], values; `words` words follow the shape (0.5f each).
  auto tensor = [](uint16_t microbatch, uint32_t batch, uint32_t total, std::vector<uint32_t> shape, size_t words,
                   int dims = -1) {
    payload p = payload().u8(1).u16(1).u16(2).u64(17).u32(3).u16(microbatch).u32(batch).u32(total);
    p.u8(static_cast<uint8_t>(dims < 0 ? shape.size() : static_cast<size_t>(dims)));
    for (uint32_t d : shape) p.u32(d);
    for (size_t i = 0; i < words; ++i) p.f32(0.5f);
    return p;
  };
  const uint32_t M = max_stage_dim;
  write("stage_tensor-invalid-empty-payload", payload().frame(act));
  write("stage_tensor-invalid-short-fixed-fields", payload().u8(1).u16(1).u16(2).u64(17).u32(3).u16(0).u32(1).frame(grad));
  write("stage_tensor-invalid-bigendian-tag", [&] { payload p = tensor(0, 1, 1, {1}, 1); p.b[0] = std::byte{0}; return p.frame(grad); }());
  write("stage_tensor-invalid-dims-0", tensor(0, 1, 1, {}, 1).frame(grad));
  write("stage_tensor-invalid-dims-5", tensor(0, 1, 1, {1, 1, 1, 1, 1}, 1).frame(grad));
  write("stage_tensor-invalid-dims-lies-high", tensor(0, 1, 1, {2}, 2, 2).frame(grad));
  write("stage_tensor-invalid-dim-0", tensor(0, 1, 1, {2, 0}, 0).frame(grad));
  write("stage_tensor-invalid-dim-over-max", tensor(0, 1, 1, {M + 1}, 2).frame(grad));
  write("stage_tensor-invalid-dims-product-2^80", tensor(0, 1, 1, {M, M, M, M}, 2).frame(grad));
  write("stage_tensor-invalid-batch-0", tensor(0, 0, 4, {2}, 0).frame(act));
  write("stage_tensor-invalid-batch-over-total", tensor(0, 3, 2, {1}, 6).frame(act));
  write("stage_tensor-invalid-batch-max", tensor(0, UINT32_MAX, UINT32_MAX, {1}, 2).frame(grad));
  write("stage_tensor-invalid-microbatch-over-max", tensor(max_microbatches + 1, 1, 1, {1}, 1).frame(grad));
  write("stage_tensor-invalid-values-short", tensor(0, 2, 2, {3}, 5).frame(grad));
  write("stage_tensor-invalid-trailing-float", tensor(0, 2, 2, {3}, 7).frame(grad));
  write("stage_tensor-invalid-trailing-byte", tensor(0, 1, 1, {1}, 1).u8(0).frame(grad));
  write("stage_tensor-invalid-activation-missing-labels", tensor(0, 2, 2, {3}, 6).frame(act));
  write("stage_tensor-invalid-gradient-with-labels",
        payload_of_frame(encoded_with(encode_stage_tensor, sample_stage_tensor(false, 2, {3}))).frame(grad));
  write("stage_tensor-invalid-value-nan", tensor(0, 1, 1, {2}, 1).f32(nan).frame(grad));
  write("stage_tensor-invalid-value-minus-inf", tensor(0, 1, 1, {2}, 2).f32(-inf).frame(act));
  write("stage_tensor-invalid-label-negative", tensor(0, 2, 2, {1}, 0).u32(1).u32(UINT32_MAX).f32(1).f32(2).frame(act));
  write("stage_tensor-invalid-heartbeat-payload", payload().u8(1).u16(1).u16(2).u32(3).u64(4).u32(5).frame(act));

  // Checkpoint to a spare: replica, stage, step, generation, bytes, blob.
  const auto ck = message_type::stage_checkpoint;
  auto ckpt = [](uint32_t len, size_t blob) {
    payload p = payload().u8(1).u16(1).u16(2).u64(40).u32(3).u32(len);
    for (size_t i = 0; i < blob; ++i) p.u8(static_cast<uint8_t>(i));
    return p;
  };
  write("stage_checkpoint-invalid-empty-payload", payload().frame(ck));
  write("stage_checkpoint-invalid-empty-blob", ckpt(0, 0).frame(ck));
  write("stage_checkpoint-invalid-bytes-0-blob-present", ckpt(0, 8).frame(ck));
  write("stage_checkpoint-invalid-bytes-lies-high", ckpt(9, 8).frame(ck));
  write("stage_checkpoint-invalid-bytes-lies-low", ckpt(7, 8).frame(ck));
  write("stage_checkpoint-invalid-bytes-max", ckpt(UINT32_MAX, 8).frame(ck));
  write("stage_checkpoint-invalid-short-fixed-fields", payload().u8(1).u16(1).u16(2).u64(40).u32(3).u16(0).frame(ck));
  write("stage_checkpoint-invalid-bigendian-tag", [&] { payload p = ckpt(1, 1); p.b[0] = std::byte{0}; return p.frame(ck); }());

  // Heartbeat and take-over: replica, stage, node, step, generation.
  const auto sh = message_type::stage_heartbeat, st = message_type::stage_takeover;
  auto five = [] { return payload().u8(1).u16(1).u16(2).u32(3).u64(4).u32(5); };
  write("stage_heartbeat-invalid-empty-payload", payload().frame(sh));
  write("stage_heartbeat-invalid-short", payload().u8(1).u16(1).u16(2).u32(3).u64(4).u16(5).frame(sh));
  write("stage_heartbeat-invalid-trailing-byte", five().u8(0).frame(sh));
  write("stage_heartbeat-invalid-bigendian-tag", [&] { payload p = five(); p.b[0] = std::byte{0}; return p.frame(sh); }());
  write("stage_takeover-invalid-empty-payload", payload().frame(st));
  write("stage_takeover-invalid-short", payload().u8(1).u16(1).u16(2).u32(3).u64(4).frame(st));
  write("stage_takeover-invalid-trailing-byte", five().u8(0).frame(st));
  write("stage_takeover-invalid-tag-2", [&] { payload p = five(); p.b[0] = std::byte{2}; return p.frame(st); }());
}

// ---- inference ---------------------------------------------------------------------

const std::string sample_key = "Xq:jYHlae34cM!5xLgbnL8n$W.OjmCWa+NW(pqu$";  // a public key of murmur keygen

inference_message sample_inference(message_type t, uint32_t batch, std::vector<uint32_t> shape) {
  inference_message m;
  m.type = t;
  m.request_id = 42;
  m.stage = t == message_type::inference_request ? 0 : 1;
  if (t == message_type::inference_activation) m.client_key = sample_key;
  if (t != message_type::inference_reply) m.reply_to = "tcp://127.0.0.1:40000";
  m.batch = batch;
  m.shape = shape;
  uint64_t n = batch;
  for (uint32_t d : shape) n *= d;
  for (uint64_t i = 0; i < n; ++i) m.values.push_back(0.25f * static_cast<float>(i) - 1.f);
  return m;
}

void inference_valid() {
  const auto rq = message_type::inference_request, ac = message_type::inference_activation,
             rp = message_type::inference_reply;
  write("inference-valid-request", encoded_with(encode_inference_message, sample_inference(rq, 2, {1, 2, 3})));
  write("inference-valid-activation", encoded_with(encode_inference_message, sample_inference(ac, 1, {4, 1, 1, 2})));
  write("inference-valid-reply", encoded_with(encode_inference_message, sample_inference(rp, 3, {10})));
  auto bad = sample_inference(rp, 0, {1, 28, 28});
  bad.status = inference_status::bad_input;
  write("inference-valid-reply-bad-input", encoded_with(encode_inference_message, bad));
  bad.shape.clear();
  write("inference-valid-reply-bad-input-no-shape", encoded_with(encode_inference_message, bad));
}

void inference_invalid() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto rq = message_type::inference_request, ac = message_type::inference_activation,
             rp = message_type::inference_reply;
  // request_id, stage, status, batch, dims, key_len, reply_len, key, endpoint, shape, `words` floats.
  auto msg = [](uint8_t status, uint32_t batch, std::vector<uint32_t> shape, const std::string& key,
                const std::string& ep, size_t words, int dims = -1, int key_len = -1, int ep_len = -1) {
    payload p = payload().u8(1).u64(7).u16(0).u8(status).u32(batch);
    p.u8(static_cast<uint8_t>(dims < 0 ? shape.size() : static_cast<size_t>(dims)));
    p.u8(static_cast<uint8_t>(key_len < 0 ? key.size() : static_cast<size_t>(key_len)));
    p.u16(static_cast<uint16_t>(ep_len < 0 ? ep.size() : static_cast<size_t>(ep_len)));
    p.str(key).str(ep);
    for (uint32_t d : shape) p.u32(d);
    for (size_t i = 0; i < words; ++i) p.f32(0.5f);
    return p;
  };
  const std::string ep = "tcp://127.0.0.1:40000";
  const uint32_t M = max_stage_dim;
  write("inference-invalid-empty-payload", payload().frame(rq));
  write("inference-invalid-short-fixed-fields", payload().u8(1).u64(7).u16(0).u8(0).u32(1).frame(rq));
  write("inference-invalid-bigendian-tag", [&] { payload p = msg(0, 1, {2}, "", ep, 2); p.b[0] = std::byte{0}; return p.frame(rq); }());
  write("inference-invalid-request-without-endpoint", msg(0, 1, {2}, "", "", 2).frame(rq));
  write("inference-invalid-request-with-key", msg(0, 1, {2}, sample_key, ep, 2).frame(rq));
  write("inference-invalid-activation-without-key", msg(0, 1, {2}, "", ep, 2).frame(ac));
  write("inference-invalid-activation-key-not-z85", msg(0, 1, {2}, std::string(40, ' '), ep, 2).frame(ac));
  write("inference-invalid-activation-key-39", msg(0, 1, {2}, sample_key.substr(1), ep, 2).frame(ac));
  write("inference-invalid-reply-with-endpoint", msg(0, 1, {2}, "", ep, 2).frame(rp));
  write("inference-invalid-endpoint-not-tcp", msg(0, 1, {2}, "", "ipc:///tmp/x", 2).frame(rq));
  write("inference-invalid-endpoint-control-char", msg(0, 1, {2}, "", "tcp://a\nb:1", 2).frame(rq));
  write("inference-invalid-endpoint-256", msg(0, 1, {2}, "", "tcp://" + std::string(250, 'a'), 2).frame(rq));
  write("inference-invalid-endpoint-lies-high", msg(0, 1, {2}, "", ep, 2, -1, -1, 200).frame(rq));
  write("inference-invalid-status-in-request", msg(1, 0, {}, "", ep, 0).frame(rq));
  write("inference-invalid-status-unknown", msg(2, 0, {}, "", "", 0).frame(rp));
  write("inference-invalid-error-reply-with-values", msg(1, 1, {2}, "", "", 2).frame(rp));
  write("inference-invalid-error-reply-trailing", msg(1, 0, {2}, "", "", 1).frame(rp));
  write("inference-invalid-batch-0", msg(0, 0, {2}, "", ep, 0).frame(rq));
  write("inference-invalid-batch-over-max", msg(0, max_inference_batch + 1, {1}, "", ep, max_inference_batch + 1).frame(rq));
  write("inference-invalid-dims-0", msg(0, 1, {}, "", ep, 1).frame(rq));
  write("inference-invalid-dims-5", msg(0, 1, {1, 1, 1, 1, 1}, "", ep, 1).frame(rq));
  write("inference-invalid-dims-lies-high", msg(0, 1, {2}, "", ep, 2, 2).frame(rq));
  write("inference-invalid-dim-0", msg(0, 1, {2, 0}, "", ep, 0).frame(rq));
  write("inference-invalid-dim-over-max", msg(0, 1, {M + 1}, "", ep, 2).frame(rq));
  write("inference-invalid-dims-product-2^80", msg(0, 1, {M, M, M, M}, "", ep, 2).frame(rq));
  write("inference-invalid-values-short", msg(0, 2, {3}, "", ep, 5).frame(rq));
  write("inference-invalid-trailing-byte", msg(0, 1, {1}, "", ep, 1).u8(0).frame(rq));
  write("inference-invalid-value-nan", msg(0, 1, {2}, "", ep, 1).f32(nan).frame(rq));
  write("inference-invalid-stage-tensor-payload",
        payload_of_frame(encoded_with(encode_stage_tensor, sample_stage_tensor(false, 2, {3}))).frame(ac));
}

// ---- checkpoints (raw bytes, not frames) --------------------------------------------

// A checkpoint header (payload length and SHA-256 computed) and the payload.
bytes ckpt_sealed(const payload& p, uint8_t kind = 1, uint16_t version = 1, uint8_t reserved = 0) {
  payload h;
  h.str("MRMRCKPT").u16(version).u8(kind).u8(reserved).u64(p.b.size());
  const digest d = sha256(p.b.data(), p.b.size());
  for (uint8_t x : d) h.u8(x);
  h.b.insert(h.b.end(), p.b.begin(), p.b.end());
  return h.b;
}

void checkpoint_valid() {
  write("checkpoint-valid-stage", encode_checkpoint(sample_ckpt()));
  write("checkpoint-valid-peer-empty", encode_checkpoint(checkpoint{}));
  checkpoint c = sample_ckpt();
  c.kind = checkpoint_kind::peer;
  c.step = c.seed = c.opt_steps = UINT64_MAX;
  c.replica = c.stage = c.stages = c.layer_begin = c.layer_end = UINT16_MAX;
  c.params = {FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, -0.f};
  c.opt_state = {};
  c.extra = {UINT64_MAX, 0x7fc000007fc00000ULL};  // NaN bits: integers here
  write("checkpoint-valid-peer-extremes", encode_checkpoint(c));
}

void checkpoint_invalid() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const bytes good = encode_checkpoint(sample_ckpt());
  auto edit = [&](size_t at, uint8_t v) { bytes f = good; f[at] = std::byte{v}; return f; };
  write("checkpoint-invalid-empty", {});
  write("checkpoint-invalid-bad-magic", edit(0, 'X'));
  write("checkpoint-invalid-magic-only", bytes(good.begin(), good.begin() + 8));
  write("checkpoint-invalid-truncated-header", bytes(good.begin(), good.begin() + 51));
  write("checkpoint-invalid-header-only", bytes(good.begin(), good.begin() + 52));
  write("checkpoint-invalid-truncated-payload-1", bytes(good.begin(), good.end() - 1));
  write("checkpoint-invalid-truncated-half", bytes(good.begin(), good.begin() + static_cast<ptrdiff_t>(good.size() / 2)));
  write("checkpoint-invalid-trailing-byte", [&] { bytes f = good; f.push_back(std::byte{0}); return f; }());
  write("checkpoint-invalid-version-2", edit(8, 2));
  write("checkpoint-invalid-version-0", edit(8, 0));
  write("checkpoint-invalid-kind-2", edit(10, 2));
  write("checkpoint-invalid-reserved-1", edit(11, 1));
  write("checkpoint-invalid-length-huge", [&] { bytes f = good; for (size_t i = 12; i < 20; ++i) f[i] = std::byte{0xff}; return f; }());
  write("checkpoint-invalid-checksum-header-bit", edit(20, static_cast<uint8_t>(std::to_integer<uint8_t>(good[20]) ^ 1)));
  write("checkpoint-invalid-checksum-payload-bit", [&] { bytes f = good; f[60] ^= std::byte{0x10}; return f; }());
  write("checkpoint-invalid-network-frame", encoded_with(encode_stage_heartbeat, stage_heartbeat{1, 2, 3, 4, 5}));
  // Sound headers and checksums around payloads whose counts or values are wrong.
  auto fixed = [] { return payload().u64(40).u16(1).u16(2).u16(3).u16(4).u16(6).u64(77); };
  auto tail = [](payload p) { return p.u64(39).u64(0).u32(0); };  // opt_steps, no opt state, no extra
  write("checkpoint-invalid-empty-payload", ckpt_sealed(payload()));
  write("checkpoint-invalid-short-fixed-fields", ckpt_sealed(payload().u64(40).u16(1)));
  write("checkpoint-invalid-spec-over-limit", ckpt_sealed(fixed().u32(max_checkpoint_spec_bytes + 1).str("mlp")));
  write("checkpoint-invalid-spec-past-payload", ckpt_sealed(fixed().u32(100).str("mlp")));
  write("checkpoint-invalid-params-over-limit", ckpt_sealed(fixed().u32(0).u64(max_checkpoint_floats + 1).f32(1)));
  write("checkpoint-invalid-params-at-limit-few-bytes", ckpt_sealed(fixed().u32(0).u64(max_checkpoint_floats).f32(1)));
  write("checkpoint-invalid-params-count-2^62", ckpt_sealed(fixed().u32(0).u64(uint64_t{1} << 62)));
  write("checkpoint-invalid-param-nan", ckpt_sealed(tail(fixed().u32(0).u64(2).f32(1).f32(nan))));
  write("checkpoint-invalid-opt-state-inf", ckpt_sealed(fixed().u32(0).u64(0).u64(1).u64(2).f32(0).f32(-inf).u32(0)));
  write("checkpoint-invalid-opt-count-over-limit", ckpt_sealed(fixed().u32(0).u64(0).u64(1).u64(max_checkpoint_floats + 1)));
  write("checkpoint-invalid-extra-over-limit", ckpt_sealed(fixed().u32(0).u64(0).u64(1).u64(0).u32(max_checkpoint_extra + 1).u64(1)));
  write("checkpoint-invalid-extra-past-payload", ckpt_sealed(fixed().u32(0).u64(0).u64(1).u64(0).u32(3).u64(1)));
  write("checkpoint-invalid-bytes-left-over", ckpt_sealed(tail(fixed().u32(0).u64(0)).u8(0)));
  write("checkpoint-invalid-params-count-lies-low", ckpt_sealed(tail(fixed().u32(0).u64(1).f32(1).f32(2))));
}

}  // namespace

// ---- segment verification frames (24-27) ----------------------------------

segment sample_segment() {
  segment_boundary b;
  b.trainer = sample_ckpt();
  b.trainer.kind = checkpoint_kind::peer;
  b.trainer.step = 8;
  b.gossip.neighbours = {1, 2};
  b.gossip.last_round = b.gossip.incarnation = b.gossip.heard_at = {3, 4};
  b.gossip.self_hat = {0.5f, -1.f};
  b.gossip.nbr_hat = {{1.f, 2.f}, {3.f, 4.f}};
  b.gossip.rounds = b.gossip.round = 5;
  b.gossip.max_value = 1e6f;
  segment s;
  s.start = std::make_shared<const segment_boundary>(b);
  segment_event rx{};  // value-initialised: its padding is zero on the wire
  rx.kind = segment_event::received, rx.from = 1, rx.bytes = 4, rx.offset = 0;
  segment_event st{};
  st.kind = segment_event::stepped, st.step = 9;
  segment_event nb{};  // a neighbour list: ids 1, 2 (u32), incarnations 7, 8 (u64)
  nb.kind = segment_event::neighbours, nb.from = 2, nb.bytes = 24, nb.offset = 4;
  s.records.events = {rx, st, nb};
  s.records.frames = bytes(4, std::byte{0x5a});
  for (uint32_t id : {1u, 2u}) s.records.frames.insert(s.records.frames.end(), reinterpret_cast<const std::byte*>(&id),
                                                       reinterpret_cast<const std::byte*>(&id) + 4);
  for (uint64_t inc : {7ull, 8ull})
    s.records.frames.insert(s.records.frames.end(), reinterpret_cast<const std::byte*>(&inc),
                            reinterpret_cast<const std::byte*>(&inc) + 8);
  s.step_digests.resize(1);
  return s;
}

void segment_valid() {
  bytes f;
  encode_segment_commit({3, 8, 16, {1}, {2}, {3}, {4, 5, 6}, 4096, 1765000000000}, f);
  write("segment_commit-valid-basic", f);
  encode_segment_commit(
      {UINT32_MAX, 0, UINT64_MAX, {}, {}, {}, {UINT64_MAX, UINT64_MAX, UINT64_MAX}, UINT64_MAX, UINT64_MAX}, f);
  write("segment_commit-valid-extremes", f);
  encode_segment_request({1, 3, 8, 42}, f);
  write("segment_request-valid-basic", f);
  encode_segment_request({UINT32_MAX, UINT32_MAX, UINT64_MAX, UINT64_MAX}, f);
  write("segment_request-valid-extremes", f);
  encode_segment_reply(3, 42, sample_segment(), f);
  write("segment_reply-valid-basic", f);
  segment empty = sample_segment();
  empty.records.clear();
  empty.step_digests.clear();
  encode_segment_reply(3, 42, empty, f);
  write("segment_reply-valid-no-records", f);
}

// A field of a sealed frame's payload overwritten (at `at` bytes into the
// payload) with `v`, the frame resealed.
// A sealed frame with its payload's last byte dropped, resealed.
bytes payload_truncated(const bytes& good) {
  bytes p(good.begin() + frame_header_bytes, good.end() - 1);
  bytes f;
  encode_frame(static_cast<message_type>(std::to_integer<uint16_t>(good[6]) | (std::to_integer<uint16_t>(good[7]) << 8)), p, f);
  return f;
}

template <class T>
bytes with_payload_field(const bytes& good, size_t at, T v) {
  bytes p(good.begin() + frame_header_bytes, good.end());
  std::memcpy(p.data() + at, &v, sizeof v);
  bytes f;
  encode_frame(static_cast<message_type>(std::to_integer<uint16_t>(good[6]) | (std::to_integer<uint16_t>(good[7]) << 8)), p, f);
  return f;
}

void segment_invalid() {
  bytes commit, request, reply;
  encode_segment_commit({3, 8, 16, {1}, {2}, {3}, {4, 5, 6}}, commit);
  encode_segment_request({1, 3, 8, 42}, request);
  encode_segment_reply(3, 42, sample_segment(), reply);
  write("segment_commit-invalid-end-not-after-start", with_payload_field<uint64_t>(commit, 12, 8));
  write("segment_commit-invalid-truncated", payload_truncated(commit));
  {
    bytes p(commit.begin() + frame_header_bytes, commit.end());
    p.push_back(std::byte{0});
    bytes f;
    encode_frame(message_type::segment_commit, p, f);
    write("segment_commit-invalid-trailing", f);
  }
  write("segment_request-invalid-truncated", payload_truncated(request));
  write("segment_request-invalid-empty-payload", [] { bytes f; encode_frame(message_type::segment_request, {}, f); return f; }());
  {
    bytes p(request.begin() + frame_header_bytes, request.end());
    p.push_back(std::byte{0});
    bytes f;
    encode_frame(message_type::segment_request, p, f);
    write("segment_request-invalid-trailing", f);
  }
  // The reply's payload: prover u32, start step u64, nonce u64, then the
  // checkpoint's length at 20.
  write("segment_reply-invalid-huge-checkpoint", with_payload_field<uint64_t>(reply, 20, UINT64_MAX / 2));
  write("segment_reply-invalid-start-step", with_payload_field<uint64_t>(reply, 4, 9));
  write("segment_reply-invalid-truncated", payload_truncated(reply));
  {  // Records naming an unknown kind, and a received frame past the bytes.
    segment s = sample_segment();
    s.records.events[1].kind = static_cast<segment_event::kind_t>(9);
    bytes f;
    encode_segment_reply(3, 42, s, f);
    write("segment_reply-invalid-event-kind", f);
    s = sample_segment();
    s.records.events[0].offset = UINT64_MAX - 1;
    encode_segment_reply(3, 42, s, f);
    write("segment_reply-invalid-frame-past-records", f);
    s = sample_segment();
    s.records.events[2].bytes = 1000;  // a neighbour list past the records' bytes
    encode_segment_reply(3, 42, s, f);
    write("segment_reply-invalid-neighbours-past-records", f);
  }
  {  // A neighbour count far over what the bytes hold.
    segment s = sample_segment();
    const bytes ck = encode_checkpoint(s.start->trainer);
    // After the checkpoint: neighbours (8 + 2*4), quarantined (8), last_round,
    // incarnation, heard_at (3 * (8 + 2*8)), self_hat (8 + 2*4), then the count.
    const size_t at = 20 + 8 + ck.size() + 16 + 8 + 3 * 24 + 16;
    write("segment_reply-invalid-huge-neighbour-count", with_payload_field<uint64_t>(reply, at, uint64_t{1} << 40));
  }
}

// Relayed segment evidence (27): accuser u32, prover u32, start step u64,
// then the nested reply frame's length at 16.
void segment_unavailable_seeds() {
  bytes f;
  encode_segment_unavailable({3, 8, 42, 40}, f);
  write("segment_unavailable-valid-basic", f);
  encode_segment_unavailable({UINT32_MAX, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX}, f);
  write("segment_unavailable-valid-extremes", f);
  bytes u;
  encode_segment_unavailable({3, 8, 42, 40}, u);
  // The payload: prover u32, start step u64, nonce u64, latest end u64.
  write("segment_unavailable-invalid-end-not-after-start", with_payload_field<uint64_t>(u, 20, 8));
  write("segment_unavailable-invalid-truncated", payload_truncated(u));
  {
    bytes p(u.begin() + frame_header_bytes, u.end());
    p.push_back(std::byte{0});
    encode_frame(message_type::segment_unavailable, p, f);
    write("segment_unavailable-invalid-trailing", f);
  }
}

void segment_evidence_seeds() {
  bytes reply, request, ev;
  encode_segment_reply(3, 42, sample_segment(), reply);
  encode_segment_request({1, 3, 8, 42}, request);
  encode_segment_evidence({1, 3, 8, reply}, ev);
  write("segment_evidence-valid-basic", ev);
  {  // Outer fields at their extremes (the receiver holds them to the nested reply), records empty.
    segment s = sample_segment();
    s.records = {};
    bytes empty_reply, f;
    encode_segment_reply(3, 42, s, empty_reply);
    encode_segment_evidence({UINT32_MAX, UINT32_MAX, UINT64_MAX, empty_reply}, f);
    write("segment_evidence-valid-extremes", f);
  }
  bytes bad;
  encode_segment_evidence({1, 3, 8, request}, bad);
  write("segment_evidence-invalid-nested-not-a-reply", bad);
  bytes damaged = reply;
  damaged.back() ^= std::byte{1};  // the nested frame's checksum no longer holds
  encode_segment_evidence({1, 3, 8, damaged}, bad);
  write("segment_evidence-invalid-nested-checksum", bad);
  encode_segment_evidence({1, 3, 8, {}}, bad);
  write("segment_evidence-invalid-empty-reply", bad);
  write("segment_evidence-invalid-huge-length", with_payload_field<uint64_t>(ev, 16, UINT64_MAX / 2));
  write("segment_evidence-invalid-truncated", payload_truncated(ev));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_corpus OUTPUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  std::filesystem::create_directories(out_dir);
  // Regenerating replaces every generated seed (renamed or dropped ones
  // included); hand-kept crash reproducers stay.
  for (const auto& e : std::filesystem::directory_iterator(out_dir))
    if (e.is_regular_file() && e.path().extension() == ".bin" && e.path().filename().string().rfind("crash-", 0) != 0)
      std::filesystem::remove(e.path());
  valid();
  invalid_frames();
  invalid_payloads();
  membership_valid();
  membership_invalid();
  state_valid();
  state_invalid();
  verify_valid();
  verify_invalid();
  pipeline_valid();
  pipeline_invalid();
  inference_valid();
  inference_invalid();
  checkpoint_valid();
  checkpoint_invalid();
  segment_valid();
  segment_invalid();
  segment_evidence_seeds();
  segment_unavailable_seeds();
  std::printf("make_fuzz_corpus: wrote %d files to %s\n", written, out_dir.string().c_str());
}
