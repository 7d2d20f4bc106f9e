// Layers, loss, Sequential and optimizers: analytic gradients against central
// finite differences, optimizer steps against hand-computed values, model
// spec parsing, and the no-allocation promise of a steady-state step.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <limits>
#include <new>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tensor/activation.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/dropout.hpp"
#include "tensor/flatten.hpp"
#include "tensor/global_avg_pool.hpp"
#include "tensor/groupnorm.hpp"
#include "tensor/linear.hpp"
#include "tensor/loss.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/optimizer.hpp"
#include "tensor/residual.hpp"
#include "tensor/sequential.hpp"

// Counts operator new calls, so a test can show a training step allocates
// nothing once the batch size repeats. Calls from inside oneDNN (its
// execute builds a small argument map per primitive run, which no caller
// can avoid) are counted apart, by the object file of the caller's address.
// (malloc/free sit behind noinline helpers: GCC otherwise flags every
// inlined new/delete pair as mismatched.)
namespace {
std::atomic<long> g_allocs{0};
std::atomic<long> g_onednn_allocs{0};
bool from_onednn(const void* caller) {
  Dl_info info;
  return dladdr(caller, &info) != 0 && info.dli_fname && std::strstr(info.dli_fname, "libdnnl") != nullptr;
}
[[gnu::noinline]] void* counted_alloc(std::size_t n, const void* caller) {
  (from_onednn(caller) ? g_onednn_allocs : g_allocs).fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void counted_free(void* p) noexcept { std::free(p); }
}  // namespace
// Every plain form is replaced, so no pair mixes this and another allocator.
void* operator new(std::size_t n) { return counted_alloc(n, __builtin_return_address(0)); }
void* operator new[](std::size_t n) { return counted_alloc(n, __builtin_return_address(0)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try { return counted_alloc(n, __builtin_return_address(0)); } catch (...) { return nullptr; }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try { return counted_alloc(n, __builtin_return_address(0)); } catch (...) { return nullptr; }
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

using namespace murmur;

namespace {

Tensor random_tensor(const Shape& s, Rng& rng, double lo = -1, double hi = 1) {
  Tensor t(s);
  for (auto& v : t) v = static_cast<float>(rng.uniform(lo, hi));
  return t;
}

// Uniform values kept at least `gap` away from zero (for ReLU's kink).
Tensor away_from_zero(const Shape& s, Rng& rng, double gap = 0.05) {
  Tensor t(s);
  for (auto& v : t) {
    double u = rng.uniform(gap, 1.0);
    v = static_cast<float>(rng.uniform() < 0.5 ? -u : u);
  }
  return t;
}

// Distinct values at least 0.01 apart, in random order (for max pooling's
// ties: finite differences must not move the argmax).
Tensor distinct_values(const Shape& s, Rng& rng) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(0.01 * (i - t.numel() / 2));
  rng.shuffle(t.begin(), t.end());
  return t;
}

double dot(const Tensor& a, const Tensor& b) {
  REQUIRE(a.numel() == b.numel());
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Empty when every |num - ana| <= abs + rel * max(|num|, |ana|); otherwise
// lists the first few offenders.
std::string mismatches(const std::vector<double>& num, const float* ana, double rel = 1e-2,
                       double abs = 1e-3) {
  std::ostringstream out;
  int bad = 0;
  for (size_t i = 0; i < num.size(); ++i) {
    double a = ana[i], n = num[i];
    if (std::fabs(a - n) > abs + rel * std::max(std::fabs(a), std::fabs(n)) || !std::isfinite(a)) {
      if (bad++ < 5) out << "[" << i << "] analytic " << a << " numeric " << n << "; ";
    }
  }
  if (bad) out << bad << " of " << num.size() << " differ";
  return out.str();
}

// Central differences of f() with respect to each of the n floats at v.
template <class F>
std::vector<double> numeric_grad(float* v, int64_t n, F&& f, double eps = 1e-3) {
  std::vector<double> g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float keep = v[i];
    v[i] = static_cast<float>(keep + eps);
    const double up = f();
    v[i] = static_cast<float>(keep - eps);
    const double down = f();
    v[i] = keep;
    g[static_cast<size_t>(i)] = (up - down) / (2 * eps);
  }
  return g;
}

// Checks dL/dx and dL/dparams of a single layer for L = sum(y * R), R random.
// random_params replaces the layer's init (e.g. GroupNorm's 1 and 0, which
// would leave the affine part untested) by U(-1, 1).
void check_layer(Layer& layer, Tensor x, Rng& rng, bool random_params = false) {
  std::vector<float> params(static_cast<size_t>(layer.param_count())),
      grads(params.size(), -7.f);
  layer.bind(params.data(), grads.data());
  layer.init(rng);
  if (random_params)
    for (auto& v : params) v = static_cast<float>(rng.uniform(-1, 1));
  const Tensor y = layer.forward(x).clone();
  REQUIRE(y.shape()[0] == x.shape()[0]);
  Shape per_sample(x.shape().begin() + 1, x.shape().end());
  Shape out_sample(y.shape().begin() + 1, y.shape().end());
  CHECK(layer.output_shape(per_sample) == out_sample);
  const Tensor r = random_tensor(y.shape(), rng);
  const Tensor dx = layer.backward(r).clone();
  REQUIRE(dx.shape() == x.shape());
  const std::vector<float> dparams = grads;

  auto loss = [&] { return dot(layer.forward(x), r); };
  INFO(layer.name());
  CHECK(mismatches(numeric_grad(x.data(), x.numel(), loss), dx.data()) == "");
  if (!params.empty()) {
    CHECK(mismatches(numeric_grad(params.data(), layer.param_count(), loss), dparams.data()) == "");
    // Gradients are overwritten, not accumulated.
    layer.forward(x);
    layer.backward(r);
    CHECK(grads == dparams);
  }
}

}  // namespace

TEST_CASE("linear: forward matches x W^T + b and init is PyTorch's default", "[layers]") {
  Linear lin(3, 2);
  std::vector<float> p = {1, 2, 3, -1, 0, 1, /*bias*/ 0.5f, -0.5f}, g(8);
  lin.bind(p.data(), g.data());
  CHECK(lin.param_count() == 8);
  CHECK(lin.name() == "linear(3->2)");
  CHECK(lin.forward_flops({3}) == 6);
  Tensor x({2, 3});
  float xs[] = {1, 0, -1, 2, 1, 0};
  std::copy(xs, xs + 6, x.begin());
  const Tensor& y = lin.forward(x);
  REQUIRE(y.shape() == Shape{2, 2});
  CHECK(y[0] == Approx(1 - 3 + 0.5));
  CHECK(y[1] == Approx(-1 - 1 - 0.5));
  CHECK(y[2] == Approx(2 + 2 + 0.5));
  CHECK(y[3] == Approx(-2 + 0 - 0.5));
  CHECK_THROWS_AS(lin.output_shape({4}), std::invalid_argument);

  Linear big(400, 300);
  std::vector<float> bp(static_cast<size_t>(big.param_count())), bg(bp.size());
  big.bind(bp.data(), bg.data());
  Rng rng(7);
  big.init(rng);
  const float bound = 1.f / 20.f;
  float lo = 1, hi = -1;
  double mean = 0;
  for (float v : bp) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    mean += v;
  }
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(lo < -0.99f * bound);
  CHECK(hi > 0.99f * bound);
  CHECK(std::fabs(mean / static_cast<double>(bp.size())) < 1e-3);
  // Deterministic in the seed.
  std::vector<float> again(bp.size()), ag(bp.size());
  big.bind(again.data(), ag.data());
  Rng rng2(7);
  big.init(rng2);
  CHECK(again == bp);
}

TEST_CASE("gradient check: linear", "[layers]") {
  Rng rng(1);
  Linear lin(5, 4);
  check_layer(lin, random_tensor({3, 5}, rng), rng);
  Linear one(1, 1);
  check_layer(one, random_tensor({1, 1}, rng), rng);
}

TEST_CASE("gradient check: activations", "[layers]") {
  Rng rng(2);
  SECTION("relu") {
    ReLU relu;
    check_layer(relu, away_from_zero({4, 7}, rng), rng);
    Tensor x({1, 3});
    x[0] = -1; x[1] = 0; x[2] = 2;
    const Tensor& y = relu.forward(x);
    CHECK(y[0] == 0.f);
    CHECK(y[1] == 0.f);
    CHECK(y[2] == 2.f);
  }
  SECTION("sigmoid") {
    Sigmoid s;
    check_layer(s, random_tensor({3, 2, 5}, rng, -3, 3), rng);
    Tensor x({1, 3});
    x[0] = -100; x[1] = 0; x[2] = 100;
    const Tensor& y = s.forward(x);
    CHECK(y[0] == Approx(0).margin(1e-30));
    CHECK(y[1] == Approx(0.5));
    CHECK(y[2] == Approx(1));
  }
  SECTION("tanh") {
    Tanh t;
    check_layer(t, random_tensor({2, 9}, rng, -2, 2), rng);
    Tensor x({1, 1});
    x[0] = 0.5f;
    CHECK(t.forward(x)[0] == Approx(std::tanh(0.5)));
  }
}

TEST_CASE("gradient check: conv2d", "[layers]") {
  Rng rng(3);
  SECTION("stride 1, padding 1") {
    Conv2d c(2, 3, 3, 1, 1);
    check_layer(c, random_tensor({2, 2, 5, 5}, rng), rng);
    CHECK(c.output_shape({2, 5, 5}) == Shape{3, 5, 5});
  }
  SECTION("stride 1, no padding, non-square") {
    Conv2d c(1, 2, 3);
    check_layer(c, random_tensor({2, 1, 4, 6}, rng), rng);
  }
  SECTION("stride 2, padding 1, odd sizes") {
    Conv2d c(2, 2, 3, 2, 1);
    check_layer(c, random_tensor({2, 2, 6, 7}, rng), rng);
    CHECK(c.output_shape({2, 6, 7}) == Shape{2, 3, 4});
  }
  SECTION("stride 2, padding 2, kernel 2") {
    Conv2d c(3, 2, 2, 2, 2);
    check_layer(c, random_tensor({1, 3, 5, 5}, rng), rng);
  }
}

TEST_CASE("conv2d: forward matches a direct convolution", "[layers]") {
  Rng rng(4);
  const int64_t B = 2, C = 3, O = 4, H = 7, W = 6, k = 3, s = 2, p = 1;
  Conv2d conv(C, O, k, s, p);
  std::vector<float> params(static_cast<size_t>(conv.param_count())), grads(params.size());
  conv.bind(params.data(), grads.data());
  conv.init(rng);
  Tensor x = random_tensor({B, C, H, W}, rng);
  const Tensor& y = conv.forward(x);
  const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  REQUIRE(y.shape() == Shape{B, O, OH, OW});
  CHECK(conv.forward_flops({C, H, W}) == O * OH * OW * C * k * k);
  int bad = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = params[static_cast<size_t>(O * C * k * k + o)];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < k; ++i)
              for (int64_t j = 0; j < k; ++j) {
                int64_t ih = oh * s - p + i, iw = ow * s - p + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += static_cast<double>(params[static_cast<size_t>(((o * C + c) * k + i) * k + j)]) *
                       x[((b * C + c) * H + ih) * W + iw];
              }
          bad += std::fabs(acc - y[((b * O + o) * OH + oh) * OW + ow]) > 1e-5;
        }
  CHECK(bad == 0);
}

TEST_CASE("gradient check: maxpool2d", "[layers]") {
  Rng rng(5);
  MaxPool2d pool(2);
  check_layer(pool, distinct_values({2, 3, 4, 6}, rng), rng);
  MaxPool2d pool3(3);  // odd sizes: the floor mode drops the last rows/columns
  check_layer(pool3, distinct_values({1, 2, 7, 8}, rng), rng);
  CHECK(pool3.output_shape({2, 7, 8}) == Shape{2, 2, 2});

  Tensor x({1, 1, 2, 2});
  x[0] = 1; x[1] = 3; x[2] = 3; x[3] = 2;  // tie: the first maximum takes the gradient
  CHECK(pool.forward(x)[0] == 3.f);
  Tensor dy({1, 1, 1, 1});
  dy[0] = 5;
  const Tensor& dx = pool.backward(dy);
  CHECK(dx[0] == 0.f);
  CHECK(dx[1] == 5.f);
  CHECK(dx[2] == 0.f);
  CHECK(dx[3] == 0.f);
}

TEST_CASE("gradient check: flatten, which is a view", "[layers]") {
  Rng rng(6);
  Flatten f;
  check_layer(f, random_tensor({2, 3, 2, 2}, rng), rng);
  Tensor x = random_tensor({4, 2, 3, 5}, rng);
  const Tensor& y = f.forward(x);
  CHECK(y.shape() == Shape{4, 30});
  CHECK(y.data() == x.data());
  Tensor dy({4, 30});
  const Tensor& dx = f.backward(dy);
  CHECK(dx.shape() == x.shape());
  CHECK(dx.data() == dy.data());
  CHECK(f.output_shape({2, 3, 5}) == Shape{30});
}

TEST_CASE("softmax cross-entropy: values, stability and gradient", "[loss]") {
  Tensor logits({2, 3});
  int32_t labels[] = {0, 2};
  Tensor d;
  SECTION("uniform logits give log C") {
    CHECK(softmax_cross_entropy(logits, labels, d) == Approx(std::log(3.0)));
    REQUIRE(d.shape() == Shape{2, 3});
    CHECK(d[0] == Approx((1.0 / 3 - 1) / 2));
    CHECK(d[1] == Approx(1.0 / 6));
    CHECK(d[5] == Approx((1.0 / 3 - 1) / 2));
  }
  SECTION("huge logits stay finite") {
    float v[] = {1000, 0, -1000, 5000, 5000, 4000};
    std::copy(v, v + 6, logits.begin());
    // Row 1: label 0 has the max, loss ~0; row 2: label 2 is 1000 below the
    // two tied maxima, loss = 1000 + log 2.
    const float loss = softmax_cross_entropy(logits, labels, d);
    CHECK(std::isfinite(loss));
    CHECK(loss == Approx((0 + 1000 + std::log(2.0)) / 2));
    for (float g : d) CHECK(std::isfinite(g));
    CHECK(d[3] == Approx(0.25));
    CHECK(d[5] == Approx(-0.5));
    int64_t correct = -1;
    CHECK(softmax_cross_entropy_eval(logits, labels, &correct) == Approx(loss));
    CHECK(correct == 1);
  }
  SECTION("finite differences") {
    Rng rng(8);
    Tensor z = random_tensor({4, 5}, rng, -3, 3);
    int32_t lab[] = {0, 4, 2, 2};
    softmax_cross_entropy(z, lab, d);
    const Tensor ana = d.clone();
    Tensor scratch;
    auto f = [&] { return static_cast<double>(softmax_cross_entropy(z, lab, scratch)); };
    CHECK(mismatches(numeric_grad(z.data(), z.numel(), f), ana.data()) == "");
    int64_t correct = 0;
    CHECK(softmax_cross_entropy_eval(z, lab, &correct) == Approx(f()));
  }
  SECTION("bad labels are rejected") {
    int32_t bad[] = {0, 3};
    CHECK_THROWS_AS(softmax_cross_entropy(logits, bad, d), std::invalid_argument);
    int32_t neg[] = {-1, 0};
    CHECK_THROWS_AS(softmax_cross_entropy_eval(logits, neg, nullptr), std::invalid_argument);
  }
}

TEST_CASE("gradient check: a whole Sequential through the loss", "[model]") {
  // Every layer type in one model; tanh before the pool keeps values spread.
  auto model = build_model("conv2d:3:3:1:1,tanh,maxpool2d:2,conv2d:4:2:2:1,relu,flatten,"
                           "linear:6,sigmoid,linear:4",
                           {2, 6, 6}, 4);
  REQUIRE(model->output_shape() == Shape{4});
  model->init(11);
  model->set_need_input_grad(true);
  Rng rng(12);
  Tensor x = random_tensor({3, 2, 6, 6}, rng);
  int32_t labels[] = {1, 3, 0};
  Tensor d;
  softmax_cross_entropy(model->forward(x), labels, d);
  model->backward(d);
  const std::vector<float> grads(model->grads(), model->grads() + model->param_count());
  const Tensor dx = model->input_grad().clone();
  REQUIRE(dx.shape() == x.shape());

  Tensor scratch;
  auto f = [&] { return static_cast<double>(softmax_cross_entropy(model->forward(x), labels, scratch)); };
  CHECK(mismatches(numeric_grad(model->params(), model->param_count(), f), grads.data()) == "");
  CHECK(mismatches(numeric_grad(x.data(), x.numel(), f), dx.data()) == "");

  // Without the input gradient (the default) parameter gradients are the same.
  model->set_need_input_grad(false);
  softmax_cross_entropy(model->forward(x), labels, d);
  model->backward(d);
  CHECK(std::vector<float>(model->grads(), model->grads() + model->param_count()) == grads);
}

TEST_CASE("sequential: one flat buffer, views in layer order", "[model]") {
  auto model = build_model("flatten,linear:3,relu,linear:2", {1, 2, 2}, 2);
  CHECK(model->param_count() == (4 * 3 + 3) + (3 * 2 + 2));
  CHECK(model->layer_count() == 4);
  CHECK(model->forward_flops() == 12 + 6);
  model->init(5);
  // Writing the flat buffer is what the layers see: zero weights, set biases.
  std::fill(model->params(), model->params() + model->param_count(), 0.f);
  model->params()[12] = 1.f;                 // first linear's bias[0]
  model->params()[15 + 6 + 1] = 0.25f;       // second linear's bias[1]
  model->params()[15 + 0 * 3 + 0] = 2.f;     // second linear's W[0][0]
  Tensor x({1, 1, 2, 2});
  const Tensor& y = model->forward(x);
  REQUIRE(y.shape() == Shape{1, 2});
  CHECK(y[0] == 2.f);
  CHECK(y[1] == 0.25f);
  const std::string desc = model->describe();
  CHECK_THAT(desc, Catch::Contains("linear(4->3)"));
  CHECK_THAT(desc, Catch::Contains("23 params"));
  CHECK_THROWS_AS(model->forward(Tensor({1, 4})), std::invalid_argument);

  // init is deterministic in the seed and differs between seeds.
  auto a = build_model("mlp", {1, 28, 28}, 10), b = build_model("mlp", {1, 28, 28}, 10);
  a->init(1);
  b->init(1);
  CHECK(std::equal(a->params(), a->params() + a->param_count(), b->params()));
  b->init(2);
  CHECK_FALSE(std::equal(a->params(), a->params() + a->param_count(), b->params()));
}

TEST_CASE("build_model: presets and layer lists", "[model]") {
  auto mlp = build_model("mlp", {1, 28, 28}, 10);
  CHECK(mlp->param_count() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  CHECK(mlp->output_shape() == Shape{10});
  CHECK(mlp->layer(1).name() == "linear(784->256)");
  auto cnn = build_model("cnn", {1, 28, 28}, 10);
  // Same count as torch_cnn.py's model.
  CHECK(cnn->param_count() == (32 * 25 + 32) + (64 * 32 * 25 + 64) + (1024 * 256 + 256) + 2570);
  CHECK(cnn->layer_count() == 10);
  auto small = build_model(" conv2d:8:3 , relu, maxpool2d:2,flatten,linear:10", {1, 28, 28}, 10);
  CHECK(small->layer(0).name() == "conv2d(1->8,k3,s1,p0)");
  CHECK(small->layer(4).name() == "linear(1352->10)");
  auto strided = build_model("conv2d:4:3:2:1,flatten,linear:3", {2, 8, 8}, 3);
  CHECK(strided->layer(0).output_shape({2, 8, 8}) == Shape{4, 4, 4});
}

TEST_CASE("build_model: a bad item throws invalid_argument naming it", "[model]") {
  auto error_of = [](const std::string& spec, const Shape& in = {1, 28, 28}, int64_t nc = 10) {
    try {
      build_model(spec, in, nc);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  CHECK_THAT(error_of("flatten,linear:abc"), Catch::Contains("'linear:abc'"));
  CHECK_THAT(error_of("flatten,linear:-3"), Catch::Contains("'linear:-3'"));
  CHECK_THAT(error_of("flatten,linear:12x,relu,linear:10"), Catch::Contains("'linear:12x'"));
  CHECK_THAT(error_of("conv2d:8,relu"), Catch::Contains("'conv2d:8'"));
  CHECK_THAT(error_of("conv2d:8:3:1:1:9"), Catch::Contains("'conv2d:8:3:1:1:9'"));
  CHECK_THAT(error_of("conv2d:8:3,bogus,flatten,linear:10"), Catch::Contains("'bogus'"));
  CHECK_THAT(error_of("relu:3,flatten,linear:10"), Catch::Contains("'relu:3'"));
  CHECK_THAT(error_of("linear:10"), Catch::Contains("'linear:10'"));  // needs flatten first
  CHECK_THAT(error_of("flatten,maxpool2d:2"), Catch::Contains("'maxpool2d:2'"));
  CHECK_THAT(error_of("conv2d:4:29,flatten,linear:10"), Catch::Contains("'conv2d:4:29'"));
  CHECK_THAT(error_of("flatten,,linear:10"), Catch::Contains("item 2"));
  CHECK_THAT(error_of("flatten,linear:7"), Catch::Contains("'linear:7'"));  // not 10 classes
  CHECK_THAT(error_of(""), Catch::Contains("empty"));
  CHECK_THROWS_AS(build_model("mlp", {1, 28, 28}, 0), std::invalid_argument);
  CHECK_NOTHROW(build_model("flatten,linear:7", {3}, 0));  // num_classes 0: no check
}

TEST_CASE("sgd: momentum and weight decay, by hand", "[optim]") {
  // lr 0.1, momentum 0.9, wd 0.01. Step 1: d = g + 0.01 p; buf = d; p -= 0.1 buf.
  // E.g. p0 = 1, g = 0.5: d = 0.51, p = 0.949; step 2, g = -0.2:
  // d = -0.2 + 0.00949 = -0.19051, buf = 0.459 - 0.19051 = 0.26849, p = 0.9221510.
  // (Values agree with torch.optim.SGD.)
  std::vector<float> p = {1.f, -2.f, 0.5f};
  const float gs[3][3] = {{0.5f, -1.f, 0.25f}, {-0.2f, 0.3f, 1.5f}, {1.f, 1.f, -0.5f}};
  const double want[3][3] = {{0.949, -1.898, 0.4745},
                             {0.922151029, -1.83430195, 0.301075488},
                             {0.797064781, -1.87513947, 0.194692358}};
  auto sgd = make_sgd(3, 0.9f, 0.01f);
  for (int s = 0; s < 3; ++s) {
    sgd->step(p.data(), gs[s], 0.1f);
    for (int i = 0; i < 3; ++i) CHECK(p[static_cast<size_t>(i)] == Approx(want[s][i]).epsilon(1e-6));
  }
  // Without momentum it is plain gradient descent.
  std::vector<float> q = {1.f, -2.f, 0.5f};
  auto plain = make_sgd(3, 0.f, 0.f);
  plain->step(q.data(), gs[0], 0.1f);
  plain->step(q.data(), gs[1], 0.1f);
  CHECK(q[0] == Approx(1 - 0.05 + 0.02));
  CHECK(q[1] == Approx(-2 + 0.1 - 0.03));
  CHECK(q[2] == Approx(0.5 - 0.025 - 0.15));
}

TEST_CASE("adam: bias-corrected steps with L2 weight decay, by hand", "[optim]") {
  // lr 0.01, betas (0.9, 0.999), eps 1e-8, wd 0.1. Step 1 always moves each
  // coordinate by lr * sign(d): m1/(1-b1) = d and sqrt(v1/(1-b2)) = |d|.
  // Later steps are worked out below for one coordinate (the table agrees
  // with torch.optim.Adam).
  std::vector<float> p = {1.f, -2.f, 0.5f};
  const float gs[3][3] = {{0.5f, -1.f, 0.25f}, {-0.2f, 0.3f, 1.5f}, {1.f, 1.f, -0.5f}};
  const double want[3][3] = {{0.99000001, -1.99000001, 0.49000001},
                             {0.98462832, -1.98394752, 0.481420815},
                             {0.97702843, -1.98359621, 0.47680524}};
  auto adam = make_adam(3, 0.9f, 0.999f, 1e-8f, 0.1f);
  for (int s = 0; s < 3; ++s) {
    adam->step(p.data(), gs[s], 0.01f);
    for (int i = 0; i < 3; ++i) CHECK(p[static_cast<size_t>(i)] == Approx(want[s][i]).epsilon(1e-6));
  }
  // Step 2 by hand for the first coordinate.
  {
    double m1 = 0.1 * 0.6, v1 = 0.001 * 0.36;  // d1 = 0.5 + 0.1*1 = 0.6
    double p1 = 1 - 0.01 * (m1 / 0.1) / (std::sqrt(v1 / 0.001) + 1e-8);
    double d2 = -0.2 + 0.1 * p1, m2 = 0.9 * m1 + 0.1 * d2, v2 = 0.999 * v1 + 0.001 * d2 * d2;
    double p2 = p1 - 0.01 / (1 - 0.81) * m2 / (std::sqrt(v2) / std::sqrt(1 - 0.998001) + 1e-8);
    CHECK(p2 == Approx(want[1][0]).epsilon(1e-6));
  }
  CHECK_THROWS_AS(make_adam(3, 1.f, 0.999f, 1e-8f, 0.f), std::invalid_argument);
  CHECK_THAT(adam->name(), Catch::Contains("adam"));
}

TEST_CASE("sgd and adam flush subnormal state to zero and move parameters as torch does", "[optim]") {
  // A state decaying with no gradient sinks into the subnormals and stays:
  // 0.9 x 4 units of the last place rounds back to 4. Such state is +0 after
  // a step; parameters move exactly as the unflushed update moves them.
  const float tiny = 4 * std::numeric_limits<float>::denorm_min();
  const float small = std::numeric_limits<float>::min();  // the smallest normal float
  REQUIRE(0.9f * tiny == tiny);                            // why it never reaches 0 by itself
  std::vector<float> p = {1.f, -0.25f, 3e-3f, 0.5f}, g = {0.f, 0.f, 0.f, 0.25f};
  const std::vector<float> before = p;
  auto sgd = make_sgd(4, 0.9f, 0.f);
  sgd->step(p.data(), g.data(), 0.1f);  // first step: buf = g
  uint64_t steps = 0;
  std::span<const float> a, b;
  REQUIRE(sgd->view_state(steps, a, b));
  // Put subnormal and barely normal values into the buffer through load_state.
  optimizer_state st = sgd->save_state();
  REQUIRE(st.values.size() == 4);
  st.values = {tiny, -tiny, small, 0.5f};
  sgd->load_state(st);
  p = before;
  sgd->step(p.data(), g.data(), 0.1f);
  REQUIRE(sgd->view_state(steps, a, b));
  CHECK(a[0] == 0.f);
  CHECK(a[1] == 0.f);
  CHECK(a[2] == 0.f);  // 0.9 x the smallest normal is subnormal: flushed
  CHECK(a[3] == 0.9f * 0.5f + 0.25f);
  CHECK(p[0] == before[0]);  // 1 - 0.1 x tiny rounds to 1: the flush changes no parameter
  CHECK(p[1] == before[1]);
  CHECK(p[2] == before[2]);
  CHECK(p[3] == before[3] - 0.1f * (0.9f * 0.5f + 0.25f));
  CHECK(!std::signbit(a[1]));  // +0, also for a negative subnormal

  auto adam = make_adam(2, 0.9f, 0.999f, 1e-8f, 0.f);
  std::vector<float> q = {1.f, -1.f}, h = {0.f, 0.5f};
  adam->step(q.data(), h.data(), 1e-3f);
  optimizer_state as = adam->save_state();
  REQUIRE(as.values.size() == 4);  // m then v
  as.values = {tiny, 0.1f, tiny, 0.01f};
  adam->load_state(as);
  const std::vector<float> q0 = q;
  adam->step(q.data(), h.data(), 1e-3f);
  REQUIRE(adam->view_state(steps, a, b));
  CHECK(a[0] == 0.f);
  CHECK(b[0] == 0.f);
  CHECK(a[1] > 0.f);
  CHECK(q[0] == q0[0]);
  CHECK(q[1] != q0[1]);
}

TEST_CASE("a steady-state training step does not allocate", "[model]") {
  for (const char* spec : {"mlp", "conv2d:4:3:2:1,relu,maxpool2d:2,flatten,linear:16,tanh,linear:10",
                           // channel-blocked chains (tensor/channel_blocked.hpp)
                           "conv2d:16:3:1:1,relu,maxpool2d:2,conv2d:16:3:1:1,relu,maxpool2d:2,flatten,linear:10",
                           "conv2d:4:3:2:1,groupnorm:2,relu,res[conv2d:4:3:1:1,groupnorm:4,relu,dropout:0.2],"
                           "gap,flatten,dropout:0.5,linear:10"}) {
    INFO(spec);
    auto model = build_model(spec, {1, 28, 28}, 10);
    model->init(3);
    auto opt = make_sgd(model->param_count(), 0.9f, 1e-4f);
    auto adam = make_adam(model->param_count(), 0.9f, 0.999f, 1e-8f, 0.f);
    Rng rng(4);
    Tensor x = random_tensor({16, 1, 28, 28}, rng, 0, 1);
    std::vector<int32_t> y(16);
    for (auto& l : y) l = static_cast<int32_t>(rng.below(10));
    Tensor d;
    auto step = [&] {
      softmax_cross_entropy(model->forward(x), y.data(), d);
      model->backward(d);
      opt->step(model->params(), model->grads(), 0.01f);
      adam->step(model->params(), model->grads(), 1e-3f);
    };
    step();
    const long probe = g_allocs.load();
    ::operator delete(::operator new(8));  // the counter does see allocations
    REQUIRE(g_allocs.load() == probe + 1);
    const long before = g_allocs.load(), onednn_before = g_onednn_allocs.load();
    step();
    step();
    const long ours = g_allocs.load() - before, onednn = g_onednn_allocs.load() - onednn_before;
    INFO("oneDNN's own allocations in two steps: " << onednn);
    CHECK(ours == 0);
    // About 5 per primitive run (measured: 86 in two mlp steps; 148 and 168
    // in the conv models, whose convolutions, pools and layout reorders add
    // about 10 runs a step); making a primitive costs hundreds, so a
    // primitive made per step (two in two steps) fails this.
    CHECK(onednn <= 240);
  }
}

TEST_CASE("gradient check: groupnorm", "[layers]") {
  Rng rng(21);
  SECTION("2 groups of 3 channels, 3x3") {
    GroupNorm gn(6, 2);
    check_layer(gn, random_tensor({3, 6, 3, 3}, rng, -2, 2), rng, true);
  }
  SECTION("one channel per group (instance norm), non-square") {
    GroupNorm gn(3, 3);
    check_layer(gn, random_tensor({2, 3, 2, 5}, rng), rng, true);
  }
  SECTION("one group (layer norm) on flat features") {
    GroupNorm gn(5, 1);
    check_layer(gn, random_tensor({4, 5}, rng), rng, true);
  }
}

TEST_CASE("groupnorm: normalises each (sample, group), init 1 and 0, layout weight then bias", "[layers]") {
  Rng rng(22);
  GroupNorm gn(4, 2);
  CHECK(gn.name() == "groupnorm(2,4)");
  CHECK(gn.param_count() == 8);
  std::vector<float> p(8, -3.f), g(8);
  gn.bind(p.data(), g.data());
  gn.init(rng);
  CHECK(p == std::vector<float>{1, 1, 1, 1, 0, 0, 0, 0});
  Tensor x = random_tensor({2, 4, 3, 3}, rng, 5, 9);  // far from zero mean
  const Tensor& y = gn.forward(x);
  for (int64_t bg = 0; bg < 4; ++bg) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < 18; ++i) s += y[bg * 18 + i], s2 += y[bg * 18 + i] * y[bg * 18 + i];
    CHECK(s / 18 == Approx(0).margin(1e-5));
    CHECK(s2 / 18 == Approx(1).epsilon(1e-3));  // var / (var + eps)
  }
  p[1] = 2.f;   // weight of channel 1
  p[4] = 0.5f;  // bias of channel 0
  const Tensor y2 = gn.forward(x).clone();
  gn.init(rng);
  const Tensor y1 = gn.forward(x).clone();
  for (int64_t i = 0; i < 9; ++i) CHECK(y2[i] == Approx(y1[i] + 0.5f));
  for (int64_t i = 9; i < 18; ++i) CHECK(y2[i] == Approx(2 * y1[i]));
  CHECK(gn.forward_flops({4, 3, 3}) == 3 * 36);
  CHECK_THROWS_AS(GroupNorm(6, 4), std::invalid_argument);
  CHECK_THROWS_AS(gn.output_shape({3, 2, 2}), std::invalid_argument);
}

TEST_CASE("gradient check: global average pooling", "[layers]") {
  Rng rng(23);
  GlobalAvgPool2d gap;
  check_layer(gap, random_tensor({2, 3, 3, 5}, rng), rng);
  CHECK(gap.output_shape({3, 3, 5}) == Shape{3, 1, 1});
  CHECK(gap.forward_flops({3, 3, 5}) == 45);
  Tensor x({1, 2, 1, 2});
  x[0] = 1; x[1] = 3; x[2] = -2; x[3] = 0;
  const Tensor& y = gap.forward(x);
  CHECK(y.shape() == Shape{1, 2, 1, 1});
  CHECK(y[0] == 2.f);
  CHECK(y[1] == -1.f);
  CHECK_THROWS_AS(gap.output_shape({12}), std::invalid_argument);
}

TEST_CASE("dropout: identity in eval, inverted scaling and a replayable mask in training", "[layers]") {
  Rng rng(24);
  Dropout d(0.25);
  CHECK(d.name() == "dropout(0.25)");
  Tensor x = away_from_zero({4, 50}, rng);
  d.set_noise_seed(7);
  const Tensor y = d.forward(x).clone();
  int dropped = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (y[i] == 0.f) ++dropped;
    else CHECK(y[i] == Approx(x[i] / 0.75f));
  }
  CHECK(dropped > 0);
  CHECK(dropped < x.numel() / 2);
  // Backward applies the same mask.
  const Tensor r = random_tensor(x.shape(), rng);
  const Tensor& dx = d.backward(r);
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(dx[i] == Approx(y[i] == 0.f ? 0.f : r[i] / 0.75f));
  // The mask is a function of (seed, forward count): reseeding replays it,
  // the next forward draws another.
  const Tensor next = d.forward(x).clone();
  CHECK_FALSE(std::equal(next.begin(), next.end(), y.begin()));
  d.set_noise_seed(7);
  const Tensor& again = d.forward(x);
  CHECK(std::equal(again.begin(), again.end(), y.begin()));
  d.set_noise_seed(8);
  const Tensor& other = d.forward(x);
  CHECK_FALSE(std::equal(other.begin(), other.end(), y.begin()));
  // Eval: the identity, gradient passes through.
  d.set_training(false);
  const Tensor& e = d.forward(x);
  CHECK(std::equal(e.begin(), e.end(), x.begin()));
  const Tensor& de = d.backward(r);
  CHECK(std::equal(de.begin(), de.end(), r.begin()));
  CHECK_THROWS_AS(Dropout(1.0), std::invalid_argument);
  CHECK_THROWS_AS(Dropout(-0.1), std::invalid_argument);
}

TEST_CASE("dropout: the training mask is Bernoulli(1 - p), independent across elements and calls", "[layers]") {
  for (double p : {0.1, 0.5, 0.8}) {
    INFO("p " << p);
    Dropout d(p);
    d.set_noise_seed(1234);
    const int64_t n = 200000;
    Tensor x({4, n / 4});
    x.fill(1.f);
    const Tensor a = d.forward(x).clone();
    const Tensor& b = d.forward(x);
    int64_t kept = 0, pairs = 0, both_calls = 0;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool k = a[i] != 0.f;
      kept += k;
      sum += a[i];
      if (i + 1 < n) pairs += k && a[i + 1] != 0.f;
      both_calls += k && b[i] != 0.f;
    }
    const double q = 1 - p, sd = std::sqrt(n * p * q);
    CHECK(std::fabs(static_cast<double>(kept) - n * q) < 5 * sd);
    CHECK(sum / n == Approx(1.0).margin(5 * sd / n / q));  // E[y] = x
    // Neighbours and successive calls are kept together with probability q^2.
    const double sd2 = std::sqrt(n * q * q * (1 - q * q));
    CHECK(std::fabs(static_cast<double>(pairs) - n * q * q) < 6 * sd2);
    CHECK(std::fabs(static_cast<double>(both_calls) - n * q * q) < 6 * sd2);
  }
}

TEST_CASE("gradient check: residual block, and its body's parameter slices", "[layers]") {
  Rng rng(25);
  const Shape in = {3, 4, 4};
  std::vector<std::unique_ptr<Layer>> body;
  body.push_back(std::make_unique<Conv2d>(3, 4, 3, 1, 1));
  body.push_back(std::make_unique<GroupNorm>(4, 2));
  body.push_back(std::make_unique<Tanh>());
  body.push_back(std::make_unique<Conv2d>(4, 3, 1));
  Residual res(std::move(body), in);
  CHECK(res.param_count() == (4 * 3 * 9 + 4) + 8 + (3 * 4 + 3));
  CHECK(res.body_param_offset(1) == 4 * 3 * 9 + 4);
  CHECK(res.body_param_offset(3) == 4 * 3 * 9 + 4 + 8);
  CHECK(res.output_shape(in) == in);
  CHECK(res.forward_flops(in) == 48 + 4 * 16 * 27 + 3 * 64 + 0 + 3 * 16 * 4);
  CHECK(res.name() == "res[conv2d(3->4,k3,s1,p1),groupnorm(2,4),tanh,conv2d(4->3,k1,s1,p0)]");
  check_layer(res, random_tensor({2, 3, 4, 4}, rng), rng, true);

  // y = x + body(x): a body whose output is zero passes x through.
  std::vector<float> p(static_cast<size_t>(res.param_count()), 0.f), g(p.size());
  res.bind(p.data(), g.data());
  Tensor x = random_tensor({1, 3, 4, 4}, rng);
  const Tensor& y = res.forward(x);
  CHECK(std::equal(y.begin(), y.end(), x.begin()));

  std::vector<std::unique_ptr<Layer>> shrinking;
  shrinking.push_back(std::make_unique<Conv2d>(3, 4, 3));
  try {
    Residual bad(std::move(shrinking), in);
    FAIL("a body that changes the shape was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("res block res[conv2d(3->4,k3,s1,p0)]"));
    CHECK_THAT(std::string(e.what()), Catch::Contains("[4,2,2]"));
  }
}

TEST_CASE("gradient check: a model with every new layer, dropout in training mode", "[model]") {
  auto model = build_model("conv2d:4:3:1:1,groupnorm:2,tanh,res[conv2d:4:3:1:1,groupnorm:4,tanh,dropout:0.3],"
                           "maxpool2d:2,res[res[conv2d:4:1,tanh]],gap,flatten,dropout:0.2,linear:3",
                           {2, 5, 5}, 3);
  model->init(31);
  model->set_need_input_grad(true);
  Rng rng(32);
  for (int64_t i = 0; i < model->param_count(); ++i) model->params()[i] = static_cast<float>(rng.uniform(-1, 1));
  Tensor x = random_tensor({3, 2, 5, 5}, rng);
  int32_t labels[] = {2, 0, 1};
  Tensor d;
  // Reseeding before each forward gives the same masks each time.
  model->set_noise_seed(99);
  softmax_cross_entropy(model->forward(x), labels, d);
  model->backward(d);
  const std::vector<float> grads(model->grads(), model->grads() + model->param_count());
  const Tensor dx = model->input_grad().clone();
  Tensor scratch;
  auto f = [&] {
    model->set_noise_seed(99);
    return static_cast<double>(softmax_cross_entropy(model->forward(x), labels, scratch));
  };
  CHECK(mismatches(numeric_grad(model->params(), model->param_count(), f), grads.data()) == "");
  CHECK(mismatches(numeric_grad(x.data(), x.numel(), f), dx.data()) == "");
}

TEST_CASE("set_training reaches dropout inside residual bodies; eval is deterministic", "[model]") {
  auto model = build_model("flatten,res[dropout:0.5],res[res[dropout:0.5]]", {1, 2, 50}, 0);
  Tensor x({1, 1, 2, 50});
  x.fill(1.f);
  model->init(1);
  CHECK(model->training());
  const Tensor train = model->forward(x).clone();
  // Training: h = x + mask * x / 0.5 is 1 or 3, then h + (h + mask' * h / 0.5)
  // varies again; eval: h = 2x, then h + (h + h) = 6x.
  CHECK(std::any_of(train.begin(), train.end(), [](float v) { return v != 6.f; }));
  model->set_training(false);
  CHECK_FALSE(model->training());
  const Tensor& eval = model->forward(x);
  CHECK(std::all_of(eval.begin(), eval.end(), [](float v) { return v == 6.f; }));
  model->set_training(true);
  const Tensor& again = model->forward(x);
  CHECK(std::any_of(again.begin(), again.end(), [](float v) { return v != 6.f; }));
}

TEST_CASE("build_model: resnet9 and the new items", "[model]") {
  auto r = build_model("resnet9", {1, 28, 28}, 10);
  // conv(cin, cout) = 9 cin cout + cout; groupnorm = 2 cout.
  auto conv_gn = [](int64_t ci, int64_t co) { return 9 * ci * co + co + 2 * co; };
  const int64_t want = conv_gn(1, 64) + conv_gn(64, 128) + 2 * conv_gn(128, 128) + conv_gn(128, 256) +
                       conv_gn(256, 512) + 2 * conv_gn(512, 512) + 512 * 10 + 10;
  CHECK(r->param_count() == want);
  CHECK(r->output_shape() == Shape{10});
  // prep (3) + layer1 (3 + pool + res) + layer2 (3 + pool) + layer3 (3 + pool + res) + gap, flatten, linear
  REQUIRE(r->layer_count() == 20);
  CHECK(r->layer_input_shape(17) == Shape{512, 3, 3});  // 28 -> 14 -> 7 -> 3
  CHECK(r->layer(7).name().rfind("res[conv2d(128->128,k3,s1,p1),groupnorm(8,128),relu,", 0) == 0);
  auto narrow = build_model("resnet9:4", {1, 28, 28}, 10);
  CHECK(narrow->layer(1).name() == "groupnorm(4,4)");
  CHECK(narrow->layer(4).name() == "groupnorm(8,8)");
  auto odd = build_model("resnet9:6", {3, 32, 32}, 7);  // groups: largest divisor <= 8
  CHECK(odd->layer(1).name() == "groupnorm(6,6)");
  CHECK(odd->layer(4).name() == "groupnorm(6,12)");
  CHECK(odd->output_shape() == Shape{7});
  auto m = build_model("conv2d:4:3, groupnorm:2 ,dropout:0.5,res[ conv2d:4:3:1:1 , relu ],gap,flatten,linear:3",
                       {1, 6, 6}, 3);
  CHECK(m->layer_count() == 7);
  CHECK(m->layer(2).name() == "dropout(0.5)");
  CHECK(m->layer(3).param_count() == 4 * 4 * 9 + 4);
  CHECK(m->layer_param_offset(4) == 40 + 8 + 148);
}

TEST_CASE("build_model: bad new items are named", "[model]") {
  auto error_of = [](const std::string& spec, const Shape& in = {1, 8, 8}, int64_t nc = 10) {
    try {
      build_model(spec, in, nc);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  CHECK_THAT(error_of("conv2d:6:3,groupnorm:4,flatten,linear:10"), Catch::Contains("'groupnorm:4'"));
  CHECK_THAT(error_of("conv2d:6:3,groupnorm:4,flatten,linear:10"), Catch::Contains("6 channels"));
  CHECK_THAT(error_of("groupnorm,flatten,linear:10"), Catch::Contains("'groupnorm'"));
  CHECK_THAT(error_of("dropout:1,flatten,linear:10"), Catch::Contains("'dropout:1'"));
  CHECK_THAT(error_of("dropout:x,flatten,linear:10"), Catch::Contains("'dropout:x'"));
  CHECK_THAT(error_of("flatten,gap,linear:10"), Catch::Contains("'gap'"));
  CHECK_THAT(error_of("res[conv2d:4:3],flatten,linear:10"), Catch::Contains("res block"));
  CHECK_THAT(error_of("res[conv2d:4:3],flatten,linear:10"), Catch::Contains("'res[conv2d:4:3]'"));
  CHECK_THAT(error_of("res[conv2d:1:3:1:1,bogus],flatten,linear:10"), Catch::Contains("'bogus'"));
  CHECK_THAT(error_of("res[conv2d:1:3:1:1,flatten,linear:10"), Catch::Contains("unclosed '['"));
  CHECK_THAT(error_of("res[relu]],flatten,linear:10"), Catch::Contains("unmatched ']'"));
  CHECK_THAT(error_of("res[],flatten,linear:10"), Catch::Contains("empty item"));
  CHECK_THAT(error_of("res,flatten,linear:10"), Catch::Contains("res[LAYER"));
  CHECK_THAT(error_of("resnet9:0"), Catch::Contains("resnet9:WIDTH"));
  CHECK_THAT(error_of("resnet9:x"), Catch::Contains("resnet9:WIDTH"));
}
