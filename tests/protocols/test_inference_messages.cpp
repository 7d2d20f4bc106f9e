// Inference messages (protocols/inference_messages.hpp): round trips of
// requests, activations and replies (ok and bad_input); the rejection rules
// of the header; truncation at every byte; reuse of the output buffer.
#include <catch2/catch.hpp>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "reframe.hpp"
#include "protocols/curve_keys.hpp"
#include "protocols/inference_messages.hpp"

using namespace murmur;
using murmur::testing::payload_of;
using murmur::testing::reframe;
using bytes = std::vector<std::byte>;

namespace {

constexpr size_t max_frame = size_t{1} << 20;
// Payload offsets (the endianness tag is byte 0).
constexpr size_t status_at = 1 + 8 + 2, batch_at = status_at + 1, dims_at = batch_at + 4, key_len_at = dims_at + 1,
                 reply_len_at = key_len_at + 1, texts_at = reply_len_at + 2;

inference_message sample(message_type t, uint32_t batch = 2, std::vector<uint32_t> shape = {1, 2, 3}) {
  inference_message m;
  m.type = t;
  m.request_id = 0x0102030405060708ull;
  m.stage = t == message_type::inference_request ? 0 : 3;
  if (t == message_type::inference_activation) m.client_key = generate_curve_keys().public_key;
  if (t != message_type::inference_reply) m.reply_to = "tcp://127.0.0.1:41234";
  m.batch = batch;
  m.shape = shape;
  uint64_t n = batch;
  for (uint32_t d : shape) n *= d;
  for (uint64_t i = 0; i < n; ++i) m.values.push_back(0.5f * static_cast<float>(i) - 3.f);
  return m;
}

bytes encoded(const inference_message& m) {
  bytes f;
  encode_inference_message(m, f);
  return f;
}

frame_error decode(const bytes& f) {
  inference_message m;
  return decode_inference_message(f, max_frame, m);
}

}  // namespace

TEST_CASE("inference message types are 21..23 and is_inference_message names exactly them", "[protocols][inference]") {
  CHECK(static_cast<uint16_t>(message_type::inference_request) == 21);
  CHECK(static_cast<uint16_t>(message_type::inference_activation) == 22);
  CHECK(static_cast<uint16_t>(message_type::inference_reply) == 23);
  for (uint16_t t = 0; t <= 30; ++t) {
    INFO("type " << t);
    CHECK(is_inference_message(static_cast<message_type>(t)) == (t >= 21 && t <= 23));
    CHECK(known_message_type(t) == (t >= 1 && t <= 28));
  }
}

TEST_CASE("inference messages round-trip: request, activation, reply, bad_input", "[protocols][inference]") {
  std::vector<inference_message> all{sample(message_type::inference_request),
                                     sample(message_type::inference_activation, 1, {4, 1, 1, 2}),
                                     sample(message_type::inference_reply, 3, {10})};
  inference_message bad = sample(message_type::inference_reply, 0, {1, 28, 28});
  bad.status = inference_status::bad_input;
  all.push_back(bad);
  for (const auto& m : all) {
    INFO("type " << static_cast<int>(m.type));
    const bytes f = encoded(m);
    inference_message back = sample(message_type::inference_activation, 5, {7});  // stale contents
    REQUIRE(decode_inference_message(f, max_frame, back) == frame_error::none);
    CHECK(back == m);
    CHECK(encoded(back) == f);
    // Every truncation is refused, none crashes.
    for (size_t n = 0; n < f.size(); ++n) CHECK(decode(bytes(f.begin(), f.begin() + static_cast<long>(n))) != frame_error::none);
    // And every truncation of the payload under a good header.
    const bytes p = payload_of(f);
    for (size_t n = 0; n < p.size(); ++n)
      CHECK(decode(reframe(m.type, bytes(p.begin(), p.begin() + static_cast<long>(n)))) == frame_error::undecodable);
    CHECK(decode_inference_message(f, f.size() - 1, back) == frame_error::too_large);
  }
}

TEST_CASE("inference messages: each rule of the header refuses what breaks it", "[protocols][inference]") {
  const auto rq = message_type::inference_request, ac = message_type::inference_activation,
             rp = message_type::inference_reply;
  const bytes req = payload_of(encoded(sample(rq)));
  auto edited = [](bytes p, size_t at, std::initializer_list<uint8_t> v) {
    for (uint8_t b : v) p[at++] = std::byte{b};
    return p;
  };
  // A request sealed as an activation has no key; as a reply it has an endpoint.
  CHECK(decode(reframe(ac, req)) == frame_error::undecodable);
  CHECK(decode(reframe(rp, req)) == frame_error::undecodable);
  // Another family's type is unknown_type; the magic-level checks are decode_frame's.
  CHECK(decode(reframe(message_type::stage_activation, req)) == frame_error::unknown_type);
  CHECK(decode(reframe(rq, edited(req, 0, {0}))) == frame_error::undecodable);           // big-endian tag
  CHECK(decode(reframe(rq, edited(req, status_at, {1}))) == frame_error::undecodable);   // error status in a request
  CHECK(decode(reframe(rq, edited(req, batch_at, {0, 0, 0, 0}))) == frame_error::undecodable);
  CHECK(decode(reframe(rq, edited(req, batch_at, {0xff, 0xff, 0xff, 0xff}))) == frame_error::undecodable);
  CHECK(decode(reframe(rq, edited(req, dims_at, {0}))) == frame_error::undecodable);
  CHECK(decode(reframe(rq, edited(req, dims_at, {5}))) == frame_error::undecodable);
  CHECK(decode(reframe(rq, edited(req, dims_at, {2}))) == frame_error::undecodable);     // shape lies
  CHECK(decode(reframe(rq, edited(req, key_len_at, {40}))) == frame_error::undecodable);
  CHECK(decode(reframe(rq, edited(req, reply_len_at, {0, 0}))) == frame_error::undecodable);
  CHECK(decode(reframe(rq, edited(req, reply_len_at, {0xff, 0xff}))) == frame_error::undecodable);
  CHECK(decode(reframe(rq, edited(req, texts_at, {'u'}))) == frame_error::undecodable);  // "ucp://..."
  CHECK(decode(reframe(rq, edited(req, texts_at + 7, {'\n'}))) == frame_error::undecodable);
  bytes trailing = req;
  trailing.push_back(std::byte{0});
  CHECK(decode(reframe(rq, trailing)) == frame_error::undecodable);

  // Non-finite values.
  inference_message nan = sample(rp, 1, {3});
  nan.values[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK(decode(encoded(nan)) == frame_error::undecodable);
  nan.values[1] = -std::numeric_limits<float>::infinity();
  CHECK(decode(encoded(nan)) == frame_error::undecodable);

  // An activation's key must be Z85.
  inference_message act = sample(ac);
  act.client_key = std::string(40, ' ');
  CHECK(decode(encoded(act)) == frame_error::undecodable);

  // An error reply carries no tensor; an unknown status is refused.
  inference_message err = sample(rp, 1, {2});
  err.status = inference_status::bad_input;
  CHECK(decode(encoded(err)) == frame_error::undecodable);
  bytes unknown = payload_of(encoded(sample(rp, 1, {2})));
  unknown[status_at] = std::byte{inference_status_count};
  CHECK(decode(reframe(rp, unknown)) == frame_error::undecodable);
}
