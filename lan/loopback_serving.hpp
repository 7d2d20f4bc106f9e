// loopback_serving: a served model's stages as threads of this process on
// 127.0.0.1, with fresh keys, plus the options for a client of them: real
// stages and a real transport without starting processes (tests, and the
// latency benchmark's in-process case).
//   loopback_layout(n): keys and allowlist lines for n stages (each on a free
//   loopback port) and one client (the last line, no endpoint).
//   loopback_serving(m, layout): starts run_inference_stage for each stage
//   of the balanced cut of m; stop() (or the destructor) stops and joins
//   them, after which counters() holds each stage's counts.
#pragma once
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "lan/inference_client.hpp"
#include "lan/inference_host.hpp"
#include "lan/served_model.hpp"

namespace murmur {

struct loopback_layout {
  std::vector<curve_keys> keys;              // stages 0..n-1, then the client
  std::vector<authorized_peer> lines;        // the allowlist, same order
  size_t stages() const { return keys.empty() ? 0 : keys.size() - 1; }
  // A client that connects to stage 0 and takes answers from the stages.
  inference_client_options client_options(int timeout_ms = 60000) const;
};
loopback_layout make_loopback_layout(size_t stages);

class loopback_serving {
 public:
  loopback_serving(const served_model& m, const loopback_layout& layout);
  ~loopback_serving() { stop(); }
  loopback_serving(const loopback_serving&) = delete;
  loopback_serving& operator=(const loopback_serving&) = delete;

  void stop();
  const std::vector<inference_stage_counters>& counters() const { return counters_; }

 private:
  std::vector<std::unique_ptr<Sequential>> parts_;
  std::vector<inference_stage_settings> settings_;
  std::vector<inference_stage_counters> counters_;
  std::vector<std::thread> threads_;
  std::atomic<int> stop_{0};
};

}  // namespace murmur
