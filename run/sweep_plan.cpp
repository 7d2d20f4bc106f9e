#include "run/sweep_plan.hpp"

#include <set>
#include <stdexcept>

#include "run/config_schema.hpp"
#include "run/key_usage.hpp"

namespace murmur {

namespace {

bool is_attack_key(const std::string& k) { return k.rfind("attack.", 0) == 0; }

// A count in a --part: digits only (no sign, no spaces).
std::optional<size_t> count_of(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  size_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

}  // namespace

swept_key parse_swept_key(const std::string& param) {
  auto eq = param.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == param.size())
    throw std::invalid_argument("--param needs KEY=V1,V2,... (got '" + param + "')");
  swept_key s{param.substr(0, eq), {}};
  for (size_t p = eq + 1;;) {
    size_t q = param.find(',', p);
    s.values.push_back(param.substr(p, q == std::string::npos ? std::string::npos : q - p));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return s;
}

sweep_part parse_sweep_part(const std::string& text) {
  const auto slash = text.find('/');
  const auto k = count_of(text.substr(0, slash));
  const auto m = slash == std::string::npos ? std::nullopt : count_of(text.substr(slash + 1));
  if (!k || !m || *m < 1 || *k >= *m)
    throw std::invalid_argument("--part needs K/M, this process's part K of M parts, 0 <= K < M (got '" + text +
                                "')");
  return {*k, *m};
}

sweep_plan make_sweep_plan(const std::string& config, const std::vector<swept_key>& params,
                           const std::vector<std::string>& overrides, sweep_part part) {
  sweep_plan p;
  for (const auto& s : params) {
    // Two equal values would be two runs writing one run directory (at once, with --jobs).
    std::set<std::string> seen;
    for (const auto& v : s.values)
      if (!seen.insert(v).second)
        throw std::invalid_argument("--param " + s.key + " lists '" + v + "' twice (one run directory per value)");
    p.keys.push_back(s.key);
  }
  // The Cartesian product, in table order.
  p.values = {{}};
  for (const auto& s : params) {
    std::vector<std::vector<std::string>> next;
    for (const auto& c : p.values)
      for (const auto& v : s.values) {
        next.push_back(c);
        next.back().push_back(v);
      }
    p.values = std::move(next);
  }
  std::set<std::string> warned;
  for (const auto& c : p.values) {
    auto ov = overrides;
    std::string name;
    for (size_t k = 0; k < p.keys.size(); ++k) {
      ov.push_back(p.keys[k] + "=" + c[k]);
      name += (k ? "," : "") + p.keys[k] + "=" + c[k];
    }
    p.runs.push_back(load_config(config, ov));
    const std::string unused = check_key_usage(p.runs.back(), run_host::sim, config + " and --param/--set");
    if (!unused.empty() && warned.insert(unused).second) p.warnings.push_back(unused);
    p.names.push_back(name);
  }
  const size_t n = p.runs.size();
  for (size_t i = 0; i < n; ++i)
    if (p.runs[i].attack_kind == "none") p.order.push_back(i);
  for (size_t i = 0; i < n; ++i)
    if (p.runs[i].attack_kind != "none") p.order.push_back(i);
  // The first clean configuration that differs only in attack keys; clean
  // runs go first in table order, so it has run by then.
  p.same_as.resize(n);
  for (size_t i = 0; i < n; ++i) {
    p.same_as[i] = i;
    if (p.runs[i].attack_kind != "none") continue;
    for (size_t j = 0; j < i; ++j)
      if (p.runs[j].attack_kind == "none" && same_but_attack_keys(p.keys, p.values, i, j)) {
        p.same_as[i] = j;
        break;
      }
  }
  p.mine.assign(n, false);
  size_t rank = 0;
  for (size_t i : p.order)
    if (p.same_as[i] == i) p.mine[i] = rank++ % part.m == part.k;
  for (size_t i = 0; i < n; ++i) p.mine[i] = p.mine[p.same_as[i]];
  return p;
}

bool same_but_attack_keys(const std::vector<std::string>& keys, const std::vector<std::vector<std::string>>& values,
                          size_t i, size_t j) {
  for (size_t k = 0; k < keys.size(); ++k)
    if (!is_attack_key(keys[k]) && values[i][k] != values[j][k]) return false;
  return true;
}

std::optional<size_t> clean_run_of(const std::vector<std::string>& keys,
                                   const std::vector<std::vector<std::string>>& values, size_t i) {
  size_t kind = keys.size();
  for (size_t k = 0; k < keys.size(); ++k)
    if (keys[k] == "attack.kind") kind = k;
  if (kind == keys.size() || values[i][kind] == "none") return std::nullopt;
  for (size_t j = 0; j < values.size(); ++j) {
    if (values[j][kind] != "none") continue;
    bool same = true;
    for (size_t k = 0; k < keys.size() && same; ++k) same = is_attack_key(keys[k]) || values[j][k] == values[i][k];
    if (same) return j;
  }
  return std::nullopt;
}

}  // namespace murmur
