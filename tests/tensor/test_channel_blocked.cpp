// Channel-blocked activations (tensor/channel_blocked.hpp): the layout's
// index formula, Sequential's plan of which activations travel blocked, and
// that a model with blocked chains computes what the same model with every
// activation nchw computes, bit for bit (the same oneDNN kernels run; the
// reorders they skip only moved floats): outputs, parameter gradients, and
// the nchw tensors a Conv2d shows step transcripts.
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tensor/channel_blocked.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/loss.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/sequential.hpp"

using namespace murmur;

namespace {

Tensor random_input(const Shape& s, Rng& rng) {
  Tensor t(s);
  for (auto& v : t) v = static_cast<float>(rng.uniform(-1, 1));
  return t;
}

std::string plan_of(Sequential& m) {
  std::string s;
  for (size_t i = 0; i + 1 < m.layer_count(); ++i) s += m.blocked_after(i) ? 'B' : '.';
  return s;
}

float max_abs_diff(const float* a, const float* b, int64_t n) {
  float d = 0.f;
  for (int64_t i = 0; i < n; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("channel-blocked layout: element (b, c, h, w) sits where nChw16c puts it", "[layout]") {
  const int64_t B = 2, C = 32, HW = 3;
  std::vector<float> x(static_cast<size_t>(B * C * HW)), y(x.size()), back(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  nchw_to_channel_blocked(x.data(), y.data(), B, C, HW);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p)
        REQUIRE(y[static_cast<size_t>(((b * (C / 16) + c / 16) * HW + p) * 16 + c % 16)] ==
                x[static_cast<size_t>((b * C + c) * HW + p)]);
  channel_blocked_to_nchw(y.data(), back.data(), B, C, HW);
  CHECK(back == x);
  CHECK(channel_blockable({16, 2, 2}));
  CHECK_FALSE(channel_blockable({8, 2, 2}));
  CHECK_FALSE(channel_blockable({32}));
}

TEST_CASE("plan_layouts: blocked only between layers that both take it", "[layout]") {
  SECTION("a conv, relu, pool chain; the pool before flatten hands over nchw") {
    auto m = build_model("conv2d:16:3:1:1,relu,maxpool2d:2,conv2d:32:3,relu,maxpool2d:2,flatten,linear:10",
                         {1, 12, 12}, 10);
    CHECK(plan_of(*m) == ".......");  // nothing planned yet
    m->plan_layouts(4);
    CHECK(plan_of(*m) == "BBBBB..");
    m->plan_layouts(0);  // nothing to compute, nothing blocked
    CHECK(plan_of(*m) == ".......");
    m->set_channel_blocking(false);
    m->plan_layouts(4);
    CHECK(plan_of(*m) == ".......");
  }
  SECTION("a relu between a conv and flatten keeps both its sides nchw") {
    auto m = build_model("conv2d:16:3,relu,flatten,linear:10", {1, 6, 6}, 10);
    m->plan_layouts(2);
    CHECK(plan_of(*m) == "...");
  }
  SECTION("channel counts not a multiple of 16, and a pool oneDNN cannot tile, stay nchw") {
    auto m = build_model("conv2d:8:3,relu,maxpool2d:2,flatten,linear:10", {1, 6, 6}, 10);
    m->plan_layouts(2);
    CHECK(plan_of(*m) == "....");
    auto odd = build_model("conv2d:16:3,relu,maxpool2d:2,flatten,linear:10", {1, 7, 7}, 10);  // 5x5 into pool 2
    odd->plan_layouts(2);
    CHECK(plan_of(*odd) == "....");
  }
  SECTION("the im2col conv kernel takes no blocked side") {
    auto m = build_model("conv2d:16:3:1:1,relu,maxpool2d:2,flatten,linear:10", {1, 8, 8}, 10);
    static_cast<Conv2d&>(m->layer(0)).set_kernel(conv_kernel::im2col_gemm);
    m->plan_layouts(2);
    // The relu's input is nchw, and its output follows (tied): all nchw.
    CHECK(plan_of(*m) == "....");
    static_cast<Conv2d&>(m->layer(0)).set_kernel(conv_kernel::onednn);
    m->plan_layouts(2);
    CHECK(plan_of(*m) == "BB..");
  }
}

TEST_CASE("blocked chains compute what nchw activations compute", "[layout]") {
  // The CNN's shape of net, smaller: two conv/relu/pool blocks, 16 and 32 channels.
  const std::string spec = "conv2d:16:5,relu,maxpool2d:2,conv2d:32:3,relu,maxpool2d:2,flatten,linear:32,relu,linear:10";
  const Shape in{1, 20, 20};
  auto blocked = build_model(spec, in, 10), plain = build_model(spec, in, 10);
  blocked->init(7);
  plain->init(7);
  plain->set_channel_blocking(false);
  Rng rng(8);
  const int64_t B = 5;
  std::vector<int32_t> labels(B);
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(10));
  for (int step = 0; step < 2; ++step) {  // the second step reuses every primitive and buffer
    INFO("step " << step);
    const Tensor x = random_input({B, 1, 20, 20}, rng);
    Tensor db, dp;
    const Tensor& yb = blocked->forward(x);
    const Tensor& yp = plain->forward(x);
    REQUIRE(plan_of(*blocked) == "BBBBB....");
    REQUIRE(plan_of(*plain) == ".........");
    CHECK(max_abs_diff(yb.data(), yp.data(), yb.numel()) <= 0.f);
    softmax_cross_entropy(yb, labels.data(), db);
    softmax_cross_entropy(yp, labels.data(), dp);
    blocked->backward(db);
    plain->backward(dp);
    CHECK(max_abs_diff(blocked->grads(), plain->grads(), blocked->param_count()) <= 0.f);
    // What step transcripts read: nchw on both, whichever layout ran.
    for (size_t i : {size_t{0}, size_t{3}}) {
      INFO("layer " << i);
      auto& cb = static_cast<Conv2d&>(blocked->layer(i));
      auto& cp = static_cast<Conv2d&>(plain->layer(i));
      const conv_geometry& g = cb.last_geometry();
      const int64_t nx = g.batch * g.channels * g.height * g.width, ny = g.batch * cb.out_channels() * g.out_h * g.out_w;
      CHECK(max_abs_diff(cb.last_input(), cp.last_input(), nx) <= 0.f);
      CHECK(max_abs_diff(cb.last_output().data(), cp.last_output().data(), ny) <= 0.f);
      CHECK(max_abs_diff(cb.last_output_grad(), cp.last_output_grad(), ny) <= 0.f);
    }
    for (int64_t i = 0; i < blocked->param_count(); ++i) {  // one SGD step on both
      blocked->params()[i] -= 0.1f * blocked->grads()[i];
      plain->params()[i] -= 0.1f * plain->grads()[i];
    }
  }
}
