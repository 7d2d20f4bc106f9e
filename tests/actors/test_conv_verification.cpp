// Step transcripts of convolutional models: top-level conv2d layers are
// committed and checked as im2col products, each compute cheat on a conv
// first layer fails the check it targets, a tampered product of a strided,
// padded conv in the middle fails Freivalds, and the link between adjacent
// committed layers (the next input is this output through relu, maxpool2d,
// flatten) is held to the next layer's input digest.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "actors/trainer.hpp"
#include "actors/transcript_check.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/gemm.hpp"
#include "tensor/im2col.hpp"

using namespace murmur;

namespace {

// 1 x 8 x 8 images: conv 3x3 -> 4 x 6 x 6, maxpool -> 4 x 3 x 3, linear 36 -> 10.
const std::string kCnn = "conv2d:4:3,relu,maxpool2d:2,flatten,linear:10";
// A second conv fed by the first (stride 2, padding 1), then two linears.
const std::string kDeep = "conv2d:4:3:1:1,relu,conv2d:6:3:2:1,relu,maxpool2d:2,flatten,linear:16,relu,linear:10";
// 16 channels: the activations from the first conv to the last pool travel
// channel-blocked (tensor/channel_blocked.hpp); transcripts still see nchw.
const std::string kBlocked = "conv2d:16:3:1:1,relu,maxpool2d:2,conv2d:16:3,relu,flatten,linear:10";

struct fixture {
  std::shared_ptr<const Dataset> data = std::make_shared<const Dataset>(make_synthetic(600, 10, 8, 11));
  std::vector<std::vector<int64_t>> shards = shard_iid(600, 3, 5);

  train_settings settings(uint64_t peer) const {
    train_settings t;
    t.batch = 16;
    t.total_steps = 100;
    t.data_seed = 100 + peer;
    t.init_seed = 1;
    return t;
  }
  std::shared_ptr<trainer> make_trainer(const std::string& spec, uint32_t peer = 0,
                                        const train_settings* ts = nullptr) const {
    return std::make_shared<trainer>(ts ? *ts : settings(peer), spec, data, shards[peer], data);
  }
  std::vector<int64_t> sorted_shard(uint32_t peer) const {
    auto s = shards[peer];
    std::sort(s.begin(), s.end());
    return s;
  }
};

// The digests step_transcript_log::record commits to, from a reply's tensors:
// what a prover that sends these tensors must have committed.
layer_commit commit_of(const tensor_reply& r) {
  digest_builder h;
  layer_commit c;
  c.d[0] = h.add(r.indices.data(), 4 * r.indices.size()).add(r.input).finish();
  c.d[1] = h.add(r.weight).finish();
  c.d[2] = h.add(r.bias).finish();
  c.d[3] = h.add(r.output).finish();
  c.d[4] = h.add(r.output_grad).finish();
  c.d[5] = h.add(r.weight_grad).finish();
  c.d[6] = h.add(r.bias_grad).finish();
  return c;
}

// Steps a prover with the given cheat and checks every layer of the last
// step against its whole commitment.
// prover_on_backend: the prover steps on the CPU backend (a GPU peer's
// path); verifier_backend: where the verifier runs its products (null: host).
std::vector<check_outcome> check_all_layers(const fixture& f, const std::string& spec, cheat_settings cheat,
                                            uint64_t steps, uint64_t seed, bool prover_on_backend = false,
                                            compute_backend* verifier_backend = nullptr) {
  auto t = f.make_trainer(spec);
  if (prover_on_backend) t->use_backend(make_cpu_backend());
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
  t->enable_transcripts(log, cheat, f.shards[1], seed);
  transcript_checker checker(committed_layers(*t->model()), f.data, 8, {}, verifier_backend);
  Rng rng(seed);
  auto shard = f.sorted_shard(0);
  std::vector<check_outcome> out;
  for (uint64_t s = 1; s <= steps; ++s) {
    t->step();
    const transcript_commit c = *t->last_commit();
    out.clear();
    for (uint16_t l = 0; l < c.layers.size(); ++l) {
      tensor_reply r;
      REQUIRE(log->reply(s, l, 7, r));
      out.push_back(checker.check(c, r, shard, rng));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("conv layers are committed with their geometry, data feed and links", "[verify][conv]") {
  fixture f;
  auto t = f.make_trainer(kDeep);
  const auto layers = committed_layers(*t->model());
  REQUIRE(layers.size() == 4);
  const auto& c0 = layers[0];
  CHECK(c0.kind == committed_layer::conv2d);
  CHECK(c0.data_input);
  CHECK(c0.in == 1 * 3 * 3);
  CHECK(c0.out == 4);
  CHECK(c0.in_row == 64);
  CHECK(c0.out_row == 4 * 8 * 8);
  const auto& c1 = layers[1];
  CHECK(c1.kind == committed_layer::conv2d);
  CHECK_FALSE(c1.data_input);
  CHECK(c1.in == 4 * 3 * 3);
  CHECK(c1.in_row == 4 * 8 * 8);
  CHECK(c1.out_row == 6 * 4 * 4);
  CHECK(c1.conv.stride == 2);
  CHECK(c1.conv.pad == 1);
  CHECK(layers[2].kind == committed_layer::linear);
  CHECK(layers[2].in == 24);
  CHECK(layers[3].logits);
  // Every pair is adjacent through exact layers only.
  CHECK(c0.link_checked);
  CHECK(c0.link.size() == 1);  // relu
  CHECK(c1.link_checked);
  CHECK(c1.link.size() == 3);  // relu, maxpool2d, flatten
  CHECK(layers[2].link_checked);
  CHECK_FALSE(layers[3].link_checked);  // the last layer has no next one
  // A layer with rounding between (groupnorm) leaves the link unchecked;
  // layers inside a residual block are not committed, and the block breaks
  // the link too.
  auto gn = committed_layers(*f.make_trainer("conv2d:4:3,groupnorm:2,relu,flatten,linear:10")->model());
  REQUIRE(gn.size() == 2);
  CHECK_FALSE(gn[0].link_checked);
  auto res = committed_layers(*f.make_trainer("conv2d:4:3:1:1,res[conv2d:4:3:1:1,relu],flatten,linear:10")->model());
  REQUIRE(res.size() == 2);
  CHECK(res[0].kind == committed_layer::conv2d);
  CHECK(res[1].kind == committed_layer::linear);
  CHECK_FALSE(res[0].link_checked);
  // ResNet-9: the four convs outside the residual blocks and the head
  // (docs/trust.md's L = 5); groupnorm after every conv: no link checked.
  auto r9 = committed_layers(*f.make_trainer("resnet9:2")->model());
  REQUIRE(r9.size() == 5);
  for (size_t i = 0; i < 4; ++i) CHECK(r9[i].kind == committed_layer::conv2d);
  CHECK(r9[4].logits);
  for (const auto& l : r9) CHECK_FALSE(l.link_checked);
}

TEST_CASE("honest CNN steps pass every check of every layer, links included", "[verify][conv]") {
  fixture f;
  for (const std::string& spec : {kCnn, kDeep, kBlocked, std::string("flatten,linear:32,relu,linear:16,relu,linear:10")}) {
    INFO(spec);
    auto t = f.make_trainer(spec);
    auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
    t->enable_transcripts(log, {}, {}, 1);
    const auto layers = committed_layers(*t->model());
    transcript_checker checker(layers, f.data, 8);
    Rng rng(3);
    auto shard = f.sorted_shard(0);
    for (uint64_t s = 1; s <= 15; ++s) {
      t->step();
      const transcript_commit c = *t->last_commit();
      REQUIRE(c.layers.size() == layers.size());
      for (uint16_t l = 0; l < c.layers.size(); ++l) {
        tensor_reply r;
        REQUIRE(log->reply(s, l, 1, r));
        const bool conv = layers[l].kind == committed_layer::conv2d;
        CHECK(r.in_row == (conv ? layers[l].in_row : 0));
        CHECK(r.output.size() == r.batch * r.output_row());
        CHECK(checker.check(c, r, shard, rng) == check_outcome::passed);
        if (s == 15) {
          // The reply survives the wire unchanged, rows and all.
          std::vector<std::byte> frame;
          encode_tensor_reply(r, frame);
          tensor_reply back;
          REQUIRE(decode_tensor_reply(frame, 64u << 20, back) == frame_error::none);
          CHECK(back == r);
          CHECK(checker.check(c, back, shard, rng) == check_outcome::passed);
        }
      }
    }
  }
}

TEST_CASE("each compute cheat on a conv first layer fails the check it targets", "[verify][conv]") {
  fixture f;
  cheat_settings c;
  c.start_step = 1;
  c.every = 1;
  using o = check_outcome;
  SECTION("skipping the product") {
    c.kind = compute_cheat::skip_product;
    for (uint64_t seed = 1; seed <= 5; ++seed) CHECK(check_all_layers(f, kCnn, c, 2, seed)[0] == o::forward_product);
  }
  SECTION("one perturbed element of the weight gradient, 1e-2 of its row") {
    c.kind = compute_cheat::perturb;
    c.eps = 1e-2;
    for (uint64_t seed = 1; seed <= 20; ++seed)
      CHECK(check_all_layers(f, kCnn, c, 1, seed)[0] == o::weight_grad_product);
  }
  SECTION("half the batch") {
    c.kind = compute_cheat::half_batch;
    CHECK(check_all_layers(f, kCnn, c, 2, 1)[0] == o::bias_grad);  // db is checked before the products
  }
  SECTION("half the batch, honest bias gradient: the weight gradient product catches it") {
    // Subtler than the suite's cheat: dW from half the batch (doubled), db honest.
    auto t = f.make_trainer(kCnn);
    auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
    t->enable_transcripts(log, {}, {}, 1);
    const auto layers = committed_layers(*t->model());
    transcript_checker checker(layers, f.data, 8);
    Rng rng(5);
    t->step();
    tensor_reply r;
    REQUIRE(log->reply(1, 0, 1, r));
    conv_geometry g = layers[0].conv;
    g.batch = r.batch / 2;
    const int64_t P = g.out_h * g.out_w, N = g.batch * P, K = g.patch(), O = r.out, row = layers[0].in_row;
    std::vector<float> x(static_cast<size_t>(g.batch * row)), cols(static_cast<size_t>(K * N)),
        dym(static_cast<size_t>(O * N));
    for (int64_t i = 0; i < g.batch; ++i)
      std::copy_n(f.data->images.data() + r.indices[static_cast<size_t>(i)] * row, row, x.data() + i * row);
    im2col(g, x.data(), cols.data());
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t p = 0; p < P; ++p)
          dym[static_cast<size_t>(o * N + b * P + p)] = r.output_grad[static_cast<size_t>((b * O + o) * P + p)];
    gemm(false, true, O, K, N, 2.f, dym.data(), cols.data(), 0.f, r.weight_grad.data());
    transcript_commit whole = *t->last_commit();
    whole.layers[0] = commit_of(r);
    CHECK(checker.check(whole, r, f.sorted_shard(0), rng) == o::weight_grad_product);
  }
  SECTION("replaying another peer's batch") {
    c.kind = compute_cheat::replay;
    CHECK(check_all_layers(f, kCnn, c, 2, 1)[0] == o::foreign_samples);
  }
  // The other layer of a cheating step is honest and passes.
  c.kind = compute_cheat::perturb;
  auto r = check_all_layers(f, kCnn, c, 1, 9);
  CHECK(r[1] == o::passed);
}

TEST_CASE("a conv prover on a backend: each compute cheat fails the check it targets, on a host or a backend "
          "verifier, with the host's verdicts",
          "[verify][conv][backend]") {
  fixture f;
  auto be = make_cpu_backend();
  using o = check_outcome;
  for (const std::string& spec : {kCnn, kDeep}) {
    INFO(spec);
    const std::vector<o> honest = check_all_layers(f, spec, {}, 5, 1);
    CHECK(honest == std::vector<o>(honest.size(), o::passed));
    CHECK(check_all_layers(f, spec, {}, 5, 1, true, nullptr) == honest);
    CHECK(check_all_layers(f, spec, {}, 5, 1, true, be.get()) == honest);
    cheat_settings c;
    c.start_step = 1;
    c.every = 1;
    c.eps = 1e-2;
    const std::pair<compute_cheat, o> cases[] = {{compute_cheat::skip_product, o::forward_product},
                                                 {compute_cheat::perturb, o::weight_grad_product},
                                                 {compute_cheat::half_batch, o::bias_grad},
                                                 {compute_cheat::replay, o::foreign_samples}};
    for (const auto& [kind, caught_by] : cases)
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        c.kind = kind;
        INFO("cheat " << static_cast<int>(kind) << " seed " << seed);
        const auto host = check_all_layers(f, spec, c, 2, seed);
        CHECK(host[0] == caught_by);
        CHECK(check_all_layers(f, spec, c, 2, seed, true, nullptr)[0] == caught_by);
        CHECK(check_all_layers(f, spec, c, 2, seed, false, be.get()) == host);
        CHECK(check_all_layers(f, spec, c, 2, seed, true, be.get())[0] == caught_by);
      }
  }
}

TEST_CASE("a tampered bias fails the forward product, on a host and a backend verifier alike", "[verify][conv][backend]") {
  fixture f;
  auto be = make_cpu_backend();
  auto t = f.make_trainer(kDeep);
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
  t->enable_transcripts(log, {}, {}, 1);
  const auto layers = committed_layers(*t->model());
  // 16 rounds: a bias entry is seen in a round only where r_j = 1.
  transcript_checker host(layers, f.data, 16), dev(layers, f.data, 16, {}, be.get());
  auto shard = f.sorted_shard(0);
  t->step();
  // Layer 1 is the strided conv (its bias per column of the transposed
  // product), layer 2 a linear layer (Y = X W^T + b).
  for (uint16_t layer : {uint16_t{1}, uint16_t{2}}) {
    INFO("layer " << layer);
    tensor_reply good;
    REQUIRE(log->reply(1, layer, 1, good));
    REQUIRE(good.has_input);
    Rng r1(21), r2(21);
    CHECK(host.check(commit_of(good), good, shard, r1) == check_outcome::passed);
    CHECK(dev.check(commit_of(good), good, shard, r2) == check_outcome::passed);
    double scale = 0;  // the output's RMS
    for (float y : good.output) scale += static_cast<double>(y) * y;
    scale = std::sqrt(scale / static_cast<double>(good.output.size()));
    for (uint32_t j = 0; j < good.out; j += 3) {
      tensor_reply r = good;
      r.bias[j] += static_cast<float>(1e-2 * scale);  // the claimed Y kept: Y != X W^T + b now
      Rng a(30 + j), b(30 + j);
      CHECK(host.check(commit_of(r), r, shard, a) == check_outcome::forward_product);
      CHECK(dev.check(commit_of(r), r, shard, b) == check_outcome::forward_product);
    }
    // A non-finite bias fails too.
    tensor_reply r = good;
    r.bias[0] = std::numeric_limits<float>::infinity();
    Rng a(40), b(40);
    CHECK(host.check(commit_of(r), r, shard, a) == check_outcome::forward_product);
    CHECK(dev.check(commit_of(r), r, shard, b) == check_outcome::forward_product);
  }
}

TEST_CASE("a strided, padded conv in the middle: a tampered product fails Freivalds", "[verify][conv]") {
  fixture f;
  auto t = f.make_trainer(kDeep);
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
  t->enable_transcripts(log, {}, {}, 1);
  transcript_checker checker(committed_layers(*t->model()), f.data, 8);
  Rng rng(8);
  auto shard = f.sorted_shard(0);
  t->step();
  tensor_reply good;
  REQUIRE(log->reply(1, 1, 1, good));
  REQUIRE(good.has_input);
  CHECK(checker.check(commit_of(good), good, shard, rng) == check_outcome::passed);
  auto row_norm = [](const std::vector<float>& v, size_t row, size_t n) {
    double s = 0;
    for (size_t j = 0; j < n; ++j) s += static_cast<double>(v[row * n + j]) * v[row * n + j];
    return static_cast<float>(std::sqrt(s));
  };
  for (int trial = 0; trial < 10; ++trial) {
    Rng pick(100 + trial);
    // One element of dW moved by 1e-2 of its row's norm (a row is C*k*k = 36 long).
    tensor_reply r = good;
    const size_t row = pick.below(r.out), col = pick.below(r.in);
    r.weight_grad[row * r.in + col] += 1e-2f * row_norm(r.weight_grad, row, r.in);
    CHECK(checker.check(commit_of(r), r, shard, rng) == check_outcome::weight_grad_product);
    // One output element moved by 1e-2 of the output scale at that sample.
    r = good;
    const size_t at = pick.below(r.output.size());
    const size_t sample = at / r.output_row();
    r.output[at] += 1e-2f * row_norm(r.output, sample, r.output_row());
    CHECK(checker.check(commit_of(r), r, shard, rng) == check_outcome::forward_product);
  }
  // The bias gradient sums dY over the batch and every output position.
  tensor_reply r = good;
  const size_t P = r.output_row() / r.out;
  double a = 0;  // what the sum's rounding scales with
  for (size_t b = 0; b < r.batch; ++b)
    for (size_t p = 0; p < P; ++p) a += std::fabs(r.output_grad[(b * r.out + 2) * P + p]);
  r.bias_grad[2] += static_cast<float>(1e-3 * a);
  CHECK(checker.check(commit_of(r), r, shard, rng) == check_outcome::bias_grad);
  // Shapes that do not fit the verifier's model: rows missing or wrong.
  r = good;
  r.in_row = r.out_row = 0;
  CHECK(checker.check(commit_of(r), r, shard, rng) == check_outcome::bad_shape);
}

TEST_CASE("the next layer's committed input must be this layer's output through relu, maxpool, flatten", "[verify][conv]") {
  fixture f;
  for (const std::string& spec : {kCnn, kDeep, kBlocked}) {
    INFO(spec);
    auto t = f.make_trainer(spec);

    auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
    t->enable_transcripts(log, {}, {}, 1);
    const auto layers = committed_layers(*t->model());
    transcript_checker checker(layers, f.data, 8);
    Rng rng(2);
    auto shard = f.sorted_shard(0);
    t->step();
    const transcript_commit honest = *t->last_commit();
    if (spec == kBlocked) {  // the links below cross blocked activations
      REQUIRE(t->model()->blocked_after(0));
      REQUIRE(t->model()->blocked_after(2));
    }
    for (uint16_t l = 0; size_t{l} + 1 < layers.size(); ++l) {
      INFO("layer " << l);
      REQUIRE(layers[l].link_checked);
      tensor_reply r, next;
      REQUIRE(log->reply(1, l, 1, r));
      REQUIRE(log->reply(1, static_cast<uint16_t>(l + 1), 1, next));
      CHECK(checker.check(honest, r, shard, rng) == check_outcome::passed);
      // A prover that committed another input for the next layer (one
      // element moved: a layer fed something else than this one's
      // activated output): this layer's own checks pass, the link fails.
      next.input[next.input.size() / 2] += 0.25f;
      transcript_commit forged = honest;
      forged.layers[l + 1u] = commit_of(next);
      CHECK(checker.check(forged.layers[l], r, shard, rng) == check_outcome::passed);
      CHECK(checker.check(forged, r, shard, rng) == check_outcome::next_input);
    }
  }
}

TEST_CASE("augmented batches on a data-fed conv: the verifier redoes crop and flip", "[verify][conv]") {
  fixture f;
  train_settings ts = f.settings(0);
  ts.augment.crop_padding = 2;
  ts.augment.flip = true;
  ts.augment.seed = 77;
  auto t = f.make_trainer(kCnn, 0, &ts);
  auto log = std::make_shared<step_transcript_log>(0, *t->model(), 4);
  t->enable_transcripts(log, {}, {}, 1);
  auto layers = committed_layers(*t->model());
  REQUIRE(layers[0].data_input);
  transcript_checker same(layers, f.data, 8, ts.augment), blind(layers, f.data, 8);
  Rng rng(4);
  auto shard = f.sorted_shard(0);
  int blind_failed = 0;
  for (uint64_t s = 1; s <= 10; ++s) {
    t->step();
    const transcript_commit c = *t->last_commit();
    for (uint16_t l = 0; l < c.layers.size(); ++l) {
      tensor_reply r;
      REQUIRE(log->reply(s, l, 1, r));
      CHECK(same.check(c, r, shard, rng) == check_outcome::passed);
      const check_outcome b = blind.check(c, r, shard, rng);
      if (l == 0) blind_failed += b != check_outcome::passed;
      else CHECK(b == check_outcome::passed);
    }
  }
  CHECK(blind_failed == 10);
}
