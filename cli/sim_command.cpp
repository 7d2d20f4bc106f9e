// murmur sim: one simulated run (sim/simulation.hpp), its progress and summary.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/plot.hpp"
#include "run/progress_printer.hpp"
#include "run/config_schema.hpp"
#include "run/key_usage.hpp"
#include "run/verification_choice.hpp"
#include "sim/simulation.hpp"

namespace murmur {

namespace {

struct sim_args {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;
  std::string resume;
  bool quiet = false;
};

// What the options leave implicit: a resumed run continues in its own
// directory with the config it ran with; the default run directory.
void complete_sim_args(sim_args& r) {
  if (!r.resume.empty()) {
    if (r.config.empty()) r.config = r.resume + "/config.toml";
    // The interrupted run's stop point is not the resumed run's (--set may set another).
    r.overrides.insert(r.overrides.begin(), "run.stop_after=0");
    if (r.out.empty()) r.out = r.resume;
  }
  if (r.config.empty()) throw UsageError("missing <config.toml>");
  if (r.out.empty()) r.out = "runs/" + std::filesystem::path(r.config).stem().string();
}

int run_sim(sim_args a, const std::atomic<int>& stop);

}  // namespace

verb_run add_sim_verb(CLI::App& murmur, const std::atomic<int>& stop) {
  auto a = std::make_shared<sim_args>();
  CLI::App* v = murmur.add_subcommand("sim", "simulate many peers in one process on a virtual clock; writes a run directory");
  v->add_option("config", a->config, "the run's config (not needed with --resume)")->type_name("CONFIG.toml");
  v->add_option("--set", a->overrides, "override a config key; repeatable (murmur config-doc lists the keys)")
      ->type_name("KEY=VALUE");
  v->add_option("--out", a->out, "run directory (default runs/<config name>; with --resume, the resumed one)")
      ->type_name("DIR");
  v->add_option("--resume", a->resume, "continue the run in DIR from DIR/checkpoints, with DIR/config.toml")
      ->type_name("DIR");
  v->add_flag("--quiet", a->quiet, "no progress line");
  v->footer("Ctrl-C (SIGINT) or SIGTERM: writes metrics, summary.json (marked interrupted) and a checkpoint,\n"
            "then exits 130/143; --resume DIR continues. A second Ctrl-C quits at once.\n"
            "Example:\n  murmur sim configs/fmnist-gossip.toml --set train.epochs=1 --out runs/try\n"
            "  murmur sim --resume runs/try");
  return [a, &stop] { return run_sim(*a, stop); };
}

namespace {

int run_sim(sim_args a, const std::atomic<int>& stop) {
  complete_sim_args(a);
  RunConfig cfg = load_config(a.config, a.overrides);
  const std::string unused = check_key_usage(cfg, run_host::sim, a.overrides.empty() ? a.config : a.config + " and --set");
  if (!unused.empty()) std::fprintf(stderr, "murmur sim: warning: %s\n", unused.c_str());
  std::printf("murmur sim: %s, %lld peers, model %s, gossip %s (tau %g, topology %s) -> %s\n",
              a.config.c_str(), static_cast<long long>(cfg.peers), cfg.model.c_str(), cfg.mode.c_str(),
              cfg.threshold, cfg.topology.c_str(), a.out.c_str());
  std::printf("%s\n", choose_verification(cfg).line().c_str());
  std::fflush(stdout);
  progress_printer show(stdout);
  if (!a.resume.empty()) std::printf("resuming from %s/checkpoints\n", a.resume.c_str());
  sim_summary s = run_simulation(cfg, a.out, a.quiet ? std::function<void(const run_progress&)>{} : std::ref(show),
                                 a.resume, &stop);
  show.finish();
  std::string note;
  bool plotted = plot_run(a.out, &note);
  std::printf("final test accuracy: mean %.2f%%, worst %s %.2f%%\n", 100 * s.final_test_accuracy,
              s.pipeline.enabled ? "replica" : "peer", 100 * s.min_test_accuracy);
  if (s.pipeline.enabled)
    std::printf("bytes sent: %.3f MB in all (activations, gradients, checkpoints, heartbeats, gossip)\n",
                static_cast<double>(s.bytes_sent_total) / 1e6);
  else
    std::printf("bytes sent: %.3f MB in all; a dense ring all-reduce of the same %lld steps: %.3f MB (%.1fx more)\n",
                static_cast<double>(s.bytes_sent_total) / 1e6, static_cast<long long>(s.steps),
                s.dense_allreduce_bytes / 1e6,
                s.bytes_sent_total ? s.dense_allreduce_bytes / static_cast<double>(s.bytes_sent_total) : 0.0);
  std::printf("steps per %s %llu, virtual time %.2f s, wall time %.1f s, %.0f samples/s (virtual)%s\n"
              "run directory: %s (metrics.jsonl, summary.json%s)\n",
              s.pipeline.enabled ? "replica" : "peer", static_cast<unsigned long long>(s.steps), s.virtual_time_s,
              s.wall_time_s, s.samples_per_s,
              s.pipeline.enabled ? "" : (", consensus distance " + std::to_string(s.consensus_distance)).c_str(),
              a.out.c_str(), plotted ? ", accuracy.png" : "");
  if (!plotted) std::printf("note: %s\n", note.c_str());
  if (s.final_model.written)
    std::printf("final model: %s (%s; test accuracy %.2f%%); murmur eval / murmur export read it\n",
                s.final_model.file.c_str(), s.final_model.source.c_str(), 100 * s.final_model.test_accuracy);
  if (s.pipeline.enabled) {
    const auto& p = s.pipeline;
    std::printf("pipeline: %u stages x %u replicas, %u micro-batches, %s: efficiency %.3f (bound M/(M+S-1) = %.3f), "
                "%.0f samples/s (virtual)\n",
                p.stages, p.replicas, p.microbatches, p.schedule.c_str(), p.efficiency, p.bound, p.samples_per_s);
    for (const auto& q : p.per_stage)
      if (q.replica == 0)
        std::printf("  stage %u: layers [%zu, %zu), busy %.3f s, peak %zu micro-batches in flight (%.2f MB of activations)\n",
                    q.stage, q.layer_begin, q.layer_end, q.busy_s, q.peak_in_flight, q.peak_activation_mb);
    if (p.takeover.happened) {
      const auto& t = p.takeover;
      std::printf("take-over: stage %u of replica %u died at step %llu (t = %.3f s); node %u took it over at t = %.3f s "
                  "(detection %.3f s) from the step-%llu checkpoint; first step done %.3f s later; past the crash step "
                  "again %.3f s after the crash; %llu steps recomputed\n",
                  t.stage, t.replica, static_cast<unsigned long long>(t.crash_step), t.crash_s, t.new_node,
                  t.takeover_s, t.detection_s, static_cast<unsigned long long>(t.resume_step), t.time_to_resume_s,
                  t.time_to_catch_up_s, static_cast<unsigned long long>(t.lost_steps));
    }
    for (const auto& e : p.errors) std::printf("pipeline error: %s\n", e.c_str());
  }
  if (s.interrupted) {
    std::printf("interrupted: summary.json is the partial run's; continue with: murmur sim --resume %s\n",
                a.out.c_str());
    return 128 + stop.load();
  }
  return 0;
}

}  // namespace

}  // namespace murmur
