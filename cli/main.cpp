// murmur: decentralized training. See README.md.
// The command line is CLI11's (Debian's libcli11-dev): every verb is a
// subcommand with its own --help; main reports a bad command line in one
// line and exits 2, other errors exit 1.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "run/config_schema.hpp"
#include "tensor/dataset.hpp"

namespace {

// The one process-wide variable, since a signal handler reaches nothing
// else: 0, then the number of the first SIGINT/SIGTERM. sim, sweep and peer read
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

std::string version_text() {
  std::string v = "murmur " MURMUR_VERSION;
#ifdef MURMUR_GIT_COMMIT
  v += " (git " MURMUR_GIT_COMMIT ")";
#endif
  return v;
}

// "sim, sweep, ..." for the one-line usage.
std::string verb_names(const std::map<std::string, murmur::verb_run>& verbs) {
  std::string s;
  for (const auto& v : verbs) s += (s.empty() ? "" : ", ") + v.first;
  return s;
}

// What the parser set aside as unknown, as "unknown option --foo" or
// "unexpected argument 'x'"; empty when nothing was.
std::string first_extra(const CLI::App& verb) {
  const auto rest = verb.remaining();
  if (rest.empty()) return "";
  const std::string& x = rest.front();
  return x.size() > 1 && x[0] == '-' ? "unknown option " + x : "unexpected argument '" + x + "'";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App murmur{"murmur: decentralized training with gossip, simulated (sim, sweep) or on LAN machines (peer)", "murmur"};
  murmur.set_version_flag("--version", version_text(), "print the version and exit");
  murmur.require_subcommand(1);
  murmur.footer("murmur VERB --help shows a verb's options and an example; README.md walks through a first run.");
  std::map<std::string, murmur::verb_run> verbs{
      {"sim", murmur::add_sim_verb(murmur, stop_signal)},
      {"sweep", murmur::add_sweep_verb(murmur, stop_signal)},
      {"plot", murmur::add_plot_verb(murmur)},
      {"split", murmur::add_split_verb(murmur)},
      {"config-doc", murmur::add_config_doc_verb(murmur)},
      {"peer", murmur::add_peer_verb(murmur, stop_signal)},
      {"merge", murmur::add_merge_verb(murmur)},
      {"keygen", murmur::add_keygen_verb(murmur)},
      {"serve", murmur::add_serve_verb(murmur, stop_signal)},
      {"infer", murmur::add_infer_verb(murmur)},
      {"export", murmur::add_export_verb(murmur)},
      {"eval", murmur::add_eval_verb(murmur)},
      {"predict", murmur::add_predict_verb(murmur)},
  };
  // Unknown arguments are named by first_extra, in one line, not by the parser.
  for (auto* v : murmur.get_subcommands([](CLI::App*) { return true; })) v->allow_extras();

  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fprintf(stderr, "usage: murmur VERB [options] (verbs: %s); murmur --help for more\n", verb_names(verbs).c_str());
    return 2;
  }
  // The verb, if the command line starts with one; "" for global options.
  const std::string verb = args[0].empty() || args[0][0] == '-' ? "" : args[0];
  if (verb == "help") {  // murmur help [VERB]
    const bool one = args.size() > 1 && verbs.count(args[1]);
    std::fputs((one ? murmur.get_subcommand(args[1])->help("murmur") : murmur.help()).c_str(), stdout);
    return 0;
  }
  if (!verb.empty() && !verbs.count(verb)) {
    std::fprintf(stderr, "murmur: unknown verb '%s' (verbs: %s); see murmur --help\n", verb.c_str(),
                 verb_names(verbs).c_str());
    return 2;
  }
  const std::string who = verb.empty() ? "murmur" : "murmur " + verb;
  auto usage_error = [&who](const std::string& what) {
    std::fprintf(stderr, "%s: %s; see %s --help\n", who.c_str(), what.c_str(), who.c_str());
    return 2;
  };
  if (verb.empty() && args[0] != "-h" && args[0] != "--help" && args[0] != "--version")
    return usage_error("unknown option " + args[0] + " (expected a verb: " + verb_names(verbs) + ")");
  try {
    murmur.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return murmur.exit(e);  // --help, --version
    return usage_error(e.what());
  }
  if (verb.empty()) return usage_error("expected a verb");
  if (const std::string extra = first_extra(*murmur.get_subcommand(verb)); !extra.empty()) return usage_error(extra);
  try {
    if (verb == "sim" || verb == "sweep" || verb == "peer" || verb == "serve") install_stop_signals();
    return verbs.at(verb)();
  } catch (const murmur::UsageError& e) {
    return usage_error(e.what());
  } catch (const murmur::ConfigError& e) {
    std::fprintf(stderr, "%s: config error: %s\n", who.c_str(), e.what());
    return 2;
  } catch (const murmur::DataError& e) {
    std::fprintf(stderr, "%s: data error: %s\n", who.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", who.c_str(), e.what());
    return 1;
  }
}
