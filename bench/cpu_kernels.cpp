// Per-op timings of the CNN's convolution and pooling layers (the net of
// configs/fmnist-cnn.toml at batch 64) on each CPU path: murmur's own
// (im2col + OpenBLAS gemm, the pooling loops) against oneDNN, at 1 and 2
// threads (the im2col path's threads are OpenBLAS's, oneDNN's its OpenMP
// team with OpenBLAS at 1: tensor/cpu_threads.hpp). Ops: forward,
// backward-weights (backward with need_input_grad off) and backward-data
// (full backward minus that). The configurations take turns within each
// round (interleaved); prints the median ms per call over the rounds and the
// spread, and the load average. Feeds docs/cpu_kernels.md. Usage:
//   build/cpu_kernels [--rounds R] [--iters N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/conv2d.hpp"
#include "tensor/gemm.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/rng.hpp"

using namespace murmur;

namespace {

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct op_case {
  std::string layer;  // e.g. "conv2 32->64 12x12"
  std::string path;   // "im2col" / "onednn"
  int threads = 1;
  std::unique_ptr<Layer> l;
  std::vector<float> params, grads;
  Tensor x, dy;
  std::vector<double> fwd, bwd_w, bwd_full;
};

void fill(Tensor& t, Rng& r) {
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(r.uniform(-1, 1));
}

double time_ms(int iters, const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5, iters = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (a == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--rounds R] [--iters N]\n", argv[0]);
      return 2;
    }
  }
  const int64_t B = 64;
  struct geom {
    std::string name;
    bool conv;
    int64_t c, o, h;  // channels in/out, input side
  };
  const std::vector<geom> geoms = {{"conv1 1->32 28x28 k5", true, 1, 32, 28},
                                   {"pool1 32 24x24 k2", false, 32, 32, 24},
                                   {"conv2 32->64 12x12 k5", true, 32, 64, 12},
                                   {"pool2 64 8x8 k2", false, 64, 64, 8}};
  std::printf("{\"event\":\"config\",\"batch\":%lld,\"rounds\":%d,\"iters\":%d,\"loadavg\":\"%s\"}\n",
              static_cast<long long>(B), rounds, iters, loadavg().c_str());
  Rng rng(1);
  std::vector<op_case> cases;
  for (const auto& g : geoms)
    for (int threads : {1, 2})
      for (const std::string path : {"im2col", "onednn", "onednn-plain"}) {
        if (!g.conv && path == "onednn-plain") continue;
        op_case c;
        c.layer = g.name;
        c.path = path;
        c.threads = threads;
        Shape out;
        if (g.conv) {
          auto conv = std::make_unique<Conv2d>(g.c, g.o, 5);
          conv->set_kernel(path == "onednn"         ? conv_kernel::onednn
                          : path == "onednn-plain" ? conv_kernel::onednn_plain
                                                   : conv_kernel::im2col_gemm);
          conv->set_threads(threads);
          c.params.resize(static_cast<size_t>(conv->param_count()));
          c.grads.resize(c.params.size());
          conv->bind(c.params.data(), c.grads.data());
          conv->init(rng);
          out = conv->output_shape({g.c, g.h, g.h});
          c.l = std::move(conv);
        } else {
          auto pool = std::make_unique<MaxPool2d>(2);
          pool->set_onednn(path == "onednn");
          pool->set_threads(threads);
          out = pool->output_shape({g.c, g.h, g.h});
          c.l = std::move(pool);
        }
        c.x.resize({B, g.c, g.h, g.h});
        c.dy.resize({B, out[0], out[1], out[2]});
        fill(c.x, rng);
        fill(c.dy, rng);
        cases.push_back(std::move(c));
      }
  for (int r = 0; r < rounds; ++r)
    for (auto& c : cases) {
      // The thread rule: OpenBLAS gets the threads only on the im2col path.
      set_blas_threads(c.path == "im2col" ? c.threads : 1);
      Layer& l = *c.l;
      l.forward(c.x);  // warm (and oneDNN's primitives made)
      l.backward(c.dy);
      c.fwd.push_back(time_ms(iters, [&] { l.forward(c.x); }));
      l.set_need_input_grad(false);
      c.bwd_w.push_back(time_ms(iters, [&] {
        l.forward(c.x);
        l.backward(c.dy);
      }) - c.fwd.back());
      l.set_need_input_grad(true);
      c.bwd_full.push_back(time_ms(iters, [&] {
        l.forward(c.x);
        l.backward(c.dy);
      }) - c.fwd.back());
    }
  set_blas_threads(1);
  for (auto& c : cases)
    if (auto* conv = dynamic_cast<Conv2d*>(c.l.get()); conv && c.path != "im2col")
      std::printf("%s for %s, %d thread(s): %s\n", c.path.c_str(), c.layer.c_str(), c.threads, conv->onednn_kernels().c_str());
  std::printf("| layer | threads | path | forward ms | backward-weights ms | backward-data ms | total ms |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  for (auto& c : cases) {
    std::vector<double> data, total;
    for (size_t i = 0; i < c.fwd.size(); ++i) {
      data.push_back(c.bwd_full[i] - c.bwd_w[i]);
      total.push_back(c.fwd[i] + c.bwd_full[i]);
    }
    const bool pool = c.layer.rfind("pool", 0) == 0;
    auto cell = [](const std::vector<double>& v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3f (%.3f..%.3f)", median(v), *std::min_element(v.begin(), v.end()),
                    *std::max_element(v.begin(), v.end()));
      return std::string(buf);
    };
    std::printf("| %s | %d | %s | %s | %s | %s | %s |\n", c.layer.c_str(), c.threads, c.path.c_str(),
                cell(c.fwd).c_str(), pool ? "-" : cell(c.bwd_w).c_str(),
                pool ? cell(c.bwd_full).c_str() : cell(data).c_str(), cell(total).c_str());
  }
  std::printf("loadavg at the end: %s\n", loadavg().c_str());
  return 0;
}
