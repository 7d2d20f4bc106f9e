#include "protocols/zmq_transport.hpp"

#include "protocols/membership_messages.hpp"

#include <zmq.hpp>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace murmur {

namespace {

void secure_defaults(zmq::socket_t& s, const zmq_transport_options& o) {
  s.set(zmq::sockopt::linger, 0);  // never hang on exit over unsent frames
  s.set(zmq::sockopt::handshake_ivl, o.handshake_ms);
  s.set(zmq::sockopt::heartbeat_ivl, o.heartbeat_ms);
  s.set(zmq::sockopt::heartbeat_timeout, 3 * o.heartbeat_ms);
  s.set(zmq::sockopt::heartbeat_ttl, 3 * o.heartbeat_ms);
  // A frame plus ZeroMQ's own routing part; anything bigger is cut off unread.
  s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(o.max_frame_bytes));
}

}  // namespace

zmq_transport::zmq_transport(zmq_transport_options opt) : opt_(std::move(opt)) {
  if (!is_z85_key(opt_.keys.public_key) || !is_z85_key(opt_.keys.secret_key))
    throw std::invalid_argument("zmq_transport: CurveZMQ keys are required (murmur keygen)");
  for (auto& k : opt_.authorized) authorize(k);
  ctx_ = std::make_unique<zmq::context_t>(1);
  // The ZAP handler must exist before any CURVE server socket binds.
  zap_ = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::rep);
  zap_->set(zmq::sockopt::linger, 0);
  zap_->bind("inproc://zeromq.zap.01");
  router_ = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::router);
  secure_defaults(*router_, opt_);
  router_->set(zmq::sockopt::curve_server, 1);
  router_->set(zmq::sockopt::curve_secretkey, opt_.keys.secret_key);
  router_->set(zmq::sockopt::zap_domain, "murmur");
  router_->set(zmq::sockopt::rcvhwm, 1024);
  try {
    router_->bind(opt_.listen);
  } catch (const zmq::error_t& e) {
    // zmq says only "Address already in use": name what could not be bound.
    throw std::runtime_error("cannot listen on " + opt_.listen + ": " + e.what() +
                             (e.num() == EADDRINUSE ? " (another process listens there: pick another port)" : ""));
  }
  endpoint_ = router_->get(zmq::sockopt::last_endpoint);
}

zmq_transport::~zmq_transport() = default;

void zmq_transport::authorize(const std::string& key) {
  if (!is_z85_key(key)) throw std::invalid_argument("not a Z85 public key: '" + key + "'");
  authorized_.insert(key);
}

void zmq_transport::connect(uint32_t peer, const std::string& endpoint, const std::string& server_key) {
  if (!is_z85_key(server_key)) throw std::invalid_argument("peer " + std::to_string(peer) + ": bad server key");
  class_dealers ds;
  for (auto& s : ds) {
    s = std::make_unique<zmq::socket_t>(*ctx_, zmq::socket_type::dealer);
    secure_defaults(*s, opt_);
    s->set(zmq::sockopt::curve_serverkey, server_key);
    s->set(zmq::sockopt::curve_publickey, opt_.keys.public_key);
    s->set(zmq::sockopt::curve_secretkey, opt_.keys.secret_key);
    s->set(zmq::sockopt::sndhwm, opt_.send_hwm);
    // Frames queue (up to send_hwm) while the connection is being made, so a
    // membership reply to a joiner is not lost to the handshake.
    s->connect(endpoint);
  }
  dealers_[peer] = std::move(ds);
}

zmq::socket_t* zmq_transport::dealer(uint32_t peer, std::span<const std::byte> frame) {
  auto it = dealers_.find(peer);
  if (it == dealers_.end()) return nullptr;
  const auto type = peek_type(frame);
  const auto cls = type ? traffic_class_of(*type) : traffic_class::bulk;
  return it->second[static_cast<size_t>(cls)].get();
}

void zmq_transport::disconnect(uint32_t peer) { dealers_.erase(peer); }

bool zmq_transport::send(uint32_t peer, std::span<const std::byte> frame) {
  auto* d = dealer(peer, frame);
  if (!d) {
    ++counters_.send_dropped;
    return false;
  }
  auto r = d->send(zmq::const_buffer(frame.data(), frame.size()), zmq::send_flags::dontwait);
  if (!r) {
    ++counters_.send_dropped;
    return false;
  }
  ++counters_.frames_sent;
  counters_.bytes_sent += frame.size();
  return true;
}

bool zmq_transport::send(uint32_t peer, std::shared_ptr<const std::vector<std::byte>> frame) {
  constexpr size_t zero_copy_from = 64 * 1024;
  if (!frame) return false;
  if (frame->size() < zero_copy_from) return send(peer, std::span<const std::byte>(*frame));
  auto* d = dealer(peer, *frame);
  if (!d) {
    ++counters_.send_dropped;
    return false;
  }
  const size_t n = frame->size();
  // ZeroMQ calls release from its I/O thread once a part's bytes are out
  // (or at once, through the message's destructor, if the send fails); each
  // part holds the frame, which is const, so nobody writes it meanwhile.
  zmq::free_fn* release = [](void*, void* hint) { delete static_cast<std::shared_ptr<const std::vector<std::byte>>*>(hint); };
  const std::byte* data = frame->data();
  bool whole = true;
  for (size_t at = 0; at < n; at += part_bytes) {
    const size_t len = std::min(part_bytes, n - at);
    const bool last = at + len == n;
    auto* hold = new std::shared_ptr<const std::vector<std::byte>>(frame);
    zmq::message_t msg(const_cast<std::byte*>(data + at), len, release, hold);
    auto r = d->send(msg, last ? zmq::send_flags::dontwait : zmq::send_flags::dontwait | zmq::send_flags::sndmore);
    if (r) continue;
    whole = false;
    if (at == 0) break;  // the queue is full: nothing of the frame went
    // ZeroMQ counts whole messages against send_hwm, so a message whose first
    // part went takes the rest; should a later part still fail, ZeroMQ drops
    // the message's remaining parts as they come: they are sent (to nothing)
    // so that the next frame starts a message of its own.
  }
  if (!whole) {
    ++counters_.send_dropped;
    return false;
  }
  ++counters_.frames_sent;
  counters_.bytes_sent += n;
  return true;
}

void zmq_transport::close(int linger_ms) {
  for (auto& [peer, ds] : dealers_)
    for (auto& s : ds) s->set(zmq::sockopt::linger, linger_ms);
  dealers_.clear();
  router_.reset();
  zap_.reset();
  ctx_.reset();  // zmq_ctx_term: returns once the dealers' queued frames are out or have lingered
}

void zmq_transport::answer_zap() {
  // ZAP request: version, request id, domain, address, identity, mechanism, credentials...
  std::vector<zmq::message_t> req;
  for (;;) {
    zmq::message_t m;
    if (!zap_->recv(m, zmq::recv_flags::dontwait)) return;
    bool more = m.more();
    req.push_back(std::move(m));
    if (!more) break;
  }
  std::string status = "400", text = "not authorized", user;
  if (req.size() >= 7 && req[5].to_string() == "CURVE" && req[6].size() == 32) {
    char z85[41];
    zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
    if (authorized_.count(z85)) {
      status = "200";
      text = "OK";
      user = z85;
    }
  }
  if (status != "200") ++counters_.handshakes_refused;
  std::string version = req.empty() ? "1.0" : req[0].to_string();
  std::string id = req.size() > 1 ? req[1].to_string() : "";
  zap_->send(zmq::buffer(version), zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(id), zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(status), zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(text), zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(user), zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(std::string()), zmq::send_flags::none);
}

void zmq_transport::poll(int timeout_ms, const frame_handler& on_frame) {
  zmq::pollitem_t items[] = {{zap_->handle(), 0, ZMQ_POLLIN, 0}, {router_->handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 2, std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    return;  // a signal (SIGINT/SIGTERM): the caller looks at its stop flag
  }
  while (items[0].revents & ZMQ_POLLIN) {
    answer_zap();
    items[0].revents = 0;
    zmq::poll(items, 1, std::chrono::milliseconds(0));
  }
  std::vector<zmq::message_t> parts;
  for (;;) {
    zmq::message_t id, body;
    if (!router_->recv(id, zmq::recv_flags::dontwait)) break;
    if (!id.more() || !router_->recv(body, zmq::recv_flags::dontwait)) {
      ++counters_.malformed_messages;
      continue;
    }
    // A frame in parts (a big one, see send): all of them are here already
    // (ZeroMQ hands out a multi-part message only once it is complete).
    size_t total = body.size();
    bool oversize = false, more = body.more();
    parts.clear();
    while (more) {
      zmq::message_t part;
      if (!router_->recv(part, zmq::recv_flags::dontwait)) break;
      more = part.more();
      total += part.size();
      // Drained, not kept, past max_frame_bytes: what a sender's parts cost
      // here is bounded by the limit, not by the sender.
      if (total > opt_.max_frame_bytes) oversize = true;
      if (!oversize) parts.push_back(std::move(part));
    }
    if (oversize) {
      parts.clear();
      ++counters_.malformed_messages;
      continue;
    }
    const char* user = body.gets("User-Id");
    const std::string key = user ? user : "";
    std::vector<std::byte> frame;
    // Reserved, then filled part by part, each part freed once copied: the
    // frame's pages are touched as the parts' are given back.
    frame.reserve(total);
    auto take = [&frame](zmq::message_t& m) {
      const auto* p = static_cast<const std::byte*>(m.data());
      frame.insert(frame.end(), p, p + m.size());
      m.rebuild();
    };
    take(body);
    for (auto& part : parts) take(part);
    parts.clear();
    ++counters_.frames_received;
    counters_.bytes_received += frame.size();
    on_frame(key, std::move(frame));
  }
}

}  // namespace murmur
