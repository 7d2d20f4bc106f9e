// murmur: decentralized training. See README.md.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "run/config_schema.hpp"
#include "tensor/dataset.hpp"

namespace {

// The one piece of process-wide state: set by SIGINT/SIGTERM, read by a
// running peer so that it leaves gracefully.
std::atomic<bool> stop_signalled{false};
extern "C" void on_stop_signal(int) { stop_signalled.store(true); }

const char* usage =
    "usage: murmur <verb> [args]\n"
    "  sim <config.toml> [--set key=value]... [--out DIR] [--quiet]\n"
    "  sim --resume DIR [--set key=value]... [--quiet]   (continue a run from DIR/checkpoints)\n"
    "        simulate many peers on a virtual clock; writes DIR (default runs/<config name>)\n"
    "  sweep <config.toml> --param key=v1,v2,... [--param ...]... [--set key=value]... [--out DIR]\n"
    "        one simulation per value (per combination of several --param); prints and\n"
    "        writes sweep.csv, sweep.md (with detection and accuracy vs clean) and sweep.png\n"
    "  plot <run dir>        redraw a run's accuracy.png\n"
    "  split <config.toml> [--set key=value]...\n"
    "        per-layer cost (modelled and measured here) and the balanced pipeline.split\n"
    "  config-doc            print the table of config keys (markdown)\n"
    "  peer --config <config.toml> --listen tcp://ADDR:PORT [--join tcp://HOST:PORT[,...]]\n"
    "       [--set key=value]... [--out DIR] [--quiet]\n"
    "        one peer process on a LAN machine (ZeroMQ, CurveZMQ keys, see README)\n"
    "        with pipeline.stages > 1: pipeline node peer.index (stage s = node s, spare j =\n"
    "        node stages + j; one replica, pipeline.replicas = 1). Node i is the i-th key line\n"
    "        of peer.authorized_peers (comments and blank lines skipped), which must give its\n"
    "        tcp://HOST:PORT; peer.count = stages + spares; --join is not used\n"
    "  merge RUN_DIR... [--out DIR]\n"
    "        one summary.json and accuracy.png from the run directories of a LAN run's peers\n"
    "  keygen --out DIR [--force]\n"
    "        write a CurveZMQ key pair: DIR/peer.key (secret) and DIR/peer.pub\n"
    "  help                  this text\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(usage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string verb = args[0];
  args.erase(args.begin());
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
  try {
    if (verb == "sim") return murmur::sim_command(args);
    if (verb == "sweep") return murmur::sweep_command(args);
    if (verb == "plot") return murmur::plot_command(args);
    if (verb == "config-doc") return murmur::config_doc_command(args);
    if (verb == "keygen") return murmur::keygen_command(args);
    if (verb == "merge") return murmur::merge_command(args);
    if (verb == "split") return murmur::split_command(args);
    if (verb == "peer") {
      std::signal(SIGINT, on_stop_signal);
      std::signal(SIGTERM, on_stop_signal);
      return murmur::peer_command(args, stop_signalled);
    }
    std::fprintf(stderr, "murmur: unknown verb '%s'\n%s", verb.c_str(), usage);
    return 2;
  } catch (const murmur::UsageError& e) {
    std::fprintf(stderr, "murmur %s: %s\n%s", verb.c_str(), e.what(), usage);
    return 2;
  } catch (const murmur::ConfigError& e) {
    std::fprintf(stderr, "murmur %s: config error: %s\n", verb.c_str(), e.what());
    return 2;
  } catch (const murmur::DataError& e) {
    std::fprintf(stderr, "murmur %s: data error: %s\n", verb.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "murmur %s: error: %s\n", verb.c_str(), e.what());
    return 1;
  }
}
