// Checkpoint files (protocols/checkpoint_file.hpp): the byte layout, round
// trips in memory and through a file, the atomic write, and every refusal of
// the reader, with the message it gives.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "protocols/checkpoint_file.hpp"
#include "tensor/digest.hpp"

// ---- allocation watch ------------------------------------------------------------
//
// The reader must refuse a count that the bytes cannot hold before it
// allocates for it. This binary's operator new notes the largest request
// made while a watch is on (one thread at a time; Catch2 runs tests serially).
// (malloc/free sit behind noinline helpers: GCC otherwise flags every
// inlined new/delete pair as mismatched; as in tests/tensor/test_layers.cpp.)
namespace {
std::atomic<bool> watching{false};
std::atomic<size_t> largest{0};
[[gnu::noinline]] void* watched_alloc(std::size_t n) {
  if (watching.load(std::memory_order_relaxed) && n > largest.load(std::memory_order_relaxed))
    largest.store(n, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void watched_free(void* p) noexcept { std::free(p); }
}  // namespace
// Every plain form is replaced, so no pair mixes this and another allocator.
void* operator new(std::size_t n) { return watched_alloc(n); }
void* operator new[](std::size_t n) { return watched_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return watched_alloc(n); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return watched_alloc(n); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { watched_free(p); }
void operator delete[](void* p) noexcept { watched_free(p); }
void operator delete(void* p, std::size_t) noexcept { watched_free(p); }
void operator delete[](void* p, std::size_t) noexcept { watched_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { watched_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { watched_free(p); }

using namespace murmur;
using bytes = std::vector<std::byte>;
using Catch::Matchers::Contains;

namespace {

constexpr size_t header_bytes = 52;
constexpr size_t checksum_at = 20;

// Payload offsets.
namespace at {
constexpr size_t step = 0, replica = 8, stage = 10, stages = 12, layer_begin = 14, layer_end = 16, seed = 18,
                 spec_bytes = 26, spec = 30;
}

checkpoint sample(checkpoint_kind kind = checkpoint_kind::stage) {
  checkpoint c;
  c.kind = kind;
  c.step = 1234;
  c.replica = 3;
  c.stage = 1;
  c.stages = 4;
  c.layer_begin = 2;
  c.layer_end = 5;
  c.seed = 0xfeedfacecafebeefULL;
  c.model_spec = "mlp 784-128-10 relu (μ)";
  for (int i = 0; i < 20; ++i) c.params.push_back(0.25f * static_cast<float>(i) - 2.f);
  c.params[0] = -0.f;
  c.params[1] = FLT_MAX;
  c.params[2] = FLT_TRUE_MIN;
  c.opt_steps = 1233;
  for (int i = 0; i < 8; ++i) c.opt_state.push_back(1e-3f * static_cast<float>(i));
  c.extra = {1, UINT64_MAX, 0x0123456789abcdefULL};
  return c;
}

// Builds payloads and checkpoints field by field, independently of the encoder.
struct builder {
  bytes b;
  builder& u8(uint8_t v) { b.push_back(std::byte{v}); return *this; }
  builder& u16(uint16_t v) { return u8(static_cast<uint8_t>(v)).u8(static_cast<uint8_t>(v >> 8)); }
  builder& u32(uint32_t v) { for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  builder& u64(uint64_t v) { for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); return *this; }
  builder& f32(float v) { uint32_t u; std::memcpy(&u, &v, 4); return u32(u); }
  builder& str(const std::string& s) { for (char c : s) u8(static_cast<uint8_t>(c)); return *this; }
  // The fixed payload fields of sample().
  builder& fixed() { return u64(1234).u16(3).u16(1).u16(4).u16(2).u16(5).u64(0xfeedfacecafebeefULL); }
};

// A header (with a correct length and checksum unless told otherwise) and the payload.
bytes seal(const bytes& payload, uint8_t kind = 1, uint16_t version = 1, uint8_t reserved = 0) {
  builder h;
  h.str("MRMRCKPT").u16(version).u8(kind).u8(reserved).u64(payload.size());
  const digest d = sha256(payload.data(), payload.size());
  for (uint8_t x : d) h.u8(x);
  h.b.insert(h.b.end(), payload.begin(), payload.end());
  return h.b;
}

// The payload of sample(), written field by field.
bytes sample_payload() {
  const checkpoint c = sample();
  builder p;
  p.fixed().u32(static_cast<uint32_t>(c.model_spec.size())).str(c.model_spec);
  p.u64(c.params.size());
  for (float v : c.params) p.f32(v);
  p.u64(c.opt_steps).u64(c.opt_state.size());
  for (float v : c.opt_state) p.f32(v);
  p.u32(static_cast<uint32_t>(c.extra.size()));
  for (uint64_t v : c.extra) p.u64(v);
  return p.b;
}

// Recomputes the header's payload length and checksum after an edit.
bytes reseal(bytes f) {
  const bytes payload(f.begin() + header_bytes, f.end());
  const bytes h = seal(payload, std::to_integer<uint8_t>(f[10]), static_cast<uint16_t>(std::to_integer<uint16_t>(f[8]) |
                                                                                       (std::to_integer<uint16_t>(f[9]) << 8)),
                       std::to_integer<uint8_t>(f[11]));
  return h;
}

template <class T>
void put_at(bytes& p, size_t off, T v) {
  std::memcpy(p.data() + off, &v, sizeof v);
}

// What decode_checkpoint says about the bytes ("" when it accepts them).
std::string refusal(const bytes& b, const std::string& source = "ckpt-under-test") {
  try {
    (void)decode_checkpoint(b, source);
    return "";
  } catch (const checkpoint_error& e) {
    return e.what();
  }
}

// A fresh directory, removed with its contents at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("murmur-ckpt-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const auto& e : std::filesystem::directory_iterator(path)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }
};

void write_raw(const std::string& path, const bytes& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

bytes read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  bytes b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

}  // namespace

// ---- layout and round trips ------------------------------------------------------------

TEST_CASE("checkpoints encode to the documented layout", "[protocols][checkpoint]") {
  const bytes f = encode_checkpoint(sample());
  CHECK(f == seal(sample_payload(), 1));
  CHECK(std::memcmp(f.data(), "MRMRCKPT", 8) == 0);
  const checkpoint c = sample();
  CHECK(f.size() == header_bytes + 8 + 2 * 5 + 8 + 4 + c.model_spec.size() + 8 + 4 * c.params.size() + 8 + 8 +
                        4 * c.opt_state.size() + 4 + 8 * c.extra.size());
  const bytes peer = encode_checkpoint(sample(checkpoint_kind::peer));
  CHECK(std::to_integer<int>(peer[10]) == 0);
  CHECK(std::to_integer<int>(f[10]) == 1);
  const digest d = sha256(f.data() + header_bytes, f.size() - header_bytes);
  CHECK(std::memcmp(f.data() + checksum_at, d.data(), 32) == 0);
}

TEST_CASE("checkpoints round-trip in memory, bit for bit", "[protocols][checkpoint]") {
  std::vector<checkpoint> cases = {checkpoint{}, sample(checkpoint_kind::peer), sample(checkpoint_kind::stage)};
  checkpoint big = sample();
  big.params.assign(100000, 0.5f);
  big.params[99999] = -FLT_MIN;
  big.opt_state.assign(200000, -1.f);
  big.extra.assign(max_checkpoint_extra, 7);
  big.model_spec.assign(max_checkpoint_spec_bytes, 'x');
  cases.push_back(big);
  checkpoint extremes = sample();
  extremes.step = extremes.seed = extremes.opt_steps = UINT64_MAX;
  extremes.replica = extremes.stage = extremes.stages = extremes.layer_begin = extremes.layer_end = UINT16_MAX;
  extremes.model_spec = std::string("nul\0inside", 10);
  cases.push_back(extremes);
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const bytes f = encode_checkpoint(cases[i]);
    const checkpoint back = decode_checkpoint(f, "memory");
    CHECK(back == cases[i]);
    CHECK((back.params.empty() ||
           std::memcmp(back.params.data(), cases[i].params.data(), 4 * back.params.size()) == 0));
    CHECK(encode_checkpoint(back) == f);
  }
}

TEST_CASE("checkpoint files round-trip and are written atomically", "[protocols][checkpoint]") {
  temp_dir dir;
  const std::string path = dir.file("stage-0-1.ckpt");
  SECTION("write, read back, nothing else left in the directory") {
    write_checkpoint_file(path, sample());
    CHECK(read_checkpoint_file(path) == sample());
    CHECK(read_raw(path) == encode_checkpoint(sample()));
    CHECK(dir.names() == std::vector<std::string>{"stage-0-1.ckpt"});
  }
  SECTION("a new checkpoint replaces the old file, and a stale .tmp is overwritten") {
    write_checkpoint_file(path, sample());
    write_raw(path + ".tmp", bytes(5000, std::byte{0xab}));  // left by a crash mid-write
    checkpoint next = sample();
    next.step = 1300;
    next.params.assign(3, 1.f);
    write_checkpoint_file(path, encode_checkpoint(next));
    CHECK(read_checkpoint_file(path) == next);
    CHECK(dir.names() == std::vector<std::string>{"stage-0-1.ckpt"});
  }
  SECTION("several checkpoint files side by side") {
    for (int s = 0; s < 3; ++s) {
      checkpoint c = sample();
      c.stage = static_cast<uint16_t>(s);
      write_checkpoint_file(dir.file("stage-0-" + std::to_string(s) + ".ckpt"), c);
    }
    CHECK(dir.names() == std::vector<std::string>{"stage-0-0.ckpt", "stage-0-1.ckpt", "stage-0-2.ckpt"});
    CHECK(read_checkpoint_file(dir.file("stage-0-2.ckpt")).stage == 2);
  }
}

TEST_CASE("a checkpoint write that fails names the path, throws and leaves no .tmp", "[protocols][checkpoint]") {
  temp_dir dir;
  SECTION("missing directory") {
    const std::string path = dir.file("no/such/dir/x.ckpt");
    CHECK_THROWS_WITH(write_checkpoint_file(path, sample()),
                      Contains(path) && Contains("No such file or directory"));
    CHECK(dir.names().empty());
  }
  SECTION("the path is a directory: the rename fails and the .tmp is removed") {
    const std::string path = dir.file("taken");
    std::filesystem::create_directory(path);
    std::filesystem::create_directory(path + "/inside");  // a non-empty directory cannot be renamed over
    CHECK_THROWS_AS(write_checkpoint_file(path, sample()), checkpoint_error);
    CHECK_THROWS_WITH(write_checkpoint_file(path, sample()), Contains(path) && Contains("renaming"));
    CHECK(dir.names() == std::vector<std::string>{"taken"});
  }
  SECTION("a checkpoint the reader would refuse is not written") {
    checkpoint c = sample();
    c.params[12] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(write_checkpoint_file(dir.file("nan.ckpt"), c), Contains("non-finite parameter at index 12"));
    c = sample();
    c.opt_state[3] = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(encode_checkpoint(c), Contains("non-finite optimizer state value at index 3"));
    c = sample();
    c.model_spec.assign(max_checkpoint_spec_bytes + 1, 'x');
    CHECK_THROWS_WITH(encode_checkpoint(c), Contains("model spec"));
    c = sample();
    c.extra.assign(max_checkpoint_extra + 1, 1);
    CHECK_THROWS_WITH(encode_checkpoint(c), Contains("extra"));
    c = sample();
    c.kind = static_cast<checkpoint_kind>(2);
    CHECK_THROWS_WITH(encode_checkpoint(c), Contains("unknown kind 2"));
    CHECK(dir.names().empty());
  }
}

// ---- refusals ------------------------------------------------------------------------

TEST_CASE("checkpoint files that are missing, empty or not regular files are refused", "[protocols][checkpoint]") {
  temp_dir dir;
  const std::string missing = dir.file("missing.ckpt");
  CHECK_THROWS_AS(read_checkpoint_file(missing), checkpoint_error);
  CHECK_THROWS_WITH(read_checkpoint_file(missing), Contains(missing) && Contains("No such file or directory"));
  const std::string empty = dir.file("empty.ckpt");
  write_raw(empty, {});
  CHECK_THROWS_WITH(read_checkpoint_file(empty), Contains(empty + ": empty"));
  CHECK_THROWS_WITH(read_checkpoint_file(dir.path.string()), Contains("not a regular file"));
  // A damaged file names itself too.
  const std::string bad = dir.file("bad.ckpt");
  bytes f = encode_checkpoint(sample());
  f.back() ^= std::byte{1};
  write_raw(bad, f);
  CHECK_THROWS_WITH(read_checkpoint_file(bad), Contains(bad + ": checksum mismatch (file corrupted)"));
  f = encode_checkpoint(sample());
  f.resize(100);
  write_raw(bad, f);
  CHECK_THROWS_WITH(read_checkpoint_file(bad),
                    Contains(bad + ": truncated: header says " + std::to_string(encode_checkpoint(sample()).size() - header_bytes) +
                             " payload bytes, found 48"));
}

TEST_CASE("checkpoints with a bad magic, version, kind or reserved byte are refused", "[protocols][checkpoint]") {
  const bytes good = encode_checkpoint(sample());
  REQUIRE(refusal(good) == "");
  CHECK(refusal({}) == "ckpt-under-test: empty (0 bytes), not a murmur checkpoint");
  for (size_t i = 0; i < 8; ++i) {
    INFO("magic byte " << i);
    bytes f = good;
    f[i] ^= std::byte{0x20};
    CHECK(refusal(f) == "ckpt-under-test: not a murmur checkpoint (bad magic)");
  }
  CHECK_THAT(refusal(bytes{std::byte{'{'}, std::byte{'}'}}), Contains("bad magic"));
  // A network frame (magic "MRMR") is no checkpoint either.
  CHECK_THAT(refusal(bytes{std::byte{'R'}, std::byte{'M'}, std::byte{'R'}, std::byte{'M'}}), Contains("bad magic"));
  // The start of a real one is a truncated one.
  CHECK(refusal(bytes(good.begin(), good.begin() + 3)) ==
        "ckpt-under-test: truncated: 3 bytes, shorter than the 52-byte checkpoint header");
  for (uint16_t v : {uint16_t{0}, uint16_t{2}, uint16_t{7}, uint16_t{0x0100}, uint16_t{UINT16_MAX}}) {
    bytes f = good;
    put_at(f, 8, v);
    CHECK(refusal(f) ==
          "ckpt-under-test: checkpoint version " + std::to_string(v) + ", this build reads version 1");
  }
  for (uint8_t k : {uint8_t{2}, uint8_t{7}, uint8_t{255}}) {
    bytes f = good;
    f[10] = std::byte{k};
    CHECK_THAT(refusal(f), Contains("ckpt-under-test: unknown checkpoint kind " + std::to_string(k)));
  }
  bytes f = good;
  f[11] = std::byte{1};
  CHECK_THAT(refusal(f), Contains("reserved header byte is 1"));
  // The source is named as given.
  f = good;
  f[0] = std::byte{0};
  CHECK(refusal(f, "checkpoint from peer 3") == "checkpoint from peer 3: not a murmur checkpoint (bad magic)");
}

TEST_CASE("truncated checkpoints and trailing bytes are refused", "[protocols][checkpoint]") {
  const bytes good = encode_checkpoint(sample());
  const size_t payload = good.size() - header_bytes;
  for (size_t n : {size_t{8}, size_t{10}, size_t{header_bytes - 1}}) {
    INFO("cut to " << n);
    CHECK(refusal(bytes(good.begin(), good.begin() + static_cast<ptrdiff_t>(n))) ==
          "ckpt-under-test: truncated: " + std::to_string(n) + " bytes, shorter than the 52-byte checkpoint header");
  }
  for (size_t n : {header_bytes, header_bytes + 1, header_bytes + 30, good.size() / 2, good.size() - 4, good.size() - 1}) {
    INFO("cut to " << n);
    CHECK(refusal(bytes(good.begin(), good.begin() + static_cast<ptrdiff_t>(n))) ==
          "ckpt-under-test: truncated: header says " + std::to_string(payload) + " payload bytes, found " +
              std::to_string(n - header_bytes));
  }
  // Every other cut is refused as well.
  for (size_t n = 0; n < good.size(); ++n) {
    INFO("cut to " << n);
    REQUIRE_THAT(refusal(bytes(good.begin(), good.begin() + static_cast<ptrdiff_t>(n))),
                 Contains("truncated") || Contains("empty"));
  }
  for (size_t extra : {size_t{1}, size_t{8}, size_t{1000}}) {
    bytes f = good;
    f.resize(f.size() + extra, std::byte{0});
    CHECK_THAT(refusal(f), Contains(std::to_string(extra) + " unexpected trailing bytes: header says " +
                                    std::to_string(payload) + " payload bytes, found " + std::to_string(payload + extra)));
  }
  // A header length that lies (low or huge) against a complete payload.
  bytes f = good;
  put_at(f, 12, uint64_t{payload - 1});
  CHECK_THAT(refusal(f), Contains("1 unexpected trailing bytes"));
  put_at(f, 12, UINT64_MAX);
  CHECK_THAT(refusal(f), Contains("truncated: header says 18446744073709551615 payload bytes"));
}

TEST_CASE("one flipped bit anywhere in the payload or checksum is a checksum mismatch", "[protocols][checkpoint]") {
  const bytes good = encode_checkpoint(sample());
  for (size_t i = checksum_at; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      bytes f = good;
      f[i] ^= static_cast<std::byte>(1 << bit);
      INFO("byte " << i << " bit " << bit);
      REQUIRE(refusal(f) == "ckpt-under-test: checksum mismatch (file corrupted)");
    }
  }
}

TEST_CASE("checkpoint counts over the limits or past the payload are refused before allocating",
          "[protocols][checkpoint]") {
  // Valid checksums throughout: only the counts are wrong.
  auto decode_watched = [](const bytes& f) {
    largest = 0;
    watching = true;
    std::string r;
    try {
      (void)decode_checkpoint(f, "crafted");
    } catch (const checkpoint_error& e) {
      r = e.what();
    }
    watching = false;
    // Nothing near the claimed sizes: at most the message text and small
    // buffers (the payloads below are under 200 bytes).
    CHECK(largest.load() < 4096);
    return r;
  };
  const std::string spec = "mlp";
  auto head = [&](uint32_t spec_bytes) { return builder().fixed().u32(spec_bytes).str(spec); };
  SECTION("a well-formed crafted checkpoint decodes") {
    builder p = head(3);
    p.u64(2).f32(1).f32(2).u64(5).u64(1).f32(3).u32(1).u64(9);
    const checkpoint c = decode_checkpoint(seal(p.b), "crafted");
    CHECK(c.model_spec == "mlp");
    CHECK(c.params == std::vector<float>{1, 2});
    CHECK(c.opt_state == std::vector<float>{3});
    CHECK(c.extra == std::vector<uint64_t>{9});
    // The watch does see the decoder's allocations (a control for the sections below).
    checkpoint big;
    big.params.assign(10000, 1.f);
    const bytes f = encode_checkpoint(big);
    largest = 0;
    watching = true;
    (void)decode_checkpoint(f, "control");
    watching = false;
    CHECK(largest.load() >= 4 * big.params.size());
  }
  SECTION("model spec length") {
    CHECK_THAT(decode_watched(seal(head(max_checkpoint_spec_bytes + 1).b)),
               Contains("crafted: model spec byte count 65537 is over the limit of 65536"));
    CHECK_THAT(decode_watched(seal(head(UINT32_MAX).b)), Contains("over the limit"));
    CHECK_THAT(decode_watched(seal(head(1000).b)), Contains("model spec byte count 1000 needs"));
  }
  SECTION("parameter count") {
    CHECK_THAT(decode_watched(seal(head(3).u64(max_checkpoint_floats + 1).f32(1).b)),
               Contains("crafted: parameter count 1073741825 is over the limit of 1073741824"));
    CHECK_THAT(decode_watched(seal(head(3).u64(UINT64_MAX).f32(1).b)), Contains("parameter count"));
    // Within the limit, far past the bytes: 4 GiB claimed, 8 bytes present.
    CHECK_THAT(decode_watched(seal(head(3).u64(max_checkpoint_floats).f32(1).f32(2).b)),
               Contains("parameter count 1073741824 needs 1073741824 x 4 bytes, the payload has 8 left"));
    // 2^62 floats: 4 x count wraps 64 bits to 0.
    CHECK_THAT(decode_watched(seal(head(3).u64(uint64_t{1} << 62).b)), Contains("parameter count"));
  }
  SECTION("optimizer state count") {
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(max_checkpoint_floats + 1).b)),
               Contains("optimizer state count 1073741825 is over the limit"));
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(1u << 20).f32(1).b)),
               Contains("optimizer state count 1048576 needs"));
  }
  SECTION("extra count") {
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(0).u32(max_checkpoint_extra + 1).b)),
               Contains("extra value count 65537 is over the limit of 65536"));
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(0).u32(UINT32_MAX).u64(1).b)),
               Contains("over the limit"));
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(0).u32(3).u64(1).u64(2).b)),
               Contains("extra value count 3 needs 3 x 8 bytes, the payload has 16 left"));
  }
  SECTION("counts that do not match the payload") {
    // Bytes left after the last field.
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(0).u32(1).u64(1).u64(2).b)),
               Contains("8 bytes left over after the last field"));
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(0).u32(0).u8(0).b)), Contains("1 bytes left over"));
    // A payload that ends inside a field.
    CHECK_THAT(decode_watched(seal(head(3).u64(0).u64(1).u64(0).u16(0).b)), Contains("payload ends inside the extra count"));
    CHECK_THAT(decode_watched(seal(builder().u64(1).u16(2).b)), Contains("payload ends inside the fixed fields"));
    CHECK_THAT(decode_watched(seal({})), Contains("payload ends inside the fixed fields"));
    CHECK_THAT(decode_watched(seal(head(3).u64(0).b)), Contains("payload ends inside the optimizer step count"));
    // A parameter count that lies low shifts every later field.
    const bytes p = sample_payload();
    bytes q = p;
    put_at(q, at::spec + sample().model_spec.size(), uint64_t{sample().params.size() - 1});
    CHECK_THAT(decode_watched(seal(q)), Contains("crafted: "));
  }
}

TEST_CASE("checkpoints with a non-finite parameter or optimizer value are refused", "[protocols][checkpoint]") {
  const checkpoint c = sample();
  const bytes p = sample_payload();
  const size_t params_at = at::spec + c.model_spec.size() + 8;
  const size_t opt_at = params_at + 4 * c.params.size() + 8 + 8;
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  for (float v : bad) {
    bytes q = p;
    put_at(q, params_at + 4 * 12, v);
    CHECK(refusal(seal(q)) == "ckpt-under-test: non-finite parameter at index 12");
    q = p;
    put_at(q, params_at, v);
    CHECK(refusal(seal(q)) == "ckpt-under-test: non-finite parameter at index 0");
    q = p;
    put_at(q, opt_at + 4 * 3, v);
    CHECK(refusal(seal(q)) == "ckpt-under-test: non-finite optimizer state value at index 3");
  }
  // The same bits in the extra values are just integers.
  bytes q = p;
  put_at(q, q.size() - 8, uint64_t{0x7fc000007fc00000ULL});
  CHECK(refusal(seal(q)) == "");
}

TEST_CASE("the header fields are read as written", "[protocols][checkpoint]") {
  bytes p = sample_payload();
  put_at(p, at::step, uint64_t{77});
  put_at(p, at::replica, uint16_t{8});
  put_at(p, at::stage, uint16_t{9});
  put_at(p, at::stages, uint16_t{10});
  put_at(p, at::layer_begin, uint16_t{11});
  put_at(p, at::layer_end, uint16_t{12});
  put_at(p, at::seed, uint64_t{13});
  const checkpoint c = decode_checkpoint(seal(p, 0), "memory");
  CHECK(c.kind == checkpoint_kind::peer);
  CHECK(c.step == 77);
  CHECK(c.replica == 8);
  CHECK(c.stage == 9);
  CHECK(c.stages == 10);
  CHECK(c.layer_begin == 11);
  CHECK(c.layer_end == 12);
  CHECK(c.seed == 13);
  CHECK(c.model_spec == sample().model_spec);
  // reseal() recomputes a valid header for edited bytes.
  bytes f = encode_checkpoint(sample());
  put_at(f, header_bytes + at::step, uint64_t{5});
  CHECK_THAT(refusal(f), Contains("checksum mismatch"));
  CHECK(decode_checkpoint(reseal(f), "memory").step == 5);
}
