#include "actors/segment_check.hpp"

#include <stdexcept>

namespace murmur {

segment_checker::segment_checker(replay_factory replay_of, double step_flops)
    : replay_of_(std::move(replay_of)), step_flops_(step_flops) {}

segment_verdict segment_checker::run(const segment_check& job) {
  const segment_commit_msg& c = job.commit;
  const segment_reply_msg& r = job.reply;
  segment_verdict v;
  v.prover = c.prover;
  v.start_step = c.start_step;
  v.end_step = c.end_step;
  // From the prover itself a reply that is not what it committed to is its
  // own failure; relayed, it may be the relayer's forgery (or the prover
  // committed differently to the relayer): no verdict on the prover.
  auto unbound = [&v, relayed = job.relayed](std::string why) {
    v.kind = relayed ? segment_verdict::mismatch : segment_verdict::failed;
    v.why = std::move(why);
    return v;
  };
  auto fail = [&v](std::string why) {
    v.kind = segment_verdict::failed;
    v.why = std::move(why);
    return v;
  };
  tree_digest state_hash;
  if (segment_state_digest(r.start.trainer, r.start.gossip, state_hash) != c.start)
    return unbound("the start state it sent is not the one it committed to");
  if (!job.implied && segment_records_digest(r.records, hash_) != c.records)
    return unbound("the records it sent are not the ones it committed to");
  if (const std::string why = segment_records_inconsistency(r.records); !why.empty())
    return fail("it committed to inconsistent records: " + why);  // the bytes are bound: relayed or not
  if (!replay_of_) throw std::logic_error("segment_checker: no replay factory (verifier_context::replay_of)");
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
  v.kind = segment_verdict::passed;
  v.flops = step_flops_ * static_cast<double>(c.end_step - c.start_step);
  return v;
}

}  // namespace murmur
