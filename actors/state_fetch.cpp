#include "actors/state_fetch.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace murmur {

state_fetch::state_fetch(uint32_t self, uint32_t dim, std::vector<uint32_t> donors, uint64_t first_id, float max_value,
                         uint32_t retries)
    : self_(self), dim_(dim), donors_(std::move(donors)), next_id_(first_id), max_value_(max_value), retries_(retries) {
  if (donors_.empty()) throw std::invalid_argument("state_fetch: no donor");
}

state_fetch::asks state_fetch::start() {
  asks out;
  auto reqs = split_state_requests(self_, next_id_, dim_, static_cast<uint32_t>(donors_.size()), max_state_chunk_floats);
  next_id_ += reqs.size();
  for (size_t k = 0; k < reqs.size(); ++k) {
    const uint32_t donor = donors_[k % donors_.size()];
    waiting_.emplace(reqs[k].request_id, std::make_pair(donor, reqs[k]));
    asked_.insert(donor);
    out.emplace_back(donor, reqs[k]);
  }
  return out;
}

state_fetch::verdict state_fetch::on_chunk(uint32_t sender, state_chunk&& c) {
  auto it = waiting_.find(c.request_id);
  if (failed_ || it == waiting_.end() || it->second.first != sender) return verdict::unexpected;
  const state_request& r = it->second.second;
  bool ok = c.dim == dim_ && c.offset == r.offset && c.values.size() == r.length;
  if (ok && max_value_ > 0)
    for (float v : c.values)
      if (!(std::fabs(v) <= max_value_)) {
        ok = false;
        break;
      }
  if (!ok) {
    refused_.insert(sender);
    return verdict::refused;
  }
  waiting_.erase(it);
  delivered_.insert(sender);
  received_.push_back(state_slice{c.step, c.dim, c.offset, std::move(c.values)});
  return waiting_.empty() ? verdict::complete : verdict::taken;
}

state_fetch::asks state_fetch::on_deadline(const std::vector<uint32_t>& available) {
  asks out;
  if (failed_ || waiting_.empty()) return out;
  for (const auto& [id, ask] : waiting_) silent_.insert(ask.first);
  std::vector<uint32_t> good;
  for (uint32_t d : delivered_)
    if (!refused_.count(d) && !silent_.count(d)) good.push_back(d);
  for (uint32_t d : available)
    if (d != self_ && !asked_.count(d)) good.push_back(d);
  if (retries_ == 0 || good.empty()) {
    failed_ = true;
    received_.clear();
    return out;
  }
  --retries_;
  auto old = std::move(waiting_);
  waiting_.clear();
  size_t k = 0;
  for (auto& [id, ask] : old) {
    state_request r = ask.second;
    r.request_id = next_id_++;
    const uint32_t donor = good[k++ % good.size()];
    asked_.insert(donor);
    waiting_.emplace(r.request_id, std::make_pair(donor, r));
    out.emplace_back(donor, r);
  }
  return out;
}

std::set<uint32_t> state_fetch::missing_from() const {
  std::set<uint32_t> out;
  for (const auto& [id, ask] : waiting_) out.insert(ask.first);
  return out;
}

std::vector<state_slice> state_fetch::take_slices() {
  if (!complete() || failed_) return {};
  uint64_t step = UINT64_MAX;
  for (auto& s : received_) step = std::min(step, s.step);
  for (auto& s : received_) s.step = step;
  return std::move(received_);
}

}  // namespace murmur
