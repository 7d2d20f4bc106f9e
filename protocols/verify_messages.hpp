// Verify messages: commitments to a training step's tensors, the challenge
// and answer that let another peer check them, evidence of a failed check,
// and offloaded matrix products. Each is one frame (frame_codec.hpp) whose
// payload is Cereal portable binary (endianness tag u8 = 1, then
// little-endian fixed fields) followed by raw little-endian arrays:
//   transcript_commit: prover u32, step u64, layers u16, then layers x 7 x 32
//                      digest bytes (per committed layer, linear or conv:
//                      input, weight, bias, output, output grad, weight
//                      grad, bias grad)
//   tensor_request:    verifier u32, prover u32, step u64, layer u16, nonce u64
//   tensor_reply:      prover u32, step u64, layer u16, nonce u64, batch u32,
//                      in u32, out u32, flags u8 (bit 0: has_input, bit 1:
//                      rows follow), [in_row u32, out_row u32 if bit 1],
//                      then batch u32 sample indices, [batch x in_row input
//                      if has_input], out x in weight, out bias, batch x
//                      out_row output, batch x out_row output grad, out x in
//                      weight grad, out bias grad; in_row, out_row = in, out
//                      when bit 1 is clear (a linear layer; a conv layer
//                      sets it: its rows are C*H*W and O*OH*OW, its weight
//                      O x C*k*k)
//   evidence:          accuser u32, prover u32, step u64, layer u16, check u8,
//                      reply_bytes u32, then the prover's tensor_reply frame
//   matmul_task:       requester u32, task u64, m u32, n u32, k u32, then
//                      m x k A and k x n B (row-major)
//   matmul_result:     worker u32, task u64, m u32, n u32, then m x n C
//   miss_claim:        accuser u32, prover u32, step u64, layer u16 (type 20:
//                      the accuser's challenge of that step went unanswered
//                      by its deadline; a bare claim, re-checked by challenging)
// Decoders never throw, size every array from the header fields and check it
// against the bytes present (64-bit arithmetic) before allocating, and give
// frame_error::undecodable for: wrong sizes, zero or oversized dimensions
// (over max_verify_dim per dimension), layers over max_commit_layers,
// non-finite floats, an evidence whose nested frame is no valid tensor_reply
// or names another prover/step/layer.
#pragma once
#include <cstddef>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "protocols/frame_codec.hpp"
#include "tensor/digest.hpp"

namespace murmur {

inline constexpr uint32_t max_verify_dim = 1u << 20;
inline constexpr uint16_t max_commit_layers = 64;

// The seven tensors committed per layer (linear or conv), in wire order.
enum class committed : uint8_t { input, weight, bias, output, output_grad, weight_grad, bias_grad, count_ };
inline constexpr size_t committed_count = static_cast<size_t>(committed::count_);

struct layer_commit {
  std::array<digest, committed_count> d{};
  bool operator==(const layer_commit&) const = default;
};

struct transcript_commit {
  uint32_t prover = 0;
  uint64_t step = 0;
  std::vector<layer_commit> layers;
  bool operator==(const transcript_commit&) const = default;
};

struct tensor_request {
  uint32_t verifier = 0, prover = 0;
  uint64_t step = 0;
  uint16_t layer = 0;
  uint64_t nonce = 0;
  bool operator==(const tensor_request&) const = default;
};

// One committed layer's tensors of one step. Linear: Y = X W^T + b,
// dW = dY^T X, db = column sums of dY. Conv2d: the same with X replaced by
// the im2col of the input (tensor/im2col.hpp), which the verifier expands
// from the committed input [B, C, H, W]. X is absent (has_input false) when
// it is the data itself: the verifier rebuilds it from the sample indices.
struct tensor_reply {
  uint32_t prover = 0;
  uint64_t step = 0;
  uint16_t layer = 0;
  uint64_t nonce = 0;
  uint32_t batch = 0, in = 0, out = 0;  // weight: out x in
  bool has_input = false;
  // Per-sample input and output sizes when they are not in and out (a conv
  // layer's C*H*W and O*OH*OW); both 0 for a linear layer.
  uint32_t in_row = 0, out_row = 0;
  std::vector<uint32_t> indices;                  // batch
  std::vector<float> input;                       // batch x input_row(), or empty
  std::vector<float> weight, bias, output, output_grad, weight_grad, bias_grad;
  uint64_t input_row() const { return in_row ? in_row : in; }
  uint64_t output_row() const { return out_row ? out_row : out; }
  bool operator==(const tensor_reply&) const = default;
};

struct evidence_msg {
  uint32_t accuser = 0, prover = 0;
  uint64_t step = 0;
  uint16_t layer = 0;
  uint8_t check = 0;               // which check failed (actors/transcript_check.hpp)
  std::vector<std::byte> reply;    // the prover's tensor_reply frame, verbatim
  bool operator==(const evidence_msg&) const = default;
};

// A challenge the prover left unanswered by the deadline. Receivers do not
// act on it: they challenge the prover for the same step themselves.
struct miss_claim {
  uint32_t accuser = 0, prover = 0;
  uint64_t step = 0;
  uint16_t layer = 0;
  bool operator==(const miss_claim&) const = default;
};

struct matmul_task {
  uint32_t requester = 0;
  uint64_t task = 0;
  uint32_t m = 0, n = 0, k = 0;
  std::vector<float> a, b;  // m x k, k x n
  bool operator==(const matmul_task&) const = default;
};

struct matmul_result {
  uint32_t worker = 0;
  uint64_t task = 0;
  uint32_t m = 0, n = 0;
  std::vector<float> c;  // m x n
  bool operator==(const matmul_result&) const = default;
};

void encode_transcript_commit(const transcript_commit& m, std::vector<std::byte>& out);
void encode_tensor_request(const tensor_request& m, std::vector<std::byte>& out);
void encode_tensor_reply(const tensor_reply& m, std::vector<std::byte>& out);
void encode_evidence(const evidence_msg& m, std::vector<std::byte>& out);
void encode_matmul_task(const matmul_task& m, std::vector<std::byte>& out);
void encode_matmul_result(const matmul_result& m, std::vector<std::byte>& out);
void encode_miss_claim(const miss_claim& m, std::vector<std::byte>& out);

frame_error decode_transcript_commit(std::span<const std::byte> frame, size_t max_frame_bytes, transcript_commit& out);
frame_error decode_tensor_request(std::span<const std::byte> frame, size_t max_frame_bytes, tensor_request& out);
frame_error decode_tensor_reply(std::span<const std::byte> frame, size_t max_frame_bytes, tensor_reply& out);
// Also decodes the nested reply into *reply when given.
frame_error decode_evidence(std::span<const std::byte> frame, size_t max_frame_bytes, evidence_msg& out,
                            tensor_reply* reply = nullptr);
frame_error decode_matmul_task(std::span<const std::byte> frame, size_t max_frame_bytes, matmul_task& out);
frame_error decode_matmul_result(std::span<const std::byte> frame, size_t max_frame_bytes, matmul_result& out);
frame_error decode_miss_claim(std::span<const std::byte> frame, size_t max_frame_bytes, miss_claim& out);

// transcript_commit .. matmul_result, and miss_claim (dispatch with peek_type,
// membership_messages.hpp).
bool is_verify_message(message_type t);

}  // namespace murmur
