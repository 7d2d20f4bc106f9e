#include "protocols/byte_pieces.hpp"

#include <cstring>

namespace murmur {

void byte_pieces::clear() {
  own_.clear();
  list_.clear();
  resolved_.clear();
  size_ = 0;
}

std::byte* byte_pieces::extend(size_t n) {
  const size_t at = own_.size();
  own_.resize(at + n);
  if (!list_.empty() && list_.back().ext == nullptr)
    list_.back().n += n;  // own bytes follow own bytes: one piece
  else
    list_.push_back({nullptr, at, n});
  size_ += n;
  return own_.data() + at;
}

void byte_pieces::copy(const void* p, size_t n) {
  if (n) std::memcpy(extend(n), p, n);
}

void byte_pieces::refer(std::span<const std::byte> s) {
  if (s.empty()) return;
  list_.push_back({s.data(), 0, s.size()});
  size_ += s.size();
}

std::span<const std::span<const std::byte>> byte_pieces::pieces() {
  resolved_.clear();
  for (const piece& p : list_) resolved_.emplace_back(p.ext ? p.ext : own_.data() + p.own_at, p.n);
  return resolved_;
}

void byte_pieces::append_to(std::vector<std::byte>& out) {
  out.reserve(out.size() + size_);
  for (const auto& s : pieces()) out.insert(out.end(), s.begin(), s.end());
}

}  // namespace murmur
