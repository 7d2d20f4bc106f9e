#include "tensor/stage_split.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace murmur {

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

std::vector<stage_range> parse_stage_split(const std::string& cuts, size_t layers, size_t stages) {
  if (stages < 1) throw std::invalid_argument("0 stages: need at least 1");
  if (stages > layers)
    throw std::invalid_argument(std::to_string(stages) + " stages for " + std::to_string(layers) +
                                " layers: every stage needs at least one layer");
  std::vector<size_t> at;
  const std::string list = trim(cuts);
  if (!list.empty()) {
    size_t start = 0;
    for (size_t n = 1;; ++n) {
      const size_t comma = list.find(',', start);
      const std::string item =
          trim(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (item.empty()) throw std::invalid_argument("cut " + std::to_string(n) + " is empty");
      int64_t v = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
      if (ec != std::errc() || p != item.data() + item.size())
        throw std::invalid_argument("cut " + quoted(item) + " is not a layer index (an integer)");
      if (v < 1 || static_cast<uint64_t>(v) >= layers)
        throw std::invalid_argument("cut " + quoted(item) + " is outside [1, " + std::to_string(layers) +
                                    ") (the model has " + std::to_string(layers) + " layers)");
      if (!at.empty() && static_cast<size_t>(v) <= at.back())
        throw std::invalid_argument("cut " + quoted(item) + " does not come after " +
                                    std::to_string(at.back()) + " (cuts must be strictly increasing)");
      at.push_back(static_cast<size_t>(v));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (at.size() != stages - 1)
    throw std::invalid_argument(std::to_string(at.size()) + " cuts " + quoted(list) + " for " +
                                std::to_string(stages) + " stages: need exactly " +
                                std::to_string(stages - 1));
  std::vector<stage_range> ranges;
  size_t begin = 0;
  for (size_t c : at) {
    ranges.push_back({begin, c});
    begin = c;
  }
  ranges.push_back({begin, layers});
  return ranges;
}

std::vector<layer_cost> modelled_layer_costs(const Sequential& model, double gflops) {
  if (!(gflops > 0) || !std::isfinite(gflops))
    throw std::invalid_argument("modelled_layer_costs: gflops must be a positive finite number, got " +
                                std::to_string(gflops));
  const double flops_per_second = gflops * 1e9;
  std::vector<layer_cost> costs(model.layer_count());
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const int64_t macs = model.layer(i).forward_flops(model.layer_input_shape(i));
    const int64_t out = shape_numel(model.layer_input_shape(i + 1));
    // Backward is about two forwards (dx and dW products), hence 3; a
    // multiply-add is 2 FLOPs. Element-wise layers are memory bound and
    // cheap next to either, one FLOP per output is just enough to keep a
    // chain of them from looking free.
    costs[i].seconds = macs > 0 ? 3.0 * 2.0 * static_cast<double>(macs) / flops_per_second
                                : static_cast<double>(out) / flops_per_second;
    costs[i].out_bytes = 4 * out;
  }
  return costs;
}

std::vector<layer_cost> measured_layer_costs(Sequential& model, int64_t batch, int reps) {
  if (batch < 1)
    throw std::invalid_argument("measured_layer_costs: batch must be >= 1, got " + std::to_string(batch));
  if (reps < 1)
    throw std::invalid_argument("measured_layer_costs: reps must be >= 1, got " + std::to_string(reps));
  const size_t n = model.layer_count();
  std::vector<layer_cost> costs(n);
  if (n == 0) return costs;

  // Timing runs backward, which overwrites the gradients; the caller's are
  // put back afterwards (the parameters are only read).
  const std::vector<float> saved_grads(model.grads(), model.grads() + model.param_count());
  // Every layer produces dL/dx while timed: inside a pipeline stage any layer
  // may be the first, whose input gradient goes to the previous stage.
  std::vector<char> saved_need(n);
  for (size_t i = 0; i < n; ++i) {
    saved_need[i] = model.layer(i).need_input_grad();
    model.layer(i).set_need_input_grad(true);
  }

  Rng rng(0x5eed);
  Shape in = model.input_shape();
  in.insert(in.begin(), batch);
  Tensor x(in);
  for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
  Shape out = model.output_shape();
  out.insert(out.begin(), batch);
  Tensor dy(out);
  for (auto& v : dy) v = static_cast<float>(rng.uniform(-1, 1));

  std::vector<std::vector<double>> seconds(n, std::vector<double>(static_cast<size_t>(reps)));
  using clock = std::chrono::steady_clock;
  model.plan_layouts(batch);  // the layouts a forward at this batch would use
  // Rep -1 warms up: it sizes every layer's buffers, so timed reps never allocate.
  for (int rep = -1; rep < reps; ++rep) {
    const Tensor* a = &x;
    for (size_t i = 0; i < n; ++i) {
      auto t0 = clock::now();
      a = &model.layer(i).forward(*a);
      if (rep >= 0) seconds[i][static_cast<size_t>(rep)] = std::chrono::duration<double>(clock::now() - t0).count();
    }
    const Tensor* g = &dy;
    for (size_t i = n; i-- > 0;) {
      auto t0 = clock::now();
      g = &model.layer(i).backward(*g);
      if (rep >= 0) seconds[i][static_cast<size_t>(rep)] += std::chrono::duration<double>(clock::now() - t0).count();
    }
  }

  // The layers now point at x and dy, which die here: like after any
  // forward, the model needs a fresh forward before its next backward.
  for (size_t i = 0; i < n; ++i) model.layer(i).set_need_input_grad(saved_need[i] != 0);
  std::copy(saved_grads.begin(), saved_grads.end(), model.grads());

  for (size_t i = 0; i < n; ++i) {
    auto& s = seconds[i];
    const size_t mid = s.size() / 2;
    std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(mid), s.end());
    double median = s[mid];
    if (s.size() % 2 == 0)
      median = (median + *std::max_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(mid))) / 2;
    costs[i].seconds = median / static_cast<double>(batch);
    costs[i].out_bytes = 4 * shape_numel(model.layer_input_shape(i + 1));
  }
  return costs;
}

std::vector<stage_range> balance_stages(const std::vector<layer_cost>& costs, size_t stages,
                                        double bytes_per_second) {
  const size_t n = costs.size();
  if (stages < 1) throw std::invalid_argument("balance_stages: 0 stages, need at least 1");
  if (stages > n)
    throw std::invalid_argument("balance_stages: " + std::to_string(stages) + " stages for " +
                                std::to_string(n) + " layers: every stage needs at least one layer");
  if (!(bytes_per_second > 0))
    throw std::invalid_argument("balance_stages: bytes_per_second must be > 0, got " +
                                std::to_string(bytes_per_second));
  for (size_t i = 0; i < n; ++i)
    if (!(costs[i].seconds >= 0) || !std::isfinite(costs[i].seconds) || costs[i].out_bytes < 0)
      throw std::invalid_argument("balance_stages: layer " + std::to_string(i) +
                                  " has a negative or non-finite cost");

  // cost[i][j]: stage of layers [i, j). Every comparison below reads this one
  // table, so equal costs compare equal (sums in another order could differ
  // in the last bit and break ties arbitrarily).
  const auto at = [n](size_t i, size_t j) { return i * (n + 1) + j; };
  std::vector<double> cost((n + 1) * (n + 1), 0.0);
  for (size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (size_t j = i + 1; j <= n; ++j) {
      sum += costs[j - 1].seconds;
      const double send =
          j < n ? static_cast<double>(costs[j - 1].out_bytes) / bytes_per_second : 0.0;
      cost[at(i, j)] = sum + send;
    }
  }

  // best[k][i]: the smallest possible slowest stage when layers [i, n) form
  // k stages (infinite where k stages cannot fit).
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(stages + 1, std::vector<double>(n + 1, inf));
  best[0][n] = 0;
  for (size_t k = 1; k <= stages; ++k)
    for (size_t i = 0; i + k <= n; ++i)
      for (size_t j = i + 1; j + (k - 1) <= n; ++j)
        best[k][i] = std::min(best[k][i], std::max(cost[at(i, j)], best[k - 1][j]));

  // Among the splits whose slowest stage is optimal, the one that sends the
  // least (the smallest sum of stage costs: compute is the same in all, so
  // this is the bytes on the wire); a cut that only moves a layer without
  // work (flatten, ReLU) to its own stage saves nothing and costs a send.
  // tot[k][i]: that smallest sum for layers [i, n) in k stages.
  // Slowest stages within 1% of the optimum count as equally good: moving a
  // flatten (a few nanoseconds) across a cut must not decide it.
  const double optimum = best[stages][0] * (1 + balance_tolerance);
  std::vector<std::vector<double>> tot(stages + 1, std::vector<double>(n + 1, inf));
  tot[0][n] = 0;
  for (size_t k = 1; k <= stages; ++k)
    for (size_t i = 0; i + k <= n; ++i)
      for (size_t j = i + 1; j + (k - 1) <= n; ++j)
        if (cost[at(i, j)] <= optimum) tot[k][i] = std::min(tot[k][i], cost[at(i, j)] + tot[k - 1][j]);

  // Walking forwards, each stage ends at the first layer that still leaves
  // such a finish: the earliest cuts among the equally good splits.
  std::vector<stage_range> ranges;
  size_t i = 0;
  for (size_t k = stages; k >= 1; --k) {
    size_t j = i + 1;
    while (!(cost[at(i, j)] <= optimum && cost[at(i, j)] + tot[k - 1][j] == tot[k][i])) ++j;
    ranges.push_back({i, j});
    i = j;
  }
  return ranges;
}

std::unique_ptr<Sequential> build_stage(const std::string& spec, const Shape& input_shape, int64_t num_classes,
                                        uint64_t seed, stage_range r) {
  // The stage's parameters are a slice of the whole model's, so the whole
  // model is built and initialised (init draws every layer from one stream,
  // in order); its layers cannot be moved out, so the stage's own come from a
  // second parse of the same spec.
  auto whole = build_model(spec, input_shape, num_classes);
  const size_t n = whole->layer_count();
  if (r.begin >= r.end || r.end > n)
    throw std::invalid_argument("build_stage: layers [" + std::to_string(r.begin) + ", " +
                                std::to_string(r.end) + ") are not a non-empty range of the " +
                                std::to_string(n) + " layers of '" + spec + "'");
  whole->init(seed);

  auto all = build_layers(spec, input_shape, num_classes);
  std::vector<std::unique_ptr<Layer>> mine;
  for (size_t i = r.begin; i < r.end; ++i) mine.push_back(std::move(all[i]));
  auto stage = std::make_unique<Sequential>(std::move(mine), whole->layer_input_shape(r.begin));

  const float* from = whole->params() + whole->layer_param_offset(r.begin);
  std::copy(from, from + stage->param_count(), stage->params());
  return stage;
}

std::unique_ptr<Sequential> build_stage_layers(const std::string& spec, const Shape& input_shape, int64_t num_classes,
                                               stage_range r) {
  auto all = build_layers(spec, input_shape, num_classes);
  if (r.begin >= r.end || r.end > all.size())
    throw std::invalid_argument("build_stage_layers: layers [" + std::to_string(r.begin) + ", " +
                                std::to_string(r.end) + ") are not a non-empty range of the " +
                                std::to_string(all.size()) + " layers of '" + spec + "'");
  Shape in = input_shape;
  for (size_t i = 0; i < r.begin; ++i) in = all[i]->output_shape(in);
  std::vector<std::unique_ptr<Layer>> mine;
  for (size_t i = r.begin; i < r.end; ++i) mine.push_back(std::move(all[i]));
  return std::make_unique<Sequential>(std::move(mine), in);
}

}  // namespace murmur
