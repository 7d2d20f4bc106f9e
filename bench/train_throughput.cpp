// Single-peer training throughput: the MLP 784-256-128-10, batch 64, SGD
// (lr 0.1, momentum 0.9), one thread, Fashion-MNIST; against PyTorch's
// ../shared/bench/torch_mlp.py run in the same invocation (same machine,
// same moment, same OPENBLAS_CORETYPE). samples/s counts training only
// (batch gather, forward, backward, optimizer step), as the PyTorch script.
// Prints JSON lines and a final ratio. Usage:
//   build/train_throughput [--epochs N] [--model SPEC] [--torch SCRIPT | --no-torch]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "actors/trainer.hpp"
#include "tensor/gemm.hpp"

using namespace murmur;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// samples/s of each epoch of the PyTorch script (its "epoch" JSON lines).
std::vector<double> run_torch(const std::string& script, int epochs) {
  std::string cmd = "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 " + script +
                    " --threads 1 --epochs " + std::to_string(epochs) + " 2>&1";
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

}  // namespace

int main(int argc, char** argv) {
  int epochs = 3;
  std::string model = "mlp";
  std::string torch_script = std::string(MURMUR_SOURCE_DIR) + "/../shared/bench/torch_mlp.py";
  bool with_torch = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--epochs" && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--torch" && i + 1 < argc) torch_script = argv[++i];
    else if (a == "--no-torch") with_torch = false;
    else {
      std::fprintf(stderr, "usage: %s [--epochs N] [--model SPEC] [--torch SCRIPT | --no-torch]\n", argv[0]);
      return 2;
    }
  }
  set_blas_threads(1);
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("{\"event\":\"config\",\"model\":\"%s\",\"batch\":64,\"threads\":1,\"epochs\":%d,\"OPENBLAS_CORETYPE\":\"%s\"}\n",
              model.c_str(), epochs, core ? core : "");

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
  trainer t(s, model, train, all, test);

  std::vector<double> ours;
  const int64_t steps = t.steps_per_epoch();
  for (int e = 1; e <= epochs; ++e) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t k = 0; k < steps; ++k) t.step();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto r = t.evaluate();
    ours.push_back(static_cast<double>(train->size()) / secs);
    std::printf("{\"event\":\"epoch\",\"who\":\"murmur\",\"epoch\":%d,\"train_s\":%.3f,\"samples_per_s\":%.0f,"
                "\"train_loss\":%.4f,\"test_acc\":%.4f}\n",
                e, secs, ours.back(), r.train_loss, r.test_accuracy);
    std::fflush(stdout);
  }
  // Epoch 1 pays the page faults of first touch; report the steady state.
  auto steady = [](const std::vector<double>& v) {
    return median(v.size() > 1 ? std::vector<double>(v.begin() + 1, v.end()) : v);
  };
  double m = steady(ours);
  std::printf("murmur: %.0f samples/s (median of epochs 2..%d)\n", m, epochs);
  if (!with_torch) return 0;
  auto theirs = run_torch(torch_script, epochs);
  if (theirs.empty()) {
    std::printf("PyTorch baseline did not run (%s; needs Debian's python3-torch: scripts/setup.sh --bench)\n",
                torch_script.c_str());
    return 1;
  }
  for (size_t e = 0; e < theirs.size(); ++e)
    std::printf("{\"event\":\"epoch\",\"who\":\"torch\",\"epoch\":%zu,\"samples_per_s\":%.0f}\n", e + 1, theirs[e]);
  double b = steady(theirs);
  std::printf("pytorch: %.0f samples/s (median of epochs 2..%d)\nratio murmur/pytorch: %.2fx (goal >= 1.5x)\n", b,
              epochs, m / b);
  return 0;
}
