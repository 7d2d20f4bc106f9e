#include "run/stage_placement.hpp"

#include <algorithm>
#include <utility>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "run/config_schema.hpp"
#include "run/link_model.hpp"
#include "run/offload_setup.hpp"
#include "tensor/rng.hpp"

namespace murmur {

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// Layer prefix sums, so that a stage's compute is one subtraction.
struct layer_sums {
  std::vector<double> seconds;  // seconds[i] = layers [0, i)
  explicit layer_sums(const std::vector<layer_cost>& l) : seconds(l.size() + 1, 0.0) {
    for (size_t i = 0; i < l.size(); ++i) seconds[i + 1] = seconds[i] + l[i].seconds;
  }
};

double transfer_s(const placement_problem& p, uint32_t from, uint32_t to, double bytes) {
  const double r = p.bytes_per_s[from][to];
  return r > 0 ? bytes / r : 0.0;
}

// The cost of stage s as layers [i, j) on machine m, its neighbours on
// prev / next (ignored at the ends): compute and the two sends it makes.
struct stage_cost {
  double f = 0, b = 0, send_act = 0, send_grad = 0;
};

stage_cost cost_of(const placement_problem& p, const layer_sums& sums, size_t i, size_t j, uint32_t m, bool first,
                   bool last, uint32_t prev, uint32_t next) {
  stage_cost k;
  const double comp = (sums.seconds[j] - sums.seconds[i]) * p.samples * p.slowdown[m];
  k.f = comp / 3;
  k.b = comp - k.f;
  if (!last) k.send_act = transfer_s(p, m, next, static_cast<double>(p.layers[j - 1].out_bytes) * p.samples);
  if (!first) k.send_grad = transfer_s(p, m, prev, static_cast<double>(p.layers[i - 1].out_bytes) * p.samples);
  return k;
}

// The closed form's steady-state period per micro-batch (the header).
double bottleneck(const placement_problem& p, const std::vector<stage_cost>& k, const std::vector<double>& lat_fwd,
                  const std::vector<double>& lat_bwd) {
  const size_t S = k.size();
  double t_1f1b = 0, t_f = 0, t_b = 0, loop = 0;
  for (size_t s = S; s-- > 0;) {
    loop += k[s].f + k[s].b + k[s].send_act + k[s].send_grad + lat_fwd[s] + lat_bwd[s];
    t_1f1b = std::max({t_1f1b, k[s].f + k[s].b, k[s].send_act + k[s].send_grad,
                       loop / static_cast<double>(std::min<size_t>(S - s, p.microbatches))});
    t_f = std::max({t_f, k[s].f, k[s].send_act});
    t_b = std::max({t_b, k[s].b, k[s].send_grad});
  }
  return p.schedule == pipeline_schedule_kind::gpipe ? t_f + t_b : t_1f1b;
}

stage_placement predict(const placement_problem& p, const layer_sums& sums, const std::vector<stage_range>& r,
                        const std::vector<uint32_t>& m) {
  const size_t S = r.size();
  const uint32_t M = p.microbatches;
  std::vector<stage_cost> k(S);
  std::vector<double> lat_fwd(S, 0.0), lat_bwd(S, 0.0);  // from stage s to s + 1 and back
  std::vector<double> down_act(S, 0.0), down_grad(S, 0.0);  // receiving at stage s, seconds per frame
  for (size_t s = 0; s < S; ++s) {
    const bool first = s == 0, last = s + 1 == S;
    k[s] = cost_of(p, sums, r[s].begin, r[s].end, m[s], first, last, first ? 0 : m[s - 1], last ? 0 : m[s + 1]);
    if (!last) {
      lat_fwd[s] = p.latency_s[m[s]][m[s + 1]];
      lat_bwd[s] = p.latency_s[m[s + 1]][m[s]];
    }
    const double down = p.down_bytes_per_s.empty() ? 0.0 : p.down_bytes_per_s[m[s]];
    if (down > 0) {
      if (!first) down_act[s] = static_cast<double>(p.layers[r[s].begin - 1].out_bytes) * p.samples / down;
      if (!last) down_grad[s] = static_cast<double>(p.layers[r[s].end - 1].out_bytes) * p.samples / down;
    }
  }

  // The replay: each stage takes its next op once its input has arrived.
  constexpr double unknown = -1;
  std::vector<std::vector<pipeline_op>> ops(S);
  for (size_t s = 0; s < S; ++s)
    ops[s] = stage_schedule(p.schedule, static_cast<uint32_t>(S), static_cast<uint32_t>(s), M);
  std::vector<std::vector<double>> act(S, std::vector<double>(M, unknown)), grad = act;  // arrival at stage s
  std::fill(act[0].begin(), act[0].end(), 0.0);
  std::vector<double> busy(S, 0.0), up(S, 0.0), down_a(S, 0.0), down_g(S, 0.0), f_done(M, unknown);
  std::vector<size_t> next(S, 0);
  auto deliver = [&](double depart, double send_s, double lat, double down_s, double& down_free) {
    const double up_done = depart + send_s;
    double arrive = up_done + lat;
    if (down_s > 0) {
      down_free = std::max(depart + lat, down_free) + down_s;
      arrive = std::max(arrive, down_free);
    }
    return std::pair{up_done, arrive};
  };
  for (size_t left = S * 2 * M; left > 0;) {
    bool moved = false;
    for (size_t s = 0; s < S; ++s)
      for (; next[s] < ops[s].size(); ++next[s], --left, moved = true) {
        const pipeline_op op = ops[s][next[s]];
        const size_t mb = op.microbatch;
        const double ready = !op.backward ? act[s][mb] : (s + 1 == S ? f_done[mb] : grad[s][mb]);
        if (ready == unknown) break;
        const double end = std::max(busy[s], ready) + (op.backward ? k[s].b : k[s].f);
        busy[s] = end;
        if (!op.backward && s + 1 == S) f_done[mb] = end;
        if (!op.backward && s + 1 < S) {
          auto [u, a] = deliver(std::max(end, up[s]), k[s].send_act, lat_fwd[s], down_act[s + 1], down_a[s + 1]);
          up[s] = u;
          act[s + 1][mb] = a;
        }
        if (op.backward && s > 0) {
          auto [u, a] = deliver(std::max(end, up[s]), k[s].send_grad, lat_bwd[s - 1], down_grad[s - 1], down_g[s - 1]);
          up[s] = u;
          grad[s - 1][mb] = a;
        }
      }
    if (!moved) throw std::logic_error("stage placement: the schedule replay is stuck");
  }

  stage_placement out;
  out.ranges = r;
  out.machine = m;
  out.bottleneck_s = bottleneck(p, k, lat_fwd, lat_bwd);
  out.predicted_s = *std::max_element(busy.begin(), busy.end());
  return out;
}

void check_problem(const placement_problem& p) {
  const size_t n = p.slowdown.size();
  if (p.layers.empty()) throw std::invalid_argument("stage placement: the model has no layers");
  if (!(p.samples > 0) || p.microbatches < 1)
    throw std::invalid_argument("stage placement: needs samples > 0 per micro-batch and >= 1 micro-batch");
  if (p.bytes_per_s.size() != n || p.latency_s.size() != n)
    throw std::invalid_argument("stage placement: link tables do not match the " + std::to_string(n) + " machines");
  if (!p.down_bytes_per_s.empty() && p.down_bytes_per_s.size() != n)
    throw std::invalid_argument("stage placement: downlink table does not match the " + std::to_string(n) + " machines");
  for (size_t i = 0; i < n; ++i) {
    if (!(p.slowdown[i] > 0) || !std::isfinite(p.slowdown[i]))
      throw std::invalid_argument("stage placement: machine " + std::to_string(i) + " has slowdown " +
                                  std::to_string(p.slowdown[i]) + " (needs a finite number > 0)");
    if (p.bytes_per_s[i].size() != n || p.latency_s[i].size() != n)
      throw std::invalid_argument("stage placement: link tables do not match the " + std::to_string(n) + " machines");
  }
  for (size_t i = 0; i < p.layers.size(); ++i)
    if (!(p.layers[i].seconds >= 0) || !std::isfinite(p.layers[i].seconds) || p.layers[i].out_bytes < 0)
      throw std::invalid_argument("stage placement: layer " + std::to_string(i) + " has a negative or non-finite cost");
}

void check_layout(const placement_problem& p, const std::vector<stage_range>& r, const std::vector<uint32_t>& m) {
  if (r.empty() || r.size() != m.size())
    throw std::invalid_argument("stage placement: " + std::to_string(r.size()) + " ranges for " +
                                std::to_string(m.size()) + " machines");
  size_t at = 0;
  for (size_t s = 0; s < r.size(); ++s) {
    if (r[s].begin != at || r[s].end <= r[s].begin)
      throw std::invalid_argument("stage placement: stage " + std::to_string(s) + " is not the next non-empty range");
    at = r[s].end;
    if (m[s] >= p.slowdown.size())
      throw std::invalid_argument("stage placement: machine " + std::to_string(m[s]) + " of stage " +
                                  std::to_string(s) + " does not exist");
  }
  if (at != p.layers.size()) throw std::invalid_argument("stage placement: the ranges do not cover every layer");
}

// Strictly better by more than rounding: ties keep the earlier candidate.
bool better(double a, double b) { return a < b * (1 - 1e-12); }

// Calls f(ranges) for every contiguous split of n layers into S stages,
// earliest cuts first.
template <class F>
void for_each_cut(size_t n, size_t S, F&& f) {
  std::vector<stage_range> r(S);
  auto rec = [&](auto&& self, size_t s, size_t begin) -> void {
    if (s + 1 == S) {
      r[s] = {begin, n};
      f(r);
      return;
    }
    for (size_t end = begin + 1; end + (S - 1 - s) <= n; ++end) {
      r[s] = {begin, end};
      self(self, s + 1, end);
    }
  };
  rec(rec, 0, 0);
}

double choose(size_t n, size_t k) {
  double c = 1;
  for (size_t i = 1; i <= k; ++i) c = c * static_cast<double>(n - k + i) / static_cast<double>(i);
  return c;
}

// For a fixed assignment: the cut minimising the largest stage period (the
// larger of its compute and its uplink's sends), ties to the smallest sum,
// then the earliest cuts.
std::vector<stage_range> cut_for(const placement_problem& p, const layer_sums& sums, const std::vector<uint32_t>& m) {
  const size_t n = p.layers.size(), S = m.size();
  auto t = [&](size_t s, size_t i, size_t j) {
    const bool first = s == 0, last = s + 1 == S;
    const auto k = cost_of(p, sums, i, j, m[s], first, last, first ? 0 : m[s - 1], last ? 0 : m[s + 1]);
    return std::max(k.f + k.b, k.send_act + k.send_grad);
  };
  // best[s][i]: the smallest bottleneck of stages s.. over layers [i, n);
  // sum[s][i]: the smallest sum among those.
  std::vector<std::vector<double>> best(S + 1, std::vector<double>(n + 1, inf)), sum = best;
  best[S][n] = 0;
  sum[S][n] = 0;
  for (size_t s = S; s-- > 0;)
    for (size_t i = s; i + (S - s) <= n; ++i)
      for (size_t j = i + 1; j + (S - s - 1) <= n; ++j) {
        const double c = t(s, i, j), b = std::max(c, best[s + 1][j]), u = c + sum[s + 1][j];
        if (better(b, best[s][i]) || (!better(best[s][i], b) && better(u, sum[s][i]))) {
          best[s][i] = b;
          sum[s][i] = u;
        }
      }
  std::vector<stage_range> r;
  size_t i = 0;
  for (size_t s = 0; s < S; ++s) {
    size_t j = i + 1;
    for (;; ++j) {
      const double c = t(s, i, j);
      if (!better(best[s][i], std::max(c, best[s + 1][j])) && !better(sum[s][i], c + sum[s + 1][j])) break;
    }
    r.push_back({i, j});
    i = j;
  }
  return r;
}

// Exhaustive within the budget, else the heuristic (the header).
stage_placement search(const placement_problem& p, const layer_sums& sums, const std::vector<uint32_t>& machines,
                       const std::vector<stage_range>& fixed, double budget) {
  const size_t n = p.layers.size(), S = machines.size();

  double perms = 1;
  for (size_t k = 2; k <= S; ++k) perms *= static_cast<double>(k);
  const double cuts = fixed.empty() ? choose(n - 1, S - 1) : 1;

  stage_placement best;
  best.predicted_s = inf;
  auto consider = [&](const std::vector<stage_range>& r, const std::vector<uint32_t>& m) {
    auto c = predict(p, sums, r, m);
    if (better(c.predicted_s, best.predicted_s)) best = std::move(c);
  };

  if (cuts * perms * static_cast<double>(S) * 2 * p.microbatches <= budget) {
    // Assignments in the order of the given machines' permutations, the
    // given order (index placement) first.
    std::vector<size_t> order(S);
    std::iota(order.begin(), order.end(), 0);
    std::vector<uint32_t> m(S);
    do {
      for (size_t s = 0; s < S; ++s) m[s] = machines[order[s]];
      if (!fixed.empty()) consider(fixed, m);
      else for_each_cut(n, S, [&](const std::vector<stage_range>& r) { consider(r, m); });
    } while (std::next_permutation(order.begin(), order.end()));
    best.exact = true;
    return best;
  }

  // The heuristic: local search over assignments, each with its best cut.
  auto layout_of = [&](const std::vector<uint32_t>& m) {
    return predict(p, sums, fixed.empty() ? cut_for(p, sums, m) : fixed, m);
  };
  std::vector<std::vector<uint32_t>> starts{machines};
  auto by_speed = machines;
  std::stable_sort(by_speed.begin(), by_speed.end(),
                   [&](uint32_t a, uint32_t b) { return p.slowdown[a] < p.slowdown[b]; });
  starts.push_back(by_speed);
  std::reverse(by_speed.begin(), by_speed.end());
  starts.push_back(by_speed);
  for (const auto& start : starts) {
    auto cur = layout_of(start);
    for (bool improved = true; improved;) {
      improved = false;
      stage_placement step = cur;
      for (size_t a = 0; a < S; ++a)
        for (size_t b = a + 1; b < S; ++b) {
          auto m = cur.machine;
          std::swap(m[a], m[b]);
          auto c = layout_of(m);
          if (better(c.predicted_s, step.predicted_s)) step = std::move(c);
        }
      if (better(step.predicted_s, cur.predicted_s)) {
        cur = std::move(step);
        improved = true;
      }
    }
    if (better(cur.predicted_s, best.predicted_s)) best = std::move(cur);
  }
  best.exact = false;
  return best;
}

}  // namespace

stage_placement predict_placement(const placement_problem& p, const std::vector<stage_range>& ranges,
                                  const std::vector<uint32_t>& machine) {
  check_problem(p);
  check_layout(p, ranges, machine);
  return predict(p, layer_sums(p.layers), ranges, machine);
}

stage_placement place_stages(const placement_problem& p, const std::vector<uint32_t>& machines,
                             const std::vector<stage_range>& fixed, const std::vector<stage_range>& preferred,
                             double budget) {
  check_problem(p);
  const size_t n = p.layers.size(), S = machines.size();
  if (S < 1) throw std::invalid_argument("stage placement: no machines");
  if (S > n)
    throw std::invalid_argument("stage placement: " + std::to_string(S) + " stages for " + std::to_string(n) +
                                " layers: every stage needs at least one layer");
  for (uint32_t m : machines)
    if (m >= p.slowdown.size()) throw std::invalid_argument("stage placement: machine " + std::to_string(m) + " does not exist");
  if (!fixed.empty()) check_layout(p, fixed, machines);
  if (!preferred.empty()) check_layout(p, preferred, machines);
  const layer_sums sums(p.layers);
  auto best = search(p, sums, machines, fixed, budget);
  if (!preferred.empty()) {
    auto today = predict(p, sums, preferred, machines);
    if (!(best.predicted_s < today.predicted_s / (1 + balance_tolerance))) {
      today.exact = best.exact;
      return today;
    }
  }
  return best;
}


std::vector<double> machine_slowdowns(const RunConfig& c, uint32_t machines, double step_s) {
  const auto slow = peer_index_list("sim.slow_peers", c.slow_peers, machines);
  Rng speed = Rng(c.seed).fork(3);
  std::vector<double> out;
  for (uint32_t i = 0; i < machines; ++i) {
    double f = step_s * (1.0 + c.speed_spread * speed.uniform());
    if (std::binary_search(slow.begin(), slow.end(), i)) f *= c.slow_factor;
    out.push_back(f);
  }
  return out;
}

placement_problem placement_problem_of(const RunConfig& c, std::vector<layer_cost> layers, uint32_t machines) {
  placement_problem p;
  p.layers = std::move(layers);
  p.samples = static_cast<double>(c.batch) / static_cast<double>(std::max<int64_t>(1, c.microbatches));
  p.microbatches = static_cast<uint32_t>(std::max<int64_t>(1, c.microbatches));
  p.schedule = parse_pipeline_schedule(c.schedule);
  p.slowdown = machine_slowdowns(c, machines);
  const link_model links = link_model::from_config(c, machines);
  p.bytes_per_s.assign(machines, std::vector<double>(machines, 0.0));
  p.latency_s = p.bytes_per_s;
  for (uint32_t j = 0; j < machines; ++j) p.down_bytes_per_s.push_back(links.peers()[j].down_bps / 8);
  for (uint32_t i = 0; i < machines; ++i)
    for (uint32_t j = 0; j < machines; ++j)
      if (i != j) {
        p.bytes_per_s[i][j] = links.send_rate_bps(i, j) / 8;
        p.latency_s[i][j] = links.latency_s(i, j);
      }
  return p;
}

bool placement_is_auto(const RunConfig& c) { return c.placement == "auto"; }

}  // namespace murmur
