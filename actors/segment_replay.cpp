#include "actors/segment_replay.hpp"

#include <array>
#include <cstring>
#include <stdexcept>

#include "actors/segment_messages.hpp"

namespace murmur {

segment_replay::segment_replay(const train_settings& ts, const std::string& model_spec,
                               std::shared_ptr<const Dataset> train, std::vector<int64_t> shard,
                               std::shared_ptr<const Dataset> test, uint32_t prover,
                               std::vector<uint32_t> neighbours, const gossip_settings& gs, bool transcripts) {
  if (ts.device.cuda) throw std::invalid_argument("segment_replay: replays run on the host, not " + std::string(ts.device.label));
  trainer_ = std::make_unique<trainer>(ts, model_spec, std::move(train), std::move(shard), std::move(test));
  // The gossip state is made at the first restore_gossip, when the start
  // state it loads is at hand (its estimates, dimension-sized, are then not
  // held beside the trainer's before they are needed). Settings it would
  // refuse are refused here, by one of dimension 0.
  { const gossip_state settings_check(prover, neighbours, gs, std::span<const float>{}); }
  prover_ = prover;
  neighbours_ = std::move(neighbours);
  gs_ = gs;
  if (transcripts) {
    log_ = std::make_shared<step_transcript_log>(prover, *trainer_->model(), 1);
    trainer_->enable_transcripts(log_, {}, {}, 0);
  }
}

segment_replay::~segment_replay() = default;

const step_transcript_log& segment_replay::transcript_log() const {
  if (!log_) throw std::logic_error("segment_replay: built without transcripts");
  return *log_;
}

digest segment_replay::state_digest() {
  // From views of the live state where it is on the host: no state-sized
  // copy per check (a replay's copies are what verification adds to a
  // simulation's peak memory).
  checkpoint_view tv;
  std::array<uint64_t, trainer::checkpoint_extra> extra{};
  if (trainer_->view_checkpoint(tv, extra, 0, 0)) return segment_state_digest(tv, gossip_->view_replay_state(), hash_);
  trainer_->save_checkpoint(scratch_trainer_, 0, 0);
  gossip_->save_replay_state(scratch_gossip_);
  return segment_state_digest(scratch_trainer_, scratch_gossip_, hash_);
}

segment_replay::result segment_replay::run(const segment& s, const options& o) {
  if (s.start && !s.stored_records) return run(*s.start, s.records, o);
  // In the store: read back through the reply's encoding (the one reader
  // of stored bytes), then decoded as a verifier decodes a reply.
  std::vector<std::byte> frame;
  encode_segment_reply(0, 0, s, frame);
  segment_reply_msg m;
  if (decode_segment_reply(frame, frame.size(), m) != frame_error::none)
    throw std::logic_error("segment_replay: the segment from step " + std::to_string(s.start_step()) +
                           " reads back from its boundary store as bytes that do not decode");
  return run(m.start, m.records, o);
}

segment_replay::result segment_replay::run(const segment_boundary& start, const segment_records& records,
                                           const options& o) {
  restore(start);
  return replay(records, o);
}

void segment_replay::restore(const segment_boundary& start) {
  restore_trainer(start.trainer);
  restore_gossip(start.gossip);
}

void segment_replay::restore_trainer(const checkpoint& start) {
  gossip_restored_ = false;
  trainer_->restore(start);
  restored_step_ = start.step;
}

void segment_replay::restore_gossip(const gossip_state::replay_state& start) {
  if (!gossip_) {
    // Its initial estimates (x0) are overwritten by load_replay_state, as is
    // every other value x0 sets (the parameter bound): any dimension-sized
    // span makes the same state; the model's parameters are at hand.
    const Sequential& m = trainer_->synced_model();
    gossip_ = std::make_unique<gossip_state>(prover_, neighbours_, gs_,
                                             std::span<const float>(m.params(), static_cast<size_t>(m.param_count())));
  }
  gossip_->load_replay_state(start);
  gossip_restored_ = true;
}

segment_replay::result segment_replay::replay(const segment_records& records, const options& o) {
  if (!gossip_restored_) throw std::logic_error("segment_replay: replay before restore");
  gossip_restored_ = false;  // once per restore
  result r;
  r.first_step = restored_step_ + 1;
  r.last_step = restored_step_;
  auto params = [&] {
    Sequential& m = *trainer_->model();
    return std::span<float>(m.params(), static_cast<size_t>(m.param_count()));
  };
  for (const segment_event& e : records.events) {
    // Only for error messages: no string is built for a record that replays.
    const auto at = [&] { return " before step " + std::to_string(r.last_step + 1); };
    switch (e.kind) {
      case segment_event::received: {
        if (e.offset > records.frames.size() || e.bytes > records.frames.size() - e.offset)
          throw std::runtime_error("segment replay: a recorded frame past the records' bytes" + at());
        reject_reason why{};
        if (!gossip_->receive(e.from, std::span<const std::byte>(records.frames).subspan(e.offset, e.bytes), &why))
          throw std::runtime_error("segment replay: the recorded frame from peer " + std::to_string(e.from) +
                                   at() + " is rejected (" + std::string(to_string(why)) + ")");
        break;
      }
      case segment_event::sent:
        gossip_->on_sent();
        break;
      case segment_event::mixed:
        gossip_->mix(params());
        break;
      case segment_event::published: {
        const Sequential& m = trainer_->synced_model();
        gossip_->publish(std::span<const float>(m.params(), static_cast<size_t>(m.param_count())), e.step);
        break;
      }
      case segment_event::quarantined:
        gossip_->quarantine(e.from, static_cast<quarantine_cause>(e.step));
        break;
      case segment_event::neighbours: {
        const size_t n = e.from;
        if (e.offset > records.frames.size() || e.bytes > records.frames.size() - e.offset ||
            e.bytes != n * (sizeof(uint32_t) + sizeof(uint64_t)))
          throw std::runtime_error("segment replay: a recorded neighbour list of " + std::to_string(n) +
                                   " peers in " + std::to_string(e.bytes) + " bytes" + at());
        ids_.resize(n);
        incarnations_.resize(n);
        const std::byte* p = records.frames.data() + e.offset;
        if (n > 0) {
          std::memcpy(ids_.data(), p, n * sizeof(uint32_t));
          std::memcpy(incarnations_.data(), p + n * sizeof(uint32_t), n * sizeof(uint64_t));
        }
        try {
          gossip_->set_neighbours(ids_, incarnations_);
        } catch (const std::invalid_argument& x) {
          throw std::runtime_error("segment replay: a recorded neighbour list is refused (" + std::string(x.what()) +
                                   ")" + at());
        }
        break;
      }
      case segment_event::stepped:
        if (e.step != r.last_step + 1)
          throw std::runtime_error("segment replay: step " + std::to_string(e.step) + " recorded" + at());
        trainer_->step();
        r.last_step = e.step;
        if (log_) r.transcripts.push_back(*trainer_->last_commit());
        if (o.step_digests) r.step_digests.push_back(state_digest());
        if (o.stop_after == e.step) {
          r.end = o.step_digests ? r.step_digests.back() : state_digest();
          return r;
        }
        break;
      default:
        throw std::runtime_error("segment replay: an unknown record" + at());
    }
  }
  if (o.stop_after != 0)
    throw std::runtime_error("segment replay: step " + std::to_string(o.stop_after) + " is not in the segment (steps " +
                             std::to_string(r.first_step) + " to " + std::to_string(r.last_step) + ")");
  r.end = o.step_digests && !r.step_digests.empty() ? r.step_digests.back() : state_digest();
  return r;
}

uint64_t first_differing_step(uint64_t first_step, std::span<const digest> claimed, std::span<const digest> replayed) {
  if (claimed.size() != replayed.size())
    throw std::invalid_argument("first_differing_step: " + std::to_string(claimed.size()) + " claimed digests against " +
                                std::to_string(replayed.size()) + " replayed");
  size_t lo = 0, hi = claimed.size();  // [0, lo) agree; hi: a step known to differ, or the end
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (claimed[mid] == replayed[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo == claimed.size() ? 0 : first_step + lo;
}

}  // namespace murmur
