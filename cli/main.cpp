// murmur: decentralized training. See README.md.
#include <unistd.h>

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

// The one process-wide variable, since a signal handler reaches nothing
// else: 0, then the number of the first SIGINT/SIGTERM. sim and peer read
// it between steps, wind down (metrics, summary, checkpoint) and exit
// 128 + it; a second signal quits at once. The handler does nothing more.
std::atomic<int> stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int sig) {
  int none = 0;
  if (stop_signal.compare_exchange_strong(none, sig)) {
    static const char note[] = "murmur: stopping after the current step (again to quit at once)\n";
    [[maybe_unused]] auto n = write(STDERR_FILENO, note, sizeof note - 1);
    return;
  }
  _exit(128 + sig);
}

// A signal ignored on entry stays ignored, as shells and Python do: a
// script's background job (`murmur sim ... &`) is not meant to stop on the
// script's Ctrl-C.
void install_stop_signals() {
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction now {};
    sigaction(sig, nullptr, &now);
    if (now.sa_handler == SIG_IGN) continue;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, nullptr);
  }
}

const char* usage =
    "usage: murmur <verb> [args]\n"
    "  sim <config.toml> [--set key=value]... [--out DIR] [--quiet]\n"
    "  sim --resume DIR [--set key=value]... [--quiet]   (continue a run from DIR/checkpoints)\n"
    "        simulate many peers on a virtual clock; writes DIR (default runs/<config name>)\n"
    "        Ctrl-C (SIGINT) or SIGTERM: writes what it has and a checkpoint, exits 130/143;\n"
    "        --resume DIR continues (sim and data-parallel peer alike)\n"
    "  sweep <config.toml> --param key=v1,v2,... [--param ...]... [--set key=value]... [--out DIR]\n"
    "        one simulation per value (per combination of several --param); prints and\n"
    "        writes sweep.csv, sweep.md (with detection and accuracy vs clean) and sweep.png\n"
    "  plot <run dir>        redraw a run's accuracy.png\n"
    "  split <config.toml> [--set key=value]...\n"
    "        per-layer cost (modelled and measured here) and the balanced pipeline.split\n"
    "  config-doc            print the table of config keys (markdown)\n"
    "  peer --config <config.toml> --listen tcp://ADDR:PORT [--join tcp://HOST:PORT[,...]]\n"
    "       [--set key=value]... [--out DIR] [--quiet] [--resume DIR]\n"
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
    if (verb == "sim") {
      install_stop_signals();
      return murmur::sim_command(args, stop_signal);
    }
    if (verb == "sweep") return murmur::sweep_command(args);
    if (verb == "plot") return murmur::plot_command(args);
    if (verb == "config-doc") return murmur::config_doc_command(args);
    if (verb == "keygen") return murmur::keygen_command(args);
    if (verb == "merge") return murmur::merge_command(args);
    if (verb == "split") return murmur::split_command(args);
    if (verb == "peer") {
      install_stop_signals();
      return murmur::peer_command(args, stop_signal);
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
