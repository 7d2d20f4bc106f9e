#include "lan/peer_rendezvous.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cctype>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "run/config_schema.hpp"

namespace murmur {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string join_list(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string r;
  for (size_t i = 0; i < v.size(); ++i) r += (i ? sep : "") + v[i];
  return r;
}

// Peers 0..count-1 that are not live, each described.
std::vector<std::string> missing_peers(const peer_identities& ids, uint32_t count, const std::vector<uint32_t>& live) {
  std::vector<std::string> r;
  for (uint32_t i = 0; i < count; ++i)
    if (std::find(live.begin(), live.end(), i) == live.end()) r.push_back(describe_peer(ids, i));
  return r;
}

}  // namespace

std::vector<authorized_peer> contact_lines(const peer_identities& ids, const std::vector<std::string>& join,
                                           const std::string& self_key, const std::string& allowlist_path) {
  std::vector<authorized_peer> r;
  for (const auto& ep : join) {
    const auto& lines = ids.lines();
    auto it = std::find_if(lines.begin(), lines.end(), [&](const authorized_peer& a) { return a.endpoint == ep; });
    if (it == lines.end())
      throw ConfigError("--join " + ep + ": no line of " + allowlist_path +
                        " has this endpoint, so its key is unknown (add 'KEY " + ep +
                        "' on that peer's line, or --join an endpoint listed there)");
    if (it->public_key != self_key) r.push_back(*it);
  }
  return r;
}

std::string describe_peer(const peer_identities& ids, uint32_t index) {
  std::string r = "peer " + std::to_string(index);
  const authorized_peer* a = ids.find(index);
  if (!a || (a->endpoint.empty() && a->label.empty())) return r;
  std::vector<std::string> parts;
  if (!a->endpoint.empty()) parts.push_back(a->endpoint);
  if (!a->label.empty()) parts.push_back(a->label);
  return r + " (" + join_list(parts) + ")";
}

std::string tcp_probe(const std::string& endpoint, std::chrono::milliseconds timeout) {
  const std::string scheme = "tcp://";
  const auto colon = endpoint.rfind(':');
  if (endpoint.compare(0, scheme.size(), scheme) != 0 || colon == std::string::npos || colon < scheme.size())
    return "not tcp://HOST:PORT";
  std::string host = endpoint.substr(scheme.size(), colon - scheme.size());
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = endpoint.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int e = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); e != 0)
    return std::string("cannot resolve ") + host + ": " + gai_strerror(e);
  std::string why = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int n = poll(&p, 1, static_cast<int>(timeout.count()));
        if (n <= 0) {
          err = ETIMEDOUT;
        } else {
          socklen_t len = sizeof err;
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
      }
    }
    close(fd);
    if (err == 0) {
      freeaddrinfo(found);
      return "";
    }
    why = err == ETIMEDOUT ? "no answer in " + std::to_string(timeout.count()) + " ms" : std::strerror(err);
  }
  freeaddrinfo(found);
  for (auto& ch : why) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return why;
}

bool wait_for_contacts(const std::vector<std::string>& endpoints, double timeout_s, const std::atomic<int>& stop,
                       FILE* out) {
  if (endpoints.empty()) return true;
  const auto t0 = clock_type::now();
  double last_line = -1;
  std::vector<std::string> why(endpoints.size());
  for (;;) {
    for (size_t i = 0; i < endpoints.size(); ++i) {
      why[i] = tcp_probe(endpoints[i], std::chrono::milliseconds(1000));
      if (why[i].empty()) return true;
    }
    if (stop.load() != 0) return false;
    const double t = seconds_since(t0);
    std::vector<std::string> each;
    for (size_t i = 0; i < endpoints.size(); ++i) each.push_back(endpoints[i] + " (" + why[i] + ")");
    if (t >= timeout_s)
      throw std::runtime_error("no --join contact could be reached in " + std::to_string(std::lround(timeout_s)) +
                               " s (peer.start_timeout_ms): " + join_list(each) +
                               "; start a peer there first, or fix --join");
    if (last_line < 0 || t - last_line >= 1.0) {
      std::fprintf(out, "waiting for a --join contact to listen: %s; %.0f s of %.0f s\n", join_list(each).c_str(), t,
                   timeout_s);
      std::fflush(out);
      last_line = t;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

peer_wait_result wait_for_peers(const std::function<std::vector<uint32_t>()>& live, const peer_identities& ids,
                                const peer_wait_settings& s, const std::atomic<int>& stop, FILE* out) {
  const auto t0 = clock_type::now();
  peer_wait_result r;
  double last_line = -1;
  std::vector<uint32_t> shown;  // the live set of the last line
  for (;;) {
    r.live = live();
    std::sort(r.live.begin(), r.live.end());
    r.waited_s = seconds_since(t0);
    const bool answered = s.contacts.empty() || r.live.size() >= 2;  // after a --join: someone but us
    if (r.live.size() >= s.required && answered) return r;
    if (stop.load() != 0) {
      r.interrupted = true;
      return r;
    }
    const auto missing = missing_peers(ids, s.count, r.live);
    if (r.waited_s >= s.timeout_s) {
      const std::string when = " in " + std::to_string(std::lround(s.timeout_s)) + " s (peer.start_timeout_ms)";
      if (!answered)
        throw std::runtime_error("no peer answered through --join " + join_list(s.contacts) + when +
                                 ": something listens there, but no peer of this run answered (is it a murmur "
                                 "peer whose authorized_peers lists this peer's key?)");
      if (!s.start_anyway)
        throw std::runtime_error(std::to_string(r.live.size()) + " of " + std::to_string(s.count) +
                                 " peers live" + when + ", peer.min_peers = " + std::to_string(s.required) +
                                 "; missing " + join_list(missing) +
                                 " (set peer.on_start_timeout = \"start\" to train with those present)");
      std::fprintf(stderr, "murmur peer: warning: %zu of %u peers live after %.0f s (peer.on_start_timeout = start): "
                   "training without %s\n", r.live.size(), s.count, r.waited_s, join_list(missing).c_str());
      return r;
    }
    if ((!s.quiet && (last_line < 0 || r.waited_s - last_line >= 1.0)) || (s.quiet && r.live != shown)) {
      std::fprintf(out, "waiting for peers: %zu of %u live, need %u; waiting for %s; %.0f s of %.0f s\n",
                   r.live.size(), s.count, s.required, join_list(missing).c_str(), r.waited_s, s.timeout_s);
      std::fflush(out);
      last_line = r.waited_s;
      shown = r.live;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace murmur
