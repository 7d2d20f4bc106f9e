// Inference messages: distributed inference (`murmur serve`), a model's
// layers split over stage processes. A client's request goes to stage 0,
// activations go stage to stage, the last stage sends the logits back to
// the client (connecting to the endpoint the request names, with the
// client's own key as the CurveZMQ server key, so only that client can
// read them). One frame each (frame_codec.hpp); one payload layout for all
// three, Cereal portable binary (endianness tag u8 = 1, then little-endian
// fixed fields) followed by raw bytes and little-endian arrays:
//   request_id u64, stage u16 (the sender; 0 in a request), status u8,
//   batch u32, dims u8, key_len u8, reply_len u16,
//   key_len bytes client key, reply_len bytes reply endpoint,
//   dims x u32 per-sample shape, batch x prod(shape) floats.
//   inference_request (21): client -> stage 0. No key, a reply endpoint.
//   inference_activation (22): stage s -> s + 1. The client's key (Z85, 40
//       characters: stage 0 learnt it from the client's CurveZMQ handshake)
//       and its reply endpoint.
//   inference_reply (23): a stage -> the client. No key, no endpoint;
//       status ok with the logits, or an error status with batch 0 and no
//       values (bad_input: shape = the model's per-sample input shape).
// Decoders never throw, size every array from the header fields and check it
// against the bytes present (64-bit arithmetic) before allocating, and give
// frame_error::undecodable for: wrong sizes, a key or endpoint where the type
// has none (or none where it needs one), a key that is not Z85, an endpoint
// that is not printable "tcp://..." text of at most max_reply_endpoint bytes,
// status other than ok outside a reply or unknown, an ok message with batch
// 0 or over max_inference_batch, dims 0 or over max_stage_dims, a zero or
// over-max_stage_dim dimension (pipeline_messages.hpp's limits), an error reply with values, non-finite
// floats.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocols/frame_codec.hpp"

namespace murmur {

inline constexpr uint32_t max_inference_batch = 4096;
inline constexpr size_t max_reply_endpoint = 255;

enum class inference_status : uint8_t {
  ok = 0,
  bad_input = 1,  // the request's per-sample shape is not the model's input shape
};
inline constexpr uint8_t inference_status_count = 2;

struct inference_message {
  message_type type = message_type::inference_request;  // 21, 22 or 23
  uint64_t request_id = 0;
  uint16_t stage = 0;                   // the sender (a stage); 0 in a request
  inference_status status = inference_status::ok;
  std::string client_key;               // activation only
  std::string reply_to;                 // request and activation
  uint32_t batch = 0;
  std::vector<uint32_t> shape;          // per sample; bad_input: the model's input shape
  std::vector<float> values;            // batch x prod(shape)
  bool operator==(const inference_message&) const = default;
};

// Writes the frame into out (replacing its contents, reusing its capacity).
void encode_inference_message(const inference_message& m, std::vector<std::byte>& out);
// Takes a complete frame of type 21, 22 or 23.
frame_error decode_inference_message(std::span<const std::byte> frame, size_t max_frame_bytes,
                                     inference_message& out);

// inference_request .. inference_reply (dispatch with peek_type, membership_messages.hpp).
bool is_inference_message(message_type t);

}  // namespace murmur
