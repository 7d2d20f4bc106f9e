// Cost of step verification, in two parts (issue 14's goals):
//
// e2e:    `murmur sim CONFIG` (default configs/fmnist-gossip.toml) with
//         `--set verify.rate=R` (verify.scheme = auto: segments where they
//         run; --set verify.scheme=step for steps) against the same run
//         with `--set verify.rate=0` (no verification),
//         interleaved (off, on, off, on, ...), --repeats pairs. Per side the
//         median wall time, CPU time (user + system of the child) and peak
//         memory (the child's max RSS, from wait4), and on/off ratios.
//         Goals: wall <= 1.10x, memory <= 1.1x.
// commit: one training step against one commitment (step_transcript_log::
//         record(): copying and SHA-256-hashing the step's transcript), per
//         step, in this thread's CPU time (other load on a shared machine
//         does not count; wall time is printed too), and a verifier's check
//         of one committed layer (hashes + element-wise parts + Freivalds),
//         with the check overhead at --rate x --neighbours. Goal: commit
//         <= 5 % of a batch-32 MLP step.
// segment: the amortised commitment (actors/segment_log.hpp) of peer 0 in a
//         ring of --peers peers with configs/fmnist-gossip.toml's gossip
//         (grid threshold 0.01, gamma 0.5): per step, interleaved A B C A
//         B C, one training step (A), a boundary snapshot and hash (B: the
//         log runs with K = 1, so every step is a boundary; less the
//         one-step records digest that close adds) and today's per-step
//         record() (C), in thread CPU time, and that step's records (frames
//         received, mix, publish, sent), each call timed with the TSC
//         (calibrated; no system call). The records digest (BLAKE3 at the
//         close) is timed afterwards over each run of K timed steps'
//         records. For each K of --segment (default 16 32 64 128) it prints
//         median(B)/K + median(records) + median(digest)/K against
//         median(A), also with the records less the bench's own clock reads
//         around each record call (measured), the bytes recorded per step,
//         and a boundary's split into copy
//         (save_checkpoint + save_replay_state) and hash
//         (segment_state_digest), timed alone on the final state. --data
//         DIR trains on Fashion-MNIST from DIR instead of synthetic data.
// Prints the commands it runs, /proc/loadavg before each part, a table per
// part and one summary line per figure. Timings are not assertions.
// Usage: build/verify_overhead [--part all|e2e|commit|segment] [--rate R] [--repeats N]
//          [--config FILE] [--murmur PATH] [--set KEY=VALUE ...]
//          [--model SPEC] [--batch B ...] [--steps N] [--neighbours D]
//          [--rounds K] [--keep S] [--segment K ...] [--peers N] [--data DIR]
// (all: e2e and commit; segment runs only when asked.)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "actors/gossip_state.hpp"
#include "actors/segment_log.hpp"
#include "actors/trainer.hpp"
#include "actors/transcript_check.hpp"
#include "tensor/gemm.hpp"

using namespace murmur;

namespace {

struct options {
  std::string part = "all";
  double rate = 0.005;  // the rate issue 14 quotes
  int repeats = 3;
  std::string config = std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml";
  std::string murmur;
  std::vector<std::string> sets;
  std::string model = "mlp";
  std::vector<int64_t> batches;
  int steps = 500, rounds = 8, neighbours = 2;  // 2: the ring of fmnist-gossip.toml
  size_t keep = 4;
  std::vector<uint64_t> segments;  // K values of --part segment
  int peers = 3;
  std::string data;  // Fashion-MNIST directory; empty: synthetic
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void print_loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string l1, l5, l15;
  f >> l1 >> l5 >> l15;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("loadavg %s %s %s on %u cores%s\n", l1.c_str(), l5.c_str(), l15.c_str(), cores,
              !l1.empty() && std::stod(l1) > cores ? " (busy machine: wall times are noisy, CPU times less so)" : "");
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// A wall clock for calls of a few microseconds, read without a system call
// (the thread-CPU clock is one on this VM, microseconds a read): the TSC on
// x86-64 (invariant where /proc/cpuinfo says constant_tsc, nonstop_tsc),
// calibrated against steady_clock over the whole run; elsewhere
// steady_clock itself. Wall time counts preemption too; a call this short
// is rarely preempted and the medians drop those that are.
struct tick_clock {
#if defined(__x86_64__)
  static constexpr const char* name = "the TSC (rdtsc), calibrated against CLOCK_MONOTONIC over the run";
  static uint64_t now() { return __rdtsc(); }
#else
  static constexpr const char* name = "steady_clock (CLOCK_MONOTONIC, vDSO)";
  static uint64_t now() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
#endif
  uint64_t t0 = now();
  std::chrono::steady_clock::time_point c0 = std::chrono::steady_clock::now();
  // Seconds per tick from the ticks and steady_clock time since construction.
  double seconds_per_tick() const {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    return s / static_cast<double>(std::max<uint64_t>(1, now() - t0));
  }
};

std::string murmur_next_to_this_binary() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot read /proc/self/exe to find murmur; pass --murmur PATH");
  return (self.parent_path() / "murmur").string();
}

struct child_run {
  double wall_s = 0, cpu_s = 0, max_rss_mib = 0;
};

// Runs argv with stdout and stderr to `log`; throws naming the command and
// the log if it fails.
child_run run_child(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  std::fflush(stdout);  // else the child inherits and re-writes what is buffered
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (!std::freopen(log.c_str(), "w", stdout) || !std::freopen(log.c_str(), "a", stderr)) _exit(126);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid) throw std::runtime_error("wait4 failed");
  child_run r;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  r.max_rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;  // KiB on Linux
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(argv[0] + " failed (status " + std::to_string(status) + "), see " + log);
  return r;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

void end_to_end(const options& o) {
  std::printf("\n## end to end: murmur sim, verification off vs verify.rate = %g, %d interleaved pairs\n", o.rate,
              o.repeats);
  print_loadavg();
  const std::string murmur = o.murmur.empty() ? murmur_next_to_this_binary() : o.murmur;
  char tmpl[] = "/tmp/verify_overhead.XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("cannot create a directory under /tmp");
  const std::filesystem::path dir = tmpl;
  auto command = [&](bool on, int rep) {
    std::vector<std::string> a = {murmur, "sim", o.config, "--quiet", "--out",
                                  (dir / ((on ? "on-" : "off-") + std::to_string(rep))).string()};
    for (const auto& s : o.sets) a.insert(a.end(), {"--set", s});
    // Off is explicit: verify.rate's default (auto) verifies where it can.
    std::ostringstream r;
    r << "verify.rate=" << (on ? o.rate : 0.0);
    a.insert(a.end(), {"--set", r.str()});
    return a;
  };
  std::printf("off: %s\non:  %s\n", joined(command(false, 0)).c_str(), joined(command(true, 0)).c_str());
  std::vector<double> wall[2], cpu[2], rss[2];
  for (int rep = 0; rep < o.repeats; ++rep)
    for (int on = 0; on < 2; ++on) {
      const child_run r = run_child(command(on, rep), (dir / "log.txt").string());
      wall[on].push_back(r.wall_s);
      cpu[on].push_back(r.cpu_s);
      rss[on].push_back(r.max_rss_mib);
      std::printf("  %s #%d: %.2f s wall, %.2f s CPU, %.0f MiB max RSS\n", on ? "on " : "off", rep + 1, r.wall_s,
                  r.cpu_s, r.max_rss_mib);
      std::fflush(stdout);
    }
  std::filesystem::remove_all(dir);
  print_loadavg();
  const double w0 = median(wall[0]), w1 = median(wall[1]), c0 = median(cpu[0]), c1 = median(cpu[1]);
  const double m0 = median(rss[0]), m1 = median(rss[1]);
  std::printf("| | off | on (rate %g) | on/off |\n|---|---|---|---|\n", o.rate);
  std::printf("| median wall s | %.2f | %.2f | %.3f |\n", w0, w1, w1 / w0);
  std::printf("| median CPU s | %.2f | %.2f | %.3f |\n", c0, c1, c1 / c0);
  std::printf("| median max RSS MiB | %.0f | %.0f | %.3f |\n", m0, m1, m1 / m0);
  std::printf("summary: e2e wall time with verification at rate %g: %.2fx (goal <= 1.10x)\n", o.rate, w1 / w0);
  std::printf("summary: e2e CPU time with verification at rate %g: %.2fx\n", o.rate, c1 / c0);
  std::printf("summary: e2e peak memory with verification at rate %g: %.2fx (goal <= 1.1x)\n", o.rate, m1 / m0);
}

// Returns false if an honest layer failed its check (a bug, not a timing).
bool commitment_cost(const options& o) {
  std::printf("\n## commitment per step: step_transcript_log::record() vs one training step (%s, 1 thread)\n",
              o.model.c_str());
  std::printf("command: build/verify_overhead --part commit --model %s --steps %d", o.model.c_str(), o.steps);
  for (int64_t b : o.batches) std::printf(" --batch %lld", static_cast<long long>(b));
  std::printf(" --rate %g --neighbours %d --rounds %d --keep %zu\n", o.rate, o.neighbours, o.rounds, o.keep);
  print_loadavg();
  set_blas_threads(1);
  auto data = std::make_shared<const Dataset>(make_synthetic(8192, 10, 28, 1));
  std::vector<int64_t> shard(static_cast<size_t>(data->size()));
  for (size_t i = 0; i < shard.size(); ++i) shard[i] = static_cast<int64_t>(i);
  using clock = std::chrono::steady_clock;
  auto wall = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };
  std::printf("| batch | KiB hashed | step ms | commit ms | commit/step | commit/step (wall) | check ms (mean over layers) "
              "| check/step | checks at rate %g x %d neighbours |\n|---|---|---|---|---|---|---|---|---|\n",
              o.rate, o.neighbours);
  std::vector<std::string> summaries;
  for (int64_t b : o.batches) {
    train_settings ts;
    ts.batch = b;
    ts.total_steps = o.steps;
    ts.init_seed = 1;
    // plain: steps without transcripts (the baseline); committed: the same
    // steps recorded into `log` as a peer does (its commits are checked
    // below). Each iteration times a plain step, then a record() into
    // `timed` right after the committed trainer's own step (its buffers just
    // written, as in a real step), so both see the same cache state.
    trainer plain(ts, o.model, data, shard, data);
    trainer committed(ts, o.model, data, shard, data);
    auto log = std::make_shared<step_transcript_log>(0, *committed.model(), o.keep);
    committed.enable_transcripts(log, {}, {}, 1);
    step_transcript_log timed(0, *committed.model(), o.keep);
    std::vector<int64_t> indices(static_cast<size_t>(b));
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
    for (int i = 0; i < 5; ++i) {
      plain.step();
      committed.step();
      timed.record(static_cast<uint64_t>(i + 1), *committed.model(), indices);
    }
    double step_cpu = 0, commit_cpu = 0, step_wall = 0, commit_wall = 0;
    for (int i = 0; i < o.steps; ++i) {
      double c = thread_cpu_seconds();
      auto w = clock::now();
      plain.step();
      step_cpu += thread_cpu_seconds() - c;
      step_wall += wall(w);
      committed.step();
      c = thread_cpu_seconds();
      w = clock::now();
      timed.record(static_cast<uint64_t>(i + 6), *committed.model(), indices);
      commit_cpu += thread_cpu_seconds() - c;
      commit_wall += wall(w);
    }
    const double step_s = step_cpu / o.steps, commit_s = commit_cpu / o.steps;

    double hashed = 0;  // bytes a commitment hashes
    for (const auto& l : committed_layers(*committed.model()))
      hashed += 4.0 * static_cast<double>((l.data_input ? 0 : b * l.in) + 2 * l.out * l.in + 2 * l.out + 2 * b * l.out);
    hashed += 4.0 * static_cast<double>(b) * static_cast<double>(committed_layers(*committed.model()).size());

    transcript_checker checker(committed_layers(*committed.model()), data, o.rounds);
    Rng rng(3);
    const transcript_commit c = *committed.last_commit();
    const uint64_t last = committed.steps_done();
    double check_total = 0;
    int checks = 0;
    for (int rep = 0; rep < 5; ++rep)
      for (uint16_t l = 0; l < c.layers.size(); ++l) {
        tensor_reply r;
        log->reply(last, l, 1, r);
        const double a = thread_cpu_seconds();
        const auto outcome = checker.check(c.layers[l], r, shard, rng);
        check_total += thread_cpu_seconds() - a;
        ++checks;
        if (outcome != check_outcome::passed) {
          std::fprintf(stderr, "honest layer %u failed its check: %s\n", l, std::string(to_string(outcome)).c_str());
          return false;
        }
      }
    const double check_s = check_total / checks;
    std::printf("| %lld | %.0f | %.3f | %.3f | %.1f %% | %.1f %% | %.3f | %.1f %% | %.2f %% |\n",
                static_cast<long long>(b), hashed / 1024, 1e3 * step_s, 1e3 * commit_s, 100 * commit_s / step_s,
                100 * commit_wall / step_wall, 1e3 * check_s, 100 * check_s / step_s,
                100 * o.rate * o.neighbours * check_s / step_s);
    char line[400];
    std::snprintf(line, sizeof line,
                  "summary: commitment at batch %lld: %.3f ms per step against a %.3f ms step = %.1f %% "
                  "(goal <= 5 %%); %.0f KiB hashed = %.2f GB/s of commitment",
                  static_cast<long long>(b), 1e3 * commit_s, 1e3 * step_s, 100 * commit_s / step_s, hashed / 1024,
                  hashed / commit_s / 1e9);
    summaries.push_back(line);
    std::fflush(stdout);
  }
  for (const auto& s : summaries) std::printf("%s\n", s.c_str());
  return true;
}

// Peer 0 of a ring: the amortised commitment's per-step cost against the
// step and against today's per-step commitment, on the same steps.
void segment_cost(const options& o) {
  std::printf("\n## segment commitment per step: segment_log (boundary every K steps + records) vs one training step "
              "(%s, 1 thread, %d peers on a ring, grid threshold gossip 0.01, gamma 0.5)\n",
              o.model.c_str(), o.peers);
  std::printf("command: build/verify_overhead --part segment --model %s --steps %d --peers %d", o.model.c_str(), o.steps,
              o.peers);
  for (int64_t b : o.batches) std::printf(" --batch %lld", static_cast<long long>(b));
  for (uint64_t k : o.segments) std::printf(" --segment %llu", static_cast<unsigned long long>(k));
  if (!o.data.empty()) std::printf(" --data %s", o.data.c_str());
  std::printf("\n");
  print_loadavg();
  set_blas_threads(1);
  auto data = std::make_shared<const Dataset>(o.data.empty() ? make_synthetic(8192, 10, 28, 1)
                                                             : load_fashion_mnist(o.data, true));
  const auto shards = shard_iid(data->size(), o.peers, 1);
  gossip_settings gs;
  gs.mode = gossip_mode::threshold;
  gs.threshold = 0.01;
  gs.grid = true;
  gs.gamma = 0.5;
  std::vector<std::string> summaries;
  for (int64_t b : o.batches) {
    struct node {
      std::unique_ptr<trainer> t;
      std::unique_ptr<gossip_state> g;
    };
    std::vector<node> ring;
    for (int p = 0; p < o.peers; ++p) {
      train_settings ts;
      ts.batch = b;
      ts.lr = 0.1;
      ts.momentum = 0.9;
      ts.total_steps = o.steps + 10;
      ts.data_seed = 100 + static_cast<uint64_t>(p);
      ts.init_seed = 1;
      node n;
      n.t = std::make_unique<trainer>(ts, o.model, data, shards[static_cast<size_t>(p)], data);
      const Sequential& m = n.t->synced_model();
      const auto P = static_cast<uint32_t>(o.peers);
      std::vector<uint32_t> nb = {(static_cast<uint32_t>(p) + P - 1) % P, (static_cast<uint32_t>(p) + 1) % P};
      if (nb[0] == nb[1]) nb.pop_back();
      n.g = std::make_unique<gossip_state>(static_cast<uint32_t>(p), nb, gs,
                                           std::span<const float>(m.params(), static_cast<size_t>(m.param_count())));
      ring.push_back(std::move(n));
    }
    segment_log log(1);  // K = 1: every step's snapshot is timed
    log.start(*ring[0].t, *ring[0].g);
    step_transcript_log today(0, *ring[0].t->model(), o.keep);
    std::vector<int64_t> indices(static_cast<size_t>(b));
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
    std::vector<double> step_cpu, boundary_cpu, record_cpu, today_cpu, digest1_s;
    // The records: each call timed with the tick clock (record_now: ticks
    // since the previous step). Every timed step's records, appended (offsets
    // rebased) to `all`, and where each step's end in it, to time the records
    // digest over K steps afterwards; `digest1`: the one-step digest a K = 1
    // close computes inside stepped(), timed again to take out of the boundary.
    tick_clock ticks;
    std::vector<uint64_t> record_ticks, digest1_ticks;
    uint64_t record_now = 0;
    segment_records all;
    std::vector<std::pair<size_t, size_t>> step_ends;  // (events, frame bytes) in `all` after each timed step
    blake3_builder records_hash;
    double bytes = 0;
    uint64_t recorded_steps = 0, timer_pairs = 0, changed = 0, mixes = 0;
    std::vector<float> before;
    const int warmup = 5;
    for (int i = 0; i < warmup + o.steps; ++i) {
      const bool timed = i >= warmup;
      for (size_t p = 0; p < ring.size(); ++p) {
        node& n = ring[p];
        const bool me = p == 0;
        if (n.t->steps_done() > 0) {
          Sequential& m = *n.t->model();
          // The alternative record, the update the mix applied: how many
          // coordinates it changes (counted outside the timings).
          if (me && timed) before.assign(m.params(), m.params() + m.param_count());
          n.g->mix(std::span<float>(m.params(), static_cast<size_t>(m.param_count())));
          if (me && timed) {
            for (size_t k = 0; k < before.size(); ++k) changed += before[k] != m.params()[k];
            ++mixes;
          }
          if (me) {
            const uint64_t c = tick_clock::now();
            log.mixed();
            record_now += tick_clock::now() - c;
            timer_pairs += timed;
          }
        }
        double c = thread_cpu_seconds();
        n.t->step();
        const double step_s = thread_cpu_seconds() - c;
        const uint64_t step = n.t->steps_done();
        if (me) {
          c = thread_cpu_seconds();
          today.record(step, *n.t->model(), indices);
          const double today_s = thread_cpu_seconds() - c;
          c = thread_cpu_seconds();
          log.stepped(*n.t, *n.g);
          const double boundary_s = thread_cpu_seconds() - c;
          if (timed) {
            const segment_records& r = log.closed()->records;
            const uint64_t d0 = tick_clock::now();
            const digest d1 = segment_records_digest(r, records_hash);
            digest1_ticks.push_back(tick_clock::now() - d0);
            if (d1 != log.closed()->records_digest) throw std::logic_error("segment_cost: the records digest differs");
            step_cpu.push_back(step_s);
            boundary_cpu.push_back(boundary_s);
            today_cpu.push_back(today_s);
            record_ticks.push_back(record_now);  // the records since the previous step
            bytes += static_cast<double>(r.bytes());
            ++recorded_steps;
            const size_t base = all.frames.size();
            for (segment_event e : r.events) {
              if (e.bytes > 0) e.offset += base;
              all.events.push_back(e);
            }
            all.frames.insert(all.frames.end(), r.frames.begin(), r.frames.end());
            step_ends.emplace_back(all.events.size(), all.frames.size());
          }
          record_now = 0;
        }
        const Sequential& m = n.t->synced_model();
        auto f = n.g->publish(std::span<const float>(m.params(), static_cast<size_t>(m.param_count())), step);
        if (me) {
          const uint64_t t0 = tick_clock::now();
          log.published(step);
          record_now += tick_clock::now() - t0;
          timer_pairs += timed;
        }
        if (f.empty()) continue;
        const std::vector<std::byte> frame(f.begin(), f.end());
        for (uint32_t q : n.g->neighbours()) {
          const bool taken = ring[q].g->receive(static_cast<uint32_t>(p), frame);
          n.g->on_sent();
          if (!me && !(taken && q == 0)) continue;
          const uint64_t t0 = tick_clock::now();
          if (taken && q == 0) log.received(static_cast<uint32_t>(p), frame);
          if (me) log.sent();
          record_now += tick_clock::now() - t0;
          timer_pairs += timed;
        }
      }
    }
    const double tick_s = ticks.seconds_per_tick();
    for (uint64_t t : record_ticks) record_cpu.push_back(tick_s * static_cast<double>(t));
    for (uint64_t t : digest1_ticks) digest1_s.push_back(tick_s * static_cast<double>(t));
    // The records are timed call by call: a tick read before and after
    // each, so each counts about one read's cost on top: say how much.
    const uint64_t r0 = tick_clock::now();
    for (int i = 0; i < 1000; ++i) (void)tick_clock::now();
    const double timer_pair_s = tick_s * static_cast<double>(tick_clock::now() - r0) / 1001;
    // The records digest a close computes, per step at each K: BLAKE3 over
    // each run of K consecutive timed steps' records (their median), as
    // segment_log::stepped computes it at the K-th step (the records built
    // outside the timing). Fewer than K steps timed: over all of them.
    std::vector<double> digest_per_step;  // one per K of o.segments
    std::vector<std::string> digest_lines;
    for (uint64_t k : o.segments) {
      std::vector<double> per_block;
      const size_t n = step_ends.size(), blocks = std::max<size_t>(1, n / k), len = std::min<size_t>(n, k);
      segment_records block;
      for (size_t j = 0; j < blocks && n > 0; ++j) {
        const size_t first = j * len, last = first + len;
        const size_t e0 = first ? step_ends[first - 1].first : 0, f0 = first ? step_ends[first - 1].second : 0;
        block.events.assign(all.events.begin() + static_cast<std::ptrdiff_t>(e0),
                            all.events.begin() + static_cast<std::ptrdiff_t>(step_ends[last - 1].first));
        for (auto& e : block.events)
          if (e.bytes > 0) e.offset -= f0;
        block.frames.assign(all.frames.begin() + static_cast<std::ptrdiff_t>(f0),
                            all.frames.begin() + static_cast<std::ptrdiff_t>(step_ends[last - 1].second));
        if (!segment_records_inconsistency(block).empty()) throw std::logic_error("segment_cost: inconsistent block");
        const uint64_t d0 = tick_clock::now();
        segment_records_digest(block, records_hash);
        per_block.push_back(tick_s * static_cast<double>(tick_clock::now() - d0) / static_cast<double>(len));
      }
      digest_per_step.push_back(per_block.empty() ? 0.0 : median(per_block));
      double mean = 0;
      for (double x : per_block) mean += x / static_cast<double>(per_block.size());
      char line[200];
      std::snprintf(line, sizeof line, "K = %llu: median %.4f ms a step over %zu runs of %zu steps (mean %.4f ms)",
                    static_cast<unsigned long long>(k), 1e3 * digest_per_step.back(), per_block.size(), len,
                    1e3 * mean);
      digest_lines.push_back(line);
    }
    const double pairs_per_step = static_cast<double>(timer_pairs) / static_cast<double>(std::max<uint64_t>(1, recorded_steps));
    const auto& bd = *log.open().start;
    double trainer_bytes = 4.0 * static_cast<double>(bd.trainer.params.size() + bd.trainer.opt_state.size());
    double gossip_bytes = 4.0 * static_cast<double>(bd.gossip.self_hat.size());
    for (const auto& h : bd.gossip.nbr_hat) gossip_bytes += 4.0 * static_cast<double>(h.size());
    // The boundary less the one-step records digest a K = 1 close includes
    // (the digests are counted per K below).
    const double step_s = median(step_cpu), boundary_s = std::max(0.0, median(boundary_cpu) - median(digest1_s)),
                 record_s = median(record_cpu), today_s = median(today_cpu);
    // Where a boundary's time goes: the copy into the boundary's storage
    // (save_checkpoint + save_replay_state, as segment_log::snapshot does)
    // against the hash (segment_state_digest), alternately on peer 0's last
    // state (back to back: the state is warmer in cache than after a step).
    std::vector<double> copy_cpu, hash_cpu;
    {
      checkpoint ck;
      gossip_state::replay_state rs;
      tree_digest th;
      for (int i = 0; i < 31; ++i) {
        double c = thread_cpu_seconds();
        ring[0].t->save_checkpoint(ck, 0, 0);
        ring[0].g->save_replay_state(rs);
        copy_cpu.push_back(thread_cpu_seconds() - c);
        c = thread_cpu_seconds();
        segment_state_digest(ck, rs, th);
        hash_cpu.push_back(thread_cpu_seconds() - c);
      }
    }
    std::printf("timing: step, boundary and today's record() in thread CPU time; the record calls each with %s "
                "(%.3f GHz; no system call), summed per step\n",
                tick_clock::name, 1e-9 / tick_s);
    std::printf("batch %lld: median step %.3f ms, boundary snapshot + hash %.3f ms (%.0f KiB trainer state + %.0f KiB "
                "gossip estimates; less the one-step records digest, %.4f ms, that a K = 1 close adds), records "
                "%.4f ms per step (%.0f bytes per step: frames received and events), "
                "today's per-step record() %.3f ms (%.1f %% of the step); records include %.1f timer pairs per "
                "step, about %.5f ms each\n",
                static_cast<long long>(b), 1e3 * step_s, 1e3 * boundary_s, trainer_bytes / 1024, gossip_bytes / 1024,
                1e3 * median(digest1_s), 1e3 * record_s,
                bytes / static_cast<double>(std::max<uint64_t>(1, recorded_steps)), 1e3 * today_s,
                100 * today_s / step_s, pairs_per_step, 1e3 * timer_pair_s);
    std::printf("records digest (BLAKE3 at the close, over each run of K timed steps' records; the first steps carry "
                "the most frame bytes):");
    for (const auto& l : digest_lines) std::printf(" %s;", l.c_str());
    std::printf("\n");
    std::printf("boundary split, alone on peer 0's last state (median of %zu): copy %.3f ms, hash %.3f ms\n",
                copy_cpu.size(), 1e3 * median(copy_cpu), 1e3 * median(hash_cpu));
    std::printf("the alternative record, the update each mix applied: %.0f of %zu coordinates changed per mix (%.0f "
                "bytes per mix as index and value)\n",
                static_cast<double>(changed) / static_cast<double>(std::max<uint64_t>(1, mixes)), before.size(),
                8.0 * static_cast<double>(changed) / static_cast<double>(std::max<uint64_t>(1, mixes)));
    // The records as a peer pays them: less the bench's own clock reads.
    const double record_net_s = std::max(0.0, record_s - pairs_per_step * timer_pair_s);
    std::printf("| K | boundary/K ms | records ms | records digest ms | segment commitment ms per step | of the step | "
                "of the step, records less the clock reads |\n|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < o.segments.size(); ++i) {
      const uint64_t k = o.segments[i];
      const double per = boundary_s / static_cast<double>(k) + record_s + digest_per_step[i];
      const double per_net = boundary_s / static_cast<double>(k) + record_net_s + digest_per_step[i];
      std::printf("| %llu | %.4f | %.4f | %.4f | %.4f | %.1f %% | %.1f %% |\n", static_cast<unsigned long long>(k),
                  1e3 * boundary_s / static_cast<double>(k), 1e3 * record_s, 1e3 * digest_per_step[i], 1e3 * per,
                  100 * per / step_s, 100 * per_net / step_s);
      char line[300];
      std::snprintf(line, sizeof line,
                    "summary: segment commitment at batch %lld, K = %llu: %.4f ms per step against a %.3f ms step = "
                    "%.1f %% (%.1f %% less the bench's clock reads; today's per-step commitment %.1f %%)",
                    static_cast<long long>(b), static_cast<unsigned long long>(k), 1e3 * per, 1e3 * step_s,
                    100 * per / step_s, 100 * per_net / step_s, 100 * today_s / step_s);
      summaries.push_back(line);
    }
    std::fflush(stdout);
  }
  print_loadavg();
  for (const auto& s : summaries) std::printf("%s\n", s.c_str());
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--part") o.part = next();
    else if (a == "--rate") o.rate = std::stod(next());
    else if (a == "--repeats") o.repeats = std::stoi(next());
    else if (a == "--config") o.config = next();
    else if (a == "--murmur") o.murmur = next();
    else if (a == "--set") o.sets.push_back(next());
    else if (a == "--model") o.model = next();
    else if (a == "--batch") o.batches.push_back(std::stoll(next()));
    else if (a == "--steps") o.steps = std::stoi(next());
    else if (a == "--neighbours") o.neighbours = std::stoi(next());
    else if (a == "--rounds") o.rounds = std::stoi(next());
    else if (a == "--keep") o.keep = static_cast<size_t>(std::stoul(next()));
    else if (a == "--segment") o.segments.push_back(std::stoull(next()));
    else if (a == "--peers") o.peers = std::stoi(next());
    else if (a == "--data") o.data = next();
    else throw std::invalid_argument("unknown argument " + a);
  }
  if (o.part != "all" && o.part != "e2e" && o.part != "commit" && o.part != "segment")
    throw std::invalid_argument("--part must be all, e2e, commit or segment, not " + o.part);
  if (o.peers < 2) throw std::invalid_argument("--peers must be >= 2");
  for (uint64_t k : o.segments)
    if (k == 0) throw std::invalid_argument("--segment must be >= 1");
  if (o.segments.empty()) o.segments = {16, 32, 64, 128};
  if (!(o.rate > 0 && o.rate <= 1)) throw std::invalid_argument("--rate must be in (0, 1]");
  if (o.repeats < 1 || o.steps < 1) throw std::invalid_argument("--repeats and --steps must be >= 1");
  if (o.batches.empty()) o.batches = {32};
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const options o = parse(argc, argv);
    if (o.part == "segment") {
      segment_cost(o);
      return 0;
    }
    if (o.part != "e2e" && !commitment_cost(o)) return 1;
    if (o.part != "commit") end_to_end(o);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "verify_overhead: %s\n", e.what());
    return 2;
  }
}
