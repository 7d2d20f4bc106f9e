#include "actors/segment_verifier.hpp"

#include <cmath>
#include <stdexcept>

namespace murmur {

double segment_challenge_probability(double rate, size_t layers, uint64_t steps_per_segment) {
  if (rate <= 0) return 0;
  const double per_step = std::min(1.0, rate / static_cast<double>(std::max<size_t>(layers, 1)));
  return 1.0 - std::pow(1.0 - per_step, static_cast<double>(steps_per_segment));
}

segment_verifier::segment_verifier(uint32_t self, double q, size_t keep_segments, replay_factory replay_of,
                                   double step_flops)
    : self_(self), q_(q), keep_(std::max<size_t>(keep_segments, 1)), replay_of_(std::move(replay_of)),
      step_flops_(step_flops) {}

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

std::optional<segment_request_msg> segment_verifier::on_commit(uint32_t from, const segment_commit_msg& c, Rng& rng,
                                                               uint64_t nonce, verdict& broken_chain) {
  auto& held = commits_[from];
  if (auto prev = held.find(c.start_step - std::min(c.start_step, c.end_step - c.start_step));
      prev != held.end() && prev->second.c.end_step == c.start_step && prev->second.c.end != c.start) {
    broken_chain = {verdict::failed, from, c.start_step, c.end_step, 0, 0,
                    "its segment from step " + std::to_string(c.start_step) +
                        " does not start where its previous segment ended"};
    return std::nullopt;
  }
  held[c.start_step] = {c, ++seen_[from], false};
  while (held.size() > 2 * keep_ + 2) held.erase(held.begin());
  // The challenge is drawn only now, after the prover is bound.
  if (rng.uniform() >= q_) return std::nullopt;
  return challenge(from, c.start_step, nonce);
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

segment_verifier::verdict segment_verifier::on_reply(uint32_t from, const segment_reply_msg& r) {
  auto it = pending_.find(r.nonce);
  if (it == pending_.end() || it->second.prover != from || it->second.start_step != r.start_step) return {};
  pending_.erase(it);
  const held_commit* h = held(from, r.start_step);
  if (!h) return {};
  return check(h->c, r, false);
}

segment_verifier::verdict segment_verifier::on_evidence(const segment_reply_msg& r) {
  const held_commit* h = held(r.prover, r.start_step);
  if (!h) return {};
  return check(h->c, r, true);
}

segment_verifier::verdict segment_verifier::check(const segment_commit_msg& c, const segment_reply_msg& r,
                                                  bool relayed) {
  verdict v;
  v.prover = c.prover;
  v.start_step = c.start_step;
  v.end_step = c.end_step;
  // From the prover itself a reply that is not what it committed to is its
  // own failure; relayed, it may be the relayer's forgery (or the prover
  // committed differently to the relayer): no verdict on the prover.
  auto unbound = [&v, relayed](std::string why) {
    v.kind = relayed ? verdict::mismatch : verdict::failed;
    v.why = std::move(why);
    return v;
  };
  auto fail = [&v](std::string why) {
    v.kind = verdict::failed;
    v.why = std::move(why);
    return v;
  };
  tree_digest state_hash;
  if (segment_state_digest(r.start.trainer, r.start.gossip, state_hash) != c.start)
    return unbound("the start state it sent is not the one it committed to");
  if (segment_records_digest(r.records, hash_) != c.records)
    return unbound("the records it sent are not the ones it committed to");
  auto replay = replay_of_(c.prover);
  segment_replay::result out;
  try {
    out = replay->run(r.start, r.records, {});
    if (out.last_step != c.end_step) return fail("its records end at step " + std::to_string(out.last_step));
    if (out.end != c.end) {
      // Once more with a digest after every step (3-4 steps' worth of hashing
      // each), only now that it failed, to name the first differing step.
      if (r.step_digests.size() == c.end_step - c.start_step) {
        out = replay->run(r.start, r.records, {.step_digests = true});
        v.first_bad_step = first_differing_step(out.first_step, r.step_digests, out.step_digests);
      }
      return fail("the replay ends in another state than the committed one");
    }
  } catch (const std::exception& e) {
    return fail(std::string("its records do not replay: ") + e.what());
  }
  v.kind = verdict::passed;
  v.flops = step_flops_ * static_cast<double>(c.end_step - c.start_step);
  return v;
}

void segment_verifier::withdraw(uint64_t nonce) { pending_.erase(nonce); }

void segment_verifier::forget(uint32_t prover) {
  commits_.erase(prover);
  seen_.erase(prover);
  for (auto it = pending_.begin(); it != pending_.end();)
    it = it->second.prover == prover ? pending_.erase(it) : std::next(it);
}

}  // namespace murmur
