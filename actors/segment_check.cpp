#include "actors/segment_check.hpp"

#include <iostream>
#include <stdexcept>

#include "protocols/checkpoint_file.hpp"

namespace murmur {

namespace {

// Reads a spilled start state back into b, as it was (its digest d kept by
// the caller); boundary_store_error when the store or the bytes fail.
void read_back(const boundary_store::entry& e, segment_boundary& b) {
  std::vector<std::byte> bytes;
  e.append_to(bytes);  // checked against what was written
  seal_segment_start(bytes);
  if (decode_segment_start(bytes, b) != frame_error::none)
    throw boundary_store_error("a spilled segment start of step " + std::to_string(e.step()) +
                               " reads back as bytes that do not decode");
}

}  // namespace

segment_checker::segment_checker(replay_factory replay_of, double step_flops, std::shared_ptr<boundary_store> spill)
    : replay_of_(std::move(replay_of)), step_flops_(step_flops), spill_(std::move(spill)) {}

std::shared_ptr<const boundary_store::entry> segment_checker::spill(const segment_boundary& start,
                                                                    const digest& committed) {
  if (!spill_) return nullptr;
  try {
    pieces_.clear();
    // Unsealed: the checkpoint's checksum is computed only if it is read back.
    encode_segment_start(view_of(start.trainer), gossip_state::replay_view::of(start.gossip), pieces_, false);
    auto e = spill_->put(start.step(), committed, pieces_.pieces());
    pieces_.clear();
    return e;
  } catch (const std::exception& e) {
    pieces_.clear();
    std::cerr << "segment check: the start state of step " << start.step()
              << " stays in memory through its replay (the spill store failed: " << e.what() << ")\n";
    return nullptr;
  }
}

segment_verdict segment_checker::run(segment_check& job) {
  const segment_commit_msg& c = job.commit;
  segment_reply_msg& r = job.reply;
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
  // The start state away in the spill store while spilled is set.
  std::shared_ptr<const boundary_store::entry> spilled;
  const digest start_d = r.start.d;
  std::string unread;  // why a spilled start state could not be read back
  auto bring_back = [&]() {
    if (!spilled) return true;
    try {
      read_back(*spilled, r.start);
      r.start.d = start_d;
    } catch (const std::exception& e) {
      unread = e.what();
      r.start = {};
    }
    spilled.reset();
    return unread.empty();
  };
  segment_replay::result out;
  try {
    // Spilled, the start state goes half by half as the replay takes it:
    // the checkpoint before the replay's gossip state is made, the rest
    // after, so the replay's state and the start state are never held whole
    // side by side.
    replay->restore_trainer(r.start.trainer);
    if ((spilled = spill(r.start, c.start))) r.start.trainer = {};
    replay->restore_gossip(r.start.gossip);
    if (spilled) r.start = {};
    out = replay->replay(r.records, {});
    if (out.last_step != c.end_step) fail("its records end at step " + std::to_string(out.last_step));
    else if (out.end != c.end) {
      // Once more with a digest after every step (3-4 steps' worth of hashing
      // each), only now that it failed, to name the first differing step.
      if (r.step_digests.size() == c.end_step - c.start_step && bring_back()) {
        out = replay->run(r.start, r.records, {.step_digests = true});
        v.first_bad_step = first_differing_step(out.first_step, r.step_digests, out.step_digests);
      }
      fail("the replay ends in another state than the committed one");
    } else {
      v.kind = segment_verdict::passed;
      v.flops = step_flops_ * static_cast<double>(c.end_step - c.start_step);
    }
  } catch (const std::exception& e) {
    fail(std::string("its records do not replay: ") + e.what());
  }
  // A job handed back comes back whole (its start state is what a relayed
  // reply is re-encoded from): one whose start state is lost is not.
  if (v.kind == segment_verdict::failed || job.give_back == segment_check::always) bring_back();
  if (!unread.empty()) {
    job.give_back = segment_check::never;
    v.why += " (its start state could not be read back for the bisection and the evidence: " + unread + ")";
  }
  return v;
}

}  // namespace murmur
