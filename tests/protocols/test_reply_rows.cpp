// tensor_reply rows (protocols/verify_messages.hpp): a conv layer's reply
// carries per-sample input and output sizes (flags bit 1) that differ from
// its weight's in and out; a linear layer's frame is byte-identical to the
// format without them, and a decode of it clears rows left in the struct.
#include <catch2/catch.hpp>
#include <cstring>

#include "reframe.hpp"
#include "protocols/verify_messages.hpp"
#include "tensor/rng.hpp"

using namespace murmur;
using murmur::testing::payload_of;
using murmur::testing::reframe;
using bytes = std::vector<std::byte>;

namespace {

constexpr size_t max_frame = size_t{64} << 20;
// Payload offsets: the flags byte, then (bit 1) in_row and out_row.
constexpr size_t flags_at = 1 + 4 + 8 + 2 + 8 + 4 + 4 + 4, rows_at = flags_at + 1;

std::vector<float> floats(Rng& rng, uint64_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// A conv layer's reply: weight out x in (in = C*k*k), input batch x in_row
// (C*H*W), output batch x out_row (O*OH*OW).
tensor_reply conv_reply(bool has_input, uint32_t batch = 3, uint32_t in = 9, uint32_t out = 4, uint32_t in_row = 64,
                        uint32_t out_row = 4 * 36) {
  Rng rng(batch * 7 + in);
  tensor_reply m;
  m.prover = 2;
  m.step = 17;
  m.layer = 0;
  m.nonce = 99;
  m.batch = batch;
  m.in = in;
  m.out = out;
  m.has_input = has_input;
  m.in_row = in_row;
  m.out_row = out_row;
  for (uint32_t i = 0; i < batch; ++i) m.indices.push_back(i * 3);
  const uint64_t B = batch;
  if (has_input) m.input = floats(rng, B * m.input_row());
  m.weight = floats(rng, uint64_t{out} * in);
  m.bias = floats(rng, out);
  m.output = floats(rng, B * m.output_row());
  m.output_grad = floats(rng, B * m.output_row());
  m.weight_grad = floats(rng, uint64_t{out} * in);
  m.bias_grad = floats(rng, out);
  return m;
}

bytes encoded(const tensor_reply& r) {
  bytes f;
  encode_tensor_reply(r, f);
  return f;
}

}  // namespace

TEST_CASE("a conv layer's reply round-trips with its rows, with and without the input", "[protocols][verify]") {
  for (bool has_input : {true, false}) {
    INFO("has_input " << has_input);
    const tensor_reply r = conv_reply(has_input);
    const bytes f = encoded(r);
    const size_t arrays = r.indices.size() + r.input.size() + r.weight.size() + r.bias.size() + r.output.size() +
                          r.output_grad.size() + r.weight_grad.size() + r.bias_grad.size();
    CHECK(f.size() == frame_header_bytes + rows_at + 8 + 4 * arrays);
    CHECK(payload_of(f)[flags_at] == std::byte{static_cast<uint8_t>(2 | (has_input ? 1 : 0))});
    tensor_reply out;
    REQUIRE(decode_tensor_reply(f, max_frame, out) == frame_error::none);
    CHECK(out == r);
    CHECK(out.input_row() == 64);
    CHECK(out.output_row() == 4 * 36);
    CHECK(encoded(out) == f);
    // Evidence carries it verbatim.
    evidence_msg ev{5, r.prover, r.step, r.layer, 6, f};
    bytes ef;
    encode_evidence(ev, ef);
    tensor_reply nested;
    evidence_msg ev_out;
    REQUIRE(decode_evidence(ef, max_frame, ev_out, &nested) == frame_error::none);
    CHECK(nested == r);
  }
}

TEST_CASE("a linear layer's reply has no rows on the wire, and its decode clears them", "[protocols][verify]") {
  tensor_reply lin = conv_reply(true, 2, 5, 3, 0, 0);
  const bytes f = encoded(lin);
  CHECK(payload_of(f)[flags_at] == std::byte{1});
  // indices 2, input 2 x 5, weight and dW 3 x 5, bias and db 3, output and dY 2 x 3.
  CHECK(f.size() == frame_header_bytes + rows_at + 4 * (2 + 2 * 5 + 2 * 15 + 2 * 3 + 2 * 2 * 3));
  tensor_reply out = conv_reply(false);  // rows set: the decode must clear them
  REQUIRE(decode_tensor_reply(f, max_frame, out) == frame_error::none);
  CHECK(out.in_row == 0);
  CHECK(out.out_row == 0);
  CHECK(out == lin);
}

TEST_CASE("tensor replies with bad rows are undecodable", "[protocols][verify]") {
  const bytes good = payload_of(encoded(conv_reply(true)));
  auto with = [&](size_t at, uint32_t v) {
    bytes p = good;
    std::memcpy(p.data() + at, &v, 4);  // little-endian on every machine this runs on (x86, arm64)
    return reframe(message_type::tensor_reply, p);
  };
  tensor_reply out;
  SECTION("in_row 0") { CHECK(decode_tensor_reply(with(rows_at, 0), max_frame, out) == frame_error::undecodable); }
  SECTION("out_row 0") { CHECK(decode_tensor_reply(with(rows_at + 4, 0), max_frame, out) == frame_error::undecodable); }
  SECTION("in_row over max_verify_dim") {
    CHECK(decode_tensor_reply(with(rows_at, max_verify_dim + 1), max_frame, out) == frame_error::undecodable);
  }
  SECTION("rows that do not match the arrays") {
    CHECK(decode_tensor_reply(with(rows_at, 65), max_frame, out) == frame_error::undecodable);
    CHECK(decode_tensor_reply(with(rows_at + 4, 4 * 36 - 1), max_frame, out) == frame_error::undecodable);
  }
  SECTION("unknown flag bits") {
    for (uint8_t flags : {4, 7, 0x83}) {
      bytes p = good;
      p[flags_at] = std::byte{flags};
      CHECK(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::undecodable);
    }
  }
  SECTION("rows flagged but cut off") {
    bytes p(good.begin(), good.begin() + static_cast<ptrdiff_t>(rows_at + 4));
    CHECK(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::undecodable);
  }
  SECTION("the rows bit cleared: the arrays no longer fit") {
    bytes p = good;
    p[flags_at] = std::byte{1};
    CHECK(decode_tensor_reply(reframe(message_type::tensor_reply, p), max_frame, out) == frame_error::undecodable);
  }
}
