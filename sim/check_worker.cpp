#include "sim/check_worker.hpp"

#include <chrono>

namespace murmur {

check_worker::check_worker(bool threaded) {
  if (threaded) thread_ = std::thread([this] { loop(); });
}

check_worker::~check_worker() {
  {
    std::lock_guard lock(m_);
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t check_worker::submit(std::function<void()> work) {
  if (!threaded()) {
    std::exception_ptr e;
    try {
      work();
    } catch (...) {
      e = std::current_exception();
    }
    std::lock_guard lock(m_);
    if (e) failed_.emplace_back(submitted_, e);
    ++finished_;
    return submitted_++;
  }
  std::lock_guard lock(m_);
  queue_.push_back(std::move(work));
  cv_.notify_all();
  return submitted_++;
}

void check_worker::wait(uint64_t id) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock lock(m_);
  cv_.wait(lock, [&] { return finished_ > id; });
  waited_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto it = failed_.begin(); it != failed_.end(); ++it)
    if (it->first == id) {
      const std::exception_ptr e = it->second;
      failed_.erase(it);
      std::rethrow_exception(e);
    }
}

void check_worker::wait_idle() {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock lock(m_);
  cv_.wait(lock, [&] { return finished_ == submitted_; });
  waited_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void check_worker::loop() {
  std::unique_lock lock(m_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    std::exception_ptr e;
    try {
      work();
    } catch (...) {
      e = std::current_exception();
    }
    work = nullptr;  // what it held (a reply, a replay) freed here, before it counts as done
    lock.lock();
    if (e) failed_.emplace_back(finished_, e);
    ++finished_;
    cv_.notify_all();
  }
}

}  // namespace murmur
