#include "protocols/peer_identities.hpp"

#include <stdexcept>

namespace murmur {

peer_identities::peer_identities(std::vector<authorized_peer> lines, std::string source)
    : source_(std::move(source)), lines_(std::move(lines)) {
  for (uint32_t i = 0; i < lines_.size(); ++i) {
    auto [it, fresh] = index_of_.emplace(lines_[i].public_key, i);
    if (!fresh)
      throw std::runtime_error(where(it->second) + " and " + where(i) + " have the same key " + lines_[i].public_key +
                               ": a key stands for exactly one peer (peer i is the i-th key line)");
  }
}

peer_identities peer_identities::from_keys(const std::vector<std::string>& keys, std::string source) {
  std::vector<authorized_peer> lines;
  for (auto& k : keys) lines.push_back(authorized_peer{k, "", 0, ""});
  return peer_identities(std::move(lines), std::move(source));
}

peer_identities peer_identities::read(const std::string& path) {
  return peer_identities(read_authorized_peer_entries(path), path);
}

std::optional<uint32_t> peer_identities::index_of(std::string_view key) const {
  auto it = index_of_.find(key);
  if (it == index_of_.end()) return std::nullopt;
  return it->second;
}

const authorized_peer* peer_identities::find(uint32_t index) const {
  return index < lines_.size() ? &lines_[index] : nullptr;
}

std::string peer_identities::where(uint32_t index) const {
  std::string w = source_;
  if (lines_[index].line > 0) {
    w += ':';
    w += std::to_string(lines_[index].line);
  }
  w += " (key line ";
  w += std::to_string(index);
  w += ')';
  return w;
}

void peer_identities::check_self(uint32_t index, const std::string& public_key, const std::string& key_file) const {
  if (index >= lines_.size())
    throw std::runtime_error("peer.index = " + std::to_string(index) + ", but " + source_ + " has only " +
                             std::to_string(lines_.size()) + " key line(s): peer i is the i-th key line");
  if (lines_[index].public_key != public_key) {
    auto mine = index_of(public_key);
    throw std::runtime_error(where(index) + ": peer.index = " + std::to_string(index) + ", but this line is not " +
                             "this process's key (" + key_file + ")" +
                             (mine ? ", which is " + where(*mine) : std::string(", which is not in the file")) +
                             ": peer i is the i-th key line");
  }
}

}  // namespace murmur
