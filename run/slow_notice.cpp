#include "run/slow_notice.hpp"

#include <cstdio>

namespace murmur {

slow_notice::slow_notice(std::string what, std::ostream* out, double after_s)
    : what_(std::move(what)), out_(out), t0_(std::chrono::steady_clock::now()) {
  if (!out_) return;
  thread_ = std::thread([this, after_s] {
    std::unique_lock<std::mutex> l(mu_);
    auto next = t0_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(after_s));
    while (!cv_.wait_until(l, next, [this] { return done_; })) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
      *out_ << what_ << "... " << static_cast<int>(s) << " s" << std::endl;
      said_ = true;
      next += std::chrono::seconds(1);
    }
  });
}

slow_notice::~slow_notice() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (said_) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
    *out_ << what_ << ": done in " << buf << " s" << std::endl;
  }
}

}  // namespace murmur
