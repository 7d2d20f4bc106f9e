// hostile_peer: a test-only driver that plays one AUTHORIZED but hostile
// peer in a `murmur peer` run (tests/e2e/test_lan_hostile.cpp). It is no part
// of the murmur binary.
//
// It holds the key on line H of authorized_peers and joins honestly as peer
// H (join, heartbeats and their acks, membership updates), so the honest
// peers count it as a live neighbour. Then, on the schedule given by
// --phase options (seconds after the first membership update it receives),
// it sends, using murmur's own encoders and ZeroMQ transport:
//   extreme_once   one well-formed gossip frame with 1e30 at a few coordinates
//   extreme        such a frame every --period-ms (persistent)
//   bounded        frames with +-(--bounded-value) at --bounded-coords
//                  coordinates (finite, just under a decode bound)
//   claims         identity claims against --victim: joins for the victim's
//                  index signed with our key (max incarnation, victim's + 1),
//                  updates with sender = victim, our updates relaying records
//                  that the victim is dead / left / reborn elsewhere,
//                  heartbeats and leaves naming the victim
//   flood          --flood-rate frames/s, half gossip, half control
//   replay         honest peers' gossip and control frames it received, and
//                  its own old gossip rounds
//   commits        step commitments (transcript_commit) it never backs: the
//                  challenges they draw (tensor_request) are never answered
// It never answers a challenge. It exits after --duration-s, or once every
// honest peer it knew has sent a leave, and writes a JSON log (--log): what
// it sent, per kind; what it received; and what it OBSERVED in the honest
// peers' membership updates: a record of an honest index carrying our key or
// endpoint (an impersonation that was accepted), or an honest peer reported
// dead/left before any honest peer left (a slander that was believed).
//
// Usage:
//   hostile_peer --keys DIR --authorized FILE --index H --listen tcp://127.0.0.1:P
//                --join tcp://127.0.0.1:Q --log FILE [--victim V] [--dim D]
//                [--layers L] [--duration-s S] [--period-ms MS] [--flood-rate R]
//                [--bounded-value X] [--bounded-coords K] [--seed S]
//                [--phase KIND:START[:END]]...
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "protocols/curve_keys.hpp"
#include "protocols/gossip_messages.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/verify_messages.hpp"
#include "protocols/zmq_transport.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using murmur::message_type;

constexpr uint32_t contact_id_base = 0x80000000u;  // same convention as the membership actor

struct phase {
  std::string kind;
  double start_s = 0, end_s = 0;  // end_s == start_s: a one-shot phase
};

struct options {
  std::string keys, authorized, listen, log;
  std::vector<std::string> join;
  uint32_t index = 0, victim = 0, dim = 235146, layers = 3;
  double duration_s = 120, period_ms = 100, flood_rate = 200, bounded_value = 1e3;
  uint32_t bounded_coords = 64;
  uint64_t seed = 7;
  std::vector<phase> phases;
};

phase parse_phase(const std::string& s) {
  phase p;
  auto a = s.find(':');
  if (a == std::string::npos) throw std::invalid_argument("--phase " + s + ": expected KIND:START[:END]");
  p.kind = s.substr(0, a);
  auto b = s.find(':', a + 1);
  p.start_s = std::stod(s.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1));
  p.end_s = b == std::string::npos ? p.start_s : std::stod(s.substr(b + 1));
  static const std::set<std::string> kinds{"extreme_once", "extreme", "bounded", "claims", "flood", "replay", "commits"};
  if (!kinds.count(p.kind)) throw std::invalid_argument("--phase " + s + ": unknown kind '" + p.kind + "'");
  if (p.end_s < p.start_s) throw std::invalid_argument("--phase " + s + ": END before START");
  return p;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--keys") o.keys = value();
    else if (a == "--authorized") o.authorized = value();
    else if (a == "--listen") o.listen = value();
    else if (a == "--join") o.join.push_back(value());
    else if (a == "--log") o.log = value();
    else if (a == "--index") o.index = static_cast<uint32_t>(std::stoul(value()));
    else if (a == "--victim") o.victim = static_cast<uint32_t>(std::stoul(value()));
    else if (a == "--dim") o.dim = static_cast<uint32_t>(std::stoul(value()));
    else if (a == "--layers") o.layers = static_cast<uint32_t>(std::stoul(value()));
    else if (a == "--duration-s") o.duration_s = std::stod(value());
    else if (a == "--period-ms") o.period_ms = std::stod(value());
    else if (a == "--flood-rate") o.flood_rate = std::stod(value());
    else if (a == "--bounded-value") o.bounded_value = std::stod(value());
    else if (a == "--bounded-coords") o.bounded_coords = static_cast<uint32_t>(std::stoul(value()));
    else if (a == "--seed") o.seed = std::stoull(value());
    else if (a == "--phase") o.phases.push_back(parse_phase(value()));
    else throw std::invalid_argument("unexpected argument '" + a + "'");
  }
  if (o.keys.empty() || o.authorized.empty() || o.listen.empty() || o.join.empty() || o.log.empty())
    throw std::invalid_argument("needs --keys, --authorized, --listen, --join and --log");
  if (o.victim == o.index) throw std::invalid_argument("--victim must be another peer's index");
  if (o.period_ms <= 0 || o.flood_rate <= 0 || o.flood_rate > 5000)
    throw std::invalid_argument("--period-ms must be > 0 and --flood-rate in (0, 5000]");
  return o;
}

class hostile_peer {
 public:
  explicit hostile_peer(options o) : o_(std::move(o)), rng_(o_.seed) {
    keys_ = murmur::read_curve_keys(o_.keys);
    allowed_ = murmur::read_authorized_peer_entries(o_.authorized);
    murmur::zmq_transport_options zo;
    zo.listen = o_.listen;
    zo.keys = keys_;
    for (auto& e : allowed_) zo.authorized.push_back(e.public_key);
    zo.send_hwm = 1000;
    net_ = std::make_unique<murmur::zmq_transport>(zo);
    self_.index = o_.index;
    self_.endpoint = o_.listen;
    self_.public_key = keys_.public_key;
    self_.incarnation = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    uint32_t cid = contact_id_base;
    for (auto& ep : o_.join) {
      std::string key;
      for (auto& a : allowed_)
        if (a.endpoint == ep) key = a.public_key;
      if (key.empty()) throw std::invalid_argument("--join " + ep + ": no key for it in " + o_.authorized);
      net_->connect(cid, ep, key);
      contacts_.push_back(cid++);
    }
  }

  void run(const volatile sig_atomic_t& stop) {
    const auto t0 = clock_type::now();
    auto last_beat = t0 - std::chrono::hours(1), last_join = last_beat, last_spread = last_beat, last_period = last_beat;
    double flood_credit = 0;
    auto last_flood = t0;
    while (!stop) {
      net_->poll(2, [&](const std::string& key, std::span<const std::byte> f) { on_frame(key, f); });
      const auto now = clock_type::now();
      if (std::chrono::duration<double>(now - t0).count() > o_.duration_s) {
        std::cerr << "hostile_peer: --duration-s is over, stopping\n";
        break;
      }
      if (everyone_left()) {
        std::cerr << "hostile_peer: every honest peer left, stopping\n";
        break;
      }
      if (now - last_beat >= std::chrono::milliseconds(250)) {
        last_beat = now;
        encode_heartbeat(murmur::heartbeat{o_.index, self_.incarnation, ++seq_}, buf_);
        to_members(buf_, "heartbeat");
      }
      if (!contacts_.empty() && now - last_join >= std::chrono::seconds(1)) {
        last_join = now;
        encode_membership_join(murmur::membership_join{self_}, buf_);
        for (uint32_t c : contacts_) count(net_->send(c, buf_), "join");
      }
      if (now - last_spread >= std::chrono::seconds(2)) {
        last_spread = now;
        spread_snapshot();
      }
      if (!joined_) continue;
      const double t = std::chrono::duration<double>(now - joined_at_).count();
      for (auto& p : phases_once_pending(t)) fire_once(p);
      if (now - last_period >= std::chrono::microseconds(static_cast<int64_t>(o_.period_ms * 1000))) {
        last_period = now;
        if (active("extreme", t)) send_extreme("extreme");
        if (active("bounded", t)) send_bounded();
        if (active("claims", t)) send_claim();
        if (active("replay", t)) send_replays();
        if (active("commits", t)) send_commit();
      }
      if (active("flood", t)) {
        flood_credit += o_.flood_rate * std::chrono::duration<double>(now - last_flood).count();
        flood_credit = std::min(flood_credit, o_.flood_rate * 0.05);  // no bursts after a stall
        for (; flood_credit >= 1; flood_credit -= 1) send_flood();
      }
      last_flood = now;
    }
    if (stop) std::cerr << "hostile_peer: signalled, stopping\n";
    // No leave: a hostile peer that simply stops is the harder case.
    net_->close(200);
  }

  void write_log() const {
    std::ofstream out(o_.log);
    auto map_json = [](const std::map<std::string, uint64_t>& m) {
      std::string r = "{";
      for (auto& [k, v] : m) r += (r.size() > 1 ? ", \"" : "\"") + k + "\": " + std::to_string(v);
      return r + "}";
    };
    std::string impostor_seen_by;
    for (uint32_t i : impersonation_seen_by_) impostor_seen_by += (impostor_seen_by.empty() ? "" : ", ") + std::to_string(i);
    out << "{\n  \"index\": " << o_.index << ",\n  \"victim\": " << o_.victim << ",\n  \"joined\": "
        << (joined_ ? "true" : "false") << ",\n  \"sent\": " << map_json(sent_)
        << ",\n  \"send_dropped\": " << net_->counters().send_dropped << ",\n  \"received\": " << map_json(received_)
        << ",\n  \"observed\": {\"impersonation_accepted\": " << impersonation_accepted_
        << ", \"impersonation_seen_by\": [" << impostor_seen_by << "], \"honest_reported_down\": " << honest_reported_down_
        << ", \"victim_incarnation_max\": " << (victim_inc_max_ ? "true" : "false") << "}\n}\n";
  }

 private:
  // --- receiving ----------------------------------------------------------
  void on_frame(const std::string& key, std::span<const std::byte> f) {
    auto type = murmur::peek_type(f);
    if (!type) return;
    ++received_[std::string(type_name(*type))];
    const auto frame = std::vector<std::byte>(f.begin(), f.end());
    switch (*type) {
      case message_type::membership_update: {
        murmur::membership_update u;
        if (decode_membership_update(f, max_frame, u) != murmur::frame_error::none) return;
        on_update(key, u);
        remember(replay_control_, frame);
        break;
      }
      case message_type::heartbeat: {
        murmur::heartbeat h;
        if (decode_heartbeat(f, max_frame, h) != murmur::frame_error::none) return;
        if (net_key_of(h.sender) == key) {
          encode_heartbeat_ack(murmur::heartbeat_ack{o_.index, self_.incarnation, h.seq}, buf_);
          count(net_->send(h.sender, buf_), "heartbeat_ack");
        }
        remember(replay_control_, frame);
        break;
      }
      case message_type::leave: {
        murmur::leave l;
        if (decode_leave(f, max_frame, l) != murmur::frame_error::none) return;
        if (net_key_of(l.sender) == key) left_.insert(l.sender);
        break;
      }
      case message_type::gossip_update: remember(replay_gossip_, frame); break;
      case message_type::transcript_commit: remember(replay_control_, frame); break;
      default: break;  // tensor_request: counted above, never answered
    }
  }

  void on_update(const std::string& key, const murmur::membership_update& u) {
    bool from_member = false;
    for (auto& p : u.peers)
      if (p.index == u.sender && p.public_key == key) from_member = true;
    if (!from_member) return;
    if (!joined_) {
      joined_ = true;
      joined_at_ = clock_type::now();
    }
    // The contacts told us who they are.
    for (uint32_t c : contacts_) net_->disconnect(c);
    contacts_.clear();
    for (auto& p : u.peers) {
      if (p.index == o_.index) continue;
      const bool ours = p.public_key == keys_.public_key || p.endpoint == self_.endpoint;
      if (ours) {
        // An honest peer's table holds one of OUR claims under another index.
        ++impersonation_accepted_;
        impersonation_seen_by_.insert(u.sender);
        continue;
      }
      if (p.status == murmur::peer_status::dead || p.status == murmur::peer_status::left) {
        if (left_.empty() && honest_.count(p.index)) ++honest_reported_down_;
        continue;
      }
      auto& known = members_[p.index];
      if (p.incarnation < known.incarnation) continue;
      const bool renew = known.public_key != p.public_key || known.endpoint != p.endpoint;
      known = p;
      honest_.insert(p.index);
      if (p.index == o_.victim && p.incarnation == std::numeric_limits<uint64_t>::max()) victim_inc_max_ = true;
      if (renew) net_->connect(p.index, p.endpoint, p.public_key);
    }
  }

  bool everyone_left() const {
    if (honest_.empty()) return false;
    for (uint32_t i : honest_)
      if (!left_.count(i)) return false;
    return true;
  }

  std::string net_key_of(uint32_t index) const {
    auto it = members_.find(index);
    return it == members_.end() ? std::string() : it->second.public_key;
  }

  static void remember(std::deque<std::vector<std::byte>>& q, const std::vector<std::byte>& f) {
    q.push_back(f);
    if (q.size() > 64) q.pop_front();
  }

  static std::string_view type_name(message_type t) {
    switch (t) {
      case message_type::gossip_update: return "gossip_update";
      case message_type::membership_join: return "membership_join";
      case message_type::membership_update: return "membership_update";
      case message_type::heartbeat: return "heartbeat";
      case message_type::heartbeat_ack: return "heartbeat_ack";
      case message_type::leave: return "leave";
      case message_type::transcript_commit: return "transcript_commit";
      case message_type::tensor_request: return "tensor_request";
      case message_type::tensor_reply: return "tensor_reply";
      case message_type::evidence: return "evidence";
      default: return "other";
    }
  }

  // --- sending ------------------------------------------------------------
  void count(bool ok, const std::string& kind) { ++sent_[ok ? kind : kind + "_dropped"]; }

  void to_members(const std::vector<std::byte>& frame, const std::string& kind) {
    for (auto& [i, p] : members_) count(net_->send(i, frame), kind);
  }

  void spread_snapshot() {
    murmur::membership_update u{o_.index, self_.incarnation, {self_}};
    for (auto& [i, p] : members_) u.peers.push_back(p);  // what we learned, relayed faithfully
    encode_membership_update(u, buf_);
    to_members(buf_, "membership_update");
  }

  std::vector<phase> phases_once_pending(double t) {
    std::vector<phase> due;
    for (size_t k = 0; k < o_.phases.size(); ++k) {
      auto& p = o_.phases[k];
      if (p.start_s == p.end_s && t >= p.start_s && !fired_.count(k)) {
        fired_.insert(k);
        due.push_back(p);
      }
    }
    return due;
  }

  bool active(const std::string& kind, double t) const {
    for (auto& p : o_.phases)
      if (p.kind == kind && p.start_s < p.end_s && t >= p.start_s && t < p.end_s) return true;
    return false;
  }

  void fire_once(const phase& p) {
    if (p.kind == "extreme_once") send_extreme("extreme_once");
    else if (p.kind == "extreme") send_extreme("extreme");
    else if (p.kind == "bounded") send_bounded();
    else if (p.kind == "claims") send_claim();
    else if (p.kind == "replay") send_replays();
    else if (p.kind == "commits") send_commit();
    else if (p.kind == "flood") send_flood();
  }

  void send_gossip(std::vector<uint32_t> idx, std::vector<float> val, const std::string& kind) {
    murmur::gossip_update g;
    g.sender = o_.index;
    g.round = ++round_;
    g.step = round_;
    g.dim = o_.dim;
    g.kind = murmur::update_kind::sparse_set;
    g.indices = std::move(idx);
    g.values = std::move(val);
    encode_gossip(g, buf_);
    remember(own_old_gossip_, buf_);
    to_members(buf_, kind);
  }

  std::vector<uint32_t> coords(uint32_t k) {
    std::set<uint32_t> s;
    std::uniform_int_distribution<uint32_t> d(0, o_.dim - 1);
    while (s.size() < std::min(k, o_.dim)) s.insert(d(rng_));
    return {s.begin(), s.end()};
  }

  void send_extreme(const std::string& kind) {
    auto idx = coords(4);
    send_gossip(idx, std::vector<float>(idx.size(), 1e30f), kind);
  }

  void send_bounded() {
    auto idx = coords(o_.bounded_coords);
    std::vector<float> v(idx.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 2 ? -o_.bounded_value : o_.bounded_value);
    send_gossip(idx, v, "bounded");
  }

  // One identity claim against the victim per call, in rotation.
  void send_claim() {
    auto it = members_.find(o_.victim);
    if (it == members_.end()) return;  // not learned yet
    const murmur::peer_info victim = it->second;
    const uint64_t max_inc = std::numeric_limits<uint64_t>::max();
    murmur::peer_info claim = self_;  // our key and endpoint, the victim's index
    claim.index = o_.victim;
    auto relay = [&](murmur::peer_info rec, const char* kind) {
      encode_membership_update(murmur::membership_update{o_.index, self_.incarnation, {self_, rec}}, buf_);
      to_members(buf_, kind);
    };
    switch (claim_turn_++ % 9) {
      case 0:
        claim.incarnation = max_inc;
        encode_membership_join(murmur::membership_join{claim}, buf_);
        to_members(buf_, "claim_join_max_incarnation");
        break;
      case 1:
        claim.incarnation = victim.incarnation + 1;
        encode_membership_join(murmur::membership_join{claim}, buf_);
        to_members(buf_, "claim_join_next_incarnation");
        break;
      case 2:
        claim.incarnation = victim.incarnation + 1;
        encode_membership_update(murmur::membership_update{o_.victim, claim.incarnation, {claim}}, buf_);
        to_members(buf_, "claim_update_as_victim");
        break;
      case 3: {
        auto rec = victim;
        rec.status = murmur::peer_status::dead;
        relay(rec, "relay_victim_dead");
        break;
      }
      case 4: {
        auto rec = victim;
        rec.status = murmur::peer_status::left;
        relay(rec, "relay_victim_left");
        break;
      }
      case 5: {
        auto rec = victim;  // reborn at another endpoint (ours), same key
        rec.incarnation = victim.incarnation + 1;
        rec.endpoint = self_.endpoint;
        relay(rec, "relay_victim_moved");
        break;
      }
      case 6: {
        auto rec = claim;  // reborn with our key, highest incarnation
        rec.incarnation = max_inc;
        relay(rec, "relay_victim_is_us");
        break;
      }
      case 7:
        encode_heartbeat(murmur::heartbeat{o_.victim, victim.incarnation, ++seq_}, buf_);
        to_members(buf_, "heartbeat_as_victim");
        break;
      case 8:
        encode_leave(murmur::leave{o_.victim, victim.incarnation}, buf_);
        to_members(buf_, "leave_as_victim");
        break;
    }
  }

  void send_flood() {
    if (flood_turn_++ % 2 == 0) {
      auto idx = coords(16);
      send_gossip(idx, std::vector<float>(idx.size(), 0.f), "flood_gossip");
    } else {
      encode_heartbeat(murmur::heartbeat{o_.index, self_.incarnation, ++seq_}, buf_);
      to_members(buf_, "flood_control");
    }
  }

  void send_replays() {
    if (!replay_gossip_.empty()) to_members(replay_gossip_[replay_turn_ % replay_gossip_.size()], "replay_honest_gossip");
    if (!replay_control_.empty())
      to_members(replay_control_[replay_turn_ % replay_control_.size()], "replay_honest_control");
    if (own_old_gossip_.size() > 1) to_members(own_old_gossip_.front(), "replay_own_old_round");
    ++replay_turn_;
  }

  void send_commit() {
    murmur::transcript_commit c;
    c.prover = o_.index;
    c.step = ++commit_step_;
    c.layers.resize(o_.layers);
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& l : c.layers)
      for (auto& d : l.d)
        for (auto& b : d) b = static_cast<uint8_t>(byte(rng_));
    murmur::encode_transcript_commit(c, buf_);
    to_members(buf_, "unbacked_commit");
  }

  static constexpr size_t max_frame = 64u << 20;
  options o_;
  std::mt19937_64 rng_;
  murmur::curve_keys keys_;
  std::vector<murmur::authorized_peer> allowed_;
  std::unique_ptr<murmur::zmq_transport> net_;
  murmur::peer_info self_;
  std::map<uint32_t, murmur::peer_info> members_;  // honest peers, as their own updates describe them
  std::set<uint32_t> honest_, left_;
  std::vector<uint32_t> contacts_;
  bool joined_ = false;
  clock_type::time_point joined_at_;
  std::set<size_t> fired_;
  uint64_t seq_ = 0, round_ = 0, commit_step_ = 0, claim_turn_ = 0, flood_turn_ = 0, replay_turn_ = 0;
  std::deque<std::vector<std::byte>> replay_gossip_, replay_control_, own_old_gossip_;
  std::vector<std::byte> buf_;
  std::map<std::string, uint64_t> sent_, received_;
  uint64_t impersonation_accepted_ = 0, honest_reported_down_ = 0;
  std::set<uint32_t> impersonation_seen_by_;
  bool victim_inc_max_ = false;
};

volatile sig_atomic_t stop_requested = 0;  // the signal handler's only channel
void on_signal(int) { stop_requested = 1; }

}  // namespace

int main(int argc, char** argv) {
  try {
    options o = parse(argc, argv);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    hostile_peer h(std::move(o));
    h.run(stop_requested);
    h.write_log();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "hostile_peer: " << e.what() << "\n";
    return 2;
  }
}
