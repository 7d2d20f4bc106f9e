#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "protocols/curve_keys.hpp"

namespace murmur {

int keygen_command(const std::vector<std::string>& a) {
  std::string out;
  bool force = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--out" && i + 1 < a.size()) out = a[++i];
    else if (a[i] == "--force") force = true;
    else throw UsageError("unexpected argument '" + a[i] + "'");
  }
  if (out.empty()) throw UsageError("keygen needs --out DIR");
  if (!force && std::filesystem::exists(out + "/peer.key"))
    throw UsageError(out + "/peer.key exists already (use --force to replace it)");
  auto k = generate_curve_keys();
  write_curve_keys(out, k);
  std::printf("wrote %s/peer.key (secret, mode 0600) and %s/peer.pub\npublic key: %s\n"
              "add the public key to the authorized_peers file of every peer that should accept this one\n",
              out.c_str(), out.c_str(), k.public_key.c_str());
  return 0;
}

}  // namespace murmur
