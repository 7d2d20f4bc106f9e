// Latency of single-sample inference served over stage processes' transport
// (murmur serve) against local inference, measured in one run:
//   local:     the whole model's forward pass in this thread (eval mode)
//   N stages:  a request through N stages on loopback and the answer back
//              to the client: each stage a `murmur serve` process with
//              --murmur PATH, else a thread of this process with its own
//              ZeroMQ context and CurveZMQ transport
// Requests alternate between the set-ups (local, 2, 4, local, 2, 4, ...)
// after a warm-up, so a burst of load on the shared machine hits all alike.
// Prints p50 / p99 / mean per set-up and the ratios against local.
// Usage: build/serve_latency [--arch SPEC] [--stages 2,4] [--requests N] [--warmup W]
//                            [--murmur build/murmur]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <signal.h>
#include <sys/wait.h>
#include <filesystem>
#include <thread>
#include <unistd.h>
#include <vector>

#include "lan/inference_client.hpp"
#include "lan/inference_host.hpp"
#include "lan/loopback_serving.hpp"
#include "lan/served_model.hpp"

using namespace murmur;
using clock_type = std::chrono::steady_clock;

namespace {

// N stage threads serving `m`, and a client of them.
struct served_setup {
  size_t stages = 0;
  std::unique_ptr<loopback_serving> threads;  // stage threads, when not processes
  std::unique_ptr<inference_client> client;

  std::vector<pid_t> pids;
  std::filesystem::path dir;  // keys, allowlist and logs of stage processes

  // Stage processes: `murmur serve` with keys and an allowlist under dir.
  void spawn(const std::string& murmur, const std::string& arch, const std::filesystem::path& dir,
             const std::vector<curve_keys>& keys, const std::vector<authorized_peer>& lines) {
    this->dir = dir;
    std::filesystem::create_directories(dir);
    {
      std::ofstream allow(dir / "allowlist");
      for (const auto& l : lines) allow << l.public_key << " " << l.endpoint << "\n";
    }
    for (size_t s = 0; s < stages; ++s) {
      const auto kd = dir / ("keys" + std::to_string(s));
      write_curve_keys(kd.string(), keys[s]);
      std::vector<std::string> argv{murmur, "serve", "--stage", std::to_string(s), "--stages", std::to_string(stages),
                                    "--arch", arch, "--seed", "1", "--keys", kd.string(),
                                    "--allowlist", (dir / "allowlist").string(), "--quiet"};
      const auto log = dir / ("stage" + std::to_string(s) + ".log");
      const pid_t pid = fork();
      if (pid == 0) {
        std::vector<char*> a;
        for (auto& x : argv) a.push_back(x.data());
        a.push_back(nullptr);
        FILE* f = std::fopen(log.c_str(), "w");
        dup2(fileno(f), 1);
        dup2(fileno(f), 2);
        execv(a[0], a.data());
        _exit(127);
      }
      pids.push_back(pid);
    }
    for (size_t s = 0; s < stages; ++s) {  // bound: 120 s
      const auto log = dir / ("stage" + std::to_string(s) + ".log");
      for (int i = 0; i < 2400; ++i) {
        std::ifstream in(log);
        std::stringstream t;
        t << in.rdbuf();
        if (t.str().find("listening on") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

  served_setup(const served_model& m, size_t n, const std::string& murmur, const std::string& arch) : stages(n) {
    const auto ranges = served_stage_ranges(m, n, "");
    const loopback_layout layout = make_loopback_layout(n);
    std::printf("%zu stages:", n);
    for (const auto& r : ranges) std::printf(" [%zu,%zu)", r.begin, r.end);
    std::printf("\n");
    if (!murmur.empty())
      spawn(murmur, arch, std::filesystem::temp_directory_path() / ("serve_latency-" + std::to_string(getpid())) /
                              std::to_string(n), layout.keys, layout.lines);
    else
      threads = std::make_unique<loopback_serving>(m, layout);
    client = std::make_unique<inference_client>(layout.client_options());
  }
  ~served_setup() {
    client.reset();
    threads.reset();
    for (pid_t p : pids) kill(p, SIGTERM);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
    if (!dir.empty()) std::filesystem::remove_all(dir.parent_path());
  }
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string arch = "cnn", stage_list = "2,4", murmur;
  int requests = 500, warmup = 50;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    const std::string a = argv[i];
    if (a == "--arch") arch = next();
    else if (a == "--stages") stage_list = next();
    else if (a == "--requests") requests = std::stoi(next());
    else if (a == "--warmup") warmup = std::stoi(next());
    else if (a == "--murmur") murmur = next();
    else {
      std::fprintf(stderr, "usage: serve_latency [--arch SPEC] [--stages 2,4] [--requests N] [--warmup W] [--murmur PATH]\n");
      return 2;
    }
  }
  const served_model m = load_served_model({"", arch, 1, {1, 28, 28}, 10});
  std::vector<size_t> counts;
  {
    std::stringstream in(stage_list);
    for (std::string item; std::getline(in, item, ',');) counts.push_back(std::stoul(item));
  }
  std::printf("serve_latency: model %s, %d requests of 1 sample per set-up after %d warm-up, interleaved; "
              "stages are %s\n",
              arch.c_str(), requests, warmup, murmur.empty() ? "threads of this process" : "murmur serve processes");
  std::printf("loadavg before: %s\n", loadavg().c_str());
  std::vector<std::unique_ptr<served_setup>> setups;
  for (size_t n : counts) setups.push_back(std::make_unique<served_setup>(m, n, murmur, arch));

  Tensor x({1, 1, 28, 28});
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  // lat[0]: local; lat[1 + k]: setups[k].
  std::vector<std::vector<double>> lat(1 + setups.size());
  float sink = 0;
  for (int r = -warmup; r < requests; ++r) {
    for (float& v : x) v = u(gen);
    for (size_t k = 0; k < lat.size(); ++k) {
      const auto t0 = clock_type::now();
      const Tensor& y = k == 0 ? m.whole->forward(x) : setups[k - 1]->client->infer(x);
      const double us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
      sink += y[0];
      if (r >= 0) lat[k].push_back(us);
    }
  }
  std::printf("loadavg after:  %s\n", loadavg().c_str());
  const double local50 = percentile(lat[0], 0.5), local99 = percentile(lat[0], 0.99);
  std::printf("%-10s %10s %10s %10s %12s %12s\n", "set-up", "p50 us", "p99 us", "mean us", "p50/local", "p99/local");
  for (size_t k = 0; k < lat.size(); ++k) {
    double mean = 0;
    for (double v : lat[k]) mean += v;
    mean /= static_cast<double>(lat[k].size());
    const std::string name = k == 0 ? "local" : std::to_string(setups[k - 1]->stages) + " stages";
    const double p50 = percentile(lat[k], 0.5), p99 = percentile(lat[k], 0.99);
    std::printf("%-10s %10.1f %10.1f %10.1f %11.2fx %11.2fx\n", name.c_str(), p50, p99, mean, p50 / local50,
                p99 / local99);
  }
  std::printf("(checksum %g)\n", static_cast<double>(sink));
  return 0;
}
