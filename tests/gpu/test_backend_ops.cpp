// Every op of compute_backend (tensor/backend.hpp) on the CUDA backend
// against the CPU reference, in the style of ggml's test-backend-ops: the
// same random inputs on both, shapes including odd and degenerate sizes,
// each output compared with a tolerance stated per op:
//  - data movement and one-rounding ops (copy, fill, bias adds, relu, add,
//    mul, im2col, col2im, maxpool, dropout, scatter, gossip_select, gap
//    backward): exact (gpu/ is built with --fmad=false, so the GPU rounds
//    each operation as the CPU loops do);
//  - multi-step float formulas (axpy, SGD, Adam, activation backward): 1 ulp;
//  - sigmoid and tanh forward: 4 ulp (CUDA's expf/tanhf are within 2 ulp,
//    glibc's within 1);
//  - products: |diff| <= 2 (k+2) u (|alpha| sum_p |a_ip b_pj| + |beta c_ij|),
//    twice the worst-case float error of either side (u = 2^-24);
//  - reductions (sums, GroupNorm, GAP, softmax cross-entropy, gossip mix):
//    derived per op below from the summation lengths, ~1e-5 relative to the
//    sum of magnitudes at these sizes;
//  - Freivalds pieces (double): 1e-11 relative to the sum of magnitudes;
//  - squared distances (double): n 2^-52 relative; the clipped and the
//    coordinate-wise (median, trimmed mean) mixes: exact.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "backend_pair.hpp"

using namespace murmur;
using namespace murmur::gpu_test;

namespace {

const int64_t kOdd[] = {1, 3, 7, 33, 129};

std::string shape(std::initializer_list<int64_t> dims) {
  std::string s = "[";
  for (int64_t d : dims) {
    if (s.size() > 1) s += ',';
    s += std::to_string(d);
  }
  s += ']';
  return s;
}

}  // namespace

TEST_CASE("cuda backend: identity, memory and transfers", "[gpu]") {
  compute_backend& g = gpu();
  CHECK_FALSE(g.is_cpu());
  CHECK(g.name().rfind("cuda:0 (", 0) == 0);

  // alloc zero-fills.
  {
    fbuf z(g, 1000);
    expect_equal("alloc zero-fills", std::vector<float>(1000, 0.f), z.host());
    ibuf zi(g, 77);
    expect_equal("alloc_int zero-fills", std::vector<int32_t>(77, 0), zi.host());
  }
  // The host buffer may be reused as soon as upload returns, across the
  // staging pieces (16 MiB) and both staging buffers.
  Rng rng(1);
  for (int64_t n : {int64_t{1}, int64_t{4099}, int64_t{5} << 20}) {
    std::vector<float> host = normal(rng, n), first = host;
    fbuf a(g, n), b(g, n);
    g.upload(a.get(), host.data(), n);
    for (auto& v : host) v = -v + 1.f;
    const std::vector<float> second = host;
    g.upload(b.get(), host.data(), n);
    std::fill(host.begin(), host.end(), 0.f);
    expect_equal("first upload of " + std::to_string(n), first, a.host());
    expect_equal("second upload of " + std::to_string(n), second, b.host());
    fbuf c(g, n);
    g.copy(c.get(), a.get(), n);
    expect_equal("copy of " + std::to_string(n), first, c.host());
    g.fill(c.get(), 2.5f, n);
    expect_equal("fill of " + std::to_string(n), std::vector<float>(static_cast<size_t>(n), 2.5f), c.host());
  }
  std::vector<int32_t> ints(1234);
  std::iota(ints.begin(), ints.end(), -600);
  ibuf ib(g, ints);
  expect_equal("int round trip", ints, ib.host());
  g.sync();
}

TEST_CASE("cuda backend: errors name the device and the op", "[gpu]") {
  try {
    make_cuda_backend(999);
    FAIL("make_cuda_backend(999) did not throw");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("cuda:999: no such device") != std::string::npos);
  }
  try {
    gpu().alloc(int64_t{1} << 46);  // 256 TiB
    FAIL("a 256 TiB alloc did not throw");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("out of memory on cuda:0 allocating") != std::string::npos);
  }
  CHECK_THROWS_AS(gpu().alloc(-1), std::invalid_argument);
  // The backend still works after a failed allocation.
  fbuf ok(gpu(), std::vector<float>{1.f, 2.f});
  CHECK(ok.host() == std::vector<float>{1.f, 2.f});
}

TEST_CASE("cuda backend: gemm against the CPU", "[gpu]") {
  Rng rng(2);
  const int64_t sizes[] = {1, 7, 33, 129};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t m : sizes)
        for (int64_t n : sizes)
          for (int64_t k : sizes) {
            // Padded leading dimensions on one case in three.
            const int64_t pad = (m + n + k) % 3 == 0 ? 3 : 0;
            const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
            const std::vector<float> a = normal(rng, (ta ? k : m) * lda), b = normal(rng, (tb ? n : k) * ldb),
                                     c0 = normal(rng, m * ldc);
            const float alpha = 1.5f, beta = (k % 2) ? 0.f : 0.5f;
            auto run = [&](compute_backend& be) {
              fbuf A(be, a), B(be, b), C(be, c0);
              be.gemm(ta, tb, m, n, k, alpha, A.get(), lda, B.get(), ldb, beta, C.get(), ldc);
              return C.host();
            };
            const auto rc = run(cpu()), rg = run(gpu());
            auto A = [&](int64_t i, int64_t p) { return ta ? a[p * lda + i] : a[i * lda + p]; };
            auto B = [&](int64_t p, int64_t j) { return tb ? b[j * ldb + p] : b[p * ldb + j]; };
            expect_close("gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " mnk=" + shape({m, n, k}) +
                             " pad " + std::to_string(pad),
                         rc, rg, [&](size_t e) {
                           const int64_t i = static_cast<int64_t>(e) / ldc, j = static_cast<int64_t>(e) % ldc;
                           if (j >= n) return 0.0;  // padding is never written
                           double s = 0;
                           for (int64_t p = 0; p < k; ++p) s += std::fabs(static_cast<double>(A(i, p)) * B(p, j));
                           return 2.0 * (k + 2) * kUnit * (std::fabs(alpha) * s + std::fabs(beta * c0[e])) + 1e-37;
                         });
          }
  // Batched: count products at strides, one launch on the GPU.
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t count : {1, 5}) {
        const int64_t m = 7, n = 33, k = 9, sa = m * k + 2, sb = k * n + 1, sc = m * n + 3;
        const std::vector<float> a = normal(rng, sa * count), b = normal(rng, sb * count), c0 = normal(rng, sc * count);
        auto run = [&](compute_backend& be) {
          fbuf A(be, a), B(be, b), C(be, c0);
          be.gemm_batched(ta, tb, m, n, k, 1.f, A.get(), ta ? m : k, sa, B.get(), tb ? k : n, sb, 0.5f, C.get(), n, sc,
                          count);
          return C.host();
        };
        const auto rc = run(cpu()), rg = run(gpu());
        expect_close("gemm_batched ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " count " +
                         std::to_string(count),
                     rc, rg, [&](size_t e) {
                       const int64_t i = static_cast<int64_t>(e) / sc, off = static_cast<int64_t>(e) % sc;
                       if (off >= m * n) return 0.0;  // between the products: never written
                       const int64_t r = off / n, j = off % n;
                       double s = 0;
                       for (int64_t p = 0; p < k; ++p) {
                         const double av = ta ? a[i * sa + p * m + r] : a[i * sa + r * k + p];
                         const double bv = tb ? b[i * sb + j * k + p] : b[i * sb + p * n + j];
                         s += std::fabs(av * bv);
                       }
                       return 2.0 * (k + 2) * kUnit * (s + std::fabs(0.5 * c0[e])) + 1e-37;
                     });
      }
  // k = 0: C = beta C.
  for (float beta : {0.f, 1.f, -2.f}) {
    const std::vector<float> c0 = normal(rng, 7 * 5);
    auto run = [&](compute_backend& be) {
      fbuf C(be, c0);
      be.gemm(false, false, 7, 5, 0, 1.f, nullptr, 1, nullptr, 5, beta, C.get(), 5);
      return C.host();
    };
    expect_equal("gemm k=0 beta=" + std::to_string(beta), run(cpu()), run(gpu()));
  }
}

TEST_CASE("cuda backend: bias, activations and element-wise ops", "[gpu]") {
  Rng rng(3);
  for (int64_t rows : kOdd)
    for (int64_t cols : kOdd) {
      const std::vector<float> y0 = normal(rng, rows * cols), bias = normal(rng, cols);
      auto add_bias = [&](compute_backend& be) {
        fbuf Y(be, y0), Bi(be, bias);
        be.add_row_bias(Y.get(), Bi.get(), rows, cols);
        return Y.host();
      };
      expect_equal("add_row_bias " + shape({rows, cols}), add_bias(cpu()), add_bias(gpu()));
      for (float beta : {0.f, 1.f, 0.5f}) {
        const std::vector<float> out0 = normal(rng, cols);
        auto sum = [&](compute_backend& be) {
          fbuf X(be, y0), O(be, out0);
          be.sum_rows(O.get(), X.get(), rows, cols, beta);
          return O.host();
        };
        const auto rc = sum(cpu()), rg = sum(gpu());
        // Either side sums `rows` floats: each within (rows + 1) u sum |x|.
        expect_close("sum_rows " + shape({rows, cols}) + " beta " + std::to_string(beta), rc, rg, [&](size_t j) {
          double s = std::fabs(beta * out0[j]);
          for (int64_t r = 0; r < rows; ++r) s += std::fabs(y0[r * cols + static_cast<int64_t>(j)]);
          return 2.0 * (rows + 2) * kUnit * s + 1e-37;
        });
      }
    }
  for (int64_t batch : {1, 3})
    for (int64_t channels : {1, 7, 33})
      for (int64_t spatial : {1, 7, 129}) {
        const std::vector<float> y0 = normal(rng, batch * channels * spatial), bias = normal(rng, channels);
        auto add_bias = [&](compute_backend& be) {
          fbuf Y(be, y0), Bi(be, bias);
          be.add_channel_bias(Y.get(), Bi.get(), batch, channels, spatial);
          return Y.host();
        };
        const std::string s = shape({batch, channels, spatial});
        expect_equal("add_channel_bias " + s, add_bias(cpu()), add_bias(gpu()));
        auto sum = [&](compute_backend& be) {
          fbuf X(be, y0), O(be, normal(rng, channels));
          be.sum_channels(O.get(), X.get(), batch, channels, spatial);
          return O.host();
        };
        const auto rc = sum(cpu()), rg = sum(gpu());
        expect_close("sum_channels " + s, rc, rg, [&](size_t c) {
          double t = 0;
          for (int64_t b = 0; b < batch; ++b)
            for (int64_t i = 0; i < spatial; ++i)
              t += std::fabs(y0[(b * channels + static_cast<int64_t>(c)) * spatial + i]);
          return 2.0 * (batch * spatial + 2) * kUnit * t + 1e-37;
        });
      }

  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{129}, int64_t{100003}}) {
    std::vector<float> x = normal(rng, n, 4.0), dy = normal(rng, n), b = normal(rng, n);
    x[0] = 0.f;  // relu's edge
    if (n > 3) {
      x[1] = -0.f;
      x[2] = 90.f;   // sigmoid saturates
      x[3] = -90.f;  // exp(90) overflows to inf: sigmoid 0
    }
    for (activation_kind f : {activation_kind::relu, activation_kind::sigmoid, activation_kind::tanh}) {
      const std::string name = f == activation_kind::relu ? "relu" : f == activation_kind::sigmoid ? "sigmoid" : "tanh";
      auto fwd = [&](compute_backend& be) {
        fbuf X(be, x), Y(be, n);
        be.activation_forward(f, X.get(), Y.get(), n);
        return Y.host();
      };
      const auto yc = fwd(cpu()), yg = fwd(gpu());
      if (f == activation_kind::relu)
        expect_equal(name + " forward n=" + std::to_string(n), yc, yg);
      else
        expect_ulps(name + " forward n=" + std::to_string(n), yc, yg, 4);
      // Backward from the CPU's y on both sides: the formula alone.
      auto bwd = [&](compute_backend& be) {
        fbuf Y(be, yc), D(be, dy), DX(be, n);
        be.activation_backward(f, Y.get(), D.get(), DX.get(), n);
        return DX.host();
      };
      expect_ulps(name + " backward n=" + std::to_string(n), bwd(cpu()), bwd(gpu()), 1);
    }
    auto add = [&](compute_backend& be, bool alias) {
      fbuf A(be, x), B(be, b), O(be, n);
      be.add(A.get(), B.get(), alias ? A.get() : O.get(), n);
      return alias ? A.host() : O.host();
    };
    expect_equal("add n=" + std::to_string(n), add(cpu(), false), add(gpu(), false));
    expect_equal("add in place n=" + std::to_string(n), add(cpu(), true), add(gpu(), true));
    auto axpy = [&](compute_backend& be) {
      fbuf X(be, x), Y(be, b);
      be.axpy(-0.37f, X.get(), Y.get(), n);
      return Y.host();
    };
    const auto ac = axpy(cpu()), ag = axpy(gpu());
    // One ulp of the larger term: an FMA (in a BLAS axpy) rounds once.
    expect_close("axpy n=" + std::to_string(n), ac, ag, [&](size_t i) {
      return ulp(std::max({std::fabs(ac[i]), std::fabs(b[i]), std::fabs(0.37f * x[i])}));
    });
    auto mul = [&](compute_backend& be) {
      fbuf A(be, x), B(be, b), O(be, n);
      be.mul(A.get(), B.get(), O.get(), n);
      return O.host();
    };
    expect_equal("mul n=" + std::to_string(n), mul(cpu()), mul(gpu()));
  }
}

TEST_CASE("cuda backend: im2col and col2im", "[gpu]") {
  Rng rng(4);
  for (int64_t c : {1, 3})
    for (int64_t h : {1, 5, 8})
      for (int64_t w : {1, 7})
        for (int64_t k : {1, 3, 5})
          for (int64_t stride : {1, 2, 3})
            for (int64_t pad : {0, 1, 2}) {
              if (h + 2 * pad < k || w + 2 * pad < k) continue;
              const int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
              const int64_t ncols = c * k * k * oh * ow;
              const std::vector<float> x = normal(rng, c * h * w), cols = normal(rng, ncols),
                                       dx0(static_cast<size_t>(c * h * w), 0.f);
              const std::string s = "c,h,w,k,s,p=" + shape({c, h, w, k, stride, pad});
              auto fwd = [&](compute_backend& be) {
                fbuf X(be, x), C(be, ncols);
                be.im2col(X.get(), c, h, w, k, stride, pad, C.get());
                return C.host();
              };
              expect_equal("im2col " + s, fwd(cpu()), fwd(gpu()));
              // col2im adds into the zeroed dx, in the CPU's order of additions.
              auto bwd = [&](compute_backend& be) {
                fbuf C(be, cols), DX(be, dx0);
                be.col2im(C.get(), c, h, w, k, stride, pad, DX.get());
                return DX.host();
              };
              expect_equal("col2im " + s, bwd(cpu()), bwd(gpu()));
            }
}

TEST_CASE("cuda backend: maxpool and global average pooling", "[gpu]") {
  Rng rng(5);
  for (int64_t planes : {1, 3, 7})
    for (int64_t h : {2, 5, 9})
      for (int64_t w : {3, 7})
        for (int64_t k : {1, 2, 3}) {
          if (h < k || w < k) continue;
          // Small integers: ties, which the first maximum wins.
          std::vector<float> x(static_cast<size_t>(planes * h * w));
          for (auto& v : x) v = static_cast<float>(rng.below(4));
          if (planes == 7 && k == 2) x[1] = std::nanf("");  // NaN propagates, on both sides alike
          const int64_t oh = h / k, ow = w / k, ny = planes * oh * ow;
          const std::vector<float> dy = normal(rng, ny);
          auto run = [&](compute_backend& be) {
            fbuf X(be, x), Y(be, ny), DY(be, dy), DX(be, normal(rng, planes * h * w));
            ibuf AM(be, ny);
            be.maxpool_forward(X.get(), planes, h, w, k, Y.get(), AM.get());
            be.maxpool_backward(DY.get(), AM.get(), planes, h, w, k, DX.get());
            return std::make_tuple(Y.host(), AM.host(), DX.host());
          };
          const auto [yc, ac, dc] = run(cpu());
          const auto [yg, ag, dg] = run(gpu());
          const std::string s = shape({planes, h, w}) + " k " + std::to_string(k);
          expect_equal("maxpool forward " + s, yc, yg);
          expect_equal("maxpool argmax " + s, ac, ag);
          expect_equal("maxpool backward " + s, dc, dg);
        }
  for (int64_t planes : {1, 7, 33})
    for (int64_t spatial : {1, 3, 49, 129}) {
      const std::vector<float> x = normal(rng, planes * spatial), dy = normal(rng, planes);
      auto run = [&](compute_backend& be) {
        fbuf X(be, x), Y(be, planes), DY(be, dy), DX(be, planes * spatial);
        be.gap_forward(X.get(), planes, spatial, Y.get());
        be.gap_backward(DY.get(), planes, spatial, DX.get());
        return std::make_pair(Y.host(), DX.host());
      };
      const auto [yc, dc] = run(cpu());
      const auto [yg, dg] = run(gpu());
      const std::string s = shape({planes, spatial});
      // Both sum in double and round once: 1 ulp, plus the double sums' own
      // error.
      expect_close("gap forward " + s, yc, yg, [&](size_t p) {
        double t = 0;
        for (int64_t i = 0; i < spatial; ++i) t += std::fabs(x[p * spatial + i]);
        return ulp(std::max(std::fabs(yc[p]), std::fabs(yg[p]))) + 1e-14 * t;
      });
      expect_equal("gap backward " + s, dc, dg);
    }
}

TEST_CASE("cuda backend: groupnorm forward and backward", "[gpu]") {
  Rng rng(6);
  for (int64_t batch : {1, 3})
    for (int64_t channels : {1, 4, 6})
      for (int64_t groups : {int64_t{1}, int64_t{2}, channels})
        for (int64_t spatial : {1, 7, 33}) {
          if (channels % groups) continue;
          const int64_t n = batch * channels * spatial, cg = channels / groups, gn = cg * spatial;
          // An offset mean, as activations have.
          std::vector<float> x = normal(rng, n);
          for (auto& v : x) v += 0.5f;
          const std::vector<float> w = normal(rng, channels), b = normal(rng, channels), dy = normal(rng, n);
          const std::string s = shape({batch, channels, spatial}) + " groups " + std::to_string(groups);
          auto fwd = [&](compute_backend& be) {
            fbuf X(be, x), W(be, w), B(be, b), Y(be, n), XH(be, n), R(be, batch * groups);
            be.groupnorm_forward(X.get(), batch, channels, spatial, groups, W.get(), B.get(), Y.get(), XH.get(),
                                 R.get());
            return std::make_tuple(Y.host(), XH.host(), R.host());
          };
          const auto [yc, hc, rc] = fwd(cpu());
          const auto [yg, hg, rg] = fwd(gpu());
          // Mean and rstd come from double sums rounded to float: at most
          // 1 ulp apart. xhat = (x - m) rstd then differs by up to
          // ulp(m) rstd + 2 ulp(xhat); y = xhat w + b by |w| that + 2 ulp(y).
          std::vector<double> mean(static_cast<size_t>(batch * groups));
          for (int64_t bg = 0; bg < batch * groups; ++bg) {
            double t = 0;
            for (int64_t i = 0; i < gn; ++i) t += x[bg * gn + i];
            mean[bg] = t / static_cast<double>(gn);
          }
          auto xhat_tol = [&](size_t e) {
            const int64_t bg = static_cast<int64_t>(e) / gn;
            return 4.0 * (ulp(mean[bg]) * rc[bg] + ulp(std::fabs(hc[e])));
          };
          expect_ulps("groupnorm rstd " + s, rc, rg, 1);
          expect_close("groupnorm xhat " + s, hc, hg, xhat_tol);
          expect_close("groupnorm y " + s, yc, yg, [&](size_t e) {
            const int64_t c = (static_cast<int64_t>(e) / spatial) % channels;
            return std::fabs(w[c]) * xhat_tol(e) + 2 * ulp(std::fabs(hc[e] * w[c]) + std::fabs(b[c]));
          });
          for (bool want_dx : {true, false}) {
            // The CPU's xhat and rstd into both: the backward formula alone.
            auto bwd = [&](compute_backend& be) {
              fbuf DY(be, dy), XH(be, hc), R(be, rc), W(be, w), DX(be, n), DW(be, channels), DB(be, channels);
              be.groupnorm_backward(DY.get(), XH.get(), R.get(), W.get(), batch, channels, spatial, groups,
                                    want_dx ? DX.get() : nullptr, DW.get(), DB.get());
              return std::make_tuple(DX.host(), DW.host(), DB.host());
            };
            const auto [dxc, dwc, dbc] = bwd(cpu());
            const auto [dxg, dwg, dbg] = bwd(gpu());
            // dw, db: per-(sample, channel) double sums rounded to float and
            // added over the batch: (batch + 1) u of the magnitudes.
            expect_close("groupnorm dw " + s, dwc, dwg, [&](size_t c) {
              double t = 0;
              for (int64_t bb = 0; bb < batch; ++bb)
                for (int64_t i = 0; i < spatial; ++i) {
                  const int64_t e = (bb * channels + static_cast<int64_t>(c)) * spatial + i;
                  t += std::fabs(dy[e] * hc[e]);
                }
              return 2.0 * (batch + 2) * kUnit * t + 1e-37;
            });
            expect_close("groupnorm db " + s, dbc, dbg, [&](size_t c) {
              double t = 0;
              for (int64_t bb = 0; bb < batch; ++bb)
                for (int64_t i = 0; i < spatial; ++i)
                  t += std::fabs(dy[(bb * channels + static_cast<int64_t>(c)) * spatial + i]);
              return 2.0 * (batch + 2) * kUnit * t + 1e-37;
            });
            if (!want_dx) continue;
            // dx = rstd (g w - mg - xhat mgh): mg, mgh are double means
            // rounded to float (1 ulp apart), then four float roundings.
            std::vector<double> mg(static_cast<size_t>(batch * groups)), mgh(mg.size());
            for (int64_t bg = 0; bg < batch * groups; ++bg) {
              double sg = 0, sgh = 0;
              for (int64_t i = 0; i < gn; ++i) {
                const double gi = dy[bg * gn + i] * static_cast<double>(w[(bg % groups) * cg + i / spatial]);
                sg += gi;
                sgh += gi * hc[bg * gn + i];
              }
              mg[bg] = sg / static_cast<double>(gn);
              mgh[bg] = sgh / static_cast<double>(gn);
            }
            expect_close("groupnorm dx " + s, dxc, dxg, [&](size_t e) {
              const int64_t bg = static_cast<int64_t>(e) / gn, c = (static_cast<int64_t>(e) / spatial) % channels;
              const double terms = std::fabs(dy[e] * w[c]) + std::fabs(mg[bg]) + std::fabs(hc[e] * mgh[bg]);
              return 8.0 * kUnit * rc[bg] * terms + 1e-37;
            });
          }
        }
}

TEST_CASE("cuda backend: dropout draws the CPU's mask", "[gpu]") {
  Rng rng(7);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{65537}})
    for (double p : {0.0, 0.1, 0.5, 0.9}) {
      const std::vector<float> x = normal(rng, n), dy = normal(rng, n);
      const uint64_t key = rng.next_u64();
      auto run = [&](compute_backend& be) {
        fbuf X(be, x), Y(be, n), M(be, n), DY(be, dy), DX(be, n);
        be.dropout_forward(X.get(), Y.get(), M.get(), n, p, key);
        be.mul(DY.get(), M.get(), DX.get(), n);  // the backward
        return std::make_tuple(Y.host(), M.host(), DX.host());
      };
      const auto [yc, mc, dc] = run(cpu());
      const auto [yg, mg, dg] = run(gpu());
      const std::string s = "n " + std::to_string(n) + " p " + std::to_string(p);
      expect_equal("dropout mask " + s, mc, mg);
      expect_equal("dropout y " + s, yc, yg);
      expect_equal("dropout dx " + s, dc, dg);
    }
}

TEST_CASE("cuda backend: softmax cross-entropy", "[gpu]") {
  Rng rng(8);
  for (int64_t batch : kOdd)
    for (int64_t classes : {1, 2, 7, 10, 33, 129}) {
      std::vector<float> z = normal(rng, batch * classes, 3.0);
      // Row 0 ties its maximum twice: the first one is the argmax.
      if (classes >= 3) z[1] = z[2] = 50.f;
      std::vector<int32_t> labels(static_cast<size_t>(batch));
      for (auto& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
      labels[0] = classes >= 3 ? 1 : 0;
      for (bool with_grad : {true, false}) {
        auto run = [&](compute_backend& be) {
          fbuf Z(be, z), D(be, batch * classes);
          ibuf L(be, labels);
          const auto r = be.softmax_cross_entropy(Z.get(), L.get(), batch, classes, with_grad ? D.get() : nullptr);
          return std::make_pair(r, D.host());
        };
        const auto [rc, dc] = run(cpu());
        const auto [rg, dg] = run(gpu());
        const std::string s = shape({batch, classes}) + (with_grad ? " with dlogits" : " loss only");
        INFO("softmax_cross_entropy " << s);
        CHECK(rc.correct == rg.correct);
        // Per row, log s differs by the relative error of s (a float sum of
        // `classes` exps, each within 2 ulp): (classes + 4) u.
        CHECK(std::fabs(rc.loss_sum - rg.loss_sum) <=
              2.0 * batch * (classes + 4) * kUnit + 1e-9 * std::fabs(rc.loss_sum));
        if (with_grad) {
          const double inv_b = 1.0 / static_cast<double>(batch);
          expect_close("dlogits " + s, dc, dg, [&](size_t e) {
            return 2.0 * (classes + 8) * kUnit * (std::fabs(dc[e]) + inv_b);
          });
        }
      }
    }
  // A label outside [0, classes) is refused (the loss would be void).
  fbuf Z(gpu(), std::vector<float>(6, 0.f));
  ibuf L(gpu(), std::vector<int32_t>{0, 3});
  CHECK_THROWS_AS(gpu().softmax_cross_entropy(Z.get(), L.get(), 2, 3, nullptr), std::invalid_argument);
}

TEST_CASE("cuda backend: SGD and Adam updates", "[gpu]") {
  Rng rng(9);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{10007}}) {
    const std::vector<float> p0 = normal(rng, n), g0 = normal(rng, n), buf0 = normal(rng, n);
    for (float momentum : {0.f, 0.9f})
      for (float wd : {0.f, 5e-4f})
        for (bool first : {true, false}) {
          auto run = [&](compute_backend& be) {
            fbuf P(be, p0), G(be, g0), B(be, buf0);
            be.sgd_step(P.get(), G.get(), momentum != 0.f ? B.get() : nullptr, n, 0.05f, momentum, wd, first);
            return std::make_pair(P.host(), B.host());
          };
          const auto [pc, bc] = run(cpu());
          const auto [pg, bg] = run(gpu());
          const std::string s = "n " + std::to_string(n) + " momentum " + std::to_string(momentum) + " wd " +
                                std::to_string(wd) + " first " + std::to_string(first);
          expect_ulps("sgd p " + s, pc, pg, 1);
          if (momentum != 0.f) expect_ulps("sgd buf " + s, bc, bg, 1);
        }
    const std::vector<float> m0 = normal(rng, n, 0.1);
    std::vector<float> v0 = normal(rng, n, 0.01);
    for (auto& v : v0) v = v * v;
    for (uint64_t t : {1, 2, 10})
      for (float wd : {0.f, 1e-2f}) {
        auto run = [&](compute_backend& be) {
          fbuf P(be, p0), G(be, g0), M(be, m0), V(be, v0);
          be.adam_step(P.get(), G.get(), M.get(), V.get(), n, 1e-3f, 0.9f, 0.999f, 1e-8f, wd, t);
          return std::make_tuple(P.host(), M.host(), V.host());
        };
        const auto [pc, mc, vc] = run(cpu());
        const auto [pg, mg, vg] = run(gpu());
        const std::string s = "n " + std::to_string(n) + " t " + std::to_string(t) + " wd " + std::to_string(wd);
        expect_ulps("adam p " + s, pc, pg, 1);
        expect_ulps("adam m " + s, mc, mg, 1);
        expect_ulps("adam v " + s, vc, vg, 1);
      }
  }
}

TEST_CASE("cuda backend: gossip mix, select and scatter", "[gpu]") {
  Rng rng(10);
  for (int64_t n : {int64_t{1}, int64_t{33}, int64_t{4099}})
    for (int count : {0, 1, 3, 40}) {  // 40: more neighbours than one launch takes
      const std::vector<float> x0 = normal(rng, n), self = normal(rng, n);
      std::vector<std::vector<float>> hats;
      std::vector<float> weights;
      for (int j = 0; j < count; ++j) {
        hats.push_back(normal(rng, n));
        weights.push_back(static_cast<float>(rng.uniform(0.1, 1.0)));
      }
      auto run = [&](compute_backend& be) {
        fbuf X(be, x0), S(be, self);
        std::vector<std::unique_ptr<fbuf>> H;
        std::vector<const float*> ptrs;
        for (const auto& h : hats) {
          H.push_back(std::make_unique<fbuf>(be, h));
          ptrs.push_back(H.back()->get());
        }
        be.gossip_mix(X.get(), S.get(), ptrs.data(), weights.data(), count, 0.3f, n);
        return X.host();
      };
      const auto rc = run(cpu()), rg = run(gpu());
      expect_close("gossip_mix n " + std::to_string(n) + " count " + std::to_string(count), rc, rg, [&](size_t i) {
        double t = 0;
        for (int j = 0; j < count; ++j) t += weights[j] * (std::fabs(hats[j][i]) + std::fabs(self[i]));
        return 2.0 * (count + 3) * kUnit * (std::fabs(x0[i]) + 0.3 * t) + 1e-37;
      });
    }

  // n across one tile (2048), many tiles, and more than one scan chunk
  // (1024 tiles).
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{2048}, int64_t{2049}, int64_t{70001}, int64_t{2048 * 1024 + 5}})
    for (float threshold : {0.f, 0.1f, 0.75f})
      for (float grid : {0.f, 0.25f}) {
        const std::vector<float> x = normal(rng, n);
        std::vector<float> hat = x;
        for (size_t i = 0; i < hat.size(); ++i)
          if (i % 5 != 0) hat[i] += static_cast<float>(0.3 * rng.normal());  // every 5th unchanged
        if (n > 3) hat[3] = std::round(x[3] / 0.25f) * 0.25f;  // already on the grid
        auto run = [&](compute_backend& be) {
          fbuf X(be, x), H(be, hat), V(be, n);
          ibuf I(be, n);
          const int64_t c = be.gossip_select(X.get(), H.get(), n, threshold, grid, I.get(), V.get());
          auto idx = I.host();
          auto val = V.host();
          idx.resize(static_cast<size_t>(c));
          val.resize(static_cast<size_t>(c));
          return std::make_tuple(c, idx, val, H.host());
        };
        const auto [cc, ic, vc, hc] = run(cpu());
        const auto [cg, ig, vg, hg] = run(gpu());
        const std::string s = "n " + std::to_string(n) + " threshold " + std::to_string(threshold) + " grid " +
                              std::to_string(grid);
        INFO("gossip_select " << s);
        CHECK(cc == cg);
        if (cc != cg) continue;
        expect_equal("gossip_select idx " + s, ic, ig);
        expect_equal("gossip_select val " + s, vc, vg);
        expect_equal("gossip_select hat " + s, hc, hg);
        CHECK(std::is_sorted(ig.begin(), ig.end()));
      }

  for (int64_t n : {int64_t{1}, int64_t{129}, int64_t{5000}}) {
    const std::vector<float> dst0 = normal(rng, n);
    std::vector<int32_t> idx;
    std::vector<float> val;
    for (int64_t i = 0; i < n; ++i)
      if (rng.uniform() < 0.3) {
        idx.push_back(static_cast<int32_t>(i));
        val.push_back(static_cast<float>(rng.normal()));
      }
    auto run = [&](compute_backend& be) {
      fbuf D(be, dst0), V(be, val);
      ibuf I(be, idx);
      be.scatter(D.get(), I.get(), V.get(), static_cast<int64_t>(idx.size()));
      return D.host();
    };
    expect_equal("scatter n " + std::to_string(n), run(cpu()), run(gpu()));
  }
}

// The clipping gossip rules' ops: distances in double within n 2^-52 of
// the CPU's sum (a different order of the same double additions), the
// clipped mix exact (the same float operations per coordinate, no FMA).
TEST_CASE("cuda backend: squared distances and the clipped mix", "[gpu]") {
  Rng rng(12);
  for (int64_t n : {int64_t{1}, int64_t{33}, int64_t{4099}, int64_t{300001}})
    for (int count : {1, 3, 40}) {  // 40: more neighbours than one launch takes
      const std::vector<float> x0 = normal(rng, n), self = normal(rng, n);
      std::vector<std::vector<float>> hats;
      std::vector<float> scales;
      for (int j = 0; j < count; ++j) {
        hats.push_back(normal(rng, n, j == 1 ? 100.0 : 1.0));  // one far neighbour
        scales.push_back(static_cast<float>(rng.uniform(0.01, 1.0) / (count + 1)));
      }
      auto run = [&](compute_backend& be) {
        fbuf X(be, x0), S(be, self);
        std::vector<std::unique_ptr<fbuf>> H;
        std::vector<const float*> ptrs;
        for (const auto& h : hats) {
          H.push_back(std::make_unique<fbuf>(be, h));
          ptrs.push_back(H.back()->get());
        }
        std::vector<double> d2(static_cast<size_t>(count));
        be.squared_distances(S.get(), ptrs.data(), count, n, d2.data());
        be.clip_mix(X.get(), S.get(), ptrs.data(), scales.data(), count, 0.7f, n);
        return std::make_pair(d2, X.host());
      };
      const auto [dc, xc] = run(cpu());
      const auto [dg, xg] = run(gpu());
      const std::string s = "n " + std::to_string(n) + " count " + std::to_string(count);
      expect_close("squared_distances " + s, dc, dg,
                   [&](size_t j) { return static_cast<double>(n) * 0x1.0p-52 * dc[j] + 1e-300; });
      expect_equal("clip_mix " + s, xc, xg);
    }
}

// The coordinate-wise rules: the same sorting network and sums, exact;
// more members than a thread sorts locally (kLocalSortMembers = 32) sort in
// the scratch; ties and signed zeros must land as on the CPU.
TEST_CASE("cuda backend: the coordinate-wise (median, trimmed mean) mix", "[gpu]") {
  Rng rng(13);
  for (int64_t n : {int64_t{1}, int64_t{33}, int64_t{4099}, int64_t{70001}})
    for (int count : {1, 2, 3, 8, 40}) {
      const std::vector<float> x0 = normal(rng, n);
      std::vector<float> self = normal(rng, n);
      std::vector<std::vector<float>> hats;
      for (int j = 0; j < count; ++j) {
        hats.push_back(normal(rng, n, j == 0 ? 1000.0 : 1.0));  // one far neighbour
        for (int64_t i = 0; i < n; i += 7) hats.back()[static_cast<size_t>(i)] = (j % 2) ? -0.f : 0.f;  // ties
      }
      for (int drop = 0; 2 * drop < count + 1; drop += std::max(1, count / 3)) {
        auto run = [&](compute_backend& be) {
          fbuf X(be, x0), S(be, self);
          std::vector<std::unique_ptr<fbuf>> H;
          std::vector<const float*> ptrs;
          for (const auto& h : hats) {
            H.push_back(std::make_unique<fbuf>(be, h));
            ptrs.push_back(H.back()->get());
          }
          be.coordinatewise_mix(X.get(), S.get(), ptrs.data(), count, drop, 0.6f, n);
          return X.host();
        };
        const auto xc = run(cpu()), xg = run(gpu());
        const std::string s = "n " + std::to_string(n) + " count " + std::to_string(count) + " drop " +
                              std::to_string(drop);
        expect_equal("coordinatewise_mix " + s, xc, xg);
        // Signed zeros compare equal above: check the bits.
        CHECK(std::memcmp(xc.data(), xg.data(), xc.size() * sizeof(float)) == 0);
      }
    }
  CHECK_THROWS_AS(gpu().coordinatewise_mix(nullptr, nullptr, nullptr, 1, 1, 0.5f, 8), std::invalid_argument);
}

TEST_CASE("cuda backend: Freivalds pieces, with and without a bias", "[gpu]") {
  Rng rng(11);
  struct mnk {
    int64_t m, n, k;
  };
  for (bool with_bias : {false, true})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (mnk d : {mnk{1, 1, 1}, mnk{7, 3, 33}, mnk{33, 129, 7}, mnk{129, 65, 200}, mnk{3, 700, 1}}) {
          const int64_t m = d.m, n = d.n, k = d.k;
          const std::vector<float> a = normal(rng, m * k), b = normal(rng, k * n), c = normal(rng, m * n),
                                   bias = normal(rng, n);
          std::vector<float> r(static_cast<size_t>(n));
          for (auto& v : r) v = static_cast<float>(rng.below(2));
          auto run = [&](compute_backend& be) {
            fbuf A(be, a), B(be, b), C(be, c), R(be, r), Bias(be, bias);
            std::vector<double> out(static_cast<size_t>(3 * m + 1));
            be.freivalds_pieces(ta, tb, m, n, k, A.get(), B.get(), with_bias ? Bias.get() : nullptr, C.get(),
                                R.get(), out.data());
            return out;
          };
          const auto oc = run(cpu()), og = run(gpu());
          auto A = [&](int64_t i, int64_t p) { return static_cast<double>(ta ? a[p * m + i] : a[i * k + p]); };
          auto B = [&](int64_t p, int64_t j) { return static_cast<double>(tb ? b[j * k + p] : b[p * n + j]); };
          // Magnitudes: the sums of |terms| each piece adds up.
          std::vector<double> scale(oc.size(), 0.0), babs(static_cast<size_t>(k), 0.0);
          double bias_abs = 0;
          for (int64_t j = 0; j < n; ++j) bias_abs += with_bias ? std::fabs(bias[j]) * r[j] : 0.0;
          for (int64_t p = 0; p < k; ++p)
            for (int64_t j = 0; j < n; ++j) babs[p] += std::fabs(B(p, j)) * r[j];
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) scale[i] += std::fabs(c[i * n + j]) * r[j];
            scale[m + i] = bias_abs;
            for (int64_t p = 0; p < k; ++p) scale[m + i] += std::fabs(A(i, p)) * babs[p];
            scale[2 * m + i] = std::fabs(oc[2 * m + i]);
          }
          scale[3 * m] = std::fabs(oc[3 * m]);
          expect_close("freivalds_pieces bias=" + std::to_string(with_bias) + " ta=" + std::to_string(ta) +
                           " tb=" + std::to_string(tb) + " mnk " + shape({m, n, k}),
                       oc, og, [&](size_t i) { return 1e-11 * scale[i] + 1e-300; });
        }
  // A non-finite bias entry where r_j = 0 still fails: out[3m] is NaN.
  const int64_t m = 3, n = 4, k = 5;
  std::vector<float> ones(static_cast<size_t>(m * k * n), 1.f), bias(static_cast<size_t>(n), 0.f),
      r(static_cast<size_t>(n), 0.f);
  r[0] = 1.f;
  bias[2] = std::numeric_limits<float>::quiet_NaN();
  fbuf A(gpu(), ones), B(gpu(), ones), C(gpu(), ones), R(gpu(), r), Bias(gpu(), bias);
  std::vector<double> out(static_cast<size_t>(3 * m + 1));
  gpu().freivalds_pieces(false, false, m, n, k, A.get(), B.get(), Bias.get(), C.get(), R.get(), out.data());
  CHECK(std::isnan(out[3 * m]));
}
