// Training-image augmentation: every augmented image is the original shifted
// by (dy, dx) in [-P, P] with zeros shifted in, then mirrored or not; the
// choice depends only on (seed, step, sample index); offsets and flips are
// all drawn about equally often; bad shapes are refused with a message.
#include <catch2/catch.hpp>
#include <map>

#include "tensor/augment.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

// The torchvision reference, written out: pad by P, take the H x W window at
// (P + dy, P + dx), then mirror left-right if flip.
std::vector<float> reference(const std::vector<float>& img, int64_t C, int64_t H, int64_t W, int64_t dy,
                             int64_t dx, bool flip) {
  std::vector<float> out(img.size(), 0.0f);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
        if (sy >= 0 && sy < H && sx >= 0 && sx < W) out[(c * H + y) * W + x] = img[(c * H + sy) * W + sx];
      }
  return out;
}

std::vector<float> random_image(int64_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(r.uniform(0.01, 1.0));  // no zeros: a shift is visible
  return v;
}

}  // namespace

TEST_CASE("augmented images are shifted, zero-filled, maybe mirrored copies; every choice occurs", "[augment]") {
  const int64_t C = 2, H = 7, W = 6, P = 2;
  augment_settings a;
  a.crop_padding = P;
  a.flip = true;
  a.seed = 99;
  const auto img = random_image(C * H * W, 1);
  std::vector<float> scratch(static_cast<size_t>(C * H * W));
  std::map<std::tuple<int64_t, int64_t, bool>, int> seen;
  for (int64_t index = 0; index < 2000; ++index) {
    auto x = img;
    augment_image(a, 5, index, x.data(), C, H, W, scratch.data());
    int matches = 0;
    for (int64_t dy = -P; dy <= P; ++dy)
      for (int64_t dx = -P; dx <= P; ++dx)
        for (bool flip : {false, true})
          if (reference(img, C, H, W, dy, dx, flip) == x) {
            ++matches;
            ++seen[{dy, dx, flip}];
          }
    REQUIRE(matches == 1);  // a random image: exactly one (dy, dx, flip) explains it
  }
  // 50 choices, 2000 samples: 40 expected each.
  REQUIRE(seen.size() == 50);
  for (const auto& [k, count] : seen) {
    INFO("dy " << std::get<0>(k) << " dx " << std::get<1>(k) << " flip " << std::get<2>(k));
    CHECK(count > 15);
    CHECK(count < 70);
  }
}

TEST_CASE("augmentation depends only on seed, step and sample index", "[augment]") {
  const int64_t C = 1, H = 8, W = 8;
  augment_settings a;
  a.crop_padding = 3;
  a.flip = true;
  a.seed = 7;
  const auto img = random_image(C * H * W, 2);
  std::vector<float> scratch(static_cast<size_t>(C * H * W));
  auto run = [&](const augment_settings& s, uint64_t step, int64_t index) {
    auto x = img;
    augment_image(s, step, index, x.data(), C, H, W, scratch.data());
    return x;
  };
  CHECK(run(a, 3, 10) == run(a, 3, 10));
  int differ_step = 0, differ_index = 0, differ_seed = 0;
  augment_settings b = a;
  b.seed = 8;
  for (int64_t i = 0; i < 50; ++i) {
    differ_step += run(a, 3, i) != run(a, 4, i);
    differ_index += run(a, 3, i) != run(a, 3, i + 1);
    differ_seed += run(a, 3, i) != run(b, 3, i);
  }
  CHECK(differ_step > 40);  // 98 choices: a repeat is rare
  CHECK(differ_index > 40);
  CHECK(differ_seed > 40);

  // The batch form augments sample i by its data-set index, as one image does.
  Tensor x({3, C, H, W});
  for (int64_t i = 0; i < 3; ++i) std::copy(img.begin(), img.end(), x.data() + i * C * H * W);
  std::vector<int64_t> idx = {41, 7, 41};
  std::vector<float> batch_scratch;
  augment_batch(a, 9, idx, x, batch_scratch);
  for (int64_t i = 0; i < 3; ++i) {
    auto want = run(a, 9, idx[static_cast<size_t>(i)]);
    CHECK(std::equal(want.begin(), want.end(), x.data() + i * C * H * W));
  }
}

TEST_CASE("no augmentation leaves images alone; flip alone never shifts", "[augment]") {
  const int64_t C = 1, H = 5, W = 4;
  const auto img = random_image(C * H * W, 3);
  std::vector<float> scratch(static_cast<size_t>(C * H * W));
  augment_settings none;
  auto x = img;
  augment_image(none, 1, 1, x.data(), C, H, W, scratch.data());
  CHECK(x == img);
  augment_settings flip;
  flip.flip = true;
  int flipped = 0;
  for (int64_t i = 0; i < 100; ++i) {
    x = img;
    augment_image(flip, 1, i, x.data(), C, H, W, scratch.data());
    const bool same = x == img, mirrored = x == reference(img, C, H, W, 0, 0, true);
    CHECK(same != mirrored);
    flipped += mirrored;
  }
  CHECK(flipped > 30);
  CHECK(flipped < 70);
}

TEST_CASE("augmentation refuses samples that are not images, or padding too large for them", "[augment]") {
  augment_settings a;
  a.crop_padding = 2;
  CHECK_NOTHROW(check_augment_fits(a, {1, 28, 28}));
  CHECK_THROWS_WITH(check_augment_fits(a, {784}), Catch::Contains("data.crop_padding = 2") &&
                                                      Catch::Contains("C x H x W") && Catch::Contains("[784]"));
  CHECK_THROWS_WITH(check_augment_fits(a, {1, 4, 28}), Catch::Contains("too large"));
  augment_settings f;
  f.flip = true;
  CHECK_THROWS_WITH(check_augment_fits(f, {3, 1, 1}), Catch::Contains("data.flip = horizontal"));
  CHECK_NOTHROW(check_augment_fits(augment_settings{}, {784}));
}
