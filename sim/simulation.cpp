#include "sim/simulation.hpp"

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "actors/peer.hpp"
#include "actors/topology.hpp"
#include "sim/config_schema.hpp"
#include "sim/sim_network.hpp"
#include "tensor/gemm.hpp"

namespace murmur {

namespace {

struct data_sets {
  std::shared_ptr<const Dataset> train, test;
};

data_sets load_data(const RunConfig& c) {
  data_sets d;
  if (c.dataset == "synthetic") {
    // One draw split in two, so train and test share the class prototypes.
    int64_t ntr = c.train_samples > 0 ? c.train_samples : 6000;
    int64_t nte = c.test_samples > 0 ? c.test_samples : 1000;
    Dataset all = make_synthetic(ntr + nte, 10, 12, c.seed);
    Dataset tr = take(all, ntr), te;
    te.num_classes = all.num_classes;
    te.images = all.images.rows(ntr, ntr + nte).clone();
    te.labels.assign(all.labels.begin() + ntr, all.labels.end());
    d.train = std::make_shared<const Dataset>(std::move(tr));
    d.test = std::make_shared<const Dataset>(std::move(te));
    return d;
  }
  Dataset tr = load_fashion_mnist(c.data_dir, true);
  Dataset te = load_fashion_mnist(c.data_dir, false);
  if (c.train_samples > 0 && c.train_samples < tr.size()) tr = take(tr, c.train_samples);
  if (c.test_samples > 0 && c.test_samples < te.size()) te = take(te, c.test_samples);
  d.train = std::make_shared<const Dataset>(std::move(tr));
  d.test = std::make_shared<const Dataset>(std::move(te));
  return d;
}

gossip_mode parse_mode(const std::string& m) {
  if (m == "dense") return gossip_mode::dense;
  if (m == "local_sgd") return gossip_mode::local_sgd;
  if (m == "delta") return gossip_mode::delta;
  return gossip_mode::threshold;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

}  // namespace

sim_summary run_simulation(const RunConfig& c, const std::string& out_dir,
                           const std::function<void(const sim_progress&)>& on_progress) {
  using clock = std::chrono::steady_clock;
  const auto wall0 = clock::now();
  auto wall = [&] { return std::chrono::duration<double>(clock::now() - wall0).count(); };
  set_blas_threads(1);  // one simulation thread; peers take turns on it

  std::filesystem::create_directories(out_dir);
  { std::ofstream(out_dir + "/config.toml") << to_toml(c); }

  const data_sets data = load_data(c);
  const uint32_t n = static_cast<uint32_t>(c.peers);
  const auto shards = c.partition == "dirichlet"
                          ? shard_dirichlet(data.train->labels, data.train->num_classes, static_cast<int>(n), c.alpha, c.seed)
                          : shard_iid(data.train->size(), static_cast<int>(n), c.seed);
  const gossip_mode mode = parse_mode(c.mode);
  // Delta broadcast sends every peer's changes to every other peer.
  const auto overlay = make_topology(mode == gossip_mode::delta ? "complete" : c.topology, n,
                                     static_cast<uint32_t>(c.degree), c.seed ^ 0x70706f6c6f6779ULL);

  caf::actor_system_config sys_cfg;
  sys_cfg.set("scheduler.policy", caf::atom("testing"));
  sys_cfg.set("logger.verbosity", caf::atom("quiet"));
  event_queue queue;
  network_stats net_stats;
  std::vector<peer_handles> peers;
  sim_summary sum;
  {
    caf::actor_system sys{sys_cfg};
    auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
    network_model nm;
    nm.latency_s = c.latency_ms / 1000.0;
    nm.bandwidth_bps = c.bandwidth_mbps * 1e6;
    nm.loss = c.loss;
    auto net = spawn_sim_network(sys, queue, nm, n, Rng(c.seed).fork(7).next_u64(), net_stats);

    std::vector<int64_t> total_steps(n), steps_per_epoch(n);
    for (uint32_t i = 0; i < n; ++i) {
      peer_settings s;
      s.id = i;
      s.peer_count = n;
      s.neighbours = overlay[i];
      s.model = c.model;
      s.gossip.mode = mode;
      s.gossip.threshold = (mode == gossip_mode::dense || mode == gossip_mode::local_sgd) ? 0.0 : c.threshold;
      s.gossip.trigger = c.trigger;
      s.gossip.grid = c.compressor == "grid" && s.gossip.threshold > 0;
      s.gossip.gamma = mode == gossip_mode::local_sgd ? 1.0 : c.gamma;
      s.train.optimizer = c.optimizer;
      s.train.lr = c.lr;
      s.train.cosine = c.lr_schedule == "cosine";
      s.train.momentum = c.momentum;
      s.train.weight_decay = c.weight_decay;
      s.train.batch = c.batch;
      s.train.gossip_every = c.every;
      s.train.data_seed = Rng(c.seed).fork(100 + i).next_u64();
      s.train.init_seed = c.seed;  // the same initial model on every peer
      steps_per_epoch[i] = (static_cast<int64_t>(shards[i].size()) + c.batch - 1) / c.batch;
      total_steps[i] = std::max<int64_t>(1, std::llround(c.epochs * static_cast<double>(steps_per_epoch[i])));
      s.train.total_steps = total_steps[i];
      peers.push_back(spawn_peer(sys, s, data.train, shards[i], data.test, net));
    }
    const int64_t dim = peers[0].train->model()->param_count();
    sum.params = dim;

    // Virtual cost of a step: given, or modelled from the model's FLOPs.
    const double flops = 6.0 * static_cast<double>(peers[0].train->model()->forward_flops()) *
                         static_cast<double>(c.batch);
    const double step_s = c.step_ms > 0 ? c.step_ms / 1000.0 : flops / (c.gflops * 1e9);
    std::vector<double> step_cost(n);
    Rng speed_rng = Rng(c.seed).fork(3);
    for (uint32_t i = 0; i < n; ++i) step_cost[i] = step_s * (1.0 + c.speed_spread * speed_rng.uniform());

    const int64_t eval_steps = c.eval_every > 0 ? c.eval_every : steps_per_epoch[0];
    const double eval_interval = static_cast<double>(eval_steps) * step_s;
    int64_t all_steps = 0;
    for (auto t : total_steps) all_steps += t;

    std::ofstream metrics(out_dir + "/metrics.jsonl");
    std::ofstream curve(out_dir + "/curve.tsv");
    curve << "# virtual_s\tbytes_sent\tmean_test_acc\tmin_test_acc\tmean_train_loss\tconsensus\n";
    caf::scoped_actor self{sys};
    std::vector<int64_t> done(n, 0);
    int64_t steps_sum = 0;
    double loss_recent = 0;
    sim_progress prog;

    auto evaluate = [&](double t) {
      // Mean model, for each peer's distance to consensus.
      std::vector<double> mean(static_cast<size_t>(dim), 0.0);
      for (auto& p : peers) {
        const float* x = p.train->model()->params();
        for (int64_t k = 0; k < dim; ++k) mean[static_cast<size_t>(k)] += x[k];
      }
      for (auto& v : mean) v /= n;
      double acc_sum = 0, acc_min = 1, loss_sum = 0, test_loss_sum = 0, cons_sum = 0;
      uint64_t bytes_total = 0, rejected = 0;
      for (uint32_t i = 0; i < n; ++i) {
        self->send(peers[i].shard, eval_atom::value);
        self->send(peers[i].gossip, stats_atom::value);
        sched.run();
        eval_report r;
        gossip_counters g;
        for (int k = 0; k < 2; ++k)
          self->receive([&](eval_report& e) { r = e; }, [&](gossip_counters& gc) { g = gc; },
                        caf::after(std::chrono::seconds(0)) >> [&] {
                          throw std::logic_error("simulation: peer " + std::to_string(i) + " did not answer");
                        });
        const float* x = peers[i].train->model()->params();
        double d2 = 0;
        for (int64_t k = 0; k < dim; ++k) {
          double d = x[k] - mean[static_cast<size_t>(k)];
          d2 += d * d;
        }
        double cons = std::sqrt(d2);
        acc_sum += r.test_accuracy;
        acc_min = std::min(acc_min, static_cast<double>(r.test_accuracy));
        loss_sum += r.train_loss;
        test_loss_sum += r.test_loss;
        cons_sum += cons;
        bytes_total += g.bytes_sent;
        metrics << "{\"t\":" << fmt(t) << ",\"peer\":" << i << ",\"step\":" << r.steps
                << ",\"epoch\":" << fmt(static_cast<double>(r.steps) / static_cast<double>(steps_per_epoch[i]))
                << ",\"train_loss\":" << fmt(r.train_loss) << ",\"test_loss\":" << fmt(r.test_loss)
                << ",\"test_acc\":" << fmt(r.test_accuracy) << ",\"bytes_sent\":" << g.bytes_sent
                << ",\"msgs_sent\":" << g.msgs_sent << ",\"bytes_recv\":" << g.bytes_received
                << ",\"msgs_recv\":" << g.msgs_received << ",\"silent_rounds\":" << g.silent_rounds << ",\"busy_rounds\":" << g.busy_rounds
                << ",\"rejected\":" << g.rejected_total() << ",\"consensus_dist\":" << fmt(cons) << "}\n";
        rejected += g.rejected_total();
      }
      sum.rejected = rejected;
      curve << fmt(t) << '\t' << bytes_total << '\t' << fmt(acc_sum / n) << '\t' << fmt(acc_min) << '\t'
            << fmt(loss_sum / n) << '\t' << fmt(cons_sum / n) << '\n';
      sum.final_test_accuracy = acc_sum / n;
      sum.min_test_accuracy = acc_min;
      sum.final_test_loss = test_loss_sum / n;
      sum.consensus_distance = cons_sum / n;
      prog.accuracy = acc_sum / n;
      prog.evaluation = true;
    };

    auto report = [&](double t) {
      if (!on_progress) return;
      prog.fraction = static_cast<double>(steps_sum) / static_cast<double>(all_steps);
      double ep = 0;
      for (uint32_t i = 0; i < n; ++i) ep += static_cast<double>(done[i]) / static_cast<double>(steps_per_epoch[i]);
      prog.epoch = ep / n;
      prog.steps = steps_sum;
      prog.loss = loss_recent;
      prog.bytes_sent = net_stats.bytes_sent;
      prog.virtual_s = t;
      prog.wall_s = wall();
      on_progress(prog);
      prog.evaluation = false;
    };

    for (uint32_t i = 0; i < n; ++i) {
      sim_event e;
      e.time = 0;
      e.kind = sim_event::cycle;
      e.peer = i;
      queue.push(std::move(e));
    }
    double next_eval = eval_interval;
    double last_report_wall = 0;
    while (!queue.empty()) {
      if (steps_sum < all_steps && queue.next_time() > next_eval) {
        evaluate(next_eval);
        report(next_eval);
        next_eval += eval_interval;
        continue;
      }
      sim_event e = queue.pop();
      if (e.kind == sim_event::deliver) {
        caf::anon_send(peers[e.peer].gossip, deliver_atom::value, e.from, e.frame);
        sched.run();
        continue;
      }
      if (e.kind == sim_event::sent) {
        caf::anon_send(peers[e.peer].gossip, sent_atom::value, e.from);
        sched.run();
        continue;
      }
      self->send(peers[e.peer].shard, cycle_atom::value);
      sched.run();
      self->receive([&](step_report& r) { loss_recent = steps_sum ? 0.98 * loss_recent + 0.02 * r.loss : r.loss; },
                    caf::after(std::chrono::seconds(0)) >> [&] {
                      throw std::logic_error("simulation: peer " + std::to_string(e.peer) + " did not finish its step");
                    });
      ++done[e.peer];
      ++steps_sum;
      if (done[e.peer] < total_steps[e.peer]) {
        sim_event next;
        next.time = e.time + step_cost[e.peer];
        next.kind = sim_event::cycle;
        next.peer = e.peer;
        queue.push(std::move(next));
      }
      if (on_progress && wall() - last_report_wall > 0.25) {
        last_report_wall = wall();
        report(e.time);
      }
    }
    sum.virtual_time_s = queue.now();
    if (next_eval - eval_interval < sum.virtual_time_s) {  // unless one was just taken
      evaluate(sum.virtual_time_s);
      report(sum.virtual_time_s);
    }

    sum.bytes_sent_total = net_stats.bytes_sent;
    sum.msgs_sent_total = net_stats.msgs_sent;
    sum.msgs_lost = net_stats.msgs_lost;
    sum.steps = static_cast<uint64_t>(steps_sum / n);
    // A ring all-reduce sends 2(n-1)/n of the gradient per peer per step.
    sum.dense_allreduce_bytes = 2.0 * (n - 1) * 4.0 * static_cast<double>(dim) * static_cast<double>(sum.steps);
    for (auto& p : peers) {
      caf::anon_send_exit(p.shard, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(p.gossip, caf::exit_reason::user_shutdown);
    }
    caf::anon_send_exit(net, caf::exit_reason::user_shutdown);
    sched.run();
  }
  sum.wall_time_s = wall();

  std::ofstream js(out_dir + "/summary.json");
  js << "{\n  \"final_test_accuracy\": " << fmt(sum.final_test_accuracy)
     << ",\n  \"min_test_accuracy\": " << fmt(sum.min_test_accuracy)
     << ",\n  \"final_test_loss\": " << fmt(sum.final_test_loss)
     << ",\n  \"consensus_distance\": " << fmt(sum.consensus_distance)
     << ",\n  \"bytes_sent_total\": " << sum.bytes_sent_total
     << ",\n  \"dense_allreduce_bytes\": " << fmt(sum.dense_allreduce_bytes)
     << ",\n  \"compression_vs_allreduce\": "
     << fmt(sum.bytes_sent_total ? sum.dense_allreduce_bytes / static_cast<double>(sum.bytes_sent_total) : 0.0)
     << ",\n  \"msgs_sent_total\": " << sum.msgs_sent_total << ",\n  \"msgs_lost\": " << sum.msgs_lost
     << ",\n  \"frames_rejected\": " << sum.rejected << ",\n  \"peers\": " << c.peers
     << ",\n  \"params\": " << sum.params << ",\n  \"steps\": " << sum.steps
     << ",\n  \"virtual_time_s\": " << fmt(sum.virtual_time_s) << ",\n  \"wall_time_s\": " << fmt(sum.wall_time_s)
     << "\n}\n";
  std::ofstream(out_dir + "/timing.json") << "{\"wall_time_s\": " << fmt(sum.wall_time_s)
                                          << ", \"steps_per_s\": "
                                          << fmt(static_cast<double>(sum.steps * n) / sum.wall_time_s) << "}\n";
  return sum;
}

}  // namespace murmur
