#include "lan/inference_client.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <stdexcept>

#include "protocols/inference_messages.hpp"
#include "protocols/peer_identities.hpp"
#include "protocols/zmq_transport.hpp"

namespace murmur {

namespace {

constexpr uint32_t stage0_peer = 0;

}  // namespace

inference_client_options inference_client_options_from_files(const std::string& keys_dir,
                                                              const std::string& allowlist,
                                                              const std::string& connect) {
  inference_client_options o;
  o.keys = read_curve_keys(keys_dir);
  const auto ids = peer_identities::read(allowlist);
  if (ids.size() == 0) throw std::runtime_error(allowlist + ": no key lines (stage 0 is the first)");
  // Stages' lines give their endpoints, clients' lines none: only the former
  // may connect back (another client could otherwise answer in a stage's name).
  for (const auto& line : ids.lines())
    if (!line.endpoint.empty()) o.authorized.push_back(line.public_key);
  o.connect = connect.empty() ? ids.lines().front().endpoint : connect;
  if (o.connect.empty())
    throw std::runtime_error(allowlist + ": line " + std::to_string(ids.lines().front().line) +
                             " (stage 0) gives no tcp://HOST:PORT; pass --connect");
  for (const auto& line : ids.lines())
    if (line.endpoint == o.connect) o.connect_key = line.public_key;
  if (o.connect_key.empty())
    throw std::runtime_error(o.connect + " is on no line of " + allowlist + " (its key is needed to connect)");
  return o;
}

inference_client::inference_client(inference_client_options o) : o_(std::move(o)) {
  zmq_transport_options t;
  t.listen = o_.listen;
  t.keys = o_.keys;
  t.authorized = o_.authorized;
  transport_ = std::make_unique<zmq_transport>(std::move(t));
  transport_->connect(stage0_peer, o_.connect, o_.connect_key);
}

inference_client::~inference_client() = default;

const std::string& inference_client::endpoint() const { return transport_->endpoint(); }

Tensor inference_client::infer(const Tensor& x) { return infer(x, false); }

Tensor inference_client::infer(const Tensor& x, bool reshaped) {
  if (x.ndim() < 2 || x.dim(0) < 1 || x.dim(0) > max_inference_batch)
    throw std::invalid_argument("infer: expected [batch, ...] with batch 1.." + std::to_string(max_inference_batch) +
                                ", got " + shape_str(x.shape()));
  inference_message m;
  m.type = message_type::inference_request;
  m.request_id = next_id_++;
  m.reply_to = transport_->endpoint();
  m.batch = static_cast<uint32_t>(x.dim(0));
  for (int i = 1; i < x.ndim(); ++i) m.shape.push_back(static_cast<uint32_t>(x.dim(i)));
  m.values.assign(x.begin(), x.end());
  encode_inference_message(m, buf_);
  if (!transport_->send(stage0_peer, buf_))
    throw std::runtime_error("cannot queue the request for " + o_.connect + " (its queue is full)");
  const std::set<std::string> stages(o_.authorized.begin(), o_.authorized.end());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.timeout_ms);
  bool done = false;
  inference_message reply;
  Tensor out;
  std::string error;
  Shape expected;
  while (!done) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    transport_->poll(static_cast<int>(std::min<int64_t>(left.count(), 100)), [&](const std::string& key,
                                                                                 std::span<const std::byte> f) {
      if (done || !stages.count(key) ||
          decode_inference_message(f, transport_->max_frame_bytes(), reply) != frame_error::none ||
          reply.type != message_type::inference_reply || reply.request_id != m.request_id) {
        ++stray_;
        return;
      }
      done = true;
      if (reply.status != inference_status::ok) {
        for (uint32_t d : reply.shape) expected.push_back(d);
        error = "the served model takes samples of shape " + shape_str(expected) + ", not " +
                shape_str(Shape(x.shape().begin() + 1, x.shape().end()));
        return;
      }
      if (reply.batch != m.batch || reply.shape.size() != 1) {
        error = "the answer holds " + std::to_string(reply.batch) + " rows of " + std::to_string(reply.shape.size()) +
                "-dimensional logits for " + std::to_string(m.batch) + " samples";
        return;
      }
      out = Tensor({static_cast<int64_t>(reply.batch), static_cast<int64_t>(reply.shape[0])});
      std::copy(reply.values.begin(), reply.values.end(), out.data());
    });
  }
  if (!done)
    throw std::runtime_error("no answer from " + o_.connect + " within " + std::to_string(o_.timeout_ms) +
                             " ms (a stage down, or this key not in the stages' allowlist)");
  if (!error.empty()) {
    // Same values, other layout ([N, 784] for [N, 1, 28, 28]): send them again as the model takes them.
    Shape again{x.dim(0)};
    again.insert(again.end(), expected.begin(), expected.end());
    if (!expected.empty() && shape_numel(again) == x.numel() && !reshaped) return infer(x.reshape(again), true);
    throw std::runtime_error(error);
  }
  return out;
}

}  // namespace murmur
