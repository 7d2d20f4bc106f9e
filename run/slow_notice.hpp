// slow_notice: says what a possibly slow step (data loading) is doing, but
// only if it is slow. From `after_s` on it prints "WHAT... N s" to `out`
// once a second, and "WHAT: done in X s" when it is destroyed; a step that
// ends sooner prints nothing. out = nullptr: silent (--quiet).
#pragma once
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

namespace murmur {

class slow_notice {
 public:
  slow_notice(std::string what, std::ostream* out, double after_s = 1.0);
  ~slow_notice();
  slow_notice(const slow_notice&) = delete;
  slow_notice& operator=(const slow_notice&) = delete;

 private:
  std::string what_;
  std::ostream* out_;
  std::chrono::steady_clock::time_point t0_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, said_ = false;
  std::thread thread_;
};

}  // namespace murmur
