// Pipeline messages (protocols/pipeline_messages.hpp): round trips of
// activations, gradients, checkpoints to a spare, heartbeats and take-overs;
// every rejection rule of the header; truncation at every byte; reuse of the
// output buffer; seeded random corruption.
#include <catch2/catch.hpp>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "reframe.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/pipeline_messages.hpp"
#include "tensor/rng.hpp"

using namespace murmur;
using murmur::testing::payload_of;
using murmur::testing::reframe;
using bytes = std::vector<std::byte>;

namespace {

// Room for the largest edge frames below (one dimension at max_stage_dim + 1
// is about 4 MiB of floats).
constexpr size_t max_frame = size_t{64} << 20;

template <class T>
void put_at(bytes& p, size_t at, T v) {
  std::memcpy(p.data() + at, &v, sizeof v);
}

// Payload offsets (the endianness tag is byte 0).
namespace tensor_at {
constexpr size_t replica = 1, stage = 3, step = 5, generation = 13, microbatch = 17, batch = 19, total = 23, dims = 27,
                 shape = 28;
}
namespace ckpt_at { constexpr size_t bytes = 1 + 2 + 2 + 8 + 4, blob = bytes + 4; }
constexpr size_t heartbeat_payload = 1 + 2 + 2 + 4 + 8 + 4;
constexpr size_t takeover_payload = heartbeat_payload;

uint64_t product(const std::vector<uint32_t>& shape) {
  uint64_t n = 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

stage_tensor sample_tensor(bool gradient, uint32_t batch, std::vector<uint32_t> shape, uint64_t seed = 1) {
  Rng rng(seed);
  stage_tensor m;
  m.gradient = gradient;
  m.replica = 2;
  m.stage = 1;
  m.step = 17;
  m.generation = 3;
  m.microbatch = 5;
  m.batch = batch;
  m.total = batch * 4;
  m.shape = std::move(shape);
  if (!gradient)
    for (uint32_t i = 0; i < batch; ++i) m.labels.push_back(static_cast<int32_t>(rng.below(10)));
  m.values.resize(batch * product(m.shape));
  for (auto& v : m.values) v = static_cast<float>(rng.normal());
  return m;
}

stage_checkpoint_msg sample_checkpoint(size_t blob_bytes = 37) {
  stage_checkpoint_msg m;
  m.replica = 1;
  m.stage = 2;
  m.step = 99;
  m.generation = 4;
  for (size_t i = 0; i < blob_bytes; ++i) m.blob.push_back(static_cast<std::byte>(i * 7 + 3));
  return m;
}

// Stale contents, so every decode below also shows it replaces old state.
stage_tensor dirty_tensor(bool gradient = false) {
  auto m = sample_tensor(gradient, 3, {2, 5}, 99);
  m.replica = m.stage = 77;
  m.step = 88;
  m.generation = 66;
  m.microbatch = 55;
  m.total = 44;
  return m;
}
stage_checkpoint_msg dirty_checkpoint() {
  stage_checkpoint_msg m = sample_checkpoint(50);
  m.replica = m.stage = 77;
  m.step = 88;
  m.generation = 99;
  return m;
}

template <class M>
bytes encoded(void (*encode)(const M&, bytes&), const M& m) {
  bytes f;
  encode(m, f);
  return f;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

// Bytes a decoded message holds on the heap: a decoder that sized an array
// from a header field before checking it against the bytes present shows up
// here (or as bad_alloc) when handed a small frame that claims a huge one.
template <class T>
size_t held(const std::vector<T>& v) { return v.capacity() * sizeof(T); }
size_t held(const stage_tensor& m) { return held(m.shape) + held(m.labels) + held(m.values); }
size_t held(const stage_checkpoint_msg& m) { return held(m.blob); }
size_t held(const stage_heartbeat&) { return 0; }
size_t held(const stage_takeover&) { return 0; }

// The invariants of every accepted message.
std::string problems(const stage_tensor& m) {
  if (m.shape.empty() || m.shape.size() > max_stage_dims) return "dims outside 1..max_stage_dims";
  for (uint32_t d : m.shape)
    if (d == 0 || d > max_stage_dim) return "dimension outside 1..max_stage_dim";
  if (m.batch == 0 || m.batch > m.total) return "batch 0 or over total";
  if (m.microbatch > max_microbatches) return "microbatch over max_microbatches";
  if (m.labels.size() != (m.gradient ? 0 : m.batch)) return "labels size";
  for (int32_t l : m.labels)
    if (l < 0) return "negative label";
  if (m.values.size() != uint64_t{m.batch} * product(m.shape)) return "values size";
  for (float v : m.values)
    if (!std::isfinite(v)) return "non-finite value";
  return "";
}
std::string problems(const stage_checkpoint_msg& m) { return m.blob.empty() ? "empty blob" : ""; }
std::string problems(const stage_heartbeat&) { return ""; }
std::string problems(const stage_takeover&) { return ""; }

// One row per decoder: decodes a frame into a fresh message (held bytes and
// invariants checked).
struct pipeline_codec {
  std::string name;
  message_type type;
  std::function<frame_error(const bytes&, size_t)> decode;
};

template <class M>
std::function<frame_error(const bytes&, size_t)> checked_decode(frame_error (*decode)(std::span<const std::byte>, size_t, M&)) {
  return [decode](const bytes& f, size_t max) {
    M m{};
    frame_error e = frame_error::none;
    REQUIRE_NOTHROW(e = decode(f, max, m));
    CHECK(held(m) <= f.size());
    if (e == frame_error::none) CHECK(problems(m) == "");
    return e;
  };
}

std::vector<pipeline_codec> pipeline_codecs() {
  return {{"stage_activation", message_type::stage_activation, checked_decode(decode_stage_tensor)},
          {"stage_gradient", message_type::stage_gradient, checked_decode(decode_stage_tensor)},
          {"stage_checkpoint", message_type::stage_checkpoint, checked_decode(decode_stage_checkpoint)},
          {"stage_heartbeat", message_type::stage_heartbeat, checked_decode(decode_stage_heartbeat)},
          {"stage_takeover", message_type::stage_takeover, checked_decode(decode_stage_takeover)}};
}

// A small valid frame of each, in pipeline_codecs() order.
std::vector<bytes> valid_frames() {
  return {encoded(encode_stage_tensor, sample_tensor(false, 2, {3})),
          encoded(encode_stage_tensor, sample_tensor(true, 2, {3, 2})),
          encoded(encode_stage_checkpoint, sample_checkpoint(9)),
          encoded(encode_stage_heartbeat, stage_heartbeat{1, 2, 3, 4, 5}),
          encoded(encode_stage_takeover, stage_takeover{1, 2, 3, 4, 5})};
}

frame_error decode_payload(const pipeline_codec& c, const bytes& payload, size_t max = max_frame) {
  return c.decode(reframe(c.type, payload), max);
}

// A stage tensor payload from raw header fields, the shape, then `words`
// zero words (valid labels and floats).
bytes tensor_payload(uint16_t microbatch, uint32_t batch, uint32_t total, const std::vector<uint32_t>& shape,
                     uint64_t words, uint8_t dims_field = 0xff) {
  bytes p = payload_of(encoded(encode_stage_tensor, sample_tensor(false, 1, {1})));
  p.resize(tensor_at::shape);
  put_at(p, tensor_at::microbatch, microbatch);
  put_at(p, tensor_at::batch, batch);
  put_at(p, tensor_at::total, total);
  put_at(p, tensor_at::dims, dims_field == 0xff ? static_cast<uint8_t>(shape.size()) : dims_field);
  for (uint32_t d : shape) {
    p.resize(p.size() + 4);
    put_at(p, p.size() - 4, d);
  }
  p.resize(p.size() + 4 * words, std::byte{0});
  return p;
}

frame_error decode_activation(const bytes& p) {
  return pipeline_codecs()[0].decode(reframe(message_type::stage_activation, p), max_frame);
}
frame_error decode_gradient(const bytes& p) {
  return pipeline_codecs()[1].decode(reframe(message_type::stage_gradient, p), max_frame);
}

}  // namespace

// ---- types and round trips -------------------------------------------------------

TEST_CASE("pipeline message types are 15..19 and is_pipeline_message names exactly them", "[protocols][pipeline]") {
  CHECK(static_cast<uint16_t>(message_type::stage_activation) == 15);
  CHECK(static_cast<uint16_t>(message_type::stage_gradient) == 16);
  CHECK(static_cast<uint16_t>(message_type::stage_checkpoint) == 17);
  CHECK(static_cast<uint16_t>(message_type::stage_heartbeat) == 18);
  CHECK(static_cast<uint16_t>(message_type::stage_takeover) == 19);
  for (uint16_t t = 0; t <= 25; ++t) {
    INFO("type " << t);
    CHECK(is_pipeline_message(static_cast<message_type>(t)) == (t >= 15 && t <= 19));
  }
  CHECK(known_message_type(19));
  CHECK(known_message_type(20));  // miss_claim (verify_messages.hpp)
  CHECK(known_message_type(21));  // inference_request (inference_messages.hpp)
  CHECK(known_message_type(24));  // segment_commit (actors/segment_messages.hpp)
  CHECK(known_message_type(26));  // segment_reply
  CHECK(known_message_type(27));  // segment_evidence
  CHECK(known_message_type(28));  // segment_unavailable
  CHECK_FALSE(known_message_type(29));
}

TEST_CASE("activations and gradients round-trip bit for bit, 1 to max_stage_dims dimensions", "[protocols][pipeline]") {
  const std::vector<std::vector<uint32_t>> shapes = {{1}, {7}, {3, 4}, {2, 3, 5}, {1, 2, 1, 3}, {4, 1, 1, 1}};
  for (bool gradient : {false, true}) {
    for (const auto& shape : shapes) {
      for (uint32_t batch : {1u, 5u}) {
        INFO("gradient " << gradient << " dims " << shape.size() << " batch " << batch);
        auto m = sample_tensor(gradient, batch, shape, batch * 10 + shape.size());
        m.values[0] = -0.f;
        m.values.back() = FLT_TRUE_MIN;
        if (m.values.size() > 2) m.values[1] = -FLT_MAX;
        const bytes f = encoded(encode_stage_tensor, m);
        const auto type = static_cast<message_type>(std::to_integer<uint16_t>(f[6]));
        CHECK(type == (gradient ? message_type::stage_gradient : message_type::stage_activation));
        CHECK(f.size() == frame_header_bytes + tensor_at::shape +
                              4 * (shape.size() + (gradient ? 0 : batch) + m.values.size()));
        stage_tensor out = dirty_tensor(!gradient);  // the other direction: flag and labels must be replaced
        REQUIRE(decode_stage_tensor(f, max_frame, out) == frame_error::none);
        CHECK(out == m);
        CHECK(same_bits(out.values, m.values));
        CHECK(out.gradient == gradient);
        CHECK(out.labels.size() == (gradient ? 0 : batch));
        CHECK(encoded(encode_stage_tensor, out) == f);
      }
    }
  }
}

TEST_CASE("stage tensors take extreme header values", "[protocols][pipeline]") {
  for (bool gradient : {false, true}) {
    auto m = sample_tensor(gradient, 2, {3});
    m.replica = m.stage = UINT16_MAX;
    m.step = UINT64_MAX;
    m.generation = UINT32_MAX;
    m.microbatch = max_microbatches;
    m.total = UINT32_MAX;
    if (!gradient) m.labels = {0, INT32_MAX};
    const bytes f = encoded(encode_stage_tensor, m);
    stage_tensor out = dirty_tensor();
    REQUIRE(decode_stage_tensor(f, max_frame, out) == frame_error::none);
    CHECK(out == m);
    m.total = m.batch;  // batch == total: the whole batch in one micro-batch
    m.microbatch = 0;
    REQUIRE(decode_stage_tensor(encoded(encode_stage_tensor, m), max_frame, out) == frame_error::none);
    CHECK(out == m);
  }
}

TEST_CASE("a stage tensor dimension may be max_stage_dim, not one more", "[protocols][pipeline]") {
  CHECK(decode_gradient(tensor_payload(0, 1, 1, {max_stage_dim}, max_stage_dim)) == frame_error::none);
  CHECK(decode_activation(tensor_payload(0, 1, 1, {1, max_stage_dim}, 1 + uint64_t{max_stage_dim})) ==
        frame_error::none);
  // Every byte present for the oversized dimension: still rejected.
  CHECK(decode_gradient(tensor_payload(0, 1, 1, {max_stage_dim + 1}, max_stage_dim + 1)) == frame_error::undecodable);
  CHECK(decode_activation(tensor_payload(0, 1, 1, {1, max_stage_dim + 1}, 2 + uint64_t{max_stage_dim})) ==
        frame_error::undecodable);
}

TEST_CASE("checkpoints to a spare, heartbeats and take-overs round-trip", "[protocols][pipeline]") {
  for (size_t n : {size_t{1}, size_t{9}, size_t{4096}}) {
    INFO("blob bytes " << n);
    auto m = sample_checkpoint(n);
    m.step = UINT64_MAX;
    m.generation = UINT32_MAX;
    m.replica = m.stage = UINT16_MAX;
    const bytes f = encoded(encode_stage_checkpoint, m);
    CHECK(f.size() == frame_header_bytes + ckpt_at::blob + n);
    stage_checkpoint_msg out = dirty_checkpoint();
    REQUIRE(decode_stage_checkpoint(f, max_frame, out) == frame_error::none);
    CHECK(out == m);
    CHECK(encoded(encode_stage_checkpoint, out) == f);
  }
  for (stage_heartbeat h : {stage_heartbeat{}, stage_heartbeat{1, 2, 3, 4, 5},
                            stage_heartbeat{UINT16_MAX, UINT16_MAX, UINT32_MAX, UINT64_MAX, UINT32_MAX}}) {
    const bytes f = encoded(encode_stage_heartbeat, h);
    CHECK(f.size() == frame_header_bytes + heartbeat_payload);
    stage_heartbeat out{7, 7, 7, 7, 7};
    REQUIRE(decode_stage_heartbeat(f, max_frame, out) == frame_error::none);
    CHECK(out == h);
  }
  for (stage_takeover t : {stage_takeover{}, stage_takeover{1, 2, 3, 4, 5},
                           stage_takeover{UINT16_MAX, UINT16_MAX, UINT32_MAX, UINT64_MAX, UINT32_MAX}}) {
    const bytes f = encoded(encode_stage_takeover, t);
    CHECK(f.size() == frame_header_bytes + takeover_payload);
    stage_takeover out{7, 7, 7, 7, 7};
    REQUIRE(decode_stage_takeover(f, max_frame, out) == frame_error::none);
    CHECK(out == t);
  }
}

TEST_CASE("pipeline encoders replace out's contents and reuse its capacity", "[protocols][pipeline]") {
  SECTION("stage tensors, every micro-batch") {
    const auto big = sample_tensor(false, 8, {64, 4});
    const auto small = sample_tensor(true, 2, {3});
    bytes out;
    encode_stage_tensor(big, out);
    const bytes big_frame = out;
    const auto* data = out.data();
    const size_t cap = out.capacity();
    for (int i = 0; i < 4; ++i) {
      encode_stage_tensor(i % 2 ? big : small, out);
      CHECK(out.data() == data);
      CHECK(out.capacity() == cap);
    }
    encode_stage_tensor(small, out);
    CHECK(out == encoded(encode_stage_tensor, small));
    encode_stage_tensor(big, out);
    CHECK(out == big_frame);
    CHECK(out.data() == data);
  }
  SECTION("the other pipeline messages") {
    bytes out(100000, std::byte{0xee});
    const auto* data = out.data();
    const size_t cap = out.capacity();
    encode_stage_checkpoint(sample_checkpoint(), out);
    CHECK(out == encoded(encode_stage_checkpoint, sample_checkpoint()));
    encode_stage_heartbeat({1, 2, 3, 4, 5}, out);
    CHECK(out == encoded(encode_stage_heartbeat, stage_heartbeat{1, 2, 3, 4, 5}));
    encode_stage_takeover({1, 2, 3, 4, 5}, out);
    CHECK(out == encoded(encode_stage_takeover, stage_takeover{1, 2, 3, 4, 5}));
    CHECK(out.data() == data);
    CHECK(out.capacity() == cap);
  }
  SECTION("decoding into a reused message keeps its buffers") {
    const auto m = sample_tensor(false, 4, {16});
    const bytes f = encoded(encode_stage_tensor, m);
    stage_tensor out;
    REQUIRE(decode_stage_tensor(f, max_frame, out) == frame_error::none);
    const auto* values = out.values.data();
    for (int i = 0; i < 3; ++i) {
      REQUIRE(decode_stage_tensor(f, max_frame, out) == frame_error::none);
      CHECK(out.values.data() == values);
    }
    CHECK(out == m);
  }
}

// ---- frame-level rules -----------------------------------------------------------

TEST_CASE("pipeline decoders: another message type is unknown_type, oversize is too_large", "[protocols][pipeline]") {
  const auto codecs = pipeline_codecs();
  const auto frames = valid_frames();
  bytes hb;
  encode_heartbeat({1, 2, 3}, hb);
  for (size_t i = 0; i < codecs.size(); ++i) {
    INFO("decoder " << codecs[i].name);
    CHECK(codecs[i].decode(frames[i], max_frame) == frame_error::none);
    CHECK(codecs[i].decode(frames[i], frames[i].size()) == frame_error::none);
    CHECK(codecs[i].decode(frames[i], frames[i].size() - 1) == frame_error::too_large);
    CHECK(codecs[i].decode(frames[i], 16) == frame_error::too_large);
    for (size_t j = 0; j < frames.size(); ++j) {
      const bool both_tensors = i <= 1 && j <= 1;  // decode_stage_tensor takes both types
      if (j == i || both_tensors) continue;
      INFO("frame of " << codecs[j].name);
      CHECK(codecs[i].decode(frames[j], max_frame) == frame_error::unknown_type);
      CHECK(codecs[i].decode(reframe(codecs[j].type, payload_of(frames[i])), max_frame) == frame_error::unknown_type);
    }
    CHECK(codecs[i].decode(hb, max_frame) == frame_error::unknown_type);
    // A stage heartbeat payload under the membership heartbeat type is still that type.
    CHECK(codecs[i].decode(reframe(message_type::heartbeat, payload_of(frames[i])), max_frame) ==
          frame_error::unknown_type);
    bytes bad = frames[i];
    bad.back() ^= std::byte{1};
    CHECK(codecs[i].decode(bad, max_frame) == frame_error::bad_checksum);
    bad = frames[i];
    bad[0] = std::byte{'X'};
    CHECK(codecs[i].decode(bad, max_frame) == frame_error::bad_magic);
    bad = frames[i];
    bad[4] = std::byte{2};
    CHECK(codecs[i].decode(bad, max_frame) == frame_error::bad_version);
    bad = frames[i];
    bad.push_back(std::byte{0});
    CHECK(codecs[i].decode(bad, max_frame) == frame_error::length_mismatch);
  }
}

TEST_CASE("pipeline frames truncated at every byte boundary are rejected", "[protocols][pipeline]") {
  const auto codecs = pipeline_codecs();
  const auto frames = valid_frames();
  for (size_t i = 0; i < codecs.size(); ++i) {
    INFO("decoder " << codecs[i].name);
    const bytes& f = frames[i];
    // The frame cut short, header as sent: the frame layer rejects it.
    for (size_t n = 0; n < f.size(); ++n) {
      INFO("frame truncated to " << n << " of " << f.size());
      const frame_error e = codecs[i].decode(bytes(f.begin(), f.begin() + static_cast<ptrdiff_t>(n)), max_frame);
      REQUIRE(e == (n < frame_header_bytes ? frame_error::too_short : frame_error::length_mismatch));
    }
    // The payload cut short and resealed: the payload decoder rejects it.
    const bytes p = payload_of(f);
    for (size_t n = 0; n < p.size(); ++n) {
      INFO("payload truncated to " << n << " of " << p.size());
      REQUIRE(decode_payload(codecs[i], bytes(p.begin(), p.begin() + static_cast<ptrdiff_t>(n))) ==
              frame_error::undecodable);
    }
    for (size_t extra : {1, 3, 4, 8, 100}) {
      INFO("extra " << extra);
      bytes q = p;
      q.resize(q.size() + extra, std::byte{0});
      CHECK(decode_payload(codecs[i], q) == frame_error::undecodable);
    }
    // Cereal's endianness tag: 1 (little-endian) only.
    for (uint8_t tag : {uint8_t{0}, uint8_t{2}, uint8_t{0xff}}) {
      bytes q = p;
      q[0] = std::byte{tag};
      CHECK(decode_payload(codecs[i], q) == frame_error::undecodable);
    }
  }
}

// ---- stage tensors ---------------------------------------------------------------

TEST_CASE("stage tensors reject bad dims, dimensions, batch, total and microbatch", "[protocols][pipeline]") {
  SECTION("a well-formed baseline") {
    CHECK(decode_activation(tensor_payload(0, 2, 2, {3}, 2 + 6)) == frame_error::none);
    CHECK(decode_gradient(tensor_payload(0, 2, 2, {3}, 6)) == frame_error::none);
  }
  SECTION("dims 0 or over max_stage_dims") {
    CHECK(decode_activation(tensor_payload(0, 1, 1, {}, 2)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, 1, 1, {}, 1)) == frame_error::undecodable);
    CHECK(decode_activation(tensor_payload(0, 1, 1, {1, 1, 1, 1}, 2)) == frame_error::none);
    CHECK(decode_activation(tensor_payload(0, 1, 1, {1, 1, 1, 1, 1}, 2)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, 1, 1, {1, 1, 1, 1, 1}, 1)) == frame_error::undecodable);
    // dims says more or fewer words than the shape has.
    CHECK(decode_gradient(tensor_payload(0, 1, 1, {2, 3}, 6, 1)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, 1, 1, {2, 3}, 6, 3)) == frame_error::undecodable);
    bytes q = tensor_payload(0, 1, 1, {1}, 1);
    put_at(q, tensor_at::dims, uint8_t{255});
    CHECK(decode_gradient(q) == frame_error::undecodable);
  }
  SECTION("a dimension of 0 or over max_stage_dim, in every position") {
    for (size_t pos = 0; pos < 4; ++pos) {
      for (uint32_t bad : {0u, max_stage_dim + 1, 1u << 31, UINT32_MAX}) {
        INFO("position " << pos << " value " << bad);
        std::vector<uint32_t> shape = {2, 2, 2, 2};
        shape[pos] = bad;
        CHECK(decode_gradient(tensor_payload(0, 1, 1, shape, 16)) == frame_error::undecodable);
        CHECK(decode_activation(tensor_payload(0, 1, 1, shape, 17)) == frame_error::undecodable);
      }
    }
  }
  SECTION("batch 0, batch over total") {
    CHECK(decode_gradient(tensor_payload(0, 0, 5, {3}, 0)) == frame_error::undecodable);
    CHECK(decode_activation(tensor_payload(0, 0, 0, {3}, 0)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, 0, 0, {3}, 3)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, 3, 2, {1}, 3)) == frame_error::undecodable);
    CHECK(decode_activation(tensor_payload(0, 3, 2, {1}, 6)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, 1, 0, {1}, 1)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, UINT32_MAX, UINT32_MAX - 1, {1}, 1)) == frame_error::undecodable);
    CHECK(decode_gradient(tensor_payload(0, 3, 3, {1}, 3)) == frame_error::none);
    CHECK(decode_gradient(tensor_payload(0, 3, UINT32_MAX, {1}, 3)) == frame_error::none);
  }
  SECTION("microbatch over max_microbatches") {
    CHECK(decode_gradient(tensor_payload(0, 1, 1, {1}, 1)) == frame_error::none);
    CHECK(decode_gradient(tensor_payload(max_microbatches, 1, 1, {1}, 1)) == frame_error::none);
    CHECK(decode_gradient(tensor_payload(max_microbatches + 1, 1, 1, {1}, 1)) == frame_error::undecodable);
    CHECK(decode_activation(tensor_payload(max_microbatches + 1, 1, 1, {1}, 2)) == frame_error::undecodable);
    CHECK(decode_activation(tensor_payload(UINT16_MAX, 1, 1, {1}, 2)) == frame_error::undecodable);
  }
}

TEST_CASE("stage tensors need exactly the labels and values the header sizes", "[protocols][pipeline]") {
  struct shape_case { uint32_t batch; std::vector<uint32_t> shape; };
  for (const auto& c : {shape_case{1, {1}}, shape_case{3, {2, 5}}, shape_case{2, {3, 1, 2, 2}}}) {
    const uint64_t values = c.batch * product(c.shape);
    INFO("batch " << c.batch << " dims " << c.shape.size());
    CHECK(decode_activation(tensor_payload(0, c.batch, c.batch, c.shape, c.batch + values)) == frame_error::none);
    CHECK(decode_gradient(tensor_payload(0, c.batch, c.batch, c.shape, values)) == frame_error::none);
    for (int64_t off : {-2, -1, 1, 2}) {
      INFO("off by " << off << " words");
      const auto words = [&](uint64_t n) { return static_cast<uint64_t>(static_cast<int64_t>(n) + off); };
      CHECK(decode_activation(tensor_payload(0, c.batch, c.batch, c.shape, words(c.batch + values))) ==
            frame_error::undecodable);
      if (static_cast<int64_t>(values) + off >= 0)
        CHECK(decode_gradient(tensor_payload(0, c.batch, c.batch, c.shape, words(values))) == frame_error::undecodable);
    }
    // A gradient carries no labels: an activation's payload is batch words too long for it.
    CHECK(decode_gradient(tensor_payload(0, c.batch, c.batch, c.shape, c.batch + values)) == frame_error::undecodable);
    bytes q = tensor_payload(0, c.batch, c.batch, c.shape, values);
    q.pop_back();
    CHECK(decode_gradient(q) == frame_error::undecodable);
  }
}

TEST_CASE("stage tensors whose sizes overflow or exceed the bytes present allocate nothing", "[protocols][pipeline]") {
  // (checked_decode checks that the message holds no more than the frame's bytes.)
  const uint32_t M = max_stage_dim;
  // 2^80 elements per sample: overflows 64 bits if multiplied blindly.
  CHECK(decode_gradient(tensor_payload(0, 1, 1, {M, M, M, M}, 4)) == frame_error::undecodable);
  CHECK(decode_activation(tensor_payload(0, UINT32_MAX, UINT32_MAX, {M, M, M, M}, 8)) == frame_error::undecodable);
  // batch x per-sample = 2^32 x 2^20: fits 64 bits, far past the bytes.
  CHECK(decode_gradient(tensor_payload(0, UINT32_MAX, UINT32_MAX, {M}, 16)) == frame_error::undecodable);
  CHECK(decode_activation(tensor_payload(0, UINT32_MAX, UINT32_MAX, {1}, 16)) == frame_error::undecodable);
  // Products that wrap 32 bits to a small count that the bytes would match.
  CHECK(decode_gradient(tensor_payload(0, 1u << 16, 1u << 16, {1u << 16}, 0)) == frame_error::undecodable);
  CHECK(decode_gradient(tensor_payload(0, 1, 1, {1u << 16, (1u << 16) + 1}, 1u << 16)) == frame_error::undecodable);
  // A 4-byte count (4 x words) that wraps 32 bits: 2^30 + 1 words claimed, 4 bytes present.
  CHECK(decode_gradient(tensor_payload(0, 1u << 10, 1u << 10, {1u << 20}, 1)) == frame_error::undecodable);
  // A shape cut short by the end of the payload.
  bytes q = tensor_payload(0, 1, 1, {2, 2, 2}, 0);
  q.resize(q.size() - 6);
  CHECK(decode_gradient(q) == frame_error::undecodable);
}

TEST_CASE("stage tensors reject NaN and infinities in every position, and negative labels", "[protocols][pipeline]") {
  for (bool gradient : {false, true}) {
    const auto m = sample_tensor(gradient, 3, {2, 2});
    const bytes p = payload_of(encoded(encode_stage_tensor, m));
    const size_t first = tensor_at::shape + 4 * m.shape.size() + 4 * m.labels.size();
    REQUIRE(first + 4 * m.values.size() == p.size());
    const uint32_t bad_bits[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu, 0x7f800000u, 0xff800000u};
    for (size_t i = 0; i < m.values.size(); ++i)
      for (uint32_t bits : bad_bits) {
        INFO("gradient " << gradient << " value " << i << " bits " << bits);
        bytes q = p;
        put_at(q, first + 4 * i, bits);
        REQUIRE(decode_payload(pipeline_codecs()[gradient ? 1 : 0], q) == frame_error::undecodable);
      }
    // The largest finite values and subnormals are fine.
    for (float ok : {FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, -0.f}) {
      bytes q = p;
      put_at(q, first, ok);
      CHECK(decode_payload(pipeline_codecs()[gradient ? 1 : 0], q) == frame_error::none);
    }
  }
  const auto m = sample_tensor(false, 3, {2});
  const bytes p = payload_of(encoded(encode_stage_tensor, m));
  const size_t labels_at = tensor_at::shape + 4;
  for (size_t i = 0; i < 3; ++i) {
    for (int32_t bad : {-1, -2, INT32_MIN}) {
      INFO("label " << i << " = " << bad);
      bytes q = p;
      put_at(q, labels_at + 4 * i, bad);
      CHECK(decode_activation(q) == frame_error::undecodable);
    }
    for (int32_t ok : {0, 9, INT32_MAX}) {
      bytes q = p;
      put_at(q, labels_at + 4 * i, ok);
      CHECK(decode_activation(q) == frame_error::none);
    }
  }
  // The same word in a gradient is a value, not a label: a NaN bit pattern
  // is rejected there, -1 as a float bit pattern (NaN too) likewise.
  const auto g = sample_tensor(true, 3, {2});
  bytes q = payload_of(encoded(encode_stage_tensor, g));
  put_at(q, labels_at, int32_t{-1});
  CHECK(decode_gradient(q) == frame_error::undecodable);
}

// ---- checkpoints, heartbeats, take-overs ------------------------------------------

TEST_CASE("stage checkpoint frames need a non-empty blob of exactly the declared size", "[protocols][pipeline]") {
  const auto& c = pipeline_codecs()[2];
  const bytes p = payload_of(encoded(encode_stage_checkpoint, sample_checkpoint(10)));
  REQUIRE(decode_payload(c, p) == frame_error::none);
  auto with_len = [&](uint32_t len, size_t blob) {
    bytes q = p;
    q.resize(ckpt_at::blob + blob, std::byte{0x42});
    put_at(q, ckpt_at::bytes, len);
    return q;
  };
  CHECK(decode_payload(c, with_len(0, 0)) == frame_error::undecodable);  // empty blob
  CHECK(decode_payload(c, with_len(0, 10)) == frame_error::undecodable);
  CHECK(decode_payload(c, with_len(1, 1)) == frame_error::none);
  for (uint32_t len : {9u, 11u, 20u, UINT32_MAX}) {
    INFO("bytes " << len);
    CHECK(decode_payload(c, with_len(len, 10)) == frame_error::undecodable);
  }
  // Encoding an empty blob gives a frame the decoder refuses (the blob is the point).
  stage_checkpoint_msg out;
  CHECK(decode_stage_checkpoint(encoded(encode_stage_checkpoint, stage_checkpoint_msg{}), max_frame, out) ==
        frame_error::undecodable);
}

TEST_CASE("stage heartbeats and take-overs need exactly their fields", "[protocols][pipeline]") {
  for (size_t i : {size_t{3}, size_t{4}}) {
    const auto& c = pipeline_codecs()[i];
    INFO("decoder " << c.name);
    const bytes p = payload_of(valid_frames()[i]);
    REQUIRE(p.size() == heartbeat_payload);
    bytes q = p;
    q.pop_back();
    CHECK(decode_payload(c, q) == frame_error::undecodable);
    q = p;
    q.push_back(std::byte{0});
    CHECK(decode_payload(c, q) == frame_error::undecodable);
    CHECK(decode_payload(c, {}) == frame_error::undecodable);
  }
  // A membership heartbeat's payload (tag, u32, u64, u64) is 21 bytes too:
  // only the frame type tells the two apart (unknown_type, tested above).
  bytes hb;
  encode_heartbeat({1, 2, 3}, hb);
  CHECK(payload_of(hb).size() == heartbeat_payload);
  CHECK(decode_payload(pipeline_codecs()[3], payload_of(hb)) == frame_error::none);
  stage_heartbeat out;
  CHECK(decode_stage_heartbeat(hb, max_frame, out) == frame_error::unknown_type);
}

// ---- random corruption -------------------------------------------------------------

TEST_CASE("random corruption of pipeline frames never crashes or accepts a bad message", "[protocols][pipeline]") {
  const auto codecs = pipeline_codecs();
  const auto frames = valid_frames();
  Rng rng(1515);
  std::vector<int> accepted(codecs.size()), rejected(codecs.size());
  const uint32_t boundary[] = {0, 1, 2, 4, 5, max_microbatches, max_microbatches + 1u, 1u << 16, max_stage_dim,
                               max_stage_dim + 1, 1u << 31, UINT32_MAX};
  for (int trial = 0; trial < 5000; ++trial) {
    const size_t which = static_cast<size_t>(trial) % codecs.size();
    const auto& c = codecs[which];
    bytes p = payload_of(frames[which]);
    const uint64_t how = rng.below(3);
    if (how != 1) {
      const int flips = 1 + static_cast<int>(rng.below(4));
      for (int k = 0; k < flips; ++k) p[rng.below(p.size())] = static_cast<std::byte>(rng.below(256));
    }
    if (how == 1 && which <= 1) {
      const size_t fields[] = {tensor_at::microbatch, tensor_at::batch, tensor_at::total, tensor_at::shape};
      const size_t at = fields[rng.below(std::size(fields))];
      const uint32_t v = boundary[rng.below(std::size(boundary))];
      if (at == tensor_at::microbatch) put_at(p, at, static_cast<uint16_t>(v));
      else put_at(p, at, v);
    }
    if (how == 2 && rng.below(2) == 0) p.resize(rng.below(p.size() + 1));
    // Either direction's type, whatever the payload says.
    const message_type t = which <= 1 ? (rng.below(2) ? message_type::stage_gradient : message_type::stage_activation)
                                      : c.type;
    const frame_error e = c.decode(reframe(t, p), max_frame);  // checks invariants and held bytes
    CHECK((e == frame_error::none || e == frame_error::undecodable));
    (e == frame_error::none ? accepted : rejected)[which]++;
  }
  for (size_t i = 0; i < codecs.size(); ++i) {
    INFO("decoder " << codecs[i].name << " accepted " << accepted[i] << " rejected " << rejected[i]);
    CHECK(rejected[i] > 0);
  }
}
