// The CPU compute_backend (tensor/cpu_backend.hpp) and backend_model
// (tensor/backend_model.hpp) against the Layer classes they mirror: whole
// training steps (Sequential + softmax_cross_entropy + make_sgd/make_adam)
// agree in loss, gradients and parameters; single ops agree with the layer
// or function they share code with, or with a direct computation.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tensor/backend_model.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/dropout.hpp"
#include "tensor/groupnorm.hpp"
#include "tensor/linear.hpp"
#include "tensor/loss.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/sequential.hpp"
#include "tests/counting_backend.hpp"
#include "tests/float_distances.hpp"

using namespace murmur;
using murmur::testing::norm_diff;
using murmur::testing::rel_diff;

namespace {

std::vector<float> random_vec(int64_t n, Rng& rng, double lo = -1, double hi = 1) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

// Backend buffers filled from / read to host vectors.
struct buffer {
  compute_backend& be;
  float* p;
  int64_t n;
  buffer(compute_backend& b, int64_t count) : be(b), p(b.alloc(count)), n(count) {}
  buffer(compute_backend& b, const std::vector<float>& v) : buffer(b, static_cast<int64_t>(v.size())) {
    be.upload(p, v.data(), n);
  }
  ~buffer() { be.free(p); }
  std::vector<float> host() const {
    std::vector<float> v(static_cast<size_t>(n));
    be.download(v.data(), p, n);
    return v;
  }
};

// Worst relative differences over the steps: loss, and gradients and
// parameters both element-wise (rel_diff) and norm-wise (norm_diff).
struct agreement {
  double loss = 0, grads = 0, params = 0, grads_norm = 0, params_norm = 0;
};

// Trains `spec` for `steps` steps on the CPU backend and as a Sequential with
// the host optimizer, from the same initial parameters and noise seed, and
// returns the worst relative differences seen.
agreement train_both(const std::string& spec, const Shape& in, int64_t classes, const backend_optimizer& opt,
                     int steps, uint64_t seed, int64_t batch = 6) {
  auto be = make_cpu_backend();
  auto ref = build_model(spec, in, classes);
  ref->init(seed);
  backend_model bm(*be, *ref, opt, seed);
  REQUIRE(bm.param_count() == ref->param_count());
  const int64_t n = ref->param_count();
  auto host_opt = opt.type == backend_optimizer::kind::adam
                      ? make_adam(n, opt.beta1, opt.beta2, opt.eps, opt.weight_decay)
                      : make_sgd(n, opt.momentum, opt.weight_decay);
  const float lr = opt.type == backend_optimizer::kind::adam ? 1e-3f : 0.05f;
  Rng rng(seed ^ 0xabcdef);
  std::vector<float> bparams(static_cast<size_t>(n)), bgrads(static_cast<size_t>(n));
  agreement worst;
  Tensor dlogits;
  for (int s = 0; s < steps; ++s) {
    const int64_t B = s % 3 == 2 ? batch / 2 : batch;  // a smaller batch reuses the larger one's buffers
    Shape xs{B};
    xs.insert(xs.end(), in.begin(), in.end());
    Tensor x(xs);
    for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    std::vector<int32_t> labels(static_cast<size_t>(B));
    for (auto& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));

    const float ref_loss = softmax_cross_entropy(ref->forward(x), labels.data(), dlogits);
    ref->backward(dlogits);
    host_opt->step(ref->params(), ref->grads(), lr);
    const float loss = bm.train_step(x.data(), labels.data(), B, lr);

    bm.download_grads(bgrads.data());
    bm.download_params(bparams.data());
    worst.loss = std::max(worst.loss, std::fabs(static_cast<double>(loss) - ref_loss) / std::fabs(ref_loss));
    worst.grads = std::max(worst.grads, rel_diff(bgrads.data(), ref->grads(), n));
    worst.params = std::max(worst.params, rel_diff(bparams.data(), ref->params(), n));
    worst.grads_norm = std::max(worst.grads_norm, norm_diff(bgrads.data(), ref->grads(), n));
    worst.params_norm = std::max(worst.params_norm, norm_diff(bparams.data(), ref->params(), n));
  }

  // Evaluation mode: the same logits, loss and correct count as the
  // Sequential's, and dropout draws nothing (the next training step would show it).
  const int64_t B = 5;
  Shape xs{B};
  xs.insert(xs.end(), in.begin(), in.end());
  Tensor x(xs);
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  std::vector<int32_t> labels(static_cast<size_t>(B));
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  ref->set_training(false);
  const Tensor& ref_logits = ref->forward(x);
  int64_t ref_correct = 0;
  const float ref_eval = softmax_cross_entropy_eval(ref_logits, labels.data(), &ref_correct);
  std::vector<float> logits(static_cast<size_t>(B * classes));
  bm.predict(x.data(), B, logits.data());
  CHECK(rel_diff(logits.data(), ref_logits.data(), B * classes) < 1e-5);
  int64_t correct = 0;
  const double sum = bm.evaluate(x.data(), labels.data(), B, &correct);
  CHECK(correct == ref_correct);
  CHECK(std::fabs(sum / B - ref_eval) <= 1e-5 * std::fabs(ref_eval));
  ref->set_training(true);

  // The optimizer state has the host optimizer's layout and values.
  const auto st = bm.save_optimizer_state();
  const auto ref_st = host_opt->save_state();
  CHECK(st.steps == ref_st.steps);
  REQUIRE(st.values.size() == ref_st.values.size());
  CHECK(rel_diff(st.values.data(), ref_st.values.data(), static_cast<int64_t>(st.values.size())) < 1e-4);
  // One more training step: dropout's counters and masks still agree.
  {
    Tensor x2(xs);
    for (auto& v : x2) v = static_cast<float>(rng.uniform(-1, 1));
    const float ref_loss = softmax_cross_entropy(ref->forward(x2), labels.data(), dlogits);
    ref->backward(dlogits);
    host_opt->step(ref->params(), ref->grads(), lr);
    const float loss = bm.train_step(x2.data(), labels.data(), B, lr);
    worst.loss = std::max(worst.loss, std::fabs(static_cast<double>(loss) - ref_loss) / std::fabs(ref_loss));
    bm.download_grads(bgrads.data());
    worst.grads = std::max(worst.grads, rel_diff(bgrads.data(), ref->grads(), n));
    worst.grads_norm = std::max(worst.grads_norm, norm_diff(bgrads.data(), ref->grads(), n));
  }
  std::printf("backend_model vs Sequential, %-4s %s: worst relative difference: loss %.1e; element-wise grads "
              "%.1e, params %.1e; norm-wise grads %.1e, params %.1e\n",
              opt.type == backend_optimizer::kind::adam ? "adam" : "sgd", spec.c_str(), worst.loss, worst.grads,
              worst.params, worst.grads_norm, worst.params_norm);
  return worst;
}

// Measured on this machine (OpenBLAS, x86-64; the numbers are printed):
// the MLP agrees bit for bit (the same gemm calls). Convolutional models
// differ by the order of the weight gradient's sum over the batch (one
// product per sample against Conv2d's one product over the batch): with
// SGD, <= 7.6e-7 in loss, gradients and parameters, element-wise, after 7
// steps. Adam divides each update by its own running |gradient|, so an
// element whose gradient plus weight decay nearly cancels (|d| ~ 1e-8
// against ~1e-2 typical) moves by a visibly different fraction of lr: its
// parameters agree norm-wise (<= 6.5e-6, cnn) but single elements of the
// cnn's 100k differ by up to 3e-4 of the largest parameter, and the
// gradients computed from them by up to 1e-5 element-wise, 1.6e-5 norm-wise.
// The bounds leave a factor of ~5-50 over those.
constexpr double kTol = 2e-5;      // loss; SGD element-wise
constexpr double kAdamTol = 1e-4;  // Adam: gradients element-wise, both norm-wise

void check_spec(const std::string& spec, const Shape& in, int64_t classes, int64_t batch = 6) {
  backend_optimizer sgd;
  sgd.type = backend_optimizer::kind::sgd;
  sgd.momentum = 0.9f;
  sgd.weight_decay = 5e-4f;
  const agreement s = train_both(spec, in, classes, sgd, 6, 42, batch);
  CHECK(s.loss < kTol);
  CHECK(s.grads < kTol);
  CHECK(s.params < kTol);
  backend_optimizer adam;
  adam.type = backend_optimizer::kind::adam;
  adam.weight_decay = 1e-4f;
  const agreement a = train_both(spec, in, classes, adam, 6, 42, batch);
  CHECK(a.loss < kTol);
  CHECK(a.grads < kAdamTol);
  CHECK(a.grads_norm < kAdamTol);
  CHECK(a.params_norm < kAdamTol);
}

// A layer no backend knows.
class mystery_layer : public Layer {
 public:
  std::string name() const override { return "mystery(7)"; }
  Shape output_shape(const Shape& in) const override { return in; }
  const Tensor& forward(const Tensor& x) override { return x; }
  const Tensor& backward(const Tensor& dy) override { return dy; }
};

}  // namespace

TEST_CASE("backend_model on the CPU backend: mlp trains as the Sequential", "[backend]") {
  check_spec("mlp", {1, 28, 28}, 10);
}

TEST_CASE("backend_model on the CPU backend: cnn trains as the Sequential", "[backend]") {
  check_spec("cnn", {1, 28, 28}, 10);
}

TEST_CASE("backend_model on the CPU backend: resnet9:4 trains as the Sequential", "[backend]") {
  check_spec("resnet9:4", {3, 28, 28}, 10);
}

TEST_CASE("backend_model on the CPU backend: dropout, sigmoid, tanh, groupnorm, strided conv", "[backend]") {
  check_spec("conv2d:6:3:2:1,groupnorm:3,tanh,dropout:0.25,maxpool2d:2,flatten,linear:16,sigmoid,dropout:0.5,"
             "linear:12,relu,linear:7",
             {2, 9, 9}, 7);
}

TEST_CASE("backend_model on the CPU backend: nested residual blocks, one first", "[backend]") {
  check_spec("res[conv2d:2:3:1:1,relu,res[conv2d:2:3:1:1,tanh,dropout:0.3]],conv2d:4:3:1:1,groupnorm:2,relu,"
             "res[groupnorm:1,res[conv2d:4:3:1:1,sigmoid],dropout:0.2],gap,flatten,linear:5",
             {2, 6, 6}, 5);
}

TEST_CASE("backend_model on the CPU backend: a wide conv's weight gradient summed in chunks", "[backend]") {
  // 512 x 64*3*3 weights: backend_model sums the per-sample weight
  // gradients 14 samples at a time, so a batch of 20 takes two chunks.
  check_spec("conv2d:512:3,relu,flatten,linear:4", {64, 3, 3}, 4, 20);
}

TEST_CASE("backend_model: saved optimizer state gives identical next steps", "[backend]") {
  auto be = make_cpu_backend();
  for (auto type : {backend_optimizer::kind::sgd, backend_optimizer::kind::adam}) {
    backend_optimizer opt;
    opt.type = type;
    opt.weight_decay = 1e-3f;
    auto model = build_model("conv2d:3:3,groupnorm:1,relu,flatten,linear:6", {1, 6, 6}, 6);
    model->init(3);
    backend_model a(*be, *model, opt, 3);
    // Before any step SGD has no momentum buffer (optimizer.hpp's layout).
    if (type == backend_optimizer::kind::sgd) CHECK(a.save_optimizer_state().values.empty());
    Rng rng(9);
    const int64_t B = 4, per = 36;
    std::vector<int32_t> labels{0, 5, 2, 3};
    for (int s = 0; s < 3; ++s) {
      auto x = random_vec(B * per, rng);
      a.train_step(x.data(), labels.data(), B, 0.02f);
    }
    const auto st = a.save_optimizer_state();
    CHECK(st.steps == 3);
    CHECK(st.values.size() == static_cast<size_t>((type == backend_optimizer::kind::adam ? 2 : 1) * a.param_count()));
    // The host optimizer accepts it.
    auto host = type == backend_optimizer::kind::adam ? make_adam(a.param_count(), 0.9f, 0.999f, 1e-8f, 1e-3f)
                                                      : make_sgd(a.param_count(), 0.9f, 1e-3f);
    CHECK_NOTHROW(host->load_state(st));

    // A second model resumed from a's parameters and optimizer state.
    std::vector<float> params(static_cast<size_t>(a.param_count()));
    a.download_params(params.data());
    backend_model b(*be, *model, opt, 3);
    b.upload_params(params.data());
    b.load_optimizer_state(st);
    std::vector<float> pa(params.size()), pb(params.size());
    for (int s = 0; s < 2; ++s) {
      auto x = random_vec(B * per, rng);
      const float la = a.train_step(x.data(), labels.data(), B, 0.02f);
      const float lb = b.train_step(x.data(), labels.data(), B, 0.02f);
      CHECK(la == lb);
    }
    a.download_params(pa.data());
    b.download_params(pb.data());
    CHECK(pa == pb);
    // The wrong size is refused, naming the optimizer.
    optimizer_state bad = st;
    bad.values.pop_back();
    CHECK_THROWS_WITH(b.load_optimizer_state(bad),
                      Catch::Contains(type == backend_optimizer::kind::adam ? "adam state" : "sgd state"));
  }
}

TEST_CASE("backend_model: an unsupported layer throws naming it", "[backend]") {
  auto be = make_cpu_backend();
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Linear>(4, 3));
  layers.push_back(std::make_unique<mystery_layer>());
  Sequential model(std::move(layers), {4});
  CHECK_THROWS_AS(backend_model(*be, model, {}, 1), std::invalid_argument);
  CHECK_THROWS_WITH(backend_model(*be, model, {}, 1), Catch::Contains("mystery(7)"));
  // A bad label is named too.
  auto ok = build_model("linear:3", {4}, 3);
  ok->init(1);
  backend_model bm(*be, *ok, {}, 1);
  std::vector<float> x(8, 0.5f);
  std::vector<int32_t> labels{0, 3};
  CHECK_THROWS_WITH(bm.train_step(x.data(), labels.data(), 2, 0.1f), Catch::Contains("label 3 of sample 1"));
}

// ---- single ops of the CPU backend

TEST_CASE("cpu_backend: maxpool forward/backward as MaxPool2d, first maximum wins", "[backend]") {
  auto be = make_cpu_backend();
  Rng rng(5);
  const int64_t B = 2, C = 3, H = 7, W = 8, k = 3, OH = H / k, OW = W / k;
  Tensor x({B, C, H, W});
  // Small integers: many ties.
  for (auto& v : x) v = static_cast<float>(rng.below(4));
  MaxPool2d layer(k);
  const Tensor& y_ref = layer.forward(x);
  buffer bx(*be, std::vector<float>(x.begin(), x.end()));
  buffer by(*be, B * C * OH * OW);
  int32_t* am = be->alloc_int(B * C * OH * OW);
  be->maxpool_forward(bx.p, B * C, H, W, k, by.p, am);
  auto y = by.host();
  CHECK(std::equal(y.begin(), y.end(), y_ref.begin()));
  std::vector<int32_t> argmax(static_cast<size_t>(B * C * OH * OW));
  be->download_int(argmax.data(), am, B * C * OH * OW);
  for (int64_t pl = 0; pl < B * C; ++pl)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = -1;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t at = (oh * k + i) * W + ow * k + j;
            if (best < 0 || x[pl * H * W + at] > x[pl * H * W + best]) best = at;
          }
        CHECK(argmax[static_cast<size_t>((pl * OH + oh) * OW + ow)] == best);
      }
  Tensor dy({B, C, OH, OW});
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
  const Tensor& dx_ref = layer.backward(dy);
  buffer bdy(*be, std::vector<float>(dy.begin(), dy.end()));
  buffer bdx(*be, std::vector<float>(static_cast<size_t>(B * C * H * W), 9.f));  // backward zeroes it
  be->maxpool_backward(bdy.p, am, B * C, H, W, k, bdx.p);
  auto dx = bdx.host();
  CHECK(std::equal(dx.begin(), dx.end(), dx_ref.begin()));
  be->free_int(am);
}

TEST_CASE("cpu_backend: a strided, padded conv through im2col, gemm and col2im as Conv2d", "[backend]") {
  // backend_model's path: one im2col over the batch as B*C planes, a product
  // per sample, the channel bias; backward: sum_channels (Conv2d's row sum,
  // bit for bit), per-sample weight products, W^T dY, col2im.
  auto be = make_cpu_backend();
  Rng rng(13);
  const int64_t B = 3, C = 2, H = 7, W = 6, O = 4, K = 3, S = 2, P = 1;
  Conv2d layer(C, O, K, S, P);
  layer.set_kernel(conv_kernel::im2col_gemm);  // the path cpu_backend repeats bit for bit
  std::vector<float> params(static_cast<size_t>(layer.param_count())), grads(params.size());
  layer.bind(params.data(), grads.data());
  layer.init(rng);
  Tensor x({B, C, H, W});
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  const Tensor& y_ref = layer.forward(x);
  const int64_t OH = y_ref.dim(2), OW = y_ref.dim(3), Q = OH * OW, KK = C * K * K;
  Tensor dy(y_ref.shape());
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
  const Tensor& dx_ref = layer.backward(dy);

  buffer bx(*be, std::vector<float>(x.begin(), x.end())), bw(*be, params), cols(*be, B * KK * Q),
      by(*be, B * O * Q), bdy(*be, std::vector<float>(dy.begin(), dy.end())), bg(*be, layer.param_count()),
      bdx(*be, B * C * H * W);
  be->im2col(bx.p, B * C, H, W, K, S, P, cols.p);
  be->gemm_batched(false, false, O, Q, KK, 1.f, bw.p, KK, 0, cols.p, Q, KK * Q, 0.f, by.p, Q, O * Q, B);
  be->add_channel_bias(by.p, bw.p + O * KK, B, O, Q);
  CHECK(rel_diff(by.host().data(), y_ref.data(), B * O * Q) < 1e-6);
  be->sum_channels(bg.p + O * KK, bdy.p, B, O, Q);
  for (int64_t b = 0; b < B; ++b)
    be->gemm(false, true, O, KK, Q, 1.f, bdy.p + b * O * Q, Q, cols.p + b * KK * Q, Q, b ? 1.f : 0.f, bg.p, KK);
  be->gemm_batched(true, false, KK, Q, O, 1.f, bw.p, KK, 0, bdy.p, Q, O * Q, 0.f, cols.p, Q, KK * Q, B);
  be->fill(bdx.p, 0.f, B * C * H * W);
  be->col2im(cols.p, B * C, H, W, K, S, P, bdx.p);
  const auto g = bg.host();
  CHECK(std::equal(g.begin() + O * KK, g.end(), grads.begin() + O * KK));  // the bias: bit for bit
  CHECK(rel_diff(g.data(), grads.data(), O * KK) < 1e-6);
  CHECK(rel_diff(bdx.host().data(), dx_ref.data(), B * C * H * W) < 1e-6);
}

TEST_CASE("cpu_backend: groupnorm forward/backward as GroupNorm, dx optional", "[backend]") {
  auto be = make_cpu_backend();
  Rng rng(6);
  const int64_t B = 3, C = 6, G = 3, S = 5;
  GroupNorm layer(C, G);
  std::vector<float> params = random_vec(2 * C, rng, 0.5, 1.5), grads(2 * C);
  layer.bind(params.data(), grads.data());
  Tensor x({B, C, S});
  for (auto& v : x) v = static_cast<float>(rng.uniform(-2, 3));
  Tensor dy({B, C, S});
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));
  const Tensor& y_ref = layer.forward(x);
  const Tensor& dx_ref = layer.backward(dy);

  buffer bx(*be, std::vector<float>(x.begin(), x.end())), bw(*be, params), by(*be, B * C * S),
      bxh(*be, B * C * S), brs(*be, B * G), bdy(*be, std::vector<float>(dy.begin(), dy.end())),
      bdx(*be, B * C * S), bdw(*be, 2 * C);
  be->groupnorm_forward(bx.p, B, C, S, G, bw.p, bw.p + C, by.p, bxh.p, brs.p);
  auto y = by.host();
  CHECK(std::equal(y.begin(), y.end(), y_ref.begin()));
  be->groupnorm_backward(bdy.p, bxh.p, brs.p, bw.p, B, C, S, G, bdx.p, bdw.p, bdw.p + C);
  auto dx = bdx.host();
  auto dw = bdw.host();
  CHECK(std::equal(dx.begin(), dx.end(), dx_ref.begin()));
  CHECK(dw == grads);
  be->fill(bdw.p, 7.f, 2 * C);  // overwritten, not accumulated
  be->groupnorm_backward(bdy.p, bxh.p, brs.p, bw.p, B, C, S, G, nullptr, bdw.p, bdw.p + C);
  CHECK(bdw.host() == grads);
}

TEST_CASE("cpu_backend: dropout draws Dropout's mask", "[backend]") {
  auto be = make_cpu_backend();
  Rng rng(7);
  Dropout layer(0.4);
  layer.set_noise_seed(1234);
  Tensor x({4, 25});
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  buffer bx(*be, std::vector<float>(x.begin(), x.end())), by(*be, 100), bm(*be, 100);
  for (uint64_t call = 1; call <= 2; ++call) {
    const Tensor& y_ref = layer.forward(x);
    be->dropout_forward(bx.p, by.p, bm.p, 100, 0.4, dropout_key(1234, call));
    auto y = by.host();
    CHECK(std::equal(y.begin(), y.end(), y_ref.begin()));
  }
}

namespace {

struct frame {
  std::vector<int32_t> idx;
  std::vector<float> val;
};

// gossip_state::compress's sparse and grid loops (actors/gossip_state.cpp),
// written out: the semantics gossip_select must keep.
frame compress_sparse(const std::vector<float>& x, std::vector<float>& hat, float tau) {
  frame f;
  for (size_t k = 0; k < x.size(); ++k)
    if (std::fabs(x[k] - hat[k]) >= tau) {
      hat[k] = x[k];
      f.idx.push_back(static_cast<int32_t>(k));
      f.val.push_back(hat[k]);
    }
  return f;
}

frame compress_grid(const std::vector<float>& x, std::vector<float>& hat, float tau) {
  frame f;
  const float near = 0.75f * tau, limit = 1e9f;
  for (size_t k = 0; k < x.size(); ++k) {
    if (std::fabs(x[k] - hat[k]) < near) continue;
    float q = std::nearbyint(std::clamp(x[k] / tau, -limit, limit));
    float v = q * tau;
    if (v == hat[k]) continue;
    hat[k] = v;
    f.idx.push_back(static_cast<int32_t>(k));
    f.val.push_back(v);
  }
  return f;
}

frame select_on(compute_backend& be, const std::vector<float>& x, std::vector<float>& hat, float threshold,
                float grid) {
  const int64_t n = static_cast<int64_t>(x.size());
  buffer bx(be, x), bh(be, hat), bv(be, n);
  int32_t* idx = be.alloc_int(n);
  const int64_t count = be.gossip_select(bx.p, bh.p, n, threshold, grid, idx, bv.p);
  frame f;
  f.idx.resize(static_cast<size_t>(count));
  f.val.resize(static_cast<size_t>(count));
  be.download_int(f.idx.data(), idx, count);
  be.download(f.val.data(), bv.p, count);
  hat = bh.host();
  be.free_int(idx);
  return f;
}

}  // namespace

TEST_CASE("cpu_backend: gossip_select publishes as gossip_state's compressor", "[backend]") {
  auto be = make_cpu_backend();
  Rng rng(8);
  const float tau = 0.01f;
  std::vector<float> x = random_vec(500, rng, -0.05, 0.05), hat = random_vec(500, rng, -0.05, 0.05);
  // Edge cases: exactly at the threshold, unchanged, far beyond the grid's clamp.
  x[0] = 0.5f;
  hat[0] = 0.5f - tau;
  x[1] = hat[1];
  x[2] = 1e30f;
  x[3] = -1e30f;
  for (int pass = 0; pass < 3; ++pass) {  // later passes: hats already moved
    std::vector<float> h_ref = hat, h = hat;
    const frame ref = compress_sparse(x, h_ref, tau);
    const frame got = select_on(*be, x, h, tau, 0.f);
    CHECK(got.idx == ref.idx);
    CHECK(got.val == ref.val);
    CHECK(h == h_ref);
    std::vector<float> g_ref = hat, g = hat;
    const frame gref = compress_grid(x, g_ref, tau);
    const frame ggot = select_on(*be, x, g, 0.75f * tau, tau);
    CHECK(ggot.idx == gref.idx);
    CHECK(ggot.val == gref.val);
    CHECK(g == g_ref);
    if (pass == 0) CHECK(!gref.idx.empty());
    hat = g_ref;  // the grid's hats: some now equal their grid value (skipped next pass)
    for (size_t k = 0; k < x.size(); k += 7) x[k] += static_cast<float>(rng.uniform(-0.02, 0.02));
  }
}

TEST_CASE("cpu_backend: scatter and gossip_mix", "[backend]") {
  auto be = make_cpu_backend();
  Rng rng(10);
  const int64_t n = 300;
  buffer dst(*be, std::vector<float>(static_cast<size_t>(n), 1.f));
  std::vector<int32_t> idx{0, 17, 299};
  std::vector<float> val{-2.f, 3.5f, 4.f};
  int32_t* bi = be->alloc_int(3);
  be->upload_int(bi, idx.data(), 3);
  buffer bv(*be, val);
  be->scatter(dst.p, bi, bv.p, 3);
  auto d = dst.host();
  CHECK(d[0] == -2.f);
  CHECK(d[17] == 3.5f);
  CHECK(d[299] == 4.f);
  CHECK(d[1] == 1.f);
  be->free_int(bi);

  // x += gamma sum_j w_j (hat_j - self), against a direct double computation
  // and gossip_state's own form x += c (sum_j hat_j - deg self), c = gamma / (deg + 1).
  auto x = random_vec(n, rng), self = random_vec(n, rng);
  std::vector<std::vector<float>> hats{random_vec(n, rng), random_vec(n, rng), random_vec(n, rng)};
  const std::vector<float> w{1.f, 1.f, 1.f};
  const float gamma = 0.8f, c = gamma / 4.f;
  buffer bx(*be, x), bs(*be, self), h0(*be, hats[0]), h1(*be, hats[1]), h2(*be, hats[2]);
  const float* hp[3] = {h0.p, h1.p, h2.p};
  be->gossip_mix(bx.p, bs.p, hp, w.data(), 3, c, n);
  auto got = bx.host();
  double worst = 0;
  for (int64_t k = 0; k < n; ++k) {
    double want = x[k];
    double state = x[k];
    double sum = 0;
    for (int j = 0; j < 3; ++j) {
      sum += w[j] * (static_cast<double>(hats[j][k]) - self[k]);
      state += c * hats[j][k];
    }
    want += c * sum;
    state -= c * 3.0 * self[k];
    worst = std::max(worst, std::fabs(got[k] - want));
    CHECK(std::fabs(got[k] - state) < 1e-5);
  }
  CHECK(worst < 1e-6);
}

TEST_CASE("cpu_backend: freivalds_pieces against a direct double computation, with and without a bias",
          "[backend]") {
  auto be = make_cpu_backend();
  Rng rng(11);
  const int64_t m = 13, n = 9, k = 17;
  for (bool with_bias : {false, true})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        auto a = random_vec(m * k, rng), b = random_vec(k * n, rng), c = random_vec(m * n, rng);
        auto bias = random_vec(n, rng);
        std::vector<float> r(static_cast<size_t>(n));
        for (auto& v : r) v = static_cast<float>(rng.below(2));
        r[0] = 1.f;
        auto A = [&](int64_t i, int64_t p) { return static_cast<double>(ta ? a[p * m + i] : a[i * k + p]); };
        auto Bm = [&](int64_t p, int64_t j) { return static_cast<double>(tb ? b[j * k + p] : b[p * n + j]); };
        // The bias is a (k+1)-th term: a 1 in every row of A, bias_j in column j of B.
        const double one = with_bias ? 1.0 : 0.0;
        auto bias_of = [&](int64_t j) { return with_bias ? static_cast<double>(bias[j]) : 0.0; };
        buffer ba(*be, a), bb(*be, b), bc(*be, c), br(*be, r), bbias(*be, bias);
        std::vector<double> out(static_cast<size_t>(3 * m + 1));
        be->freivalds_pieces(ta, tb, m, n, k, ba.p, bb.p, with_bias ? bbias.p : nullptr, bc.p, br.p, out.data());
        double bsq = 0;
        for (int64_t j = 0; j < n; ++j) {
          bsq += r[j] * bias_of(j) * bias_of(j);
          for (int64_t p = 0; p < k; ++p) bsq += r[j] * Bm(p, j) * Bm(p, j);
        }
        CHECK(out[3 * m] == Approx(bsq).epsilon(1e-12));
        double bias_r = 0;
        for (int64_t j = 0; j < n; ++j) bias_r += bias_of(j) * r[j];
        for (int64_t i = 0; i < m; ++i) {
          double cr = 0, abr = bias_r, an = one;
          for (int64_t j = 0; j < n; ++j) cr += c[i * n + j] * static_cast<double>(r[j]);
          for (int64_t p = 0; p < k; ++p) {
            double brp = 0;
            for (int64_t j = 0; j < n; ++j) brp += Bm(p, j) * r[j];
            abr += A(i, p) * brp;
            an += A(i, p) * A(i, p);
          }
          CHECK(out[i] == Approx(cr).epsilon(1e-12).margin(1e-12));
          CHECK(out[m + i] == Approx(abr).epsilon(1e-12).margin(1e-12));
          CHECK(out[2 * m + i] == Approx(std::sqrt(an)).epsilon(1e-12));
        }
      }
  // A non-finite bias entry, even where r_j = 0, makes out[3m] NaN (the check fails).
  std::vector<float> a(static_cast<size_t>(m * k), 1.f), b(static_cast<size_t>(k * n), 1.f),
      c(static_cast<size_t>(m * n), 1.f), bias(static_cast<size_t>(n), 0.f), r(static_cast<size_t>(n), 0.f);
  r[0] = 1.f;
  bias[1] = std::numeric_limits<float>::infinity();
  buffer ba(*be, a), bb(*be, b), bc(*be, c), br(*be, r), bbias(*be, bias);
  std::vector<double> out(static_cast<size_t>(3 * m + 1));
  be->freivalds_pieces(false, false, m, n, k, ba.p, bb.p, bbias.p, bc.p, br.p, out.data());
  CHECK(std::isnan(out[3 * m]));
}

TEST_CASE("backend_model: a repeated batch size allocates no backend buffer", "[backend]") {
  testing::counting_backend be(make_cpu_backend());
  auto model = build_model("conv2d:4:3:1:1,groupnorm:2,relu,maxpool2d:2,dropout:0.1,res[conv2d:4:3:1:1,tanh],"
                           "gap,flatten,linear:3",
                           {1, 6, 6}, 3);
  model->init(2);
  backend_model bm(be, *model, {}, 2);
  Rng rng(12);
  std::vector<int32_t> labels{0, 1, 2, 0, 1, 2, 0, 1, 2};
  auto step = [&](int64_t B) {
    auto x = random_vec(B * 36, rng);
    bm.train_step(x.data(), labels.data(), B, 0.01f);
  };
  step(8);
  step(5);
  const int64_t after_warmup = be.allocs;
  CHECK(after_warmup > 0);
  step(8);
  step(5);
  step(8);
  int64_t correct = 0;
  auto x = random_vec(8 * 36, rng);
  bm.evaluate(x.data(), labels.data(), 8, &correct);
  CHECK(be.allocs == after_warmup);
  step(9);  // a larger batch grows the buffers
  CHECK(be.allocs > after_warmup);
}

TEST_CASE("backend_model: set_noise_seed reseeds dropout as Sequential::set_noise_seed", "[backend]") {
  auto be = make_cpu_backend();
  auto ref = build_model("flatten,linear:32,relu,dropout:0.5,linear:10", {1, 4, 4}, 10);
  ref->init(5);
  backend_model bm(*be, *ref, backend_optimizer{}, 5);
  auto opt = make_sgd(ref->param_count(), 0.9f, 0.f);
  Rng rng(17);
  Tensor dlogits;
  const int64_t B = 8;
  std::vector<int32_t> labels{0, 1, 2, 3, 4, 5, 6, 7};
  for (uint64_t step = 0; step < 4; ++step) {
    // The trainer's pattern: a fresh stream every step.
    ref->set_noise_seed(1000 + step);
    bm.set_noise_seed(1000 + step);
    Tensor x({B, 1, 4, 4});
    for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
    const float want = softmax_cross_entropy(ref->forward(x), labels.data(), dlogits);
    ref->backward(dlogits);
    opt->step(ref->params(), ref->grads(), 0.05f);
    CHECK(bm.train_step(x.data(), labels.data(), B, 0.05f) == want);  // the MLP path is bit-identical
  }
  // Without the reseed the streams part: the next step draws other masks.
  ref->set_noise_seed(7);
  Tensor x({B, 1, 4, 4});
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  const float want = softmax_cross_entropy(ref->forward(x), labels.data(), dlogits);
  CHECK(bm.train_step(x.data(), labels.data(), B, 0.05f) != want);
}
