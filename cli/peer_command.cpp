// murmur peer: reads the command line and the config, then runs this
// process's peer on the LAN host (lan/peer_host.hpp).
#include <cstdio>

#include "cli/commands.hpp"
#include "lan/peer_host.hpp"
#include "protocols/membership_messages.hpp"
#include "run/config_schema.hpp"
#include "run/key_usage.hpp"

namespace murmur {

namespace {

struct peer_args {
  std::string config, listen, out, resume;
  std::vector<std::string> join, overrides;
  bool quiet = false;
};

peer_args parse_peer_args(const std::vector<std::string>& a) {
  peer_args r;
  for (size_t i = 0; i < a.size(); ++i) {
    auto value = [&](const char* flag) {
      if (i + 1 >= a.size()) throw UsageError(std::string(flag) + " needs a value");
      return a[++i];
    };
    if (a[i] == "--config") r.config = value("--config");
    else if (a[i] == "--listen") r.listen = value("--listen");
    else if (a[i] == "--join") {
      std::string list = value("--join");
      for (size_t p = 0; p <= list.size();) {
        size_t q = list.find(',', p);
        if (q == std::string::npos) q = list.size();
        if (q > p) r.join.push_back(list.substr(p, q - p));
        p = q + 1;
      }
    } else if (a[i] == "--set") r.overrides.push_back(value("--set"));
    else if (a[i] == "--out") r.out = value("--out");
    else if (a[i] == "--resume") r.resume = value("--resume");
    else if (a[i] == "--quiet") r.quiet = true;
    else throw UsageError("unexpected argument '" + a[i] + "'");
  }
  if (!r.resume.empty()) {
    // As murmur sim --resume: the run's own directory and config; the
    // interrupted run's stop point is not the resumed run's.
    if (r.config.empty()) r.config = r.resume + "/config.toml";
    if (r.out.empty()) r.out = r.resume;
    r.overrides.insert(r.overrides.begin(), "run.stop_after=0");
  }
  if (r.config.empty()) throw UsageError("peer needs --config <config.toml>");
  if (r.listen.empty()) throw UsageError("peer needs --listen tcp://ADDR:PORT (the address other peers reach)");
  if (!valid_endpoint(r.listen)) throw UsageError("--listen " + r.listen + ": expected tcp://HOST:PORT");
  for (auto& j : r.join)
    if (!valid_endpoint(j)) throw UsageError("--join " + j + ": expected tcp://HOST:PORT");
  return r;
}

}  // namespace

int peer_command(const std::vector<std::string>& args, const std::atomic<int>& stop) {
  const peer_args a = parse_peer_args(args);
  const RunConfig c = load_config(a.config, a.overrides);
  const std::string unused = check_key_usage(c, run_host::peer, a.overrides.empty() ? a.config : a.config + " and --set");
  if (!unused.empty()) std::fprintf(stderr, "murmur peer: warning: %s\n", unused.c_str());
  peer_host_options o;
  o.listen = a.listen;
  o.out = a.out.empty() ? "runs/peer-" + std::to_string(c.peer_index) : a.out;
  o.join = a.join;
  o.quiet = a.quiet;
  o.resume = a.resume;
  return run_peer_host(c, o, stop);
}

}  // namespace murmur
