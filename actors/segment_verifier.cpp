#include "actors/segment_verifier.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace murmur {

double segment_challenge_probability(double rate, size_t layers, uint64_t steps_per_segment) {
  if (rate <= 0) return 0;
  const double per_step = std::min(1.0, rate / static_cast<double>(std::max<size_t>(layers, 1)));
  return 1.0 - std::pow(1.0 - per_step, static_cast<double>(steps_per_segment));
}

segment_verifier::segment_verifier(uint32_t self, double q, size_t keep_segments)
    : self_(self), q_(q), keep_(std::max<size_t>(keep_segments, 1)) {}

segment_verifier::~segment_verifier() = default;

segment_commit_msg segment_verifier::commit(std::shared_ptr<const segment> s) {
  // records_bytes by name: in the braces it would land in fingerprint.build.
  segment_commit_msg c{self_, s->start_step(), s->end_step, s->start_digest(), s->end, s->records_digest};
  c.records_bytes = s->records_bytes();
  kept_.push_back(std::move(s));
  while (kept_.size() > keep_) kept_.pop_front();
  return c;
}

bool segment_verifier::answer(const segment_request_msg& rq, std::vector<std::byte>& out) const {
  for (const auto& s : kept_)
    if (s->start_step() == rq.start_step) {
      encode_segment_reply(self_, rq.nonce, *s, out);
      return true;
    }
  return false;
}

segment_verifier::commit_outcome segment_verifier::on_commit(uint32_t from, const segment_commit_msg& c, Rng& rng,
                                                              uint64_t nonce) {
  commit_outcome out;
  auto& held = commits_[from];
  auto [ch, first] = chains_.try_emplace(from, chain{c.incarnation, c.end_step});
  if (!first && c.incarnation < ch->second.incarnation) {
    out.kind = commit_outcome::stale;
    return out;
  }
  if (!first && c.incarnation > ch->second.incarnation) {
    // A restart: the earlier chain ends here, its open challenges stay the
    // caller's to count, and nothing of it is held against the new one.
    out.kind = commit_outcome::new_chain;
    out.previous_incarnation = ch->second.incarnation;
    for (auto it = pending_.begin(); it != pending_.end();)
      if (it->second.prover == from) {
        out.retired.push_back(it->first);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    held.clear();
    ch->second = {c.incarnation, c.end_step};
  } else if (!first) {
    auto broken = [&](std::string why) {
      out.kind = commit_outcome::broken;
      out.broken_chain = {verdict::failed, from, c.start_step, c.end_step, 0, 0, std::move(why)};
      return out;
    };
    if (c.start_step < ch->second.last_end)
      return broken("its segment from step " + std::to_string(c.start_step) + " starts before step " +
                    std::to_string(ch->second.last_end) +
                    ", where its chain of segments had reached, without a restart (the same incarnation)");
    if (auto prev = held.find(c.start_step - std::min(c.start_step, c.end_step - c.start_step));
        prev != held.end() && prev->second.c.end_step == c.start_step && prev->second.c.end != c.start)
      return broken("its segment from step " + std::to_string(c.start_step) +
                    " does not start where its previous segment ended");
    if (const uint64_t last_end = ch->second.last_end;
        c.start_step > last_end && ch->second.passed_over_end <= last_end) {
      // A gap ("Gaps" in the header). The latest held commitment ends at
      // last_end unless it was trimmed (then the gap cannot be pinned).
      auto prev = held.empty() ? held.end() : std::prev(held.end());
      if (prev != held.end() && prev->second.c.end_step == last_end &&
          c.start_step - last_end == c.end_step - c.start_step) {
        segment_commit_msg implied = c;
        implied.start_step = last_end;
        implied.end_step = c.start_step;
        implied.start = prev->second.c.end;
        implied.end = c.start;
        implied.records = {};
        implied.records_bytes = 0;
        held[last_end] = {implied, seen_[from], false, true};
        out.implied_challenge = challenge(from, last_end, nonce++);
      } else {
        out.gap_from = last_end;
        out.gap_to = c.start_step;
      }
    }
    ch->second.last_end = c.end_step;
  }
  held[c.start_step] = {c, ++seen_[from], false};
  while (held.size() > 2 * keep_ + 2) held.erase(held.begin());
  // The challenge is drawn only now, after the prover is bound.
  if (rng.uniform() < q_) out.challenge = challenge(from, c.start_step, nonce);
  return out;
}

void segment_verifier::passed_over(uint32_t from, const segment_commit_msg& c) {
  auto ch = chains_.find(from);
  if (ch != chains_.end() && ch->second.incarnation == c.incarnation)
    ch->second.passed_over_end = std::max(ch->second.passed_over_end, c.end_step);
}

const segment_verifier::held_commit* segment_verifier::held(uint32_t prover, uint64_t start_step) const {
  auto ph = commits_.find(prover);
  if (ph == commits_.end()) return nullptr;
  auto it = ph->second.find(start_step);
  return it == ph->second.end() ? nullptr : &it->second;
}

uint64_t segment_verifier::commits_seen(uint32_t prover) const {
  auto it = seen_.find(prover);
  return it == seen_.end() ? 0 : it->second;
}

std::optional<segment_request_msg> segment_verifier::challenge(uint32_t prover, uint64_t start_step, uint64_t nonce) {
  auto ph = commits_.find(prover);
  if (ph == commits_.end()) return std::nullopt;
  auto it = ph->second.find(start_step);
  if (it == ph->second.end()) return std::nullopt;
  it->second.challenged = true;
  pending_[nonce] = {prover, start_step};
  return segment_request_msg{self_, prover, start_step, nonce};
}

std::optional<segment_check> segment_verifier::on_reply(uint32_t from, segment_reply_msg&& r) {
  auto it = pending_.find(r.nonce);
  if (it == pending_.end() || it->second.prover != from || it->second.start_step != r.start_step) return std::nullopt;
  pending_.erase(it);
  const held_commit* h = held(from, r.start_step);
  if (!h) return std::nullopt;
  return segment_check{h->c, std::move(r), false, h->implied};
}

std::optional<segment_check> segment_verifier::on_evidence(segment_reply_msg&& r) {
  const held_commit* h = held(r.prover, r.start_step);
  if (!h || h->implied) return std::nullopt;  // implied: the relayer could have forged the records
  return segment_check{h->c, std::move(r), true};
}

void segment_verifier::withdraw(uint64_t nonce) { pending_.erase(nonce); }

void segment_verifier::forget(uint32_t prover) {
  commits_.erase(prover);
  seen_.erase(prover);
  chains_.erase(prover);
  for (auto it = pending_.begin(); it != pending_.end();)
    it = it->second.prover == prover ? pending_.erase(it) : std::next(it);
}

}  // namespace murmur
