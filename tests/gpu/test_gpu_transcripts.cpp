// A GPU peer's step transcripts, checked by a CPU verifier and by a GPU
// verifier (its Freivalds rounds on the device): every committed layer of
// every step passes all of transcript_check's checks (digests, element-wise
// parts, Freivalds against the CPU tolerance, and the exact relu/maxpool
// link to the next layer's input), for an MLP and a CNN trained on the CUDA
// backend. What lets honest GPU work be verified by CPU peers without a
// false quarantine. A GPU peer's compute cheats are caught by both.
#include <numeric>

#include "actors/trainer.hpp"
#include "actors/transcript_check.hpp"
#include "gpu/cuda_backend.hpp"
#include "tensor/dataset.hpp"
#include "tests/gpu/backend_pair.hpp"

using namespace murmur;

TEST_CASE("a GPU trainer's step transcripts pass every check of a CPU verifier", "[gpu][verify]") {
  auto data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<int64_t> shard(250);
  std::iota(shard.begin(), shard.end(), int64_t{0});
  for (const std::string model : {"flatten,linear:16,relu,linear:10", "conv2d:4:3:1:1,relu,maxpool2d:2,flatten,linear:10"}) {
    INFO(model);
    train_settings s;
    s.lr = 0.1;
    s.batch = 32;
    s.total_steps = 40;
    s.data_seed = 5;
    s.init_seed = 9;
    trainer t(s, model, data, shard, data);
    t.use_backend(make_cuda_backend(0));
    auto log = std::make_shared<step_transcript_log>(0, *t.model(), 8);
    t.enable_transcripts(log, {}, {}, 1);
    transcript_checker checker(committed_layers(*t.model()), data, 8);
    auto verifier_gpu = make_cuda_backend(0);
    transcript_checker on_gpu(committed_layers(*t.model()), data, 8, {}, verifier_gpu.get());
    Rng rng(3), rng_gpu(3);
    for (int i = 0; i < 8; ++i) {
      t.step();
      const transcript_commit c = *t.last_commit();
      for (uint16_t l = 0; l < c.layers.size(); ++l) {
        tensor_reply r;
        REQUIRE(log->reply(c.step, l, 7, r));
        INFO("step " << c.step << " layer " << l);
        CHECK(checker.check(c, r, shard, rng) == check_outcome::passed);
        CHECK(on_gpu.check(c, r, shard, rng_gpu) == check_outcome::passed);
      }
    }
  }
}

TEST_CASE("a GPU trainer's compute cheats are caught by a CPU and a GPU verifier", "[gpu][verify]") {
  auto data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<int64_t> shard(250), other(250);
  std::iota(shard.begin(), shard.end(), int64_t{0});
  std::iota(other.begin(), other.end(), int64_t{300});
  using o = check_outcome;
  const std::pair<compute_cheat, o> cases[] = {{compute_cheat::skip_product, o::forward_product},
                                               {compute_cheat::perturb, o::weight_grad_product},
                                               {compute_cheat::half_batch, o::bias_grad},
                                               {compute_cheat::replay, o::foreign_samples}};
  auto verifier_gpu = make_cuda_backend(0);
  for (const auto& [kind, caught_by] : cases) {
    INFO("cheat " << static_cast<int>(kind));
    train_settings s;
    s.lr = 0.1;
    s.batch = 32;
    s.total_steps = 40;
    s.data_seed = 5;
    s.init_seed = 9;
    trainer t(s, "flatten,linear:16,relu,linear:10", data, shard, data);
    t.use_backend(make_cuda_backend(0));
    cheat_settings cheat;
    cheat.kind = kind;
    cheat.start_step = 2;
    cheat.eps = 1e-2;
    auto log = std::make_shared<step_transcript_log>(0, *t.model(), 8);
    t.enable_transcripts(log, cheat, other, 1);
    const auto layers = committed_layers(*t.model());
    transcript_checker on_cpu(layers, data, 8), on_gpu(layers, data, 8, {}, verifier_gpu.get());
    Rng r1(3), r2(3);
    for (uint64_t step = 1; step <= 2; ++step) {
      t.step();
      tensor_reply r;
      REQUIRE(log->reply(step, 0, 7, r));
      const o want = step == 1 ? o::passed : caught_by;
      CHECK(on_cpu.check(*t.last_commit(), r, shard, r1) == want);
      CHECK(on_gpu.check(*t.last_commit(), r, shard, r2) == want);
    }
  }
}
