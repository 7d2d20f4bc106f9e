#include "run/link_model.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "run/config_schema.hpp"

namespace murmur {

namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(trim(cur));
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

// A finite number >= 0, or throws what(): "not a number" etc.
double number(const std::string& s, const std::string& what) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v))
    throw ConfigError(what + ": \"" + s + "\" is not a number");
  if (v < 0) throw ConfigError(what + ": " + s + " is negative");
  return v;
}

uint32_t peer_of(const std::string& s, uint32_t peers, const std::string& what) {
  const double v = number(s, what);
  if (v != std::floor(v) || v >= peers)
    throw ConfigError(what + ": peer " + s + " is not a peer index below sim.peers = " + std::to_string(peers));
  return static_cast<uint32_t>(v);
}

}  // namespace

const std::vector<link_class>& link_classes() {
  static const std::vector<link_class> k{
      {"datacenter", 10000, 10000, 0.25}, {"office", 1000, 1000, 1}, {"home", 10, 50, 10}};
  return k;
}

double transfer_end(double t, double bits, double base_bps, const std::vector<bandwidth_window>& windows) {
  if (windows.empty()) return base_bps > 0 ? t + bits / base_bps : t;
  size_t w = 0;
  for (;;) {
    while (w < windows.size() && windows[w].end_s <= t) ++w;
    const bool inside = w < windows.size() && windows[w].start_s <= t;
    const double factor = inside ? windows[w].factor : 1.0;
    const double until = inside ? windows[w].end_s
                                : (w < windows.size() ? windows[w].start_s : std::numeric_limits<double>::infinity());
    if (factor <= 0) {  // an outage: nothing moves until it ends
      t = until;
      continue;
    }
    if (base_bps <= 0) return t;  // unlimited
    const double rate = base_bps * factor;
    if (t + bits / rate <= until) return t + bits / rate;
    bits -= (until - t) * rate;
    t = until;
  }
}

link_model link_model::uniform(double bandwidth_bps, double latency_s, uint32_t peers) {
  link_model m;
  m.base_latency_s_ = latency_s;
  m.peers_.assign(peers, peer_link{"", bandwidth_bps, 0, 0, {}});
  m.up_free_.assign(peers, 0.0);
  m.down_free_.assign(peers, 0.0);
  return m;
}

link_model link_model::from_config(const RunConfig& c, uint32_t peers) {
  link_model m = uniform(c.bandwidth_mbps * 1e6, c.latency_ms / 1000.0, peers);
  if (!c.link_classes.empty()) {
    m.uniform_ = false;
    uint32_t next = 0;
    for (const auto& entry : split(c.link_classes, ',')) {
      const std::string what = "sim.link_classes entry \"" + entry + "\"";
      const auto colon = entry.find(':');
      const std::string name = trim(entry.substr(0, colon));
      auto it = std::find_if(link_classes().begin(), link_classes().end(),
                             [&](const link_class& k) { return k.name == name; });
      if (it == link_classes().end())
        throw ConfigError(what + ": unknown class \"" + name + "\" (datacenter, office, home)");
      double count = peers - next;
      if (colon != std::string::npos) {
        count = number(trim(entry.substr(colon + 1)), what);
        if (count != std::floor(count) || count < 1) throw ConfigError(what + ": the count must be a whole number >= 1");
      }
      if (next + count > peers)
        throw ConfigError("sim.link_classes = \"" + c.link_classes + "\" names more peers than sim.peers = " +
                          std::to_string(peers));
      for (uint32_t k = 0; k < count; ++k, ++next)
        m.peers_[next] = peer_link{it->name, it->up_mbps * 1e6, it->down_mbps * 1e6, it->access_ms / 1000.0, {}};
    }
    if (next != peers)
      throw ConfigError("sim.link_classes = \"" + c.link_classes + "\" names " + std::to_string(next) +
                        " peers, but sim.peers = " + std::to_string(peers));
  }
  if (!c.link_file.empty()) {
    m.uniform_ = false;
    std::ifstream in(c.link_file);
    if (!in) throw ConfigError("sim.link_file = " + c.link_file + ": cannot be read");
    std::string line;
    for (int no = 1; std::getline(in, line); ++no) {
      if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
      line = trim(line);
      if (line.empty()) continue;
      const std::string what = "sim.link_file " + c.link_file + " line " + std::to_string(no);
      auto f = split(line, ',');
      if (f[0] == "peer" && f.size() == 5) {
        auto& p = m.peers_[peer_of(f[1], peers, what)];
        p.cls = "file";
        p.up_bps = number(f[2], what + " up_mbps") * 1e6;
        p.down_bps = number(f[3], what + " down_mbps") * 1e6;
        p.access_s = number(f[4], what + " access_ms") / 1000.0;
      } else if (f[0] == "link" && f.size() == 5) {
        const uint32_t i = peer_of(f[1], peers, what), j = peer_of(f[2], peers, what);
        if (i == j) throw ConfigError(what + ": a link from peer " + f[1] + " to itself");
        m.links_[{i, j}] = {number(f[3], what + " mbps") * 1e6, number(f[4], what + " latency_ms") / 1000.0};
      } else {
        throw ConfigError(what + ": expected \"peer,i,up_mbps,down_mbps,access_ms\" or \"link,i,j,mbps,latency_ms\", got \"" +
                          line + "\"");
      }
    }
  }
  if (!c.link_events.empty()) {
    m.uniform_ = false;
    for (const auto& entry : split(c.link_events, ',')) {
      const std::string what = "sim.link_events entry \"" + entry + "\"";
      auto f = split(entry, ':');
      const auto dash = f.size() == 3 ? f[0].find('-') : std::string::npos;
      if (dash == std::string::npos) throw ConfigError(what + ": expected start_s-end_s:peer:factor");
      bandwidth_window w{number(trim(f[0].substr(0, dash)), what), number(trim(f[0].substr(dash + 1)), what),
                         number(f[2], what)};
      if (w.end_s <= w.start_s) throw ConfigError(what + ": the window ends before it starts");
      m.peers_[peer_of(f[1], peers, what)].windows.push_back(w);
    }
    for (auto& p : m.peers_) {
      std::sort(p.windows.begin(), p.windows.end(),
                [](const bandwidth_window& a, const bandwidth_window& b) { return a.start_s < b.start_s; });
      for (size_t k = 1; k < p.windows.size(); ++k)
        if (p.windows[k].start_s < p.windows[k - 1].end_s)
          throw ConfigError("sim.link_events = \"" + c.link_events + "\": two windows of one peer overlap");
    }
  }
  return m;
}

double link_model::latency_s(uint32_t from, uint32_t to) const {
  if (auto it = links_.find({from, to}); it != links_.end()) return it->second.second;
  const double access = peers_[from].access_s + peers_[to].access_s;
  return access > 0 ? base_latency_s_ + access : base_latency_s_;
}

double link_model::rate_cap(uint32_t from, uint32_t to) const {
  double r = peers_[from].up_bps;
  if (auto it = links_.find({from, to}); it != links_.end() && it->second.first > 0)
    r = r > 0 ? std::min(r, it->second.first) : it->second.first;
  return r;
}

double link_model::rate_bps(uint32_t from, uint32_t to) const {
  const double r = rate_cap(from, to), down = peers_[to].down_bps;
  if (r <= 0) return down;
  return down > 0 ? std::min(r, down) : r;
}

transfer_times link_model::send(uint32_t from, uint32_t to, double bytes, double now) {
  const double bits = bytes * 8.0;
  const double depart = std::max(now, up_free_[from]);
  transfer_times t;
  t.up_done = transfer_end(depart, bits, rate_cap(from, to), peers_[from].windows);
  up_free_[from] = t.up_done;
  const double lat = latency_s(from, to);
  t.arrive = t.up_done + lat;
  const auto& dst = peers_[to];
  if (dst.down_bps > 0 || !dst.windows.empty()) {
    const double start = std::max(depart + lat, down_free_[to]);
    const double done = transfer_end(start, bits, dst.down_bps, dst.windows);
    down_free_[to] = done;
    t.arrive = std::max(t.arrive, done);
  }
  return t;
}

transfer_times link_model::send_ranked(uint32_t from, uint32_t to, double bytes, double now, int rank, uint64_t id,
                                       double chunk_bytes, std::vector<moved_frame>& moved) {
  if (up_queue_.size() != peers_.size()) {
    up_queue_.resize(peers_.size());
    up_cut_.assign(peers_.size(), 0.0);
  }
  auto& q = up_queue_[from];
  const auto& windows = peers_[from].windows;
  // Frames already out are served in order: a prefix.
  size_t out = 0;
  while (out < q.size() && q[out].done <= now) ++out;
  q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(out));

  queued_frame f;
  f.id = id;
  f.seq = next_seq_++;
  f.rank = rank;
  f.rate = rate_cap(from, to);
  f.bits = bytes * 8.0;
  // The head may be on the wire now: it stays first unless f outranks it,
  // then it is cut at the end of its current chunk (if that comes first).
  size_t first = 0;   // where f may go at the earliest
  double from_t = 0;  // when the frames from `first` on may start
  bool replan_all = false;
  if (!q.empty() && q[0].run_start <= now) {
    auto& h = q[0];
    double cut = h.done;
    double cut_bits = 0;
    if (rank < h.rank && chunk_bytes > 0 && h.rate > 0) {
      const double chunk = chunk_bytes * 8.0;
      for (double k = 1; k * chunk < h.bits; ++k) {
        const double t = transfer_end(h.run_start, k * chunk, h.rate, windows);
        if (t >= now) {
          cut = t;
          cut_bits = k * chunk;
          break;
        }
      }
    }
    if (cut < h.done) {
      h.bits -= cut_bits;
      up_cut_[from] = cut;  // its chunk on the wire until then is no longer in q
      from_t = cut;
      replan_all = true;  // h's rest is queued again by rank
    } else {
      first = 1;
      from_t = h.done;
    }
  } else if (!q.empty()) {
    from_t = std::max(now, up_cut_[from]);  // the head waits for a cut frame's chunk
  } else {
    from_t = std::max(now, up_free_[from]);
  }
  // f goes after every frame of its rank or a higher one.
  size_t pos = first;
  while (pos < q.size() && q[pos].rank <= rank) ++pos;
  q.insert(q.begin() + static_cast<std::ptrdiff_t>(pos), f);
  if (replan_all) {
    // The cut head's rest goes behind the frames that outrank it (it was
    // first of the rest, all at or below its rank, so only f moves past it).
    std::stable_sort(q.begin(), q.end(), [](const queued_frame& a, const queued_frame& b) {
      return a.rank != b.rank ? a.rank < b.rank : a.seq < b.seq;
    });
  }
  size_t start = replan_all ? 0 : pos;
  double t = start == first ? from_t : q[start - 1].done;
  transfer_times mine;
  for (size_t i = start; i < q.size(); ++i) {
    auto& g = q[i];
    const double done = transfer_end(t, g.bits, g.rate, windows);
    if (g.id == id && g.seq == f.seq) {
      g.run_start = t;
      g.done = done;
      const double lat = latency_s(from, to);
      g.arrive = done + lat;
      const auto& dst = peers_[to];
      if (dst.down_bps > 0 || !dst.windows.empty()) {
        if (down_free_ranked_.size() != peers_.size()) down_free_ranked_.assign(peers_.size(), {});
        auto& down = down_free_ranked_[to];
        if (down.size() <= static_cast<size_t>(rank)) down.resize(static_cast<size_t>(rank) + 1, 0.0);
        double begin = t + lat;
        for (int r = 0; r <= rank; ++r) begin = std::max(begin, down[static_cast<size_t>(r)]);
        const double down_done = transfer_end(begin, g.bits, dst.down_bps, dst.windows);
        down[static_cast<size_t>(rank)] = down_done;
        g.arrive = std::max(g.arrive, down_done);
      }
      mine = {g.done, g.arrive};
    } else if (done != g.done || t != g.run_start) {
      g.arrive += done - g.done;
      g.run_start = t;
      if (done != g.done) {
        g.done = done;
        moved.push_back({g.id, {g.done, g.arrive}});
      }
    }
    t = done;
  }
  up_free_[from] = q.empty() ? up_free_[from] : q.back().done;
  return mine;
}

double link_model::direct_time(uint32_t from, uint32_t to, double bytes, double now) const {
  const double bits = bytes * 8.0;
  const double rate = rate_cap(from, to), lat = latency_s(from, to);
  const auto& src = peers_[from];
  const auto& dst = peers_[to];
  if (src.windows.empty() && dst.windows.empty()) {  // relative times, as the uniform model had them
    double t = (rate > 0 ? bits / rate : 0.0) + lat;
    if (dst.down_bps > 0) t = std::max(t, lat + bits / dst.down_bps);
    return t;
  }
  double t = transfer_end(now, bits, rate, src.windows) + lat;
  if (dst.down_bps > 0 || !dst.windows.empty()) t = std::max(t, transfer_end(now + lat, bits, dst.down_bps, dst.windows));
  return t - now;
}

double link_model::slowest_bps() const {
  double r = 0;
  auto take = [&](double v) {
    if (v > 0) r = r > 0 ? std::min(r, v) : v;
  };
  for (const auto& p : peers_) {
    take(p.up_bps);
    take(p.down_bps);
  }
  for (const auto& [k, v] : links_) take(v.first);
  return r;
}

double link_model::largest_latency_s() const {
  double l = 0;
  for (uint32_t i = 0; i < peers_.size(); ++i)
    for (uint32_t j = 0; j < peers_.size(); ++j)
      if (i != j) l = std::max(l, latency_s(i, j));
  if (peers_.size() < 2) l = base_latency_s_;
  return l;
}

link_model link_model::relabelled(const std::vector<uint32_t>& machine_of) const {
  const auto n = static_cast<uint32_t>(peers_.size());
  std::vector<uint32_t> node_of(n, n);
  if (machine_of.size() != n) throw std::invalid_argument("link_model::relabelled: not one machine per peer");
  for (uint32_t k = 0; k < n; ++k) {
    if (machine_of[k] >= n || node_of[machine_of[k]] != n)
      throw std::invalid_argument("link_model::relabelled: the machines are not a permutation of the peers");
    node_of[machine_of[k]] = k;
  }
  link_model m = *this;
  for (uint32_t k = 0; k < n; ++k) m.peers_[k] = peers_[machine_of[k]];
  m.links_.clear();
  for (const auto& [ij, v] : links_) m.links_[{node_of[ij.first], node_of[ij.second]}] = v;
  std::fill(m.up_free_.begin(), m.up_free_.end(), 0.0);
  std::fill(m.down_free_.begin(), m.down_free_.end(), 0.0);
  return m;
}

}  // namespace murmur
