// Verify messages (protocols/verify_messages.hpp): round trips of all six,
// every rejection rule of the header, and seeded random corruption.
#include <catch2/catch.hpp>
#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "reframe.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/verify_messages.hpp"
#include "tensor/rng.hpp"

using namespace murmur;
using murmur::testing::payload_of;
using murmur::testing::reframe;
using bytes = std::vector<std::byte>;

namespace {

// Room for the largest edge frames below (a tensor_reply with one dimension
// at max_verify_dim is about 12 MiB).
constexpr size_t max_frame = size_t{64} << 20;

template <class T>
void put_at(bytes& p, size_t at, T v) {
  std::memcpy(p.data() + at, &v, sizeof v);
}
template <class T>
T get_at(const bytes& p, size_t at) {
  T v;
  std::memcpy(&v, p.data() + at, sizeof v);
  return v;
}

// Payload offsets (the endianness tag is byte 0).
namespace commit_at { constexpr size_t layers = 1 + 4 + 8, digests = layers + 2; }
namespace request_at { constexpr size_t layer = 1 + 4 + 4 + 8, size = layer + 2 + 8; }
namespace claim_at { constexpr size_t layer = 1 + 4 + 4 + 8, size = layer + 2; }
namespace reply_at {
constexpr size_t prover = 1, step = 5, layer = 13, batch = 1 + 4 + 8 + 2 + 8, in = batch + 4, out = in + 4,
                 has_input = out + 4, arrays = has_input + 1;
}
namespace evidence_at {
constexpr size_t prover = 5, step = 9, layer = 17, check = 19, reply_bytes = 20, nested = 24;
}
namespace task_at { constexpr size_t m = 1 + 4 + 8, n = m + 4, k = n + 4, arrays = k + 4; }
namespace result_at { constexpr size_t m = 1 + 4 + 8, n = m + 4, arrays = n + 4; }

// The first n bytes of p followed by `extra` fill bytes (sized once: GCC 12
// warns, wrongly, about growing a vector built from a constant-size range).
bytes prefix(const bytes& p, size_t n, size_t extra = 0, std::byte fill = std::byte{0}) {
  bytes q(n + extra, fill);
  std::copy(p.begin(), p.begin() + static_cast<ptrdiff_t>(n), q.begin());
  return q;
}

float nan_f() { return std::numeric_limits<float>::quiet_NaN(); }
float inf_f() { return std::numeric_limits<float>::infinity(); }

transcript_commit sample_commit(size_t layers, uint64_t seed = 1) {
  Rng rng(seed);
  transcript_commit m;
  m.prover = 4;
  m.step = 321;
  m.layers.resize(layers);
  for (auto& l : m.layers)
    for (auto& d : l.d)
      for (auto& b : d) b = static_cast<uint8_t>(rng.below(256));
  return m;
}

std::vector<float> random_floats(Rng& rng, uint64_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

tensor_reply sample_reply(bool has_input, uint32_t batch = 2, uint32_t in = 3, uint32_t out = 2, uint64_t seed = 5) {
  Rng rng(seed);
  tensor_reply m;
  m.prover = 4;
  m.step = 321;
  m.layer = 1;
  m.nonce = 0x0123456789abcdefULL;
  m.batch = batch;
  m.in = in;
  m.out = out;
  m.has_input = has_input;
  for (uint32_t i = 0; i < batch; ++i) m.indices.push_back(static_cast<uint32_t>(rng.next_u64()));
  const uint64_t B = batch, I = in, O = out;
  if (has_input) m.input = random_floats(rng, B * I);
  m.weight = random_floats(rng, O * I);
  m.bias = random_floats(rng, O);
  m.output = random_floats(rng, B * O);
  m.output_grad = random_floats(rng, B * O);
  m.weight_grad = random_floats(rng, O * I);
  m.bias_grad = random_floats(rng, O);
  return m;
}

size_t reply_floats(const tensor_reply& r) {
  return r.input.size() + r.weight.size() + r.bias.size() + r.output.size() + r.output_grad.size() +
         r.weight_grad.size() + r.bias_grad.size();
}

evidence_msg sample_evidence(const tensor_reply& r, uint8_t check = 2) {
  evidence_msg e;
  e.accuser = 9;
  e.prover = r.prover;
  e.step = r.step;
  e.layer = r.layer;
  e.check = check;
  encode_tensor_reply(r, e.reply);
  return e;
}

matmul_task sample_task(uint32_t m, uint32_t n, uint32_t k, uint64_t seed = 7) {
  Rng rng(seed);
  matmul_task t;
  t.requester = 6;
  t.task = 4242;
  t.m = m;
  t.n = n;
  t.k = k;
  t.a = random_floats(rng, uint64_t{m} * k);
  t.b = random_floats(rng, uint64_t{k} * n);
  return t;
}

matmul_result sample_result(uint32_t m, uint32_t n, uint64_t seed = 9) {
  Rng rng(seed);
  matmul_result r;
  r.worker = 8;
  r.task = 4242;
  r.m = m;
  r.n = n;
  r.c = random_floats(rng, uint64_t{m} * n);
  return r;
}

// Stale contents, so every decode below also shows it replaces old state.
transcript_commit dirty_commit() { return sample_commit(9, 99); }
tensor_request dirty_request() { return {77, 88, 99, 11, 111}; }
tensor_reply dirty_reply() { return sample_reply(true, 3, 5, 4, 99); }
evidence_msg dirty_evidence() {
  evidence_msg e;
  e.accuser = e.prover = 77;
  e.step = 88;
  e.layer = 9;
  e.check = 3;
  e.reply.assign(50, std::byte{0xee});
  return e;
}
matmul_task dirty_task() { return sample_task(3, 2, 5, 99); }
matmul_result dirty_result() { return sample_result(4, 3, 99); }

template <class M>
bytes encoded(void (*encode)(const M&, bytes&), const M& m) {
  bytes f;
  encode(m, f);
  return f;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
}

bool same_bits(const tensor_reply& a, const tensor_reply& b) {
  return same_bits(a.input, b.input) && same_bits(a.weight, b.weight) && same_bits(a.bias, b.bias) &&
         same_bits(a.output, b.output) && same_bits(a.output_grad, b.output_grad) &&
         same_bits(a.weight_grad, b.weight_grad) && same_bits(a.bias_grad, b.bias_grad);
}

// Bytes a decoded message holds on the heap: a decoder that sized an array
// from a header field before checking it against the bytes present shows up
// here (or as bad_alloc) when handed a small frame that claims a huge one.
template <class T>
size_t held(const std::vector<T>& v) { return v.capacity() * sizeof(T); }
size_t held(const transcript_commit& m) { return held(m.layers); }
size_t held(const tensor_request&) { return 0; }
size_t held(const miss_claim&) { return 0; }
size_t held(const tensor_reply& m) {
  return held(m.indices) + held(m.input) + held(m.weight) + held(m.bias) + held(m.output) + held(m.output_grad) +
         held(m.weight_grad) + held(m.bias_grad);
}
size_t held(const evidence_msg& m) { return held(m.reply); }
size_t held(const matmul_task& m) { return held(m.a) + held(m.b); }
size_t held(const matmul_result& m) { return held(m.c); }

// The invariants of every accepted message.
std::string problems(const transcript_commit& m) {
  if (m.layers.empty() || m.layers.size() > max_commit_layers) return "layer count outside 1..max_commit_layers";
  return "";
}
std::string problems(const tensor_request& m) { return m.layer < max_commit_layers ? "" : "layer >= max_commit_layers"; }
std::string problems(const miss_claim& m) { return m.layer < max_commit_layers ? "" : "layer >= max_commit_layers"; }
bool dim_ok(uint32_t d) { return d >= 1 && d <= max_verify_dim; }
bool finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}
std::string problems(const tensor_reply& m) {
  if (m.layer >= max_commit_layers) return "layer >= max_commit_layers";
  if (!dim_ok(m.batch) || !dim_ok(m.in) || !dim_ok(m.out)) return "dimension out of range";
  const uint64_t B = m.batch, I = m.in, O = m.out;
  if (m.indices.size() != B) return "indices size";
  if (m.input.size() != (m.has_input ? B * I : 0)) return "input size";
  if (m.weight.size() != O * I || m.weight_grad.size() != O * I) return "weight sizes";
  if (m.bias.size() != O || m.bias_grad.size() != O) return "bias sizes";
  if (m.output.size() != B * O || m.output_grad.size() != B * O) return "output sizes";
  for (const auto* v : {&m.input, &m.weight, &m.bias, &m.output, &m.output_grad, &m.weight_grad, &m.bias_grad})
    if (!finite(*v)) return "non-finite value";
  return "";
}
std::string problems(const evidence_msg& m) {
  tensor_reply r;
  if (decode_tensor_reply(m.reply, max_frame, r) != frame_error::none) return "nested reply does not decode";
  if (r.prover != m.prover || r.step != m.step || r.layer != m.layer) return "nested reply names another prover/step/layer";
  return problems(r);
}
std::string problems(const matmul_task& m) {
  if (!dim_ok(m.m) || !dim_ok(m.n) || !dim_ok(m.k)) return "dimension out of range";
  if (m.a.size() != uint64_t{m.m} * m.k || m.b.size() != uint64_t{m.k} * m.n) return "array sizes";
  if (!finite(m.a) || !finite(m.b)) return "non-finite value";
  return "";
}
std::string problems(const matmul_result& m) {
  if (!dim_ok(m.m) || !dim_ok(m.n)) return "dimension out of range";
  if (m.c.size() != uint64_t{m.m} * m.n) return "array size";
  if (!finite(m.c)) return "non-finite value";
  return "";
}

frame_error decode_evidence3(std::span<const std::byte> f, size_t max, evidence_msg& m) {
  return decode_evidence(f, max, m);
}

// One row per message: how to decode a frame of it into a fresh message
// (held bytes and invariants checked), by type.
struct verify_codec {
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

std::vector<verify_codec> verify_codecs() {
  return {{"transcript_commit", message_type::transcript_commit, checked_decode(decode_transcript_commit)},
          {"tensor_request", message_type::tensor_request, checked_decode(decode_tensor_request)},
          {"tensor_reply", message_type::tensor_reply, checked_decode(decode_tensor_reply)},
          {"evidence", message_type::evidence, checked_decode(decode_evidence3)},
          {"matmul_task", message_type::matmul_task, checked_decode(decode_matmul_task)},
          {"matmul_result", message_type::matmul_result, checked_decode(decode_matmul_result)},
          {"miss_claim", message_type::miss_claim, checked_decode(decode_miss_claim)}};
}

// A valid frame of each verify message, in verify_codecs() order.
std::vector<bytes> valid_frames() {
  return {encoded(encode_transcript_commit, sample_commit(3)),
          encoded(encode_tensor_request, tensor_request{1, 4, 321, 2, 77}),
          encoded(encode_tensor_reply, sample_reply(true)),
          encoded(encode_evidence, sample_evidence(sample_reply(false))),
          encoded(encode_matmul_task, sample_task(2, 3, 4)),
          encoded(encode_matmul_result, sample_result(3, 2)),
          encoded(encode_miss_claim, miss_claim{1, 4, 321, 2})};
}

// Decodes a payload sealed as `t` with the row's decoder.
frame_error decode_payload(const verify_codec& c, const bytes& payload, size_t max = max_frame) {
  return c.decode(reframe(c.type, payload), max);
}

const verify_codec& codec_named(const std::vector<verify_codec>& cs, const std::string& name) {
  for (const auto& c : cs)
    if (c.name == name) return c;
  FAIL("no codec " << name);
  return cs.front();
}

}  // namespace

// ---- round trips ---------------------------------------------------------------

TEST_CASE("verify message types are 9..14, 20 and 24..28, and is_verify_message names exactly them",
          "[protocols][verify]") {
  CHECK(static_cast<uint16_t>(message_type::transcript_commit) == 9);
  CHECK(static_cast<uint16_t>(message_type::matmul_result) == 14);
  CHECK(static_cast<uint16_t>(message_type::miss_claim) == 20);
  CHECK(static_cast<uint16_t>(message_type::segment_commit) == 24);
  CHECK(static_cast<uint16_t>(message_type::segment_evidence) == 27);
  CHECK(static_cast<uint16_t>(message_type::segment_unavailable) == 28);
  for (uint16_t t = 1; t <= 30; ++t) {
    INFO("type " << t);
    CHECK(is_verify_message(static_cast<message_type>(t)) == ((t >= 9 && t <= 14) || t == 20 || (t >= 24 && t <= 28)));
  }
}

TEST_CASE("miss claims round-trip and need layer < max_commit_layers", "[protocols][verify]") {
  for (miss_claim m : {miss_claim{1, 2, 3, 0}, miss_claim{0, 0, 0, 0},
                       miss_claim{UINT32_MAX, UINT32_MAX, UINT64_MAX, max_commit_layers - 1}}) {
    const bytes f = encoded(encode_miss_claim, m);
    CHECK(f.size() == frame_header_bytes + claim_at::size);
    miss_claim out{77, 88, 99, 11};
    REQUIRE(decode_miss_claim(f, max_frame, out) == frame_error::none);
    CHECK(out == m);
    CHECK(encoded(encode_miss_claim, out) == f);
  }
  const auto codecs = verify_codecs();
  const auto& c = codec_named(codecs, "miss_claim");
  bytes p = payload_of(encoded(encode_miss_claim, miss_claim{1, 4, 321, 0}));
  for (uint16_t layer : {uint16_t{max_commit_layers}, uint16_t{UINT16_MAX}}) {
    INFO("layer " << layer);
    put_at(p, claim_at::layer, layer);
    CHECK(decode_payload(c, p) == frame_error::undecodable);
  }
}

TEST_CASE("transcript commits round-trip, 1 to max_commit_layers layers", "[protocols][verify]") {
  for (size_t layers : {size_t{1}, size_t{2}, size_t{7}, size_t{max_commit_layers}}) {
    INFO("layers " << layers);
    auto m = sample_commit(layers, layers);
    m.prover = UINT32_MAX;
    m.step = UINT64_MAX - layers;
    const bytes f = encoded(encode_transcript_commit, m);
    CHECK(f.size() == frame_header_bytes + 1 + 4 + 8 + 2 + layers * committed_count * 32);
    transcript_commit out = dirty_commit();
    REQUIRE(decode_transcript_commit(f, max_frame, out) == frame_error::none);
    CHECK(out == m);
    CHECK(encoded(encode_transcript_commit, out) == f);
  }
}

TEST_CASE("tensor requests round-trip", "[protocols][verify]") {
  for (tensor_request r : {tensor_request{1, 2, 3, 0, 4}, tensor_request{0, 0, 0, 0, 0},
                           tensor_request{UINT32_MAX, UINT32_MAX, UINT64_MAX, max_commit_layers - 1, UINT64_MAX}}) {
    const bytes f = encoded(encode_tensor_request, r);
    CHECK(f.size() == frame_header_bytes + request_at::size);
    tensor_request out = dirty_request();
    REQUIRE(decode_tensor_request(f, max_frame, out) == frame_error::none);
    CHECK(out == r);
  }
}

TEST_CASE("tensor replies round-trip bit for bit, with and without the input", "[protocols][verify]") {
  struct dims { uint32_t b, i, o; };
  for (dims d : {dims{1, 1, 1}, dims{1, 7, 3}, dims{5, 4, 6}, dims{64, 33, 10}, dims{2, 1, 17}}) {
    for (bool has_input : {true, false}) {
      INFO("batch " << d.b << " in " << d.i << " out " << d.o << " has_input " << has_input);
      auto r = sample_reply(has_input, d.b, d.i, d.o, d.b * 100 + d.i);
      r.layer = max_commit_layers - 1;
      r.weight[0] = -0.f;
      r.bias[0] = FLT_MAX;
      r.output[0] = -FLT_TRUE_MIN;
      r.bias_grad.back() = FLT_MIN;
      r.indices[0] = UINT32_MAX;
      const bytes f = encoded(encode_tensor_reply, r);
      CHECK(f.size() == frame_header_bytes + reply_at::arrays + 4 * (r.indices.size() + reply_floats(r)));
      tensor_reply out = dirty_reply();  // has_input true: a decode without input must clear it
      REQUIRE(decode_tensor_reply(f, max_frame, out) == frame_error::none);
      CHECK(out == r);
      CHECK(same_bits(out, r));
      CHECK(out.input.empty() == !has_input);
      CHECK(encoded(encode_tensor_reply, out) == f);
    }
  }
}

TEST_CASE("verify messages accept every dimension up to max_verify_dim", "[protocols][verify]") {
  SECTION("tensor reply, in = max_verify_dim") {
    auto r = sample_reply(true, 1, max_verify_dim, 1);
    const bytes f = encoded(encode_tensor_reply, r);
    tensor_reply out;
    REQUIRE(decode_tensor_reply(f, max_frame, out) == frame_error::none);
    CHECK(out == r);
  }
  SECTION("tensor reply, batch = max_verify_dim") {
    auto r = sample_reply(false, max_verify_dim, 1, 1);
    const bytes f = encoded(encode_tensor_reply, r);
    tensor_reply out;
    REQUIRE(decode_tensor_reply(f, max_frame, out) == frame_error::none);
    CHECK(out == r);
  }
  SECTION("matmul task, k = max_verify_dim") {
    auto t = sample_task(1, 1, max_verify_dim);
    const bytes f = encoded(encode_matmul_task, t);
    matmul_task out;
    REQUIRE(decode_matmul_task(f, max_frame, out) == frame_error::none);
    CHECK(out == t);
  }
  SECTION("matmul result, m = max_verify_dim") {
    auto r = sample_result(max_verify_dim, 1);
    const bytes f = encoded(encode_matmul_result, r);
    matmul_result out;
    REQUIRE(decode_matmul_result(f, max_frame, out) == frame_error::none);
    CHECK(out == r);
  }
}

TEST_CASE("verify messages reject max_verify_dim + 1 even with every byte present", "[protocols][verify]") {
  const uint32_t over = max_verify_dim + 1;
  SECTION("tensor reply, batch") {
    bytes p = payload_of(encoded(encode_tensor_reply, sample_reply(false, max_verify_dim, 1, 1)));
    tensor_reply out;
    REQUIRE(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::none);
    put_at(p, reply_at::batch, over);
    p.resize(p.size() + 4 * 3, std::byte{0});  // one more index, output row and output grad row
    CHECK(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::undecodable);
  }
  SECTION("tensor reply, in") {
    const auto r = sample_reply(true, 1, 1, 1);
    bytes p = prefix(payload_of(encoded(encode_tensor_reply, r)), reply_at::arrays, 4 * (1 + 3 * uint64_t{over} + 4));
    put_at(p, reply_at::in, over);
    tensor_reply out;
    CHECK(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::undecodable);
    put_at(p, reply_at::in, max_verify_dim);
    p.resize(p.size() - 4 * 3);
    CHECK(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::none);
  }
  SECTION("tensor reply, out") {
    const auto r = sample_reply(false, 1, 1, 1);
    bytes p = prefix(payload_of(encoded(encode_tensor_reply, r)), reply_at::arrays, 4 * (1 + 6 * uint64_t{over}));
    put_at(p, reply_at::out, over);
    tensor_reply out;
    CHECK(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::undecodable);
  }
  SECTION("matmul task, each dimension") {
    for (size_t at : {task_at::m, task_at::n, task_at::k}) {
      INFO("field at " << at);
      bytes p = prefix(payload_of(encoded(encode_matmul_task, sample_task(1, 1, 1))), task_at::arrays,
                       4 * (at == task_at::k ? 2 * uint64_t{over} : uint64_t{over} + 1));
      put_at(p, at, over);
      matmul_task out;
      CHECK(decode_matmul_task(reframe(message_type::matmul_task, p), max_frame, out) == frame_error::undecodable);
    }
  }
  SECTION("matmul result, each dimension") {
    for (size_t at : {result_at::m, result_at::n}) {
      INFO("field at " << at);
      bytes p = prefix(payload_of(encoded(encode_matmul_result, sample_result(1, 1))), result_at::arrays, 4 * uint64_t{over});
      put_at(p, at, over);
      matmul_result out;
      CHECK(decode_matmul_result(reframe(message_type::matmul_result, p), max_frame, out) == frame_error::undecodable);
      put_at(p, at, max_verify_dim);
      p.resize(p.size() - 4);
      CHECK(decode_matmul_result(reframe(message_type::matmul_result, p), max_frame, out) == frame_error::none);
    }
  }
}

TEST_CASE("evidence round-trips and hands back the nested reply", "[protocols][verify]") {
  for (bool has_input : {true, false}) {
    for (uint32_t batch : {1u, 4u}) {
      INFO("has_input " << has_input << " batch " << batch);
      auto r = sample_reply(has_input, batch, 3, 2, batch);
      r.prover = 12;
      r.step = UINT64_MAX;
      r.layer = max_commit_layers - 1;
      const auto e = sample_evidence(r, static_cast<uint8_t>(batch == 1 ? 0 : UINT8_MAX));
      const bytes f = encoded(encode_evidence, e);
      CHECK(f.size() == frame_header_bytes + evidence_at::nested + e.reply.size());
      evidence_msg out = dirty_evidence();
      REQUIRE(decode_evidence(f, max_frame, out) == frame_error::none);
      CHECK(out == e);
      CHECK(encoded(encode_evidence, out) == f);
      evidence_msg out2 = dirty_evidence();
      tensor_reply nested = dirty_reply();
      REQUIRE(decode_evidence(f, max_frame, out2, &nested) == frame_error::none);
      CHECK(out2 == e);
      CHECK(nested == r);
      CHECK(same_bits(nested, r));
    }
  }
}

TEST_CASE("matmul tasks and results round-trip", "[protocols][verify]") {
  struct dims { uint32_t m, n, k; };
  for (dims d : {dims{1, 1, 1}, dims{3, 5, 2}, dims{17, 9, 33}, dims{1, 64, 1}}) {
    INFO("m " << d.m << " n " << d.n << " k " << d.k);
    auto t = sample_task(d.m, d.n, d.k, d.m + d.k);
    t.a[0] = -0.f;
    t.b.back() = -FLT_MAX;
    t.requester = UINT32_MAX;
    t.task = UINT64_MAX;
    const bytes ft = encoded(encode_matmul_task, t);
    CHECK(ft.size() == frame_header_bytes + task_at::arrays + 4 * (t.a.size() + t.b.size()));
    matmul_task tout = dirty_task();
    REQUIRE(decode_matmul_task(ft, max_frame, tout) == frame_error::none);
    CHECK(tout == t);
    CHECK((same_bits(tout.a, t.a) && same_bits(tout.b, t.b)));

    auto r = sample_result(d.m, d.n, d.n);
    r.c[0] = FLT_TRUE_MIN;
    const bytes fr = encoded(encode_matmul_result, r);
    CHECK(fr.size() == frame_header_bytes + result_at::arrays + 4 * r.c.size());
    matmul_result rout = dirty_result();
    REQUIRE(decode_matmul_result(fr, max_frame, rout) == frame_error::none);
    CHECK(rout == r);
    CHECK(same_bits(rout.c, r.c));
  }
}

// ---- frame-level rules -----------------------------------------------------------

TEST_CASE("verify decoders: another message type is unknown_type, oversize is too_large", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  auto frames = valid_frames();
  bytes hb;
  encode_heartbeat({1, 2, 3}, hb);
  for (size_t i = 0; i < codecs.size(); ++i) {
    INFO("decoder " << codecs[i].name);
    CHECK(codecs[i].decode(frames[i], max_frame) == frame_error::none);
    CHECK(codecs[i].decode(frames[i], frames[i].size()) == frame_error::none);
    CHECK(codecs[i].decode(frames[i], frames[i].size() - 1) == frame_error::too_large);
    CHECK(codecs[i].decode(frames[i], 16) == frame_error::too_large);
    for (size_t j = 0; j < frames.size(); ++j) {
      if (j == i) continue;
      INFO("frame of " << codecs[j].name);
      CHECK(codecs[i].decode(frames[j], max_frame) == frame_error::unknown_type);
      // The right payload under another type's header is still another type.
      CHECK(codecs[i].decode(reframe(codecs[j].type, payload_of(frames[i])), max_frame) == frame_error::unknown_type);
    }
    CHECK(codecs[i].decode(hb, max_frame) == frame_error::unknown_type);
    // Frame damage is reported as decode_frame reports it, never as undecodable.
    bytes bad = frames[i];
    bad.back() ^= std::byte{1};
    CHECK(codecs[i].decode(bad, max_frame) == frame_error::bad_checksum);
    bad = frames[i];
    bad.pop_back();
    CHECK(codecs[i].decode(bad, max_frame) == frame_error::length_mismatch);
    CHECK(codecs[i].decode(bytes(frames[i].begin(), frames[i].begin() + 10), max_frame) == frame_error::too_short);
  }
}

TEST_CASE("verify decoders reject every truncation, extra bytes and a big-endian tag", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto frames = valid_frames();
  for (size_t i = 0; i < codecs.size(); ++i) {
    INFO("decoder " << codecs[i].name);
    const bytes p = payload_of(frames[i]);
    for (size_t n = 0; n < p.size(); ++n) {
      INFO("truncated to " << n << " of " << p.size());
      REQUIRE(decode_payload(codecs[i], bytes(p.begin(), p.begin() + static_cast<ptrdiff_t>(n))) ==
              frame_error::undecodable);
    }
    for (size_t extra : {1, 3, 4, 8, 224}) {
      INFO("extra " << extra);
      bytes q = p;
      q.resize(q.size() + extra, std::byte{0});
      CHECK(decode_payload(codecs[i], q) == frame_error::undecodable);
    }
    bytes q = p;
    q[0] = std::byte{0};
    CHECK(decode_payload(codecs[i], q) == frame_error::undecodable);
    q[0] = std::byte{2};
    CHECK(decode_payload(codecs[i], q) == frame_error::undecodable);
  }
}

// ---- transcript commits and requests -------------------------------------------------

TEST_CASE("transcript commits need 1..max_commit_layers layers and exactly their digests", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto& c = codec_named(codecs, "transcript_commit");
  const bytes p = payload_of(encoded(encode_transcript_commit, sample_commit(3)));
  auto with_layers = [&](uint16_t layers, size_t digests_bytes) {
    bytes q = prefix(p, commit_at::digests, digests_bytes, std::byte{0x5a});
    put_at(q, commit_at::layers, layers);
    return q;
  };
  constexpr size_t per_layer = committed_count * 32;
  CHECK(decode_payload(c, with_layers(3, 3 * per_layer)) == frame_error::none);
  CHECK(decode_payload(c, with_layers(max_commit_layers, max_commit_layers * per_layer)) == frame_error::none);
  CHECK(decode_payload(c, with_layers(0, 0)) == frame_error::undecodable);
  CHECK(decode_payload(c, with_layers(0, per_layer)) == frame_error::undecodable);
  CHECK(decode_payload(c, with_layers(max_commit_layers + 1, (max_commit_layers + 1) * per_layer)) ==
        frame_error::undecodable);
  CHECK(decode_payload(c, with_layers(UINT16_MAX, per_layer)) == frame_error::undecodable);
  CHECK(decode_payload(c, with_layers(2, 3 * per_layer)) == frame_error::undecodable);  // count lies low
  CHECK(decode_payload(c, with_layers(4, 3 * per_layer)) == frame_error::undecodable);  // count lies high
  CHECK(decode_payload(c, with_layers(3, 3 * per_layer - 1)) == frame_error::undecodable);
  CHECK(decode_payload(c, with_layers(3, 3 * per_layer + 1)) == frame_error::undecodable);
}

TEST_CASE("tensor requests need layer < max_commit_layers", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto& c = codec_named(codecs, "tensor_request");
  bytes p = payload_of(encoded(encode_tensor_request, tensor_request{1, 4, 321, 0, 77}));
  for (uint16_t layer : {uint16_t{0}, uint16_t{max_commit_layers - 1}}) {
    put_at(p, request_at::layer, layer);
    CHECK(decode_payload(c, p) == frame_error::none);
  }
  for (uint16_t layer : {uint16_t{max_commit_layers}, uint16_t{max_commit_layers + 1}, uint16_t{UINT16_MAX}}) {
    INFO("layer " << layer);
    put_at(p, request_at::layer, layer);
    CHECK(decode_payload(c, p) == frame_error::undecodable);
  }
}

// ---- tensor replies ------------------------------------------------------------------

TEST_CASE("tensor replies reject bad dimensions, layers and has_input", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto& c = codec_named(codecs, "tensor_reply");
  const bytes p = payload_of(encoded(encode_tensor_reply, sample_reply(true)));
  REQUIRE(decode_payload(c, p) == frame_error::none);
  for (size_t at : {reply_at::batch, reply_at::in, reply_at::out}) {
    for (uint32_t bad : {0u, max_verify_dim + 1, 1u << 31, UINT32_MAX}) {
      INFO("field at " << at << " = " << bad);
      bytes q = p;
      put_at(q, at, bad);
      CHECK(decode_payload(c, q) == frame_error::undecodable);
    }
  }
  for (uint16_t layer : {uint16_t{max_commit_layers}, uint16_t{UINT16_MAX}}) {
    bytes q = p;
    put_at(q, reply_at::layer, layer);
    CHECK(decode_payload(c, q) == frame_error::undecodable);
  }
  {
    bytes q = p;
    put_at(q, reply_at::layer, uint16_t{max_commit_layers - 1});
    CHECK(decode_payload(c, q) == frame_error::none);
  }
  for (uint8_t has : {uint8_t{2}, uint8_t{0x80}, uint8_t{0xff}}) {
    INFO("has_input " << int(has));
    bytes q = p;
    put_at(q, reply_at::has_input, has);
    CHECK(decode_payload(c, q) == frame_error::undecodable);
  }
  // has_input 0 over a payload that carries the input: batch x in floats too many.
  {
    bytes q = p;
    put_at(q, reply_at::has_input, uint8_t{0});
    CHECK(decode_payload(c, q) == frame_error::undecodable);
  }
  // has_input 1 over a payload without it: too few.
  {
    bytes q = payload_of(encoded(encode_tensor_reply, sample_reply(false)));
    REQUIRE(decode_payload(c, q) == frame_error::none);
    put_at(q, reply_at::has_input, uint8_t{1});
    CHECK(decode_payload(c, q) == frame_error::undecodable);
  }
}

TEST_CASE("tensor replies reject a NaN or infinity in every array position", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto& c = codec_named(codecs, "tensor_reply");
  for (bool has_input : {true, false}) {
    const auto r = sample_reply(has_input, 2, 2, 2);
    const bytes p = payload_of(encoded(encode_tensor_reply, r));
    const size_t first = reply_at::arrays + 4 * r.indices.size();
    const size_t floats = reply_floats(r);
    REQUIRE(first + 4 * floats == p.size());
    const uint32_t bad_bits[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu, 0x7f800000u, 0xff800000u};
    for (size_t i = 0; i < floats; ++i)
      for (uint32_t bits : bad_bits) {
        INFO("has_input " << has_input << " float " << i << " bits " << bits);
        bytes q = p;
        put_at(q, first + 4 * i, bits);
        REQUIRE(decode_payload(c, q) == frame_error::undecodable);
      }
    // Sample indices are not floats: any value is fine there.
    bytes q = p;
    put_at(q, reply_at::arrays, 0x7fc00000u);
    CHECK(decode_payload(c, q) == frame_error::none);
  }
}

TEST_CASE("tensor replies whose sizes overflow 32 bits or exceed the bytes present allocate nothing", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto& c = codec_named(codecs, "tensor_reply");
  const bytes p = payload_of(encoded(encode_tensor_reply, sample_reply(true, 1, 1, 1)));
  auto head = [&](uint32_t b, uint32_t i, uint32_t o, uint8_t has, size_t array_bytes) {
    bytes q = prefix(p, reply_at::arrays, array_bytes);  // zeros: valid floats and indices
    put_at(q, reply_at::batch, b);
    put_at(q, reply_at::in, i);
    put_at(q, reply_at::out, o);
    put_at(q, reply_at::has_input, has);
    return q;
  };
  // Claims of terabytes against a few bytes (checked_decode checks nothing was allocated).
  CHECK(decode_payload(c, head(max_verify_dim, max_verify_dim, max_verify_dim, 1, 64)) == frame_error::undecodable);
  CHECK(decode_payload(c, head(max_verify_dim, max_verify_dim, max_verify_dim, 0, 0)) == frame_error::undecodable);
  CHECK(decode_payload(c, head(UINT32_MAX, UINT32_MAX, UINT32_MAX, 1, 64)) == frame_error::undecodable);
  // batch x in = 2^32 with the input: in 32-bit arithmetic that term wraps to 0
  // and the other arrays (B + 2*O*I + 2*O + 2*B*O u32s) would look complete.
  {
    const uint32_t B = 1u << 16, I = 1u << 16, O = 1;
    const uint64_t wrapped = uint64_t{B} + 2ull * O * I + 2ull * O + 2ull * B * O;
    CHECK(decode_payload(c, head(B, I, O, 1, 4 * wrapped)) == frame_error::undecodable);
    // Without the input the same dimensions are a valid (if large) reply.
    CHECK(decode_payload(c, head(B, I, O, 0, 4 * wrapped)) == frame_error::none);
  }
  // A byte count that wraps 32 bits: 4 * (B + 2*B*O + 2*O*I + 2*O) = 2^32 + small.
  {
    const uint32_t B = 1, I = (1u << 19) - 1, O = 1u << 11;  // dims within max_verify_dim
    const uint64_t need = uint64_t{B} + 2ull * O * I + 2ull * O + 2ull * B * O;
    const uint64_t wrapped_bytes = (4 * need) & 0xffffffffu;
    REQUIRE(4 * need > (uint64_t{1} << 32));
    if (wrapped_bytes <= max_frame / 2)
      CHECK(decode_payload(c, head(B, I, O, 0, wrapped_bytes)) == frame_error::undecodable);
  }
  // One array short or long by a float, for a few shapes.
  const std::array<uint32_t, 3> shapes[] = {{1, 1, 1}, {3, 2, 5}, {7, 1, 2}};
  for (auto [b, i, o] : shapes) {
    for (uint8_t has : {uint8_t{0}, uint8_t{1}}) {
      const uint64_t need = b + (has ? uint64_t{b} * i : 0) + 2ull * o * i + 2ull * o + 2ull * b * o;
      INFO("dims " << b << " " << i << " " << o << " has " << int(has));
      CHECK(decode_payload(c, head(b, i, o, has, 4 * need)) == frame_error::none);
      CHECK(decode_payload(c, head(b, i, o, has, 4 * need - 4)) == frame_error::undecodable);
      CHECK(decode_payload(c, head(b, i, o, has, 4 * need + 4)) == frame_error::undecodable);
      CHECK(decode_payload(c, head(b, i, o, has, 4 * need - 1)) == frame_error::undecodable);
    }
  }
}

// ---- evidence ------------------------------------------------------------------------

TEST_CASE("evidence is rejected when its nested frame is invalid or names another reply", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto& c = codec_named(codecs, "evidence");
  const auto r = sample_reply(true, 2, 2, 3);
  const auto e = sample_evidence(r);
  const bytes p = payload_of(encoded(encode_evidence, e));
  REQUIRE(decode_payload(c, p) == frame_error::none);
  auto with_nested = [&](const bytes& nested, std::optional<uint32_t> len = std::nullopt) {
    bytes q = prefix(p, evidence_at::nested, nested.size());
    put_at(q, evidence_at::reply_bytes, len.value_or(static_cast<uint32_t>(nested.size())));
    std::copy(nested.begin(), nested.end(), q.begin() + evidence_at::nested);
    return q;
  };
  auto expect_rejected = [&](const bytes& q) {
    CHECK(decode_payload(c, q) == frame_error::undecodable);
    evidence_msg m;
    tensor_reply nested;
    CHECK(decode_evidence(reframe(message_type::evidence, q), max_frame, m, &nested) == frame_error::undecodable);
  };
  SECTION("header fields that disagree with the nested reply") {
    bytes q = p;
    put_at(q, evidence_at::prover, r.prover + 1);
    expect_rejected(q);
    q = p;
    put_at(q, evidence_at::step, r.step - 1);
    expect_rejected(q);
    q = p;
    put_at(q, evidence_at::layer, static_cast<uint16_t>(r.layer + 1));
    expect_rejected(q);
    // The check byte is the accuser's claim; any value decodes.
    q = p;
    put_at(q, evidence_at::check, uint8_t{0xff});
    CHECK(decode_payload(c, q) == frame_error::none);
  }
  SECTION("a nested reply for another prover, step or layer (header matching it)") {
    for (int field = 0; field < 3; ++field) {
      auto other = r;
      if (field == 0) other.prover = 5;
      if (field == 1) other.step = 322;
      if (field == 2) other.layer = 0;
      expect_rejected(with_nested(encoded(encode_tensor_reply, other)));
    }
  }
  SECTION("reply_bytes that disagrees with the bytes present") {
    const bytes nested = e.reply;
    const auto n = static_cast<uint32_t>(nested.size());
    for (uint32_t len : {0u, n - 1, n + 1, n * 2, UINT32_MAX}) {
      INFO("reply_bytes " << len);
      expect_rejected(with_nested(nested, len));
    }
    expect_rejected(with_nested({}));
  }
  SECTION("a damaged nested frame") {
    bytes n = e.reply;
    n.back() ^= std::byte{0x10};  // bad checksum
    expect_rejected(with_nested(n));
    n = e.reply;
    n.pop_back();
    expect_rejected(with_nested(n));
    n = e.reply;
    n.push_back(std::byte{0});
    expect_rejected(with_nested(n));
    n = e.reply;
    n[0] = std::byte{'X'};
    expect_rejected(with_nested(n));
    expect_rejected(with_nested(bytes(e.reply.begin(), e.reply.begin() + frame_header_bytes)));
  }
  SECTION("a sound nested frame of another type or with a bad payload") {
    expect_rejected(with_nested(encoded(encode_tensor_request, tensor_request{9, r.prover, r.step, r.layer, 1})));
    expect_rejected(with_nested(reframe(message_type::tensor_request, payload_of(e.reply))));
    // NaN in the nested output grad, and a nested has_input 2, both resealed.
    bytes np = payload_of(e.reply);
    put_at(np, np.size() - 4 * (r.bias_grad.size() + r.weight_grad.size() + 1), nan_f());
    expect_rejected(with_nested(reframe(message_type::tensor_reply, np)));
    np = payload_of(e.reply);
    put_at(np, reply_at::has_input, uint8_t{2});
    expect_rejected(with_nested(reframe(message_type::tensor_reply, np)));
    np = payload_of(e.reply);
    put_at(np, reply_at::out, max_verify_dim + 1);
    expect_rejected(with_nested(reframe(message_type::tensor_reply, np)));
    // An evidence nested in an evidence.
    expect_rejected(with_nested(encoded(encode_evidence, e)));
  }
}

// ---- matmul ----------------------------------------------------------------------------

TEST_CASE("matmul tasks and results reject bad dimensions, sizes and non-finite values", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto& ct = codec_named(codecs, "matmul_task");
  const auto& cr = codec_named(codecs, "matmul_result");
  auto task = [](uint32_t m, uint32_t n, uint32_t k, size_t floats) {
    bytes q = payload_of(encoded(encode_matmul_task, sample_task(1, 1, 1)));
    q.resize(task_at::arrays);
    put_at(q, task_at::m, m);
    put_at(q, task_at::n, n);
    put_at(q, task_at::k, k);
    q.resize(q.size() + 4 * floats, std::byte{0});
    return q;
  };
  auto result = [](uint32_t m, uint32_t n, size_t floats) {
    bytes q = payload_of(encoded(encode_matmul_result, sample_result(1, 1)));
    q.resize(result_at::arrays);
    put_at(q, result_at::m, m);
    put_at(q, result_at::n, n);
    q.resize(q.size() + 4 * floats, std::byte{0});
    return q;
  };
  SECTION("dimensions") {
    CHECK(decode_payload(ct, task(2, 3, 4, 8 + 12)) == frame_error::none);
    CHECK(decode_payload(cr, result(2, 3, 6)) == frame_error::none);
    for (uint32_t bad : {0u, max_verify_dim + 1, UINT32_MAX}) {
      INFO("bad dimension " << bad);
      CHECK(decode_payload(ct, task(bad, 1, 1, 2)) == frame_error::undecodable);
      CHECK(decode_payload(ct, task(1, bad, 1, 2)) == frame_error::undecodable);
      CHECK(decode_payload(ct, task(1, 1, bad, 2)) == frame_error::undecodable);
      CHECK(decode_payload(cr, result(bad, 1, 1)) == frame_error::undecodable);
      CHECK(decode_payload(cr, result(1, bad, 1)) == frame_error::undecodable);
    }
    CHECK(decode_payload(ct, task(0, 0, 0, 0)) == frame_error::undecodable);
    CHECK(decode_payload(cr, result(0, 0, 0)) == frame_error::undecodable);
  }
  SECTION("sizes") {
    CHECK(decode_payload(ct, task(2, 3, 4, 19)) == frame_error::undecodable);
    CHECK(decode_payload(ct, task(2, 3, 4, 21)) == frame_error::undecodable);
    CHECK(decode_payload(cr, result(2, 3, 5)) == frame_error::undecodable);
    CHECK(decode_payload(cr, result(2, 3, 7)) == frame_error::undecodable);
    bytes q = result(2, 3, 6);
    q.pop_back();
    CHECK(decode_payload(cr, q) == frame_error::undecodable);
  }
  SECTION("claims far past the bytes present, and products that wrap 32 bits") {
    // (checked_decode also checks that nothing was allocated for them.)
    CHECK(decode_payload(ct, task(max_verify_dim, max_verify_dim, max_verify_dim, 4)) == frame_error::undecodable);
    CHECK(decode_payload(cr, result(max_verify_dim, max_verify_dim, 4)) == frame_error::undecodable);
    // m x n = 2^32: wraps to 0 floats in 32 bits.
    CHECK(decode_payload(cr, result(1u << 16, 1u << 16, 0)) == frame_error::undecodable);
    // m x n = 2^32 + 2^16: wraps to 2^16 floats.
    CHECK(decode_payload(cr, result(1u << 16, (1u << 16) + 1, 1u << 16)) == frame_error::undecodable);
    // 4 x m x n = 2^32 + 2^17: a 32-bit byte count wraps to 2^17 bytes.
    CHECK(decode_payload(cr, result(1u << 15, (1u << 15) + 1, 1u << 15)) == frame_error::undecodable);
    // m x k = 2^32 (wraps to 0) and k x n = 2^16 floats present.
    CHECK(decode_payload(ct, task(1u << 16, 1, 1u << 16, 1u << 16)) == frame_error::undecodable);
  }
  SECTION("NaN and infinities in every position") {
    const auto t = sample_task(2, 2, 3);
    const bytes pt = payload_of(encoded(encode_matmul_task, t));
    const auto r = sample_result(3, 2);
    const bytes pr = payload_of(encoded(encode_matmul_result, r));
    for (float bad : {nan_f(), -nan_f(), inf_f(), -inf_f()}) {
      for (size_t i = 0; i < t.a.size() + t.b.size(); ++i) {
        INFO("task float " << i);
        bytes q = pt;
        put_at(q, task_at::arrays + 4 * i, bad);
        CHECK(decode_payload(ct, q) == frame_error::undecodable);
      }
      for (size_t i = 0; i < r.c.size(); ++i) {
        INFO("result float " << i);
        bytes q = pr;
        put_at(q, result_at::arrays + 4 * i, bad);
        CHECK(decode_payload(cr, q) == frame_error::undecodable);
      }
    }
  }
}

// ---- random corruption -------------------------------------------------------------------

TEST_CASE("random corruption of verify frames never crashes or accepts a bad message", "[protocols][verify]") {
  const auto codecs = verify_codecs();
  const auto frames = valid_frames();
  Rng rng(2024);
  std::vector<int> accepted(codecs.size()), rejected(codecs.size());
  // Header fields worth hitting with boundary values (payload offsets of u32 sizes).
  const std::vector<std::vector<size_t>> size_fields = {
      {commit_at::layers}, {request_at::layer}, {reply_at::batch, reply_at::in, reply_at::out},
      {evidence_at::reply_bytes}, {task_at::m, task_at::n, task_at::k}, {result_at::m, result_at::n},
      {claim_at::layer}};
  const uint32_t boundary[] = {0, 1, 2, 63, 64, 65, 1u << 16, max_verify_dim, max_verify_dim + 1, 1u << 31, UINT32_MAX};
  for (int trial = 0; trial < 6000; ++trial) {
    const size_t which = static_cast<size_t>(trial) % codecs.size();
    const auto& c = codecs[which];
    bytes p = payload_of(frames[which]);
    const uint64_t how = rng.below(4);
    if (how == 0 || how == 3) {  // byte flips
      const int flips = 1 + static_cast<int>(rng.below(4));
      for (int k = 0; k < flips; ++k) p[rng.below(p.size())] = static_cast<std::byte>(rng.below(256));
    }
    if (how == 1) {  // a boundary value into a size field
      const auto& fs = size_fields[which];
      const size_t at = fs[rng.below(fs.size())];
      const uint32_t v = boundary[rng.below(std::size(boundary))];
      if (which <= 1 || which == 6) put_at(p, at, static_cast<uint16_t>(v));
      else put_at(p, at, v);
    }
    if (how == 2 && which == 3) {  // evidence: damage the nested payload and reseal it
      bytes nested(p.begin() + evidence_at::nested, p.end());
      bytes np = payload_of(nested);
      const int flips = 1 + static_cast<int>(rng.below(3));
      for (int k = 0; k < flips; ++k) np[rng.below(np.size())] = static_cast<std::byte>(rng.below(256));
      if (rng.below(4) == 0) np.resize(rng.below(np.size() + 8));
      nested = reframe(message_type::tensor_reply, np);
      p.resize(evidence_at::nested);
      put_at(p, evidence_at::reply_bytes, static_cast<uint32_t>(nested.size()));
      p.insert(p.end(), nested.begin(), nested.end());
    } else if (how == 2) {  // one non-finite float somewhere in the arrays
      put_at(p, p.size() - 4 * (1 + rng.below(3)), rng.below(2) ? nan_f() : -inf_f());
    }
    if (how == 3 || rng.below(8) == 0) p.resize(rng.below(p.size() + 8));
    const bytes f = reframe(c.type, p);
    INFO("decoder " << c.name << " trial " << trial);
    const frame_error e = c.decode(f, max_frame);  // checks held bytes and invariants
    REQUIRE((e == frame_error::none || e == frame_error::undecodable));
    (e == frame_error::none ? accepted : rejected)[which]++;
    // Every decoder but this one says unknown_type; frame damage is never undecodable.
    for (size_t j = 0; j < codecs.size(); ++j)
      if (j != which) REQUIRE(codecs[j].decode(f, max_frame) == frame_error::unknown_type);
    bytes damaged = f;
    damaged[frame_header_bytes - 1] ^= std::byte{0x40};
    REQUIRE(c.decode(damaged, max_frame) == frame_error::bad_checksum);
  }
  for (size_t i = 0; i < codecs.size(); ++i) {
    INFO("decoder " << codecs[i].name);
    CHECK(accepted[i] > 0);
    CHECK(rejected[i] > 0);
  }
}

TEST_CASE("accepted corrupted verify frames re-encode to themselves", "[protocols][verify]") {
  // Every payload field is fixed-width behind the tag, so an accepted frame
  // has exactly one encoding.
  const auto frames = valid_frames();
  Rng rng(77);
  int checked = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const size_t which = static_cast<size_t>(trial) % frames.size();
    bytes p = payload_of(frames[which]);
    p[rng.below(p.size())] = static_cast<std::byte>(rng.below(256));
    const auto type = which == 6 ? message_type::miss_claim : static_cast<message_type>(9 + which);
    const bytes f = reframe(type, p);
    bytes again;
    bool ok = false;
    switch (type) {
      case message_type::transcript_commit: {
        transcript_commit m;
        if ((ok = decode_transcript_commit(f, max_frame, m) == frame_error::none)) encode_transcript_commit(m, again);
        break;
      }
      case message_type::tensor_request: {
        tensor_request m;
        if ((ok = decode_tensor_request(f, max_frame, m) == frame_error::none)) encode_tensor_request(m, again);
        break;
      }
      case message_type::tensor_reply: {
        tensor_reply m;
        if ((ok = decode_tensor_reply(f, max_frame, m) == frame_error::none)) encode_tensor_reply(m, again);
        break;
      }
      case message_type::evidence: {
        evidence_msg m;
        if ((ok = decode_evidence(f, max_frame, m) == frame_error::none)) encode_evidence(m, again);
        break;
      }
      case message_type::matmul_task: {
        matmul_task m;
        if ((ok = decode_matmul_task(f, max_frame, m) == frame_error::none)) encode_matmul_task(m, again);
        break;
      }
      case message_type::miss_claim: {
        miss_claim m;
        if ((ok = decode_miss_claim(f, max_frame, m) == frame_error::none)) encode_miss_claim(m, again);
        break;
      }
      default: {
        matmul_result m;
        if ((ok = decode_matmul_result(f, max_frame, m) == frame_error::none)) encode_matmul_result(m, again);
        break;
      }
    }
    if (!ok) continue;
    ++checked;
    INFO("type " << static_cast<int>(type) << " trial " << trial);
    REQUIRE(again == f);
  }
  CHECK(checked > 1000);
}
