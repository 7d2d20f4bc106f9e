#include "actors/verifier_actor.hpp"

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <set>
#include <tuple>

#include "actors/transcript_check.hpp"
#include "protocols/membership_messages.hpp"
#include "tensor/freivalds.hpp"
#include "tensor/gemm.hpp"

namespace murmur {

namespace {

struct verifier_state {
  verifier_context ctx;
  verifier_settings s;
  transport_actor transport;
  gossip_actor gossip;
  std::unique_ptr<transcript_checker> checker;
  Rng rng;
  std::map<uint32_t, std::deque<transcript_commit>> commits;  // by prover, oldest first
  struct challenge {
    uint32_t prover;
    uint64_t step;
    uint16_t layer;
  };
  std::map<uint64_t, challenge> pending;  // by nonce
  uint64_t next_nonce = 1, next_task = 1;
  std::map<uint32_t, std::vector<int64_t>> shards;  // sorted, by peer
  std::set<uint32_t> quarantined;
  std::set<std::tuple<uint32_t, uint64_t, uint16_t>> evidence_seen;
  struct waiting_task {
    caf::typed_response_promise<matmul_outcome> rp;
    std::shared_ptr<const matmul_job> job;
    uint32_t worker;
  };
  std::map<uint64_t, waiting_task> tasks;
  verifier_stats st;
  freivalds_checker fv;
  transcript_commit commit_in;
  tensor_request request_in;
  tensor_reply reply_in;
  evidence_msg evidence_in;
  matmul_task task_in;
  matmul_result result_in;
  static inline const char* name = "verifier";

  const std::vector<int64_t>& shard(uint32_t peer) {
    auto it = shards.find(peer);
    if (it != shards.end()) return it->second;
    auto v = ctx.shard_of ? ctx.shard_of(peer) : std::vector<int64_t>{};
    std::sort(v.begin(), v.end());
    return shards.emplace(peer, std::move(v)).first->second;
  }
  const transcript_commit* find_commit(uint32_t prover, uint64_t step) const {
    auto it = commits.find(prover);
    if (it == commits.end()) return nullptr;
    for (const auto& c : it->second)
      if (c.step == step) return &c;
    return nullptr;
  }
};

using clock_type = std::chrono::steady_clock;

verifier_actor::behavior_type verifier_behavior(verifier_actor::stateful_pointer<verifier_state> self,
                                                verifier_context ctx, verifier_settings s, transport_actor transport,
                                                gossip_actor gossip) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.s = s;
  st.transport = std::move(transport);
  st.gossip = std::move(gossip);
  st.checker = std::make_unique<transcript_checker>(st.ctx.layers, st.ctx.data, s.rounds);
  st.rng = Rng(s.seed).fork(0x7665726966ULL + st.ctx.self);

  auto send = [self](uint32_t to, std::vector<std::byte> bytes) {
    wire_frame w{std::make_shared<const std::vector<std::byte>>(std::move(bytes))};
    self->send(self->state.transport, send_atom::value, self->state.ctx.self, to, std::move(w));
  };
  auto quarantine = [self](uint32_t peer, const char* why) {
    auto& st = self->state;
    if (!st.quarantined.insert(peer).second) return;
    std::erase(st.ctx.neighbours, peer);
    std::cerr << "peer " << st.ctx.self << ": verification: quarantining peer " << peer << " (" << why << ")\n";
    self->send(st.gossip, quarantine_atom::value, peer, static_cast<uint8_t>(quarantine_cause::evidence));
  };
  // Runs the transcript check and times it.
  auto run_check = [self](const transcript_commit& c, const tensor_reply& r) {
    auto& st = self->state;
    const auto t0 = clock_type::now();
    check_outcome o = r.layer < c.layers.size()
                          ? st.checker->check(c.layers[r.layer], r, st.shard(r.prover), st.rng)
                          : check_outcome::bad_shape;
    st.st.check_seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
    return o;
  };

  auto on_commit = [self, send](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    if (decode_transcript_commit(f, st.s.max_frame_bytes, st.commit_in) != frame_error::none ||
        st.commit_in.prover != from) {
      ++st.st.frames_rejected;
      return;
    }
    if (st.quarantined.count(from)) return;
    ++st.st.commits_received;
    auto& q = st.commits[from];
    q.push_back(st.commit_in);
    while (q.size() > st.s.keep_commits) q.pop_front();
    // The challenge is drawn only now, after the prover is bound.
    if (st.rng.uniform() >= st.s.rate) return;
    tensor_request rq{st.ctx.self, from, st.commit_in.step,
                      static_cast<uint16_t>(st.rng.below(st.commit_in.layers.size())), st.next_nonce++};
    st.pending[rq.nonce] = {from, rq.step, rq.layer};
    ++st.st.challenges;
    std::vector<std::byte> out;
    encode_tensor_request(rq, out);
    send(from, std::move(out));
  };

  auto on_request = [self, send](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    if (decode_tensor_request(f, st.s.max_frame_bytes, st.request_in) != frame_error::none ||
        st.request_in.verifier != from || st.request_in.prover != st.ctx.self) {
      ++st.st.frames_rejected;
      return;
    }
    tensor_reply r;
    if (!st.ctx.log || !st.ctx.log->reply(st.request_in.step, st.request_in.layer, st.request_in.nonce, r)) {
      ++st.st.requests_unavailable;
      return;
    }
    ++st.st.requests_answered;
    std::vector<std::byte> out;
    encode_tensor_reply(r, out);
    send(from, std::move(out));
  };

  auto on_reply = [self, send, quarantine, run_check](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& r = st.reply_in;
    if (decode_tensor_reply(f, st.s.max_frame_bytes, r) != frame_error::none || r.prover != from) {
      ++st.st.frames_rejected;
      return;
    }
    auto it = st.pending.find(r.nonce);
    if (it == st.pending.end() || it->second.prover != from || it->second.step != r.step ||
        it->second.layer != r.layer) {
      ++st.st.frames_rejected;  // unasked for
      return;
    }
    st.pending.erase(it);
    const transcript_commit* c = st.find_commit(from, r.step);
    if (!c) return;
    ++st.st.replies_checked;
    check_outcome o = run_check(*c, r);
    auto& credit = st.st.ledger[from];
    if (o == check_outcome::passed) {
      ++st.st.passed;
      ++credit.checks_passed;
      credit.verified_flops += 2 * transcript_checker::work_of(r);
      return;
    }
    ++st.st.failed;
    ++credit.checks_failed;
    st.st.caught.emplace_back(from, r.step);
    std::cerr << "peer " << st.ctx.self << ": peer " << from << " failed the check of step " << r.step << " layer "
              << r.layer << " (" << to_string(o) << ")\n";
    st.evidence_seen.emplace(from, r.step, r.layer);
    quarantine(from, "failed a check this peer ran");
    evidence_msg ev{st.ctx.self, from, r.step, r.layer, static_cast<uint8_t>(o),
                    std::vector<std::byte>(f.begin(), f.end())};
    std::vector<std::byte> out;
    encode_evidence(ev, out);
    auto targets = st.ctx.neighbours_of ? st.ctx.neighbours_of(from) : st.ctx.neighbours;
    for (uint32_t to : targets) {
      if (to == st.ctx.self || to == from) continue;
      ++st.st.evidence_sent;
      send(to, out);
    }
  };

  auto on_evidence = [self, quarantine, run_check](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& r = st.reply_in;
    if (decode_evidence(f, st.s.max_frame_bytes, st.evidence_in, &r) != frame_error::none ||
        st.evidence_in.accuser != from) {
      ++st.st.frames_rejected;
      return;
    }
    ++st.st.evidence_received;
    const uint32_t prover = st.evidence_in.prover;
    if (prover == st.ctx.self || st.quarantined.count(prover)) return;
    if (!st.evidence_seen.emplace(prover, r.step, r.layer).second) return;
    const transcript_commit* c = st.find_commit(prover, r.step);
    if (!c) {
      ++st.st.evidence_unverifiable;  // we hold no commitment of that step to hold it to
      return;
    }
    check_outcome o = run_check(*c, r);
    if (o == check_outcome::passed) {
      ++st.st.evidence_rejected;
      std::cerr << "peer " << st.ctx.self << ": evidence from peer " << from << " against peer " << prover
                << " re-checked as honest work; ignored\n";
      return;
    }
    ++st.st.evidence_confirmed;
    ++st.st.ledger[prover].checks_failed;
    quarantine(prover, "evidence re-checked by this peer");
  };

  auto on_task = [self, send](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& t = st.task_in;
    if (decode_matmul_task(f, st.s.max_frame_bytes, t) != frame_error::none || t.requester != from) {
      ++st.st.frames_rejected;
      return;
    }
    matmul_result res{st.ctx.self, t.task, t.m, t.n, std::vector<float>(size_t{t.m} * t.n)};
    if (st.s.matmul_cheat == compute_cheat::skip_product) {
      for (auto& v : res.c) v = static_cast<float>(st.rng.normal());
    } else {
      gemm(false, false, t.m, t.n, t.k, 1.f, t.a.data(), t.b.data(), 0.f, res.c.data());
      if (st.s.matmul_cheat == compute_cheat::perturb) {
        const size_t row = st.rng.below(t.m);
        double n2 = 0;
        for (uint32_t j = 0; j < t.n; ++j) n2 += double{res.c[row * t.n + j]} * res.c[row * t.n + j];
        res.c[row * t.n + st.rng.below(t.n)] += static_cast<float>(st.s.matmul_cheat_eps * std::sqrt(n2));
      }
    }
    ++st.st.tasks_served;
    std::vector<std::byte> out;
    encode_matmul_result(res, out);
    send(from, std::move(out));
  };

  auto on_result = [self, quarantine](uint32_t from, std::span<const std::byte> f) {
    auto& st = self->state;
    auto& r = st.result_in;
    if (decode_matmul_result(f, st.s.max_frame_bytes, r) != frame_error::none || r.worker != from) {
      ++st.st.frames_rejected;
      return;
    }
    auto it = st.tasks.find(r.task);
    if (it == st.tasks.end() || it->second.worker != from) {
      ++st.st.frames_rejected;
      return;
    }
    auto w = std::move(it->second);
    st.tasks.erase(it);
    const matmul_job& j = *w.job;
    const auto t0 = clock_type::now();
    bool ok = r.m == j.m && r.n == j.n &&
              st.fv.check(false, false, j.m, j.n, j.k, j.a.data(), j.b.data(), r.c.data(), st.s.rounds, st.rng).ok;
    st.st.check_seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
    matmul_outcome out{ok, from, {}};
    auto& credit = st.st.ledger[from];
    if (ok) {
      ++st.st.offloads_verified;
      ++credit.checks_passed;
      credit.verified_flops += 2.0 * j.m * j.n * j.k;
      out.c = std::move(r.c);
    } else {
      ++st.st.offloads_rejected;
      ++credit.checks_failed;
      quarantine(from, "wrong answer to an offloaded product");
      out.c.assign(size_t{j.m} * j.n, 0.f);
      gemm(false, false, j.m, j.n, j.k, 1.f, j.a.data(), j.b.data(), 0.f, out.c.data());
    }
    w.rp.deliver(std::move(out));
  };

  return {
      [self, send](vcommit_atom, const wire_frame& w) {
        auto& st = self->state;
        if (!w.bytes) return;
        for (uint32_t to : st.ctx.neighbours) {
          ++st.st.commits_sent;
          send(to, *w.bytes);
        }
      },
      [self, on_commit, on_request, on_reply, on_evidence, on_task, on_result](deliver_atom, uint32_t from,
                                                                               const wire_frame& w) {
        if (!w.bytes) return;
        auto type = peek_type(*w.bytes);
        if (!type) {
          ++self->state.st.frames_rejected;
          return;
        }
        switch (*type) {
          case message_type::transcript_commit: on_commit(from, *w.bytes); break;
          case message_type::tensor_request: on_request(from, *w.bytes); break;
          case message_type::tensor_reply: on_reply(from, *w.bytes); break;
          case message_type::evidence: on_evidence(from, *w.bytes); break;
          case message_type::matmul_task: on_task(from, *w.bytes); break;
          case message_type::matmul_result: on_result(from, *w.bytes); break;
          default: ++self->state.st.frames_rejected;
        }
      },
      [self](nbrs_atom, const std::vector<uint32_t>& ids, const std::vector<uint64_t>&) {
        auto& st = self->state;
        st.ctx.neighbours.clear();
        for (uint32_t id : ids)
          if (!st.quarantined.count(id)) st.ctx.neighbours.push_back(id);
      },
      [self, send](offload_atom, uint32_t worker,
                   const std::shared_ptr<const matmul_job>& job) -> caf::result<matmul_outcome> {
        auto& st = self->state;
        auto rp = self->make_response_promise<matmul_outcome>();
        if (!job || job->a.size() != size_t{job->m} * job->k || job->b.size() != size_t{job->k} * job->n) {
          rp.deliver(caf::make_error(caf::sec::invalid_argument));
          return rp;
        }
        const uint64_t id = st.next_task++;
        ++st.st.offloads;
        st.tasks.emplace(id, verifier_state::waiting_task{rp, job, worker});
        std::vector<std::byte> out;
        encode_matmul_task({st.ctx.self, id, job->m, job->n, job->k, job->a, job->b}, out);
        send(worker, std::move(out));
        return rp;
      },
      [self](stats_atom) -> verifier_stats { return self->state.st; },
  };
}

}  // namespace

verifier_actor spawn_verifier(caf::actor_system& sys, verifier_context ctx, verifier_settings s,
                              transport_actor transport, gossip_actor gossip) {
  return sys.spawn(verifier_behavior, std::move(ctx), s, std::move(transport), std::move(gossip));
}

}  // namespace murmur
