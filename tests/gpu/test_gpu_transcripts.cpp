// A GPU peer's step transcripts, checked by a CPU verifier: every committed
// layer of every step passes all of transcript_check's checks (digests,
// element-wise parts, Freivalds against the CPU tolerance, and the exact
// relu/maxpool link to the next layer's input), for an MLP and a CNN
// trained on the CUDA backend. What lets honest GPU work be verified by CPU
// peers without a false quarantine.
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
    Rng rng(3);
    for (int i = 0; i < 8; ++i) {
      t.step();
      const transcript_commit c = *t.last_commit();
      for (uint16_t l = 0; l < c.layers.size(); ++l) {
        tensor_reply r;
        REQUIRE(log->reply(c.step, l, 7, r));
        INFO("step " << c.step << " layer " << l);
        CHECK(checker.check(c, r, shard, rng) == check_outcome::passed);
      }
    }
  }
}
