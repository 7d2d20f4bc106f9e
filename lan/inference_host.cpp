// One stage of `murmur serve` (see inference_host.hpp): a single thread
// polls the transport, runs its layers on each accepted frame and sends the
// result on. Nothing is queued inside the stage: ZeroMQ's queues are the
// only buffer, so a request's latency is its hops plus its compute.
#include "lan/inference_host.hpp"

#include <cstdio>
#include <stdexcept>
#include <utility>

#include "protocols/inference_messages.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/zmq_transport.hpp"

namespace murmur {

namespace {

constexpr int poll_ms = 100;
constexpr uint32_t next_stage_peer = 0;      // transport peer id of the next stage
constexpr uint32_t first_client_peer = 1;    // client connections from here on
constexpr size_t max_client_connections = 256;

bool worth_logging(uint64_t n) {
  if (n <= 10) return true;
  while (n % 10 == 0) n /= 10;
  return n == 1;
}

std::string short_key(const std::string& key) { return key.empty() ? "?" : key.substr(0, 8); }

class inference_stage {
 public:
  inference_stage(const inference_stage_settings& s, Sequential& part)
      : s_(s), part_(part), name_(s.name.empty() ? "serve stage " + std::to_string(s.stage) : s.name) {
    if (s.stages == 0 || s.stage >= s.stages)
      throw std::invalid_argument("stage " + std::to_string(s.stage) + " of " + std::to_string(s.stages));
    if (s.allowlist.size() < s.stages)
      throw std::runtime_error("the allowlist has " + std::to_string(s.allowlist.size()) + " key lines for " +
                               std::to_string(s.stages) + " stages (stage i is key line i)");
    s.allowlist.check_self(s.stage, s.keys.public_key, s.keys_source);
    std::string listen = s.listen;
    if (listen.empty()) listen = s.allowlist.find(s.stage)->endpoint;
    if (listen.empty())
      throw std::runtime_error("stage " + std::to_string(s.stage) +
                               ": its allowlist line gives no tcp://HOST:PORT to listen on (or pass --listen)");
    zmq_transport_options o;
    o.listen = listen;
    o.keys = s.keys;
    for (const auto& line : s.allowlist.lines()) o.authorized.push_back(line.public_key);
    transport_ = std::make_unique<zmq_transport>(std::move(o));
    if (s.stage + 1 < s.stages) {
      const authorized_peer* next = s.allowlist.find(s.stage + 1u);
      if (next->endpoint.empty())
        throw std::runtime_error("stage " + std::to_string(s.stage + 1) +
                                 ": its allowlist line gives no tcp://HOST:PORT (stage " + std::to_string(s.stage) +
                                 " sends to it)");
      transport_->connect(next_stage_peer, next->endpoint, next->public_key);
      next_endpoint_ = next->endpoint;
    }
    const Shape& in = part_.input_shape();
    for (int64_t d : in) input_shape_.push_back(static_cast<uint32_t>(d));
    for (int64_t d : part_.output_shape()) output_shape_.push_back(static_cast<uint32_t>(d));
  }

  int run(const std::atomic<int>& stop) {
    std::printf("%s: listening on %s, %zu layers, input %s%s%s\n", name_.c_str(), transport_->endpoint().c_str(),
                part_.layer_count(), shape_str(part_.input_shape()).c_str(),
                next_endpoint_.empty() ? ", answers clients" : ", sends to ", next_endpoint_.c_str());
    std::fflush(stdout);
    const auto handler = [this](const std::string& key, std::span<const std::byte> frame) { on_frame(key, frame); };
    while (stop.load() == 0) {
      transport_->poll(poll_ms, handler);
      note_refused_handshakes();
    }
    note_refused_handshakes();
    transport_->close(500);
    print_summary();
    return 128 + stop.load();
  }

  const inference_stage_counters& counters() const { return c_; }

 private:
  void drop(const std::string& reason, const std::string& key) {
    const uint64_t n = ++c_.dropped[reason];
    if (!s_.quiet && worth_logging(n)) {
      std::printf("%s: dropped a frame from key %s: %s (%llu so far)\n", name_.c_str(), short_key(key).c_str(),
                  reason.c_str(), static_cast<unsigned long long>(n));
      std::fflush(stdout);
    }
  }

  void note_refused_handshakes() {
    const uint64_t now = transport_->counters().handshakes_refused;
    if (now == c_.handshakes_refused) return;
    const uint64_t fresh = now - c_.handshakes_refused;
    c_.handshakes_refused = now;
    if (!s_.quiet && worth_logging(now)) {
      std::printf("%s: refused %llu handshake(s) from a key not in the allowlist (%llu so far)\n", name_.c_str(),
                  static_cast<unsigned long long>(fresh), static_cast<unsigned long long>(now));
      std::fflush(stdout);
    }
  }

  void on_frame(const std::string& key, std::span<const std::byte> frame) {
    const auto type = peek_type(frame);
    if (!type || !is_inference_message(*type)) {
      drop(type ? "unexpected_type" : std::string(to_string(decode_frame(frame, transport_->max_frame_bytes()).error)),
           key);
      return;
    }
    const frame_error e = decode_inference_message(frame, transport_->max_frame_bytes(), in_);
    if (e != frame_error::none) return drop(std::string(to_string(e)), key);
    const auto sender = s_.allowlist.index_of(key);
    if (!sender) return drop("wrong_sender", key);  // ZAP lets only allowlist keys in: not expected
    if (in_.type == message_type::inference_reply) return drop("unexpected_type", key);
    if (in_.type == message_type::inference_request) {
      if (s_.stage != 0) return drop("wrong_sender", key);
      ++c_.requests;
      client_key_ = key;
      if (in_.shape != input_shape_) {
        reply_.type = message_type::inference_reply;
        reply_.request_id = in_.request_id;
        reply_.stage = s_.stage;
        reply_.status = inference_status::bad_input;
        reply_.batch = 0;
        reply_.shape = input_shape_;  // what the client should have sent
        reply_.values.clear();
        send_to_client(client_key_, in_.reply_to);
        return;
      }
    } else {  // activation
      if (s_.stage == 0 || *sender != s_.stage - 1u || in_.stage != s_.stage - 1u) return drop("wrong_sender", key);
      if (in_.shape != input_shape_) return drop("bad_shape", key);
      ++c_.activations;
      client_key_ = in_.client_key;
    }
    compute_and_send();
  }

  void compute_and_send() {
    Shape x_shape{static_cast<int64_t>(in_.batch)};
    x_shape.insert(x_shape.end(), part_.input_shape().begin(), part_.input_shape().end());
    x_.resize(x_shape);
    std::copy(in_.values.begin(), in_.values.end(), x_.data());
    const Tensor* y = nullptr;
    try {
      y = &part_.forward(x_);
    } catch (const std::exception& e) {  // shapes were checked: not expected, and never fatal
      drop(std::string("compute_error: ") + e.what(), client_key_);
      return;
    }
    const bool last = s_.stage + 1u == s_.stages;
    out_msg_.type = last ? message_type::inference_reply : message_type::inference_activation;
    out_msg_.request_id = in_.request_id;
    out_msg_.stage = s_.stage;
    out_msg_.status = inference_status::ok;
    out_msg_.client_key = last ? std::string() : client_key_;
    out_msg_.reply_to = last ? std::string() : in_.reply_to;
    out_msg_.batch = in_.batch;
    out_msg_.shape = output_shape_;
    out_msg_.values.assign(y->begin(), y->end());
    if (last) {
      std::swap(reply_, out_msg_);
      send_to_client(client_key_, in_.reply_to);
      std::swap(reply_, out_msg_);
      return;
    }
    encode_inference_message(out_msg_, buf_);
    if (transport_->send(next_stage_peer, buf_))
      ++c_.forwarded;
    else
      ++c_.send_failed;
  }

  // reply_ to the client with this key, listening at endpoint.
  void send_to_client(const std::string& key, const std::string& endpoint) {
    auto it = clients_.find({key, endpoint});
    if (it == clients_.end()) {
      if (clients_.size() >= max_client_connections) {  // forget them all: they reconnect on demand
        for (const auto& [k, peer] : clients_) transport_->disconnect(peer);
        clients_.clear();
      }
      const uint32_t peer = next_client_peer_++;
      try {
        transport_->connect(peer, endpoint, key);
      } catch (const std::exception&) {  // an endpoint ZeroMQ cannot parse
        ++c_.send_failed;
        return;
      }
      it = clients_.emplace(std::make_pair(key, endpoint), peer).first;
    }
    encode_inference_message(reply_, buf_);
    if (transport_->send(it->second, buf_))
      ++c_.answered;
    else
      ++c_.send_failed;
  }

  void print_summary() const {
    std::string reasons;
    for (const auto& [r, n] : c_.dropped)
      reasons += (reasons.empty() ? "" : ", ") + r + " " + std::to_string(n);
    uint64_t dropped = 0;
    for (const auto& [r, n] : c_.dropped) dropped += n;
    std::printf("%s: summary: requests %llu, activations %llu, forwarded %llu, answered %llu, send_failed %llu, "
                "handshakes_refused %llu, dropped %llu%s%s%s\n",
                name_.c_str(), static_cast<unsigned long long>(c_.requests),
                static_cast<unsigned long long>(c_.activations), static_cast<unsigned long long>(c_.forwarded),
                static_cast<unsigned long long>(c_.answered), static_cast<unsigned long long>(c_.send_failed),
                static_cast<unsigned long long>(c_.handshakes_refused), static_cast<unsigned long long>(dropped),
                reasons.empty() ? "" : " (", reasons.c_str(), reasons.empty() ? "" : ")");
    std::fflush(stdout);
  }

  const inference_stage_settings& s_;
  Sequential& part_;
  std::string name_;
  std::unique_ptr<zmq_transport> transport_;
  std::string next_endpoint_;
  std::vector<uint32_t> input_shape_, output_shape_;
  std::map<std::pair<std::string, std::string>, uint32_t> clients_;
  uint32_t next_client_peer_ = first_client_peer;
  inference_stage_counters c_;
  // Reused across frames.
  inference_message in_, out_msg_, reply_;
  std::string client_key_;
  Tensor x_;
  std::vector<std::byte> buf_;
};

}  // namespace

int run_inference_stage(const inference_stage_settings& s, Sequential& part, const std::atomic<int>& stop,
                        inference_stage_counters* counters) {
  inference_stage stage(s, part);
  const int rc = stage.run(stop);
  if (counters) *counters = stage.counters();
  return rc;
}

}  // namespace murmur
