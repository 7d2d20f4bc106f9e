// peer_identities: which peer a CurveZMQ key stands for. Peer i is the i-th
// key line of the authorized_peers file (comments and blank lines skipped),
// the rule pipeline nodes follow too. A key stands for exactly one index,
// fixed by the allowlist: nothing a peer says (a join, a member list) can
// bind a key to another index, so a frame's claimed sender is checked
// against the index its connection key owns.
// Errors throw std::runtime_error naming the file and its lines.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/curve_keys.hpp"

namespace murmur {

class peer_identities {
 public:
  peer_identities() = default;
  // `lines` in file order; `source` names the file in errors. Throws when
  // one key appears on two lines.
  explicit peer_identities(std::vector<authorized_peer> lines, std::string source = "authorized_peers");
  // Keys only, peer i = keys[i] (e.g. zmq_transport_options::authorized).
  static peer_identities from_keys(const std::vector<std::string>& keys, std::string source = "allowlist");
  static peer_identities read(const std::string& path);

  std::optional<uint32_t> index_of(std::string_view key) const;
  bool owns(std::string_view key, uint32_t index) const { return index_of(key) == index; }
  // The allowlist line of peer `index`; nullptr past the end.
  const authorized_peer* find(uint32_t index) const;
  size_t size() const { return lines_.size(); }
  const std::vector<authorized_peer>& lines() const { return lines_; }

  // Throws unless key line `index` is `public_key`, naming the file, the
  // line and `key_file` (where the process's own key came from).
  void check_self(uint32_t index, const std::string& public_key, const std::string& key_file) const;

 private:
  std::string where(uint32_t index) const;
  std::string source_ = "authorized_peers";
  std::vector<authorized_peer> lines_;
  std::map<std::string, uint32_t, std::less<>> index_of_;
};

}  // namespace murmur
