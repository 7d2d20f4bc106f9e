// backend_stage (tensor/backend_stage.hpp) on the CPU backend against the
// host stages it mirrors (Sequentials of the same layer ranges, one copy of
// the layers per micro-batch in flight, gradients summed over the
// micro-batches, one optimizer step per batch, as actors/pipeline_stage.cpp):
// every stage's forward output and input gradient of every micro-batch, the
// loss, and the parameters after several steps agree within float rounding;
// a step of a batch size seen before allocates nothing, and only the
// activations and gradients that leave a stage cross to the host.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tensor/backend_stage.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/loss.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/stage_split.hpp"
#include "tests/counting_backend.hpp"
#include "tests/float_distances.hpp"

using namespace murmur;
using murmur::testing::norm_diff;
using murmur::testing::rel_diff;

namespace {

Shape with_batch(int64_t b, const Shape& per_sample) {
  Shape s{b};
  s.insert(s.end(), per_sample.begin(), per_sample.end());
  return s;
}

struct agreement {
  double outputs = 0, input_grads = 0, loss = 0, params = 0, params_norm = 0;
};

// One stage, on the host (as pipeline_stage: a master and a copy of the
// layers per micro-batch sharing its parameters) and on the backend.
struct stage_pair {
  std::unique_ptr<Sequential> master;
  std::vector<std::unique_ptr<Sequential>> copies;  // per micro-batch slot
  std::vector<Tensor> inputs, dlogits;              // per slot
  std::unique_ptr<Optimizer> opt;
  std::vector<float> acc;
  std::unique_ptr<backend_stage> bs;
};

// Trains `spec` cut at `cuts` for `steps` steps of `batch` samples in
// `micro` micro-batches (forwards of all, then backwards in reverse, as
// GPipe), host and backend side by side from the same parameters, and
// returns the worst relative differences seen.
agreement train_split(compute_backend& be, const std::string& spec, const std::string& cuts, const Shape& in,
                      int64_t classes, const backend_optimizer& o, int steps, int64_t batch, uint32_t micro) {
  const uint64_t seed = 17;
  auto whole = build_model(spec, in, classes);
  const size_t S = std::count(cuts.begin(), cuts.end(), ',') + 2;
  const auto ranges = parse_stage_split(cuts, whole->layer_count(), S);
  std::vector<stage_pair> st(S);
  for (size_t s = 0; s < S; ++s) {
    auto& p = st[s];
    p.master = build_stage(spec, in, classes, seed, ranges[s]);
    for (uint32_t k = 0; k < micro; ++k) {
      p.copies.push_back(build_stage_layers(spec, in, classes, ranges[s]));
      p.copies.back()->set_need_input_grad(s > 0);
      p.copies.back()->share_parameters(*p.master);
    }
    p.inputs.resize(micro);
    p.dlogits.resize(micro);
    const int64_t n = p.master->param_count();
    p.opt = o.type == backend_optimizer::kind::adam ? make_adam(n, o.beta1, o.beta2, o.eps, o.weight_decay)
                                                    : make_sgd(n, o.momentum, o.weight_decay);
    p.acc.assign(static_cast<size_t>(n), 0.f);
    p.bs = std::make_unique<backend_stage>(be, *p.master, o, s == 0, s + 1 == S, micro);
    REQUIRE(p.bs->param_count() == n);
  }
  const float lr = o.type == backend_optimizer::kind::adam ? 2e-3f : 0.05f;
  Rng rng(seed ^ 0x5eed);
  agreement worst;
  std::vector<float> host_buf;
  // The backend side's activations and gradients between its stages.
  std::vector<std::vector<std::vector<float>>> be_act(S, std::vector<std::vector<float>>(micro));
  std::vector<std::vector<std::vector<float>>> be_grad(S, std::vector<std::vector<float>>(micro));
  for (int step = 0; step < steps; ++step) {
    const int64_t B = step % 3 == 2 ? batch - 3 : batch;  // uneven micro-batches, buffers reused
    Tensor x(with_batch(B, in));
    for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    std::vector<int32_t> labels(static_cast<size_t>(B));
    for (auto& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
    auto mb_begin = [&](uint32_t mb) { return static_cast<int64_t>(uint64_t{mb} * B / micro); };
    // Forwards.
    for (uint32_t mb = 0; mb < micro; ++mb) {
      const int64_t b0 = mb_begin(mb), b = mb_begin(mb + 1) - b0;
      const float share = static_cast<float>(b) / static_cast<float>(B);
      const int64_t per = shape_numel(in);
      std::vector<float> be_in(x.data() + b0 * per, x.data() + (b0 + b) * per);
      const Tensor* h_in = nullptr;
      for (size_t s = 0; s < S; ++s) {
        auto& p = st[s];
        const uint64_t noise = seed ^ (0x9e3779b97f4a7c15ULL * (s * 65536 + mb + 1)) ^ static_cast<uint64_t>(step);
        Tensor& xin = p.inputs[mb];
        ensure_shape(xin, with_batch(b, p.master->input_shape()));
        if (s == 0) std::copy(be_in.begin(), be_in.end(), xin.data());
        else std::copy(h_in->begin(), h_in->end(), xin.data());
        p.copies[mb]->set_noise_seed(noise);
        const Tensor& y = p.copies[mb]->forward(xin);
        p.bs->forward(mb, s == 0 ? be_in.data() : be_act[s - 1][mb].data(), b, noise);
        if (s + 1 == S) {
          const float ref_loss = softmax_cross_entropy(y, labels.data() + b0, p.dlogits[mb]);
          for (float& g : p.dlogits[mb]) g *= share;
          const float loss = p.bs->loss(mb, labels.data() + b0, share);
          worst.loss = std::max(worst.loss, std::fabs(double(loss) - ref_loss) / std::fabs(ref_loss));
        } else {
          auto& out = be_act[s][mb];
          out.resize(static_cast<size_t>(y.numel()));
          p.bs->download_output(mb, out.data());
          worst.outputs = std::max(worst.outputs, rel_diff(out.data(), y.data(), y.numel()));
        }
        h_in = &y;
      }
    }
    // Backwards, the last micro-batch first.
    for (uint32_t mb = micro; mb-- > 0;) {
      const int64_t b = mb_begin(mb + 1) - mb_begin(mb);
      const Tensor* h_dy = nullptr;
      Tensor h_dy_copy;
      for (size_t s = S; s-- > 0;) {
        auto& p = st[s];
        if (s + 1 == S) {
          p.copies[mb]->backward(p.dlogits[mb]);
          p.bs->backward(mb, nullptr);
        } else {
          p.copies[mb]->backward(*h_dy);
          p.bs->backward(mb, be_grad[s + 1][mb].data());
        }
        const float* g = p.copies[mb]->grads();
        for (size_t i = 0; i < p.acc.size(); ++i) p.acc[i] += g[i];
        if (s > 0) {
          const Tensor& dx = p.copies[mb]->input_grad();
          REQUIRE(dx.numel() == b * shape_numel(p.master->input_shape()));
          // A Flatten's input gradient is a view of what it was given.
          ensure_shape(h_dy_copy, dx.shape());
          std::copy(dx.begin(), dx.end(), h_dy_copy.data());
          h_dy = &h_dy_copy;
          auto& out = be_grad[s][mb];
          out.resize(static_cast<size_t>(dx.numel()));
          p.bs->download_input_grad(mb, out.data());
          worst.input_grads = std::max(worst.input_grads, rel_diff(out.data(), dx.data(), dx.numel()));
        }
      }
    }
    // One optimizer step per batch.
    for (auto& p : st) {
      p.opt->step(p.master->params(), p.acc.data(), lr);
      std::fill(p.acc.begin(), p.acc.end(), 0.f);
      p.bs->optimizer_step(lr);
      const int64_t n = p.master->param_count();
      host_buf.resize(static_cast<size_t>(n));
      p.bs->download_params(host_buf.data());
      worst.params = std::max(worst.params, rel_diff(host_buf.data(), p.master->params(), n));
      worst.params_norm = std::max(worst.params_norm, norm_diff(host_buf.data(), p.master->params(), n));
    }
  }
  // The parameters moved (the comparison is not trivially true).
  double moved = 0;
  for (size_t s = 0; s < S; ++s) {
    auto fresh = build_stage(spec, in, classes, seed, ranges[s]);
    moved = std::max(moved, rel_diff(st[s].master->params(), fresh->params(), fresh->param_count()));
  }
  CHECK(moved > 1e-3);
  std::printf("backend_stage vs host stages, %-4s %s cut %s, %u micro-batches: worst relative difference: outputs "
              "%.1e, input grads %.1e, loss %.1e, params %.1e (norm-wise %.1e)\n",
              o.type == backend_optimizer::kind::adam ? "adam" : "sgd", spec.c_str(), cuts.c_str(), micro,
              worst.outputs, worst.input_grads, worst.loss, worst.params, worst.params_norm);
  return worst;
}

backend_optimizer sgd_momentum() {
  backend_optimizer o;
  o.type = backend_optimizer::kind::sgd;
  o.momentum = 0.9f;
  o.weight_decay = 5e-4f;
  return o;
}

backend_optimizer adam() {
  backend_optimizer o;
  o.type = backend_optimizer::kind::adam;
  o.weight_decay = 1e-4f;
  return o;
}

// As tests/tensor/test_backend_model.cpp: the MLP's products are the same
// gemm calls (bit for bit); a conv's weight gradient sums per-sample products
// in another order than Conv2d's one product over the batch, which SGD keeps
// within ~1e-6 and Adam's per-element scaling amplifies on near-cancelling
// elements (hence the norm-wise bound there).
constexpr double kTol = 2e-5;
constexpr double kAdamTol = 1e-4;

const std::string kMlp = "flatten,linear:32,relu,dropout:0.25,linear:24,tanh,linear:16,sigmoid,linear:10";
const std::string kCnn = "conv2d:4:3:1:1,relu,maxpool2d:2,conv2d:6:3,groupnorm:2,relu,flatten,linear:10";

}  // namespace

TEST_CASE("backend_stage: an MLP split in 2 and 3 stages trains as the host stages", "[backend][stage]") {
  auto be = make_cpu_backend();
  for (const char* cuts : {"3", "2,6"}) {
    INFO("cuts " << cuts);
    const agreement s = train_split(*be, kMlp, cuts, {1, 6, 6}, 10, sgd_momentum(), 5, 22, 4);
    CHECK(s.outputs < kTol);
    CHECK(s.input_grads < kTol);
    CHECK(s.loss < kTol);
    CHECK(s.params < kTol);
    const agreement a = train_split(*be, kMlp, cuts, {1, 6, 6}, 10, adam(), 5, 22, 3);
    CHECK(a.outputs < kTol);
    CHECK(a.loss < kTol);
    CHECK(a.params_norm < kAdamTol);
  }
}

TEST_CASE("backend_stage: a CNN split in 2 and 3 stages trains as the host stages", "[backend][stage]") {
  auto be = make_cpu_backend();
  // "6": a stage ending in flatten hands on a view; "2,7": a middle stage of
  // pooling and conv, the last a single linear layer.
  for (const char* cuts : {"3", "6", "2,7"}) {
    INFO("cuts " << cuts);
    const agreement s = train_split(*be, kCnn, cuts, {2, 8, 8}, 10, sgd_momentum(), 5, 14, 3);
    CHECK(s.outputs < kTol);
    CHECK(s.input_grads < kTol);
    CHECK(s.loss < kTol);
    CHECK(s.params < kTol);
  }
  const agreement a = train_split(*be, kCnn, "3,6", {2, 8, 8}, 10, adam(), 5, 14, 4);
  CHECK(a.outputs < kAdamTol);
  CHECK(a.loss < kAdamTol);
  CHECK(a.params_norm < kAdamTol);
}

TEST_CASE("backend_stage: a batch size seen before allocates nothing; only what leaves the stage crosses",
          "[backend][stage]") {
  auto cpu = make_cpu_backend();
  testing::counting_backend be(*cpu);
  const Shape in{1, 6, 6};
  auto model = build_stage(kMlp, in, 10, 3, {3, 9});  // a middle-to-last stage: input [32], logits out
  const int64_t in_n = 32, B = 12;
  REQUIRE(shape_numel(model->input_shape()) == in_n);
  backend_stage bs(be, *model, sgd_momentum(), false, true, 3);
  std::vector<float> x(static_cast<size_t>(B * in_n), 0.5f), dx(x.size());
  std::vector<int32_t> labels(static_cast<size_t>(B), 3);
  auto step = [&] {
    for (size_t k = 0; k < 3; ++k) bs.forward(k, x.data() + k * 4 * in_n, 4, 7 + k);
    for (size_t k = 3; k-- > 0;) {
      bs.loss(k, labels.data() + k * 4, 1.f / 3.f);
      bs.backward(k, nullptr);
      bs.download_input_grad(k, dx.data() + k * 4 * in_n);
    }
    bs.optimizer_step(0.1f);
  };
  step();
  const int64_t allocs = be.allocs;
  be.uploaded = be.downloaded = 0;
  step();
  CHECK(be.allocs == allocs);
  // In: the activations and labels; out: the input gradients. No parameters.
  CHECK(be.uploaded == B * in_n + B);
  CHECK(be.downloaded == B * in_n);
}

TEST_CASE("backend_stage: bad use says what is wrong", "[backend][stage]") {
  auto be = make_cpu_backend();
  const Shape in{1, 6, 6};
  auto conv = build_stage(kCnn, {2, 8, 8}, 10, 3, {0, 3});
  CHECK_THROWS_WITH(backend_stage(*be, *conv, sgd_momentum(), true, true, 2), Catch::Contains("not flat [classes]"));
  auto first = build_stage(kMlp, in, 10, 3, {0, 3});
  CHECK_THROWS_WITH(backend_stage(*be, *first, sgd_momentum(), true, false, 0), Catch::Contains("no slot"));
  backend_stage bs(*be, *first, sgd_momentum(), true, false, 2);
  std::vector<float> x(36 * 2, 0.f), out(32 * 2);
  CHECK_THROWS_WITH(bs.forward(2, x.data(), 2, 1), Catch::Contains("slot 2 of 2"));
  CHECK_THROWS_AS(bs.download_output(0, out.data()), std::logic_error);  // before a forward
  bs.forward(0, x.data(), 2, 1);
  bs.download_output(0, out.data());
  CHECK_THROWS_AS(bs.download_input_grad(0, out.data()), std::logic_error);  // stage 0 has none
}
