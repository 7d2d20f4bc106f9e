// transcript_check: a verifier's check of one committed layer of another
// peer's step (step_transcript.hpp), from the tensors the prover sent.
// In order, cheapest first; the first failure is the result:
//   1. shapes fit the verifier's own copy of the model (every peer has it);
//   2. every tensor hashes to the digest the prover committed to BEFORE it
//      knew what would be asked (a data-fed layer: the sample indices);
//   3. a data-fed layer's samples are the prover's own (its shard): a peer
//      replaying another's work fails here; X is rebuilt from the data set;
//   4. element-wise parts recomputed: db = column sums of dY, and for the
//      logits layer dY = (softmax(Y) - onehot(label)) / B;
//   5. Freivalds (tensor/freivalds.hpp), `rounds` random vectors drawn now,
//      after the commitment: Y = X W^T + b and dW = dY^T X.
// Plain code, no actors: the verifier actor and evidence re-checks use it.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "actors/step_transcript.hpp"
#include "protocols/verify_messages.hpp"
#include "tensor/augment.hpp"
#include "tensor/dataset.hpp"
#include "tensor/freivalds.hpp"

namespace murmur {

enum class check_outcome : uint8_t {
  passed = 0,
  bad_shape,
  hash_mismatch,
  foreign_samples,
  bias_grad,
  loss_grad,
  forward_product,
  weight_grad_product,
  count_
};
std::string_view to_string(check_outcome c);

class transcript_checker {
 public:
  // layers: the verifier's own model's committed layers; data: the training
  // set every peer holds.
  // augment: how provers augment their batches; a data-fed layer's X is
  // rebuilt from the data set and augmented the same way.
  transcript_checker(std::vector<committed_layer> layers, std::shared_ptr<const Dataset> data, int rounds,
                     augment_settings augment = {});
  // shard_sorted: the prover's sample indices, sorted.
  check_outcome check(const layer_commit& c, const tensor_reply& r, std::span<const int64_t> shard_sorted, Rng& rng);
  // Multiply-adds the prover did for the checked layer (what a pass credits).
  static double work_of(const tensor_reply& r) { return 2.0 * r.batch * r.in * r.out; }

 private:
  std::vector<committed_layer> layers_;
  std::shared_ptr<const Dataset> data_;
  int rounds_;
  freivalds_checker fv_;
  std::vector<float> x_;
  augment_settings augment_;
  std::vector<float> augment_scratch_;
  digest_builder hash_;
};

}  // namespace murmur
