#include "actors/shard_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <functional>
#include <vector>

#include "actors/segment_recorder.hpp"

namespace murmur {

namespace {

// A step under way through offload_step, and what waits for it.
struct offloaded_step {
  std::shared_ptr<offload_step> step;
  verifier_actor verifier;
  bool busy = false;
  std::function<void(float)> finish;           // the rest of the cycle, given the loss
  std::vector<std::function<void()>> deferred;  // evaluations and installs that arrived meanwhile
};

// Hands the step's next product to the helper, or finishes the cycle.
void drive(shard_actor::pointer self, const std::shared_ptr<offloaded_step>& o, const offload_step::yield& y) {
  if (y.done) {
    o->busy = false;
    auto finish = std::move(o->finish);
    finish(y.loss);
    auto deferred = std::move(o->deferred);
    for (auto& f : deferred) f();
    return;
  }
  auto on_answer = [self, o](matmul_outcome& out) { drive(self, o, o->step->resume(&out)); };
  auto on_error = [self, o](caf::error&) { drive(self, o, o->step->resume(nullptr)); };
  const auto& plan = o->step->plan();
  if (plan.timeout_s > 0)
    self->request(o->verifier, std::chrono::microseconds(static_cast<int64_t>(plan.timeout_s * 1e6)),
                  offload_atom::value, plan.helper, y.job)
        .then(on_answer, on_error);
  else
    self->request(o->verifier, caf::infinite, offload_atom::value, plan.helper, y.job).then(on_answer, on_error);
}

shard_actor::behavior_type shard_behavior(shard_actor::pointer self, std::shared_ptr<trainer> t,
                                          int64_t every, gossip_actor gossip, verifier_actor verifier,
                                          std::shared_ptr<offload_step> offload,
                                          std::shared_ptr<segment_recorder> segments, bool publish_first) {
  const uint64_t k = static_cast<uint64_t>(std::max<int64_t>(1, every));
  std::shared_ptr<offloaded_step> off;
  if (offload && verifier) {
    off = std::make_shared<offloaded_step>();
    off->step = offload;
    off->verifier = verifier;
  }
  return {
      [=](cycle_atom) -> caf::result<step_report> {
        auto rp = self->make_response_promise<step_report>();
        const uint64_t n = t->steps_done();
        const bool publishes = (n + 1) % k == 0;
        // After the step: its commitment, then (publish_first: already done)
        // the gossip publish, then the answer.
        auto finish = [=](float loss) mutable {
          step_report r{n + 1, loss, false};
          if (segments) {
            // Urgent: the commitment must not wait behind the verifier's
            // replays of others, or it reaches its verifiers after the
            // segment has been dropped.
            if (auto closed = segments->stepped(*t); closed && verifier)
              self->send<caf::message_priority::high>(verifier, segcommit_atom::value, std::move(closed));
          } else if (verifier && t->last_commit()) {
            auto buf = std::make_shared<std::vector<std::byte>>();
            encode_transcript_commit(*t->last_commit(), *buf);
            self->send(verifier, vcommit_atom::value, wire_frame{std::move(buf)});
          }
          if (!publishes || publish_first) {
            r.published = publishes;
            rp.deliver(r);
            return;
          }
          self->request(gossip, caf::infinite, publish_atom::value, r.step).then([=](bool) mutable {
            r.published = true;
            rp.deliver(r);
          });
        };
        auto step = [=]() mutable {
          if (!off) {
            finish(t->step());
            return;
          }
          off->busy = true;
          off->finish = finish;
          drive(self, off, off->step->start());
        };
        // publish_first: the mixed parameters go out before the step, so
        // their frames travel while it computes.
        auto publish_then_step = [=]() mutable {
          if (!publishes || !publish_first) {
            step();
            return;
          }
          self->request(gossip, caf::infinite, publish_atom::value, n + 1).then([=](bool) mutable { step(); });
        };
        // (The gossip actor syncs the trainer's parameters for mix and publish.)
        if (n > 0 && n % k == 0 && publish_first && publishes)
          self->request(gossip, caf::infinite, mix_atom::value, n + 1).then([=](bool) mutable { step(); });
        else if (n > 0 && n % k == 0)
          self->request(gossip, caf::infinite, mix_atom::value).then([=](bool) mutable { publish_then_step(); });
        else
          publish_then_step();
        return rp;
      },
      [=](eval_atom) -> caf::result<eval_report> {
        if (!off || !off->busy) return t->evaluate();
        auto rp = self->make_response_promise<eval_report>();
        off->deferred.push_back([=]() mutable { rp.deliver(t->evaluate()); });
        return rp;
      },
      [=](eval_atom, int64_t begin, int64_t count) -> caf::result<eval_report> {
        if (!off || !off->busy) return t->evaluate(begin, count);
        auto rp = self->make_response_promise<eval_report>();
        off->deferred.push_back([=]() mutable { rp.deliver(t->evaluate(begin, count)); });
        return rp;
      },
      // Between cycles the parameters are ours alone, so they can be read
      // for a rejoining peer or replaced by what donors sent. (An offloaded
      // step changes them only at its very end, so a read while it waits
      // for the helper sees the parameters before the step.)
      [=](state_atom, uint32_t offset, uint32_t length) -> state_slice {
        const auto& m = t->synced_model();
        state_slice s;
        s.step = t->steps_done();
        s.dim = static_cast<uint32_t>(m.param_count());
        s.offset = std::min(offset, s.dim);
        const uint32_t n = std::min(length, s.dim - s.offset);
        s.values.assign(m.params() + s.offset, m.params() + s.offset + n);
        return s;
      },
      [=](install_atom, const state_slice& s) -> caf::result<bool> {
        auto install = [t, s] {
          auto& m = *t->model();
          if (s.dim != m.param_count() || s.offset > s.dim || s.values.size() > s.dim - s.offset) return false;
          std::copy(s.values.begin(), s.values.end(), m.params() + s.offset);
          t->set_step(std::max<uint64_t>(t->steps_done(), s.step));
          return true;
        };
        if (!off || !off->busy) return install();
        auto rp = self->make_response_promise<bool>();
        off->deferred.push_back([=]() mutable { rp.deliver(install()); });
        return rp;
      },
  };
}

}  // namespace

shard_actor spawn_shard(caf::actor_system& sys, std::shared_ptr<trainer> t, int64_t every,
                        gossip_actor gossip, verifier_actor verifier, std::shared_ptr<offload_step> offload,
                        std::shared_ptr<segment_recorder> segments, bool publish_first) {
  return sys.spawn(shard_behavior, std::move(t), every, std::move(gossip), std::move(verifier), std::move(offload),
                   std::move(segments), publish_first);
}

}  // namespace murmur
