// Cost of verification against the cost of training, measured in one run on
// one thread (the machine is shared and noisy, so only ratios are printed):
//   step:    one training step (batch gather, forward, backward, optimizer)
//   commit:  copying and SHA-256-hashing one step's transcript (every step)
//   check:   a verifier's check of one committed layer (hashes + element-wise
//            parts + two Freivalds products), averaged over the layers
// and the verification overhead per step at a given verify.rate and number
// of neighbours checking each other: rate * neighbours * check / step.
// Usage: build/verify_overhead [--model SPEC] [--batch B ...] [--steps N]
//                              [--rate R] [--neighbours D] [--rounds K]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "actors/transcript_check.hpp"
#include "actors/trainer.hpp"
#include "tensor/gemm.hpp"

using namespace murmur;

int main(int argc, char** argv) {
  std::string model = "mlp";
  std::vector<int64_t> batches;
  int steps = 200, rounds = 8, neighbours = 6;
  double rate = 0.01;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    std::string a = argv[i];
    if (a == "--model") model = next();
    else if (a == "--batch") batches.push_back(std::stoll(next()));
    else if (a == "--steps") steps = std::stoi(next());
    else if (a == "--rate") rate = std::stod(next());
    else if (a == "--neighbours") neighbours = std::stoi(next());
    else if (a == "--rounds") rounds = std::stoi(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (batches.empty()) batches = {64, 256, 1024};
  set_blas_threads(1);
  auto data = std::make_shared<const Dataset>(make_synthetic(8192, 10, 28, 1));
  std::vector<int64_t> shard(static_cast<size_t>(data->size()));
  for (size_t i = 0; i < shard.size(); ++i) shard[i] = static_cast<int64_t>(i);
  using clock = std::chrono::steady_clock;
  std::printf("| batch | step ms | commit ms | commit/step | check ms (mean over layers) | check/step | "
              "overhead at rate %.3g x %d neighbours |\n|---|---|---|---|---|---|---|\n",
              rate, neighbours);
  for (int64_t b : batches) {
    train_settings ts;
    ts.batch = b;
    ts.total_steps = steps;
    ts.init_seed = 1;
    // Plain steps first, then the same with transcripts.
    trainer plain(ts, model, data, shard, data);
    for (int i = 0; i < 5; ++i) plain.step();
    auto t0 = clock::now();
    for (int i = 0; i < steps; ++i) plain.step();
    const double step_s = std::chrono::duration<double>(clock::now() - t0).count() / steps;

    trainer t(ts, model, data, shard, data);
    auto log = std::make_shared<step_transcript_log>(0, *t.model(), 4);
    t.enable_transcripts(log, {}, {}, 1);
    for (int i = 0; i < 5; ++i) t.step();
    const double c0 = t.commit_seconds();
    for (int i = 0; i < steps; ++i) t.step();
    const double commit_s = (t.commit_seconds() - c0) / steps;

    transcript_checker checker(committed_layers(*t.model()), data, rounds);
    Rng rng(3);
    const transcript_commit c = *t.last_commit();
    const uint64_t last = t.steps_done();
    double check_total = 0;
    int checks = 0;
    for (int rep = 0; rep < 5; ++rep)
      for (uint16_t l = 0; l < c.layers.size(); ++l) {
        tensor_reply r;
        log->reply(last, l, 1, r);
        auto a = clock::now();
        auto o = checker.check(c.layers[l], r, shard, rng);
        check_total += std::chrono::duration<double>(clock::now() - a).count();
        ++checks;
        if (o != check_outcome::passed) {
          std::fprintf(stderr, "honest layer %u failed: %s\n", l, std::string(to_string(o)).c_str());
          return 1;
        }
      }
    const double check_s = check_total / checks;
    std::printf("| %lld | %.3f | %.3f | %.1f %% | %.3f | %.1f %% | %.2f %% |\n", static_cast<long long>(b),
                1e3 * step_s, 1e3 * commit_s, 100 * commit_s / step_s, 1e3 * check_s, 100 * check_s / step_s,
                100 * rate * neighbours * check_s / step_s);
    std::fflush(stdout);
  }
  return 0;
}
