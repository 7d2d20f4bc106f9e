// CurveZMQ identities of peers: key pairs and the authorized_peers allowlist.
// Keys are Z85 text, 40 characters each (ZeroMQ's encoding).
//   DIR/peer.pub      the public key, one line (give it to the other peers)
//   DIR/peer.key      the secret key, one line, mode 0600
//   authorized_peers  one public key per line, optionally followed by the
//                     peer's tcp://HOST:PORT and a label; lines starting with
//                     '#' and blank lines are ignored. A peer accepts only
//                     these keys; --join addresses find their key here.
//                     Peer i IS the i-th key line: a key stands for exactly
//                     one peer index (peer_identities.hpp), and `murmur peer`
//                     refuses to start unless its own key is line peer.index.
// Errors throw std::runtime_error naming the file and, for lists, the line.
#pragma once
#include <string>
#include <vector>

namespace murmur {

struct curve_keys {
  std::string public_key, secret_key;
};

// One allowlist line: the key, and where that peer listens if the line says.
struct authorized_peer {
  std::string public_key;
  std::string endpoint;  // "tcp://HOST:PORT" or empty
  int line = 0;          // 1-based line in the file it was read from; 0 if none
  std::string label;     // the rest of the line after the key and endpoint (trimmed), or empty
};

bool is_z85_key(const std::string& s);
curve_keys generate_curve_keys();
void write_curve_keys(const std::string& dir, const curve_keys& k);
curve_keys read_curve_keys(const std::string& dir);
std::vector<std::string> read_authorized_peers(const std::string& path);
std::vector<authorized_peer> read_authorized_peer_entries(const std::string& path);

}  // namespace murmur
