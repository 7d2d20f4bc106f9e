#include "tensor/augment.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "tensor/rng.hpp"

namespace murmur {

void augment_image(const augment_settings& a, uint64_t step, int64_t index, float* image, int64_t C, int64_t H,
                   int64_t W, float* scratch) {
  if (!a.active()) return;
  // One stream per (step, sample): two forks keep (1, 7) and (7, 1) apart.
  Rng r = Rng(a.seed).fork(step).fork(static_cast<uint64_t>(index));
  const int64_t P = a.crop_padding;
  // Offset of the crop window in the padded image, in [0, 2P]; P = centre.
  const int64_t dy = P > 0 ? static_cast<int64_t>(r.below(static_cast<uint64_t>(2 * P + 1))) - P : 0;
  const int64_t dx = P > 0 ? static_cast<int64_t>(r.below(static_cast<uint64_t>(2 * P + 1))) - P : 0;
  const bool flip = a.flip && (r.next_u64() >> 63) != 0;
  if (dx == 0 && dy == 0 && !flip) return;
  const size_t n = static_cast<size_t>(C * H * W);
  std::memcpy(scratch, image, n * sizeof(float));
  for (int64_t c = 0; c < C; ++c) {
    const float* src = scratch + c * H * W;
    float* dst = image + c * H * W;
    for (int64_t y = 0; y < H; ++y) {
      const int64_t sy = y + dy;
      float* row = dst + y * W;
      if (sy < 0 || sy >= H) {
        std::fill(row, row + W, 0.0f);
        continue;
      }
      // Cropped pixel x comes from column x + dx of the source (zero outside);
      // the flip then mirrors the cropped row, as torchvision applies it after the crop.
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sx = x + dx;
        const float v = sx >= 0 && sx < W ? src[sy * W + sx] : 0.0f;
        row[flip ? W - 1 - x : x] = v;
      }
    }
  }
}

void check_augment_fits(const augment_settings& a, const Shape& s) {
  if (!a.active()) return;
  const std::string shape = shape_str(s);
  const std::string what = a.crop_padding > 0 ? "data.crop_padding = " + std::to_string(a.crop_padding)
                                              : std::string("data.flip = horizontal");
  if (s.size() != 3 || s[1] < 2 || s[2] < 2)
    throw std::invalid_argument(what + " needs image samples C x H x W with H, W >= 2, but the training samples are " +
                                shape);
  if (a.crop_padding > 0 && (2 * a.crop_padding >= s[1] || 2 * a.crop_padding >= s[2]))
    throw std::invalid_argument(what + " is too large for " + shape + " images: 2 x padding must be less than H and W");
}

void augment_batch(const augment_settings& a, uint64_t step, std::span<const int64_t> indices, Tensor& x,
                   std::vector<float>& scratch) {
  if (!a.active()) return;
  if (x.ndim() != 4 || x.dim(0) != static_cast<int64_t>(indices.size()))
    throw std::invalid_argument("augment_batch: want x [B, C, H, W] with B = " + std::to_string(indices.size()) +
                                " samples");
  const int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3);
  scratch.resize(static_cast<size_t>(C * H * W));
  for (size_t i = 0; i < indices.size(); ++i)
    augment_image(a, step, indices[i], x.data() + static_cast<int64_t>(i) * C * H * W, C, H, W, scratch.data());
}

}  // namespace murmur
