// Writes the seed corpus of the decoder fuzzer: valid frames of every gossip
// kind and frames that are wrong in one specific way each. Run by hand when
// the wire format changes (the output is committed):
//   cmake --build build --target make_fuzz_corpus && build/make_fuzz_corpus tests/fuzz/corpus/decoders
// Names say what a file is: gossip-valid-* must decode, frame-invalid-* and
// gossip-invalid-* must be rejected (tests/protocols/test_fuzz_corpus.cpp
// checks both); crash-* files are reproducers of fixed bugs, kept by hand.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "protocols/gossip_messages.hpp"

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

// Payload builder for frames the encoder would never write.
struct payload {
  bytes b;
  payload& u8(uint8_t v) { b.push_back(std::byte{v}); return *this; }
  payload& u32(uint32_t v) { for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  payload& u64(uint64_t v) { for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); return *this; }
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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_corpus OUTPUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  std::filesystem::create_directories(out_dir);
  valid();
  invalid_frames();
  invalid_payloads();
  std::printf("make_fuzz_corpus: wrote %d files to %s\n", written, out_dir.string().c_str());
}
