// The rate at which a helper's wrong answer to an offloaded product is
// caught: with k Freivalds rounds (verifier_settings::offload_rounds) an
// answer with one wrong element (the perturb cheat) gets through with
// probability 2^-k, so each wrong answer is caught with 1 - 2^-k. Measured
// here over 400 offloads with k = 1 and k = 2 (every answer wrong), and the
// caller always receives the right product.
#include <catch2/catch.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <cmath>
#include <map>

#include "actors/verifier_actor.hpp"
#include "tensor/gemm.hpp"
#include "tests/actors/stub_gossip.hpp"

using namespace murmur;

namespace {

using registry = std::map<uint32_t, verifier_actor>;

transport_actor::behavior_type loopback(transport_actor::pointer, std::shared_ptr<registry> peers) {
  return {[=](send_atom, uint32_t from, uint32_t to, const wire_frame& w) {
    auto it = peers->find(to);
    if (it != peers->end()) caf::anon_send(it->second, deliver_atom::value, from, w);
  }};
}

// Offloads `n` products from peer 1 to peer 0 (which perturbs every
// answer); returns how many were rejected.
int rejected_of(int rounds, int n) {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto peers = std::make_shared<registry>();
  auto transport = sys.spawn(loopback, peers);
  auto data = std::make_shared<const Dataset>(make_synthetic(10, 10, 4, 1));
  for (uint32_t i = 0; i < 2; ++i) {
    verifier_settings s;
    s.rate = 0;
    s.seed = 1234;
    s.offload_rounds = rounds;
    if (i == 0) {
      s.matmul_cheat = compute_cheat::perturb;
      s.matmul_cheat_eps = 1e-2;
    }
    verifier_context ctx{i, {1 - i}, {}, {}, data, nullptr, {}, nullptr, {}};
    (*peers)[i] = spawn_verifier(sys, std::move(ctx), s, transport, sys.spawn(quiet_gossip));
  }
  auto job = std::make_shared<matmul_job>();
  job->m = 32;
  job->n = 48;
  job->k = 64;
  Rng rng(5);
  job->a.resize(size_t{job->m} * job->k);
  job->b.resize(size_t{job->k} * job->n);
  for (auto& v : job->a) v = static_cast<float>(rng.normal());
  for (auto& v : job->b) v = static_cast<float>(rng.normal());
  std::vector<float> want(size_t{job->m} * job->n);
  gemm(false, false, job->m, job->n, job->k, 1.f, job->a.data(), job->b.data(), 0.f, want.data());
  int rejected = 0;
  caf::scoped_actor self{sys};
  for (int t = 0; t < n; ++t) {
    matmul_outcome out;
    self->request((*peers)[1], std::chrono::seconds(30), offload_atom::value, uint32_t{0},
                  std::shared_ptr<const matmul_job>(job))
        .receive([&](matmul_outcome& o) { out = std::move(o); }, [](caf::error& e) { FAIL(caf::to_string(e)); });
    REQUIRE(out.c.size() == want.size());
    if (!out.verified) {
      ++rejected;
      double err = 0;
      for (size_t i = 0; i < want.size(); ++i) err = std::max<double>(err, std::fabs(out.c[i] - want[i]));
      CHECK(err < 1e-3);  // a rejected answer is replaced by the local product
    }
  }
  for (auto& [id, v] : *peers) caf::anon_send_exit(v, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
  return rejected;
}

}  // namespace

TEST_CASE("offload: each wrong answer is caught with probability 1 - 2^-rounds", "[offload][verify][actors]") {
  const int n = 400;
  for (int rounds : {1, 2}) {
    const double p = 1.0 - std::ldexp(1.0, -rounds);
    const double sigma = std::sqrt(p * (1 - p) / n);
    const double rate = static_cast<double>(rejected_of(rounds, n)) / n;
    INFO(rounds << " round(s): caught " << rate << ", expected " << p);
    // 5 sigma either side: fails by chance with ~1e-6.
    CHECK(rate >= p - 5 * sigma);
    CHECK(rate <= p + 5 * sigma);
  }
}
