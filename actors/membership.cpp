#include "actors/membership.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace murmur {

namespace {

// Worse news ranks higher; the enum is declared in that order, but the
// precedence is a protocol rule, so spell it out rather than rely on it.
int rank(peer_status s) {
  switch (s) {
    case peer_status::alive: return 0;
    case peer_status::suspect: return 1;
    case peer_status::dead: return 2;
    case peer_status::left: return 3;
  }
  return 3;
}

// Routable: what alive() reports.
bool live(peer_status s) { return s == peer_status::alive || s == peer_status::suspect; }

bool valid_timeout(double t) { return std::isfinite(t) && t >= 0; }

}  // namespace

membership::membership(peer_info self, membership_timeouts t, double now_s)
    : self_index_(self.index), timeouts_(t) {
  if (!valid_peer_info(self)) throw std::invalid_argument("membership: invalid self peer_info");
  if (!valid_timeout(t.suspect_s) || !valid_timeout(t.dead_s))
    throw std::invalid_argument("membership: timeouts must be finite and >= 0");
  self.status = peer_status::alive;
  table_.emplace(self_index_, entry{std::move(self), now_s, now_s, true});
}

membership::effect membership::refute(const peer_info& rec, bool own, double now_s) {
  peer_info& me = table_.at(self_index_).info;
  // Once we have left we stay left: refuting would announce us again.
  if (me.status == peer_status::left) return {};
  if (rec.incarnation < me.incarnation) return {};  // old news, already refuted
  if (rec.incarnation == me.incarnation && rec == me) return {};  // our own record echoed back
  if (!own) {
    // A relay above our incarnation is accepted by nobody; following it
    // would hand our incarnation to a third party.
    if (rec.incarnation > me.incarnation) return {};
    if (last_relay_refute_s_ && now_s - *last_relay_refute_s_ < min_refute_interval_s) return {};
    last_relay_refute_s_ = now_s;
  }
  // Anything else at our incarnation or above would win over our own record
  // somewhere (worse status, or a higher incarnation from a previous life of
  // this index): only a strictly higher incarnation of ours overrides it.
  if (rec.incarnation == std::numeric_limits<uint64_t>::max()) return {};  // cannot go above
  me.incarnation = rec.incarnation + 1;
  return {true, true};
}

membership::effect membership::replace(entry& e, const peer_info& rec, bool own, double now_s) {
  const bool was_live = live(e.info.status);
  const bool same_life = e.info.incarnation == rec.incarnation;
  const bool members = e.info != rec;
  e.info = rec;
  e.own = own;
  // A new life (or j's first own word): the silence clock restarts with it.
  e.last_heard_s = now_s;
  e.suspect_since_s = now_s;
  return {members, !same_life || was_live != live(rec.status)};
}

membership::effect membership::merge_own(const peer_info& rec, double now_s) {
  if (!valid_peer_info(rec)) return {};
  if (rec.index == self_index_) return refute(rec, true, now_s);
  auto it = table_.find(rec.index);
  if (it == table_.end()) {
    if (table_.size() >= max_peers) return {};
    table_.emplace(rec.index, entry{rec, now_s, now_s, true});
    return {true, live(rec.status)};
  }
  entry& e = it->second;
  // j's word beats any relay about j, whatever incarnation the relay named.
  if (!e.own || rec.incarnation > e.info.incarnation) return replace(e, rec, true, now_s);
  if (rec.incarnation == e.info.incarnation && rank(rec.status) > rank(e.info.status)) {
    // Same life, worse news: only the status moves; endpoint/key stay ours.
    const bool was_live = live(e.info.status);
    e.info.status = rec.status;
    if (rec.status == peer_status::suspect) e.suspect_since_s = now_s;
    return {true, was_live != live(rec.status)};
  }
  return {};
}

membership::effect membership::merge_relay(const peer_info& rec, double now_s) {
  if (!valid_peer_info(rec)) return {};
  if (rec.index == self_index_) return refute(rec, false, now_s);
  // Relays discover live peers; only our own timeouts or j's own word make
  // j suspect, dead or left.
  if (rec.status != peer_status::alive) return {};
  auto it = table_.find(rec.index);
  if (it == table_.end()) {
    if (table_.size() >= max_peers) return {};
    table_.emplace(rec.index, entry{rec, now_s, now_s, false});
    return {true, true};
  }
  entry& e = it->second;
  if (e.own || rec.incarnation <= e.info.incarnation) return {};
  return replace(e, rec, false, now_s);
}

membership::effect membership::heard(uint32_t index, uint64_t incarnation, double now_s) {
  if (index == self_index_) return {};
  auto it = table_.find(index);
  if (it == table_.end()) return {};
  entry& e = it->second;
  // Another incarnation is not the life we track: a newer one must come with
  // its record (endpoint) in a join/update, an older one is a ghost.
  if (incarnation != e.info.incarnation) return {};
  // Declared dead or left at this incarnation: final until a higher one.
  if (!live(e.info.status)) return {};
  e.last_heard_s = now_s;
  if (e.info.status == peer_status::suspect) {
    e.info.status = peer_status::alive;
    return {true, false};  // suspect was routable already
  }
  return {};
}

bool membership::finish(effect e) {
  if (e.members) ++version_;
  return e.routing;
}

bool membership::on_join(const peer_info& p, double now_s) {
  if (p.status != peer_status::alive) return false;  // decoders reject such joins too
  effect e = merge_own(p, now_s);
  if (valid_peer_info(p)) e |= heard(p.index, p.incarnation, now_s);
  return finish(e);
}

bool membership::on_update(const membership_update& u, double now_s) {
  effect e;
  for (const auto& rec : u.peers) e |= rec.index == u.sender ? merge_own(rec, now_s) : merge_relay(rec, now_s);
  // After the records, so that the sender's new incarnation (carried by its
  // own record) is known before we count the update as hearing from it.
  e |= heard(u.sender, u.sender_incarnation, now_s);
  return finish(e);
}

bool membership::on_heartbeat(uint32_t sender, uint64_t incarnation, double now_s) {
  return finish(heard(sender, incarnation, now_s));
}

bool membership::on_leave(uint32_t sender, uint64_t incarnation, double /*now_s*/) {
  if (sender == self_index_) return false;
  auto it = table_.find(sender);
  if (it == table_.end()) return false;
  peer_info& p = it->second.info;
  // Only the life we know: a leave of an unseen incarnation carries no
  // endpoint to record it under; gossip brings its left record instead.
  if (incarnation != p.incarnation || p.status == peer_status::left) return false;
  const bool was_live = live(p.status);
  p.status = peer_status::left;
  return finish({true, was_live});
}

bool membership::tick(double now_s) {
  effect e;
  for (auto& [index, en] : table_) {
    if (index == self_index_) continue;
    if (en.info.status == peer_status::alive && now_s - en.last_heard_s > timeouts_.suspect_s) {
      en.info.status = peer_status::suspect;
      // Dated when it became due, not when this tick ran, so the dead
      // deadline does not depend on how often tick is called.
      en.suspect_since_s = en.last_heard_s + timeouts_.suspect_s;
      e.members = true;
    }
    if (en.info.status == peer_status::suspect && now_s - en.suspect_since_s > timeouts_.dead_s) {
      en.info.status = peer_status::dead;
      e |= effect{true, true};
    }
  }
  return finish(e);
}

std::vector<peer_info> membership::members() const {
  std::vector<peer_info> out;
  out.reserve(table_.size());
  for (const auto& [index, en] : table_) out.push_back(en.info);
  return out;
}

std::vector<uint32_t> membership::alive() const {
  std::vector<uint32_t> out;
  for (const auto& [index, en] : table_)
    if (live(en.info.status)) out.push_back(index);
  return out;
}

membership_update membership::snapshot() const {
  return membership_update{self_index_, self().incarnation, members()};
}

std::optional<peer_info> membership::find(uint32_t index) const {
  auto it = table_.find(index);
  if (it == table_.end()) return std::nullopt;
  return it->second.info;
}

std::optional<double> membership::last_heard(uint32_t index) const {
  if (index == self_index_) return std::nullopt;
  auto it = table_.find(index);
  if (it == table_.end()) return std::nullopt;
  return it->second.last_heard_s;
}

void membership::leave() {
  peer_info& me = table_.at(self_index_).info;
  if (me.status == peer_status::left) return;
  me.status = peer_status::left;
  ++version_;
}

}  // namespace murmur
