#include "lan/loopback_serving.hpp"

#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace murmur {
namespace {

// A port the kernel just handed out on 127.0.0.1 (free unless someone takes
// it before the stage binds it, which loopback tests accept).
int free_loopback_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) throw std::runtime_error("loopback_serving: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(s);
  if (!ok) throw std::runtime_error("loopback_serving: cannot find a free port on 127.0.0.1");
  return ntohs(a.sin_port);
}

}  // namespace

loopback_layout make_loopback_layout(size_t stages) {
  loopback_layout l;
  for (size_t s = 0; s <= stages; ++s) {  // stages, then the client
    l.keys.push_back(generate_curve_keys());
    authorized_peer p;
    p.public_key = l.keys.back().public_key;
    if (s < stages) p.endpoint = "tcp://127.0.0.1:" + std::to_string(free_loopback_port());
    l.lines.push_back(p);
  }
  return l;
}

inference_client_options loopback_layout::client_options(int timeout_ms) const {
  inference_client_options o;
  o.keys = keys.back();
  for (size_t s = 0; s < stages(); ++s) o.authorized.push_back(keys[s].public_key);
  o.connect = lines.front().endpoint;
  o.connect_key = keys.front().public_key;
  o.timeout_ms = timeout_ms;
  return o;
}

loopback_serving::loopback_serving(const served_model& m, const loopback_layout& layout) {
  const size_t n = layout.stages();
  const auto ranges = served_stage_ranges(m, n, "");
  const peer_identities ids(layout.lines);
  settings_.resize(n);
  counters_.resize(n);
  for (size_t s = 0; s < n; ++s) {
    parts_.push_back(served_stage(m, ranges[s]));
    settings_[s].stage = static_cast<uint16_t>(s);
    settings_[s].stages = static_cast<uint16_t>(n);
    settings_[s].keys = layout.keys[s];
    settings_[s].allowlist = ids;
    settings_[s].quiet = true;
  }
  for (size_t s = 0; s < n; ++s)
    threads_.emplace_back([this, s] { run_inference_stage(settings_[s], *parts_[s], stop_, &counters_[s]); });
}

void loopback_serving::stop() {
  stop_ = 15;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace murmur
