// What the cross-backend tests share: the CPU reference and the CUDA
// backend under test (device 0), buffers on either, random data, and
// element-wise comparisons that report the worst element.
#pragma once
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gpu/cuda_backend.hpp"
#include "tensor/backend.hpp"
#include "tensor/cpu_backend.hpp"
#include "tensor/rng.hpp"

namespace murmur::gpu_test {

inline compute_backend& cpu() {
  static std::unique_ptr<compute_backend> b = make_cpu_backend();
  return *b;
}
inline compute_backend& gpu() {
  static std::unique_ptr<compute_backend> b = make_cuda_backend(0);
  return *b;
}

constexpr double kUnit = 0x1.0p-24;  // float32 unit roundoff

// A float buffer on a backend, filled from the host, freed at scope exit.
class fbuf {
 public:
  fbuf(compute_backend& be, const std::vector<float>& host) : be_(be), n_(static_cast<int64_t>(host.size())) {
    p_ = be_.alloc(n_);
    if (n_) be_.upload(p_, host.data(), n_);
  }
  fbuf(compute_backend& be, int64_t n) : be_(be), n_(n) { p_ = be_.alloc(n_); }
  ~fbuf() { be_.free(p_); }
  fbuf(const fbuf&) = delete;
  fbuf& operator=(const fbuf&) = delete;
  float* get() const { return p_; }
  std::vector<float> host() const {
    std::vector<float> h(static_cast<size_t>(n_));
    be_.download(h.data(), p_, n_);
    return h;
  }

 private:
  compute_backend& be_;
  int64_t n_;
  float* p_ = nullptr;
};

class ibuf {
 public:
  ibuf(compute_backend& be, const std::vector<int32_t>& host) : be_(be), n_(static_cast<int64_t>(host.size())) {
    p_ = be_.alloc_int(n_);
    if (n_) be_.upload_int(p_, host.data(), n_);
  }
  ibuf(compute_backend& be, int64_t n) : be_(be), n_(n) { p_ = be_.alloc_int(n_); }
  ~ibuf() { be_.free_int(p_); }
  ibuf(const ibuf&) = delete;
  ibuf& operator=(const ibuf&) = delete;
  int32_t* get() const { return p_; }
  std::vector<int32_t> host() const {
    std::vector<int32_t> h(static_cast<size_t>(n_));
    be_.download_int(h.data(), p_, n_);
    return h;
  }

 private:
  compute_backend& be_;
  int64_t n_;
  int32_t* p_ = nullptr;
};

inline std::vector<float> normal(Rng& rng, int64_t n, double scale = 1.0) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

// The spacing of floats at |x|: one ulp.
inline double ulp(double x) {
  const float a = std::fabs(static_cast<float>(x));
  if (!std::isfinite(a)) return std::numeric_limits<double>::infinity();
  return static_cast<double>(std::nextafter(a, std::numeric_limits<float>::infinity())) - a;
}

inline bool same(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// Every |cpu[i] - gpu[i]| <= tol(i) (NaN matches NaN); one CHECK per call,
// naming the op, its shape, the first bad element and the worst ratio.
template <class T, class Tol>
void expect_close(const std::string& what, const std::vector<T>& c, const std::vector<T>& g, Tol tol) {
  INFO(what);
  REQUIRE(c.size() == g.size());
  size_t bad = 0, first = 0, worst_at = 0;
  double worst = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double a = static_cast<double>(c[i]), b = static_cast<double>(g[i]);
    if (std::isnan(a) && std::isnan(b)) continue;
    const double d = std::fabs(a - b), t = tol(i);
    const double ratio = d == 0 ? 0 : (t > 0 ? d / t : std::numeric_limits<double>::infinity());
    if (!(ratio <= 1.0)) {
      if (bad++ == 0) first = i;
    }
    if (!(ratio <= worst)) {
      worst = std::isnan(ratio) ? std::numeric_limits<double>::infinity() : ratio;
      worst_at = i;
    }
  }
  if (bad) {
    INFO(bad << " of " << c.size() << " elements off; first at " << first << ": cpu " << c[first] << " gpu "
              << g[first] << " tol " << tol(first) << "; worst |diff|/tol " << worst << " at " << worst_at);
    CHECK(bad == 0);
  } else {
    CHECK(bad == 0);
  }
}

template <class T>
void expect_equal(const std::string& what, const std::vector<T>& c, const std::vector<T>& g) {
  expect_close(what, c, g, [](size_t) { return 0.0; });
}

// Within `ulps` units in the last place of the larger of the two values.
inline void expect_ulps(const std::string& what, const std::vector<float>& c, const std::vector<float>& g,
                        double ulps) {
  expect_close(what, c, g, [&](size_t i) { return ulps * ulp(std::max(std::fabs(c[i]), std::fabs(g[i]))); });
}

}  // namespace murmur::gpu_test
