// murmur keygen: a CurveZMQ key pair for one peer.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "protocols/curve_keys.hpp"

namespace murmur {

namespace {

struct keygen_args {
  std::string out;
  bool force = false;
};

int run_keygen(const keygen_args& a) {
  if (a.out.empty()) throw UsageError("keygen needs --out DIR");
  if (!a.force && std::filesystem::exists(a.out + "/peer.key"))
    throw UsageError(a.out + "/peer.key exists already (use --force to replace it)");
  auto k = generate_curve_keys();
  write_curve_keys(a.out, k);
  std::printf("wrote %s/peer.key (secret, mode 0600) and %s/peer.pub\npublic key: %s\n"
              "add the public key to the authorized_peers file of every peer that should accept this one\n",
              a.out.c_str(), a.out.c_str(), k.public_key.c_str());
  return 0;
}

}  // namespace

verb_run add_keygen_verb(CLI::App& murmur) {
  auto a = std::make_shared<keygen_args>();
  CLI::App* v = murmur.add_subcommand("keygen", "write a CurveZMQ key pair: DIR/peer.key (secret) and DIR/peer.pub");
  v->add_option("--out", a->out, "where to write the key pair (required)")->type_name("DIR");
  v->add_flag("--force", a->force, "replace an existing key pair");
  v->footer("Example:\n  murmur keygen --out keys");
  return [a] { return run_keygen(*a); };
}

}  // namespace murmur
