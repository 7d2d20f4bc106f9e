#include "actors/shard_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace murmur {

namespace {

shard_actor::behavior_type shard_behavior(shard_actor::pointer self, std::shared_ptr<trainer> t,
                                          int64_t every, gossip_actor gossip, verifier_actor verifier) {
  const uint64_t k = static_cast<uint64_t>(std::max<int64_t>(1, every));
  return {
      [=](cycle_atom) -> caf::result<step_report> {
        auto rp = self->make_response_promise<step_report>();
        const uint64_t n = t->steps_done();
        auto step_and_publish = [=]() mutable {
          step_report r{n + 1, t->step(), false};
          if (verifier && t->last_commit()) {
            auto buf = std::make_shared<std::vector<std::byte>>();
            encode_transcript_commit(*t->last_commit(), *buf);
            self->send(verifier, vcommit_atom::value, wire_frame{std::move(buf)});
          }
          if (r.step % k != 0) {
            rp.deliver(r);
            return;
          }
          self->request(gossip, caf::infinite, publish_atom::value, r.step).then([=](bool) mutable {
            r.published = true;
            rp.deliver(r);
          });
        };
        if (n > 0 && n % k == 0)
          self->request(gossip, caf::infinite, mix_atom::value).then([=](bool) mutable { step_and_publish(); });
        else
          step_and_publish();
        return rp;
      },
      [=](eval_atom) -> eval_report { return t->evaluate(); },
      // Between cycles the parameters are ours alone, so they can be read
      // for a rejoining peer or replaced by what donors sent.
      [=](state_atom, uint32_t offset, uint32_t length) -> state_slice {
        const auto& m = *t->model();
        state_slice s;
        s.step = t->steps_done();
        s.dim = static_cast<uint32_t>(m.param_count());
        s.offset = std::min(offset, s.dim);
        const uint32_t n = std::min(length, s.dim - s.offset);
        s.values.assign(m.params() + s.offset, m.params() + s.offset + n);
        return s;
      },
      [=](install_atom, const state_slice& s) -> bool {
        auto& m = *t->model();
        if (s.dim != m.param_count() || s.offset > s.dim || s.values.size() > s.dim - s.offset) return false;
        std::copy(s.values.begin(), s.values.end(), m.params() + s.offset);
        t->set_step(std::max<uint64_t>(t->steps_done(), s.step));
        return true;
      },
  };
}

}  // namespace

shard_actor spawn_shard(caf::actor_system& sys, std::shared_ptr<trainer> t, int64_t every,
                        gossip_actor gossip, verifier_actor verifier) {
  return sys.spawn(shard_behavior, std::move(t), every, std::move(gossip), std::move(verifier));
}

}  // namespace murmur
