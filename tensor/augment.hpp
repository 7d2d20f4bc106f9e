// augment: random crop and horizontal flip of training images, as
// torchvision's RandomCrop(size, padding=P) (zero padding) and
// RandomHorizontalFlip(p=0.5). Test and evaluation data are never augmented.
//
// A sample's crop offset and flip are a pure function of (seed, step, the
// sample's data-set index), not of a running random stream: a verifier that
// rebuilds a committed batch from its indices (actors/transcript_check)
// rebuilds the same augmented input, and a resumed run draws what an
// uninterrupted one would. The seed is run-wide (every peer knows it).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "tensor/tensor.hpp"

namespace murmur {

struct augment_settings {
  int64_t crop_padding = 0;  // P >= 0; 0 = no crop
  bool flip = false;         // horizontal flip with probability 1/2
  uint64_t seed = 0;
  bool active() const { return crop_padding > 0 || flip; }
};

// Throws std::invalid_argument naming the problem unless samples of this
// shape can be augmented: [C, H, W] images with H, W > 2P (crop) or W > 1 (flip).
void check_augment_fits(const augment_settings& a, const Shape& sample_shape);

// Augments one C x H x W image in place; scratch holds at least C*H*W floats.
void augment_image(const augment_settings& a, uint64_t step, int64_t index, float* image, int64_t C, int64_t H,
                   int64_t W, float* scratch);

// Augments a batch x [B, C, H, W] whose samples are the data set's `indices`
// (B of them). `scratch` is resized to one image once and then reused.
void augment_batch(const augment_settings& a, uint64_t step, std::span<const int64_t> indices, Tensor& x,
                   std::vector<float>& scratch);

}  // namespace murmur
