// Single-peer training throughput against PyTorch, interleaved: murmur and
// the PyTorch script run in turn (A B A B ...) in the same invocation (same
// machine, same moment, same OPENBLAS_CORETYPE), --repeats times, each run a
// fresh model trained for --epochs epochs; a run's rate is the median of its
// epochs 2..E (epoch 1 pays first-touch page faults and oneDNN's JIT).
// Models: "mlp" (784-256-128-10, ../shared/bench/torch_mlp.py, the default)
// or "cnn" (configs/fmnist-cnn.toml's net, torch_cnn.py); batch 64, SGD
// lr 0.1 momentum 0.9, Fashion-MNIST. samples/s counts training only (batch
// gather, forward, backward, optimizer step), as the PyTorch scripts.
// --threads N: murmur's thread rule (tensor/cpu_threads.hpp), PyTorch's
// --threads N. --conv-kernel im2col runs Conv2d and MaxPool2d on murmur's
// own loops instead of oneDNN, onednn-nchw on oneDNN with every activation
// nchw between layers (no channel-blocked chains, Sequential::plan_layouts),
// for docs/cpu_kernels.md.
// Prints JSON lines per epoch and per run, then medians, the spread
// (min..max), the ratio of medians, each pair's ratio, and the load average.
// Usage:
//   build/train_throughput [--model mlp|cnn|SPEC] [--threads N] [--epochs E] [--repeats R]
//                          [--torch SCRIPT | --no-torch] [--conv-kernel onednn|onednn-nchw|im2col]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "actors/trainer.hpp"
#include "tensor/conv2d.hpp"
#include "tensor/cpu_threads.hpp"
#include "tensor/maxpool2d.hpp"

using namespace murmur;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median of epochs 2..E (all of them if there is one).
double steady(const std::vector<double>& v) {
  return median(v.size() > 1 ? std::vector<double>(v.begin() + 1, v.end()) : v);
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// samples/s of each epoch of the PyTorch script (its "epoch" JSON lines).
std::vector<double> run_torch(const std::string& script, int epochs, int threads) {
  const std::string n = std::to_string(threads);
  std::string cmd = "OPENBLAS_NUM_THREADS=" + n + " OMP_NUM_THREADS=" + n + " /usr/bin/python3 " + script +
                    " --threads " + n + " --epochs " + std::to_string(epochs) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::vector<double> rates;
  if (!p) return rates;
  std::array<char, 8192> line;
  while (fgets(line.data(), line.size(), p)) {
    std::string l(line.data());
    if (l.find("\"event\": \"epoch\"") == std::string::npos) {
      if (l.find("Error") != std::string::npos || l.find("error") != std::string::npos) std::fputs(l.c_str(), stderr);
      continue;
    }
    auto k = l.find("\"samples_per_s\": ");
    if (k != std::string::npos) rates.push_back(std::atof(l.c_str() + k + 17));
  }
  pclose(p);
  return rates;
}

struct summary {
  double med = 0, lo = 0, hi = 0;
};
summary summarise(const std::vector<double>& v) {
  summary s;
  if (v.empty()) return s;
  s.med = median(v);
  s.lo = *std::min_element(v.begin(), v.end());
  s.hi = *std::max_element(v.begin(), v.end());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int epochs = 3, repeats = 3, threads = 1;
  std::string model = "mlp", torch_script, conv_kernel = "onednn";
  bool with_torch = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--epochs" && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--torch" && i + 1 < argc) torch_script = argv[++i];
    else if (a == "--no-torch") with_torch = false;
    else if (a == "--conv-kernel" && i + 1 < argc) conv_kernel = argv[++i];
    else {
      std::fprintf(stderr,
                   "usage: %s [--model mlp|cnn|SPEC] [--threads N] [--epochs E] [--repeats R] "
                   "[--torch SCRIPT | --no-torch] [--conv-kernel onednn|onednn-nchw|im2col]\n",
                   argv[0]);
      return 2;
    }
  }
  if (epochs < 1 || repeats < 1 || threads < 1 || (conv_kernel != "onednn" && conv_kernel != "onednn-nchw" && conv_kernel != "im2col")) {
    std::fprintf(stderr,
                 "train_throughput: --epochs, --repeats, --threads must be >= 1; "
                 "--conv-kernel onednn|onednn-nchw|im2col\n");
    return 2;
  }
  if (torch_script.empty())
    torch_script = std::string(MURMUR_SOURCE_DIR) + "/../shared/bench/" + (model == "cnn" ? "torch_cnn.py" : "torch_mlp.py");
  const double goal = model == "cnn" ? 1.2 : 1.5;
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("{\"event\":\"config\",\"model\":\"%s\",\"batch\":64,\"threads\":%d,\"epochs\":%d,\"repeats\":%d,"
              "\"conv_kernel\":\"%s\",\"OPENBLAS_CORETYPE\":\"%s\",\"loadavg\":\"%s\"}\n",
              model.c_str(), threads, epochs, repeats, conv_kernel.c_str(), core ? core : "", loadavg().c_str());
  std::fflush(stdout);

  auto train = std::make_shared<const Dataset>(load_fashion_mnist("/usr/share/datasets/fashion-mnist", true));
  auto test = std::make_shared<const Dataset>(load_fashion_mnist("/usr/share/datasets/fashion-mnist", false));
  train_settings s;
  s.lr = 0.1;
  s.cosine = false;
  s.momentum = 0.9;
  s.batch = 64;
  s.data_seed = 0;
  std::vector<int64_t> all(static_cast<size_t>(train->size()));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);

  std::vector<double> ours, theirs;
  for (int r = 1; r <= repeats; ++r) {
    // A: murmur, a fresh model as the script's fresh process.
    trainer t(s, model, train, all, test);
    Sequential& m = *t.model();
    if (conv_kernel == "im2col")
      for (size_t i = 0; i < m.layer_count(); ++i) {
        if (auto* c = dynamic_cast<Conv2d*>(&m.layer(i))) c->set_kernel(conv_kernel::im2col_gemm);
        if (auto* p = dynamic_cast<MaxPool2d*>(&m.layer(i))) p->set_onednn(false);
      }
    if (conv_kernel == "onednn-nchw") m.set_channel_blocking(false);
    set_model_threads(m, threads);
    std::vector<double> rates;
    const int64_t steps = t.steps_per_epoch();
    for (int e = 1; e <= epochs; ++e) {
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t k = 0; k < steps; ++k) t.step();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      auto ev = t.evaluate();
      rates.push_back(static_cast<double>(train->size()) / secs);
      std::printf("{\"event\":\"epoch\",\"who\":\"murmur\",\"repeat\":%d,\"epoch\":%d,\"train_s\":%.3f,"
                  "\"samples_per_s\":%.0f,\"train_loss\":%.4f,\"test_acc\":%.4f}\n",
                  r, e, secs, rates.back(), ev.train_loss, ev.test_accuracy);
      std::fflush(stdout);
    }
    ours.push_back(steady(rates));
    std::printf("{\"event\":\"run\",\"who\":\"murmur\",\"repeat\":%d,\"samples_per_s\":%.0f,\"loadavg\":\"%s\"}\n", r,
                ours.back(), loadavg().c_str());
    std::fflush(stdout);
    if (!with_torch) continue;
    // B: PyTorch.
    auto tr = run_torch(torch_script, epochs, threads);
    if (tr.empty()) {
      std::printf("PyTorch baseline did not run (%s; needs Debian's python3-torch: scripts/setup.sh --bench)\n",
                  torch_script.c_str());
      return 1;
    }
    for (size_t e = 0; e < tr.size(); ++e)
      std::printf("{\"event\":\"epoch\",\"who\":\"torch\",\"repeat\":%d,\"epoch\":%zu,\"samples_per_s\":%.0f}\n", r,
                  e + 1, tr[e]);
    theirs.push_back(steady(tr));
    std::printf("{\"event\":\"run\",\"who\":\"torch\",\"repeat\":%d,\"samples_per_s\":%.0f,\"loadavg\":\"%s\"}\n", r,
                theirs.back(), loadavg().c_str());
    std::fflush(stdout);
  }
  const summary a = summarise(ours);
  std::printf("murmur:  median %.0f samples/s over %d runs (spread %.0f..%.0f)\n", a.med, repeats, a.lo, a.hi);
  if (!with_torch) {
    std::printf("loadavg at the end: %s\n", loadavg().c_str());
    return 0;
  }
  const summary b = summarise(theirs);
  std::vector<double> pairs;
  for (size_t i = 0; i < ours.size(); ++i) pairs.push_back(ours[i] / theirs[i]);
  const summary p = summarise(pairs);
  std::printf("pytorch: median %.0f samples/s over %d runs (spread %.0f..%.0f)\n", b.med, repeats, b.lo, b.hi);
  std::printf("ratio murmur/pytorch (%s, %d thread%s): %.2fx of medians; pairs %.2f..%.2f, median %.2f (goal >= %.1fx)\n",
              model.c_str(), threads, threads == 1 ? "" : "s", a.med / b.med, p.lo, p.hi, p.med, goal);
  std::printf("loadavg at the end: %s\n", loadavg().c_str());
  return 0;
}
