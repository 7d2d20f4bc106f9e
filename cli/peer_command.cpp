// murmur peer: reads the command line and the config, then runs this
// process's peer on the LAN host (lan/peer_host.hpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

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

// What the options leave implicit (as murmur sim --resume, a resumed peer
// continues in its own directory with its own config, and the interrupted
// run's stop point is not the resumed run's), then what the parser cannot
// check: the required options, the endpoints' form.
void complete_peer_args(peer_args& r) {
  if (!r.resume.empty()) {
    if (r.config.empty()) r.config = r.resume + "/config.toml";
    if (r.out.empty()) r.out = r.resume;
    r.overrides.insert(r.overrides.begin(), "run.stop_after=0");
  }
  if (r.config.empty()) throw UsageError("peer needs --config <config.toml>");
  if (r.listen.empty()) throw UsageError("peer needs --listen tcp://ADDR:PORT (the address other peers reach)");
  if (!valid_endpoint(r.listen)) throw UsageError("--listen " + r.listen + ": expected tcp://HOST:PORT");
  for (auto& j : r.join)
    if (!j.empty() && !valid_endpoint(j)) throw UsageError("--join " + j + ": expected tcp://HOST:PORT");
}

int run_peer(const peer_args& a, const std::atomic<int>& stop);

}  // namespace

verb_run add_peer_verb(CLI::App& murmur, const std::atomic<int>& stop) {
  auto a = std::make_shared<peer_args>();
  CLI::App* v = murmur.add_subcommand("peer", "one peer process on a LAN machine (ZeroMQ, CurveZMQ keys; see README)");
  v->add_option("--config", a->config, "the run's config, the same on every machine (required unless --resume)")->type_name("CONFIG.toml");
  v->add_option("--listen", a->listen, "the address other peers reach this one at (required)")->type_name("tcp://ADDR:PORT");
  v->add_option("--join", a->join, "peers to join through, comma-separated or repeated (data-parallel runs only)")
      ->type_name("tcp://HOST:PORT[,...]")
      ->delimiter(',');
  v->add_option("--set", a->overrides, "override a config key; repeatable (e.g. --set peer.index=1)")->type_name("KEY=VALUE");
  v->add_option("--out", a->out, "run directory (default runs/peer-<peer.index>; with --resume, the resumed one)")
      ->type_name("DIR");
  v->add_option("--resume", a->resume,
                "continue this data-parallel peer's run in DIR from DIR/checkpoints (--config defaults to "
                "DIR/config.toml); not for pipeline nodes")
      ->type_name("DIR");
  v->add_flag("--quiet", a->quiet, "no progress line");
  v->footer(
      "With pipeline.stages > 1 the process is pipeline node peer.index: node r * stages + s hosts stage s of\n"
      "replica r, node replicas * stages + j is spare j (pipeline.replicas >= 1 replicas, each a pipeline).\n"
      "Node i is the i-th key line of peer.authorized_peers (comments and blank lines skipped), which must give\n"
      "its tcp://HOST:PORT; peer.count = replicas * stages + spares; --join is not used.\n\n"
      "Ctrl-C (SIGINT) or SIGTERM: the peer leaves gracefully, writes metrics, summary.json (marked interrupted)\n"
      "and, data-parallel, a checkpoint, then exits 130/143; --resume DIR continues. A second Ctrl-C quits at once.\n\n"
      "Example:\n"
      "  murmur peer --config configs/lan-3.toml --listen tcp://10.0.0.2:5555 --join tcp://10.0.0.1:5555 "
      "--set peer.index=1");
  return [a, &stop] {
    complete_peer_args(*a);
    return run_peer(*a, stop);
  };
}

namespace {

int run_peer(const peer_args& a, const std::atomic<int>& stop) {
  const RunConfig c = load_config(a.config, a.overrides);
  const std::string unused = check_key_usage(c, run_host::peer, a.overrides.empty() ? a.config : a.config + " and --set");
  if (!unused.empty()) std::fprintf(stderr, "murmur peer: warning: %s\n", unused.c_str());
  peer_host_options o;
  o.listen = a.listen;
  o.out = a.out.empty() ? "runs/peer-" + std::to_string(c.peer_index) : a.out;
  for (const auto& j : a.join)
    if (!j.empty()) o.join.push_back(j);  // "a,,b" as the hand-written parser read it
  o.quiet = a.quiet;
  o.resume = a.resume;
  return run_peer_host(c, o, stop);
}

}  // namespace

}  // namespace murmur
