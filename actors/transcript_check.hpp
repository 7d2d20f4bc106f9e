// transcript_check: a verifier's check of one committed layer of another
// peer's step (step_transcript.hpp), from the tensors the prover sent.
// In order, cheapest first; the first failure is the result:
//   1. shapes fit the verifier's own copy of the model (every peer has it);
//   2. every tensor hashes to the digest the prover committed to BEFORE it
//      knew what would be asked (a data-fed layer: the sample indices);
//   3. a data-fed layer's samples are the prover's own (its shard): a peer
//      replaying another's work fails here; X is rebuilt from the data set
//      (and augmented as the prover's batches are);
//   4. element-wise parts recomputed: db = column sums of dY (a conv: over
//      the batch and all output positions), and for the logits layer
//      dY = (softmax(Y) - onehot(label)) / B;
//   5. Freivalds (tensor/freivalds.hpp), `rounds` random vectors drawn now,
//      after the commitment: Y = X W^T + b and dW = dY^T X; for a conv, X is
//      the im2col of its input (tensor/im2col.hpp), expanded here from the
//      committed input, and Y, dY are [B*OH*OW, O] (the [B, O, OH, OW]
//      tensors permuted). Given a compute backend (a GPU verifier's own
//      device), the products' rounds run there (tensor/product_checker.hpp:
//      operands uploaded, same verdict rule); the conv's expansion and
//      permutes stay on the host: they are exact copies, and the backend's
//      im2col lays a batch out per sample ([B][C*k*k][OH*OW]), not as the
//      one [C*k*k, B*OH*OW] matrix the checked product is;
//   6. given the whole commitment, and only where the next committed layer
//      follows through exact layers only (relu, maxpool2d, flatten: no
//      rounding): those layers run on Y here, and the result must hash, with
//      the sample indices, to the next layer's committed input digest: the
//      next layer's input is this layer's activated output, bit for bit.
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
#include "tensor/product_checker.hpp"

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
  next_input,  // 6.: the next layer's committed input is not this output, activated
  count_
};
std::string_view to_string(check_outcome c);

class transcript_checker {
 public:
  // layers: the verifier's own model's committed layers; data: the training
  // set every peer holds.
  // augment: how provers augment their batches; a data-fed layer's X is
  // rebuilt from the data set and augmented the same way.
  // be: where the products are checked (step 5); null = the host. It must
  // outlive the checker and be used by no other thread meanwhile.
  transcript_checker(std::vector<committed_layer> layers, std::shared_ptr<const Dataset> data, int rounds,
                     augment_settings augment = {}, compute_backend* be = nullptr);
  ~transcript_checker();
  // shard_sorted: the prover's sample indices, sorted.
  // Checks 1-5 of layer r.layer against that layer's digests c.
  check_outcome check(const layer_commit& c, const tensor_reply& r, std::span<const int64_t> shard_sorted, Rng& rng);
  // Checks 1-6 against the step's whole commitment.
  check_outcome check(const transcript_commit& c, const tensor_reply& r, std::span<const int64_t> shard_sorted,
                      Rng& rng);
  // Multiply-adds the prover did for the checked layer (what a pass credits):
  // a conv's product has batch x OH x OW rows.
  static double work_of(const tensor_reply& r) {
    const double rows = r.out_row ? static_cast<double>(r.batch) * (r.out_row / r.out) : r.batch;
    return 2.0 * rows * r.in * r.out;
  }

 private:
  std::vector<committed_layer> layers_;
  std::shared_ptr<const Dataset> data_;
  int rounds_;
  product_checker fv_;
  std::vector<float> x_;
  augment_settings augment_;
  std::vector<float> augment_scratch_;
  digest_builder hash_;
  // Conv products: the expanded input, and Y, dY permuted to [B*OH*OW, O] / [O, B*OH*OW].
  std::vector<float> cols_, yt_, dym_;
  // Check 6: each committed layer's link layers, and Y as a batch tensor.
  std::vector<std::vector<std::unique_ptr<Layer>>> links_;
  Tensor link_in_;
  check_outcome check_products(const committed_layer& sp, const tensor_reply& r, const float* x, Rng& rng);
  check_outcome check_link(const committed_layer& sp, const layer_commit& next, const tensor_reply& r);
};

}  // namespace murmur
