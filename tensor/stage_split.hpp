// Stage split: a Sequential model cut into S consecutive layer ranges, each
// built as its own Sequential (a pipeline stage), with parameters equal to
// the matching slice of the one-piece model initialised from the same seed.
// The cut is given (config) or chosen to minimise the slowest stage, where a
// stage costs its layers' compute plus sending its output activation.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/sequential.hpp"

namespace murmur {

inline constexpr double balance_tolerance = 0.01;

struct stage_range {
  size_t begin = 0, end = 0;  // layers [begin, end)
  bool operator==(const stage_range&) const = default;
};

// Per-layer cost of one sample: compute seconds (forward + backward) and the
// bytes of the layer's output activation (what a cut after it sends).
struct layer_cost {
  double seconds = 0;
  int64_t out_bytes = 0;
};

// "4,7" cuts before layers 4 and 7: {0,4},{4,7},{7,layers}. Cuts must be
// strictly increasing, in [1, layers), and number stages-1. Throws
// std::invalid_argument naming the item and what is allowed.
std::vector<stage_range> parse_stage_split(const std::string& cuts, size_t layers, size_t stages);

// Costs from a model of the machine: 3 forwards (forward + backward), 2 FLOPs
// per multiply-add, at `gflops`; layers without multiply-adds (ReLU, pooling)
// cost one FLOP per output element. Deterministic (the simulation uses it).
std::vector<layer_cost> modelled_layer_costs(const Sequential& model, double gflops);
// Costs measured on this machine: median wall time of forward + backward of
// each layer over `reps` repetitions on a batch of `batch` random samples.
std::vector<layer_cost> measured_layer_costs(Sequential& model, int64_t batch, int reps = 5);

// The contiguous split into `stages` ranges (each non-empty) minimising the
// largest stage cost = sum of its layers' seconds + its last layer's
// out_bytes / bytes_per_second (the last stage sends nothing; within
// balance_tolerance); among those,
// the one with the smallest sum of stage costs (the fewest bytes sent: a
// layer without work never gets a stage of its own for nothing); remaining
// ties go to the earliest cut. Throws std::invalid_argument if stages is 0 or exceeds
// the layer count.
std::vector<stage_range> balance_stages(const std::vector<layer_cost>& costs, size_t stages,
                                        double bytes_per_second);

// Layers [r.begin, r.end) of build_model(spec, input_shape, num_classes),
// with the parameters the whole model gets from init(seed). The stage's
// input shape is the per-sample output of layer r.begin - 1. num_classes is
// checked against the whole model's output, as build_model does.
std::unique_ptr<Sequential> build_stage(const std::string& spec, const Shape& input_shape, int64_t num_classes,
                                        uint64_t seed, stage_range r);

// The same layers with zero parameters, without building and initialising
// the whole model: a copy to point at another model's parameters
// (Sequential::share_parameters) or to copy them into.
std::unique_ptr<Sequential> build_stage_layers(const std::string& spec, const Shape& input_shape, int64_t num_classes,
                                               stage_range r);

}  // namespace murmur
