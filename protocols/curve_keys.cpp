#include "protocols/curve_keys.hpp"

#include <sys/stat.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace murmur {

namespace {

const std::string z85_alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string read_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read key file");
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (!is_z85_key(line)) throw std::runtime_error(path + ": not a 40-character Z85 CurveZMQ key");
  return line;
}

}  // namespace

bool is_z85_key(const std::string& s) {
  return s.size() == 40 && s.find_first_not_of(z85_alphabet) == std::string::npos;
}

curve_keys generate_curve_keys() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0)
    throw std::runtime_error("zmq_curve_keypair failed: this libzmq has no CURVE support");
  return {pub, sec};
}

void write_curve_keys(const std::string& dir, const curve_keys& k) {
  std::filesystem::create_directories(dir);
  const std::string sec = dir + "/peer.key", pub = dir + "/peer.pub";
  {
    std::ofstream out(sec, std::ios::trunc);
    if (!out) throw std::runtime_error(sec + ": cannot write");
    out << k.secret_key << '\n';
  }
  ::chmod(sec.c_str(), 0600);
  std::ofstream out(pub, std::ios::trunc);
  if (!out) throw std::runtime_error(pub + ": cannot write");
  out << k.public_key << '\n';
}

curve_keys read_curve_keys(const std::string& dir) {
  curve_keys k{read_key_file(dir + "/peer.pub"), read_key_file(dir + "/peer.key")};
  char derived[41];
  if (zmq_curve_public(derived, k.secret_key.c_str()) != 0 || k.public_key != derived)
    throw std::runtime_error(dir + "/peer.pub does not belong to " + dir + "/peer.key");
  return k;
}

std::vector<std::string> read_authorized_peers(const std::string& path) {
  std::vector<std::string> keys;
  for (auto& e : read_authorized_peer_entries(path)) keys.push_back(e.public_key);
  return keys;
}

std::vector<authorized_peer> read_authorized_peer_entries(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the authorized_peers file");
  std::vector<authorized_peer> keys;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    // '#' is also a Z85 character, so only a line that starts with it is a comment.
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    auto e = line.find_first_of(" \t\r", b);
    std::string key = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (!is_z85_key(key))
      throw std::runtime_error(path + ":" + std::to_string(n) + ": '" + key +
                               "' is not a 40-character Z85 public key");
    authorized_peer entry{key, "", n, ""};
    if (e != std::string::npos) {
      auto b2 = line.find_first_not_of(" \t\r", e);
      if (b2 != std::string::npos && line.compare(b2, 6, "tcp://") == 0) {
        const auto e2 = line.find_first_of(" \t\r", b2);
        entry.endpoint = line.substr(b2, e2 - b2);
        b2 = e2 == std::string::npos ? e2 : line.find_first_not_of(" \t\r", e2);
      }
      if (b2 != std::string::npos) entry.label = line.substr(b2, line.find_last_not_of(" \t\r") + 1 - b2);
    }
    keys.push_back(entry);
  }
  return keys;
}

}  // namespace murmur
