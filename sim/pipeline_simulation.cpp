// The pipeline simulation: R replicas x S stages (+ spares) as stage actors
// on a virtual clock. A stage's op costs its modelled FLOPs at sim.gflops
// over its machine's slowdown (sim.speed_spread, sim.slow_peers);
// activations and gradients cross the simulated network (run/link_model.hpp:
// per-machine uplinks, downlinks and latencies, per-link caps, windows);
// stage s of each replica gossips with stage s of the others. Node n runs on
// machine plan.machine_of[n] (pipeline.placement, run/stage_placement.hpp).
#include <iostream>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>

#include "actors/gossip_actor.hpp"
#include "actors/stage_actor.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/pipeline_messages.hpp"
#include "model_io/model_source.hpp"
#include "run/config_schema.hpp"
#include "run/peer_device.hpp"
#include "run/pipeline_plan.hpp"
#include "run/run_data.hpp"
#include "sim/sim_network.hpp"
#include "run/json_text.hpp"
#include "run/link_model.hpp"
#include "sim/simulation.hpp"
#include "tensor/gemm.hpp"
#include "tensor/loss.hpp"

namespace murmur {

namespace {

struct timed_event {
  double t = 0;
  pipeline_event e;
};

clock_actor::behavior_type sim_clock(clock_actor::pointer, event_queue* queue) {
  return {[=](wake_atom, uint32_t node, double delay, uint8_t tag) {
    sim_event e;
    e.time = queue->now() + std::max(0.0, delay);
    e.kind = sim_event::wake;
    e.peer = node;
    e.from = tag;
    queue->push(std::move(e));
  }};
}

pipeline_observer::behavior_type sim_recorder(pipeline_observer::pointer, event_queue* queue,
                                              std::vector<timed_event>* log) {
  return {[=](pevent_atom, const pipeline_event& e) { log->push_back({queue->now(), e}); }};
}

caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  return cfg;
}

class pipeline_driver {
 public:
  pipeline_driver(const RunConfig& c, const std::string& out_dir, const run_data& data,
                  const std::function<void(const run_progress&)>& on_progress, const std::string& resume_dir,
                  const std::atomic<int>* stop, const stage_backend_factory& stage_backend)
      : c_(c), out_dir_(out_dir), data_(data), on_progress_(on_progress), stage_backend_(stage_backend),
        plan_(make_pipeline_plan(c, *data.train, /*simulated=*/true)),
        n_(plan_.nodes()), sys_(testing_config(sys_cfg_)),
        sched_(dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())), stop_(stop) {
    network_model nm;
    // The config's machines, node n playing machine plan_.machine_of[n].
    nm.links = link_model::from_config(c, n_).relabelled(plan_.machine_of);
    nm.loss = c.loss;
    nm.ranked = c.uplink == "classes";
    net_ = spawn_sim_network(sys_, queue_, nm, n_, Rng(c.seed).fork(7).next_u64(), net_stats_);
    clock_ = sys_.spawn(sim_clock, &queue_);
    // Long enough for a take-over (silence, then replay to the next step).
    stall_s_ = 1.0 + 10.0 * static_cast<double>(c.heartbeat_ms + c.suspect_ms + c.dead_ms) / 1000.0;
    observer_ = sys_.spawn(sim_recorder, &queue_, &events_);
    try {
      spawn_nodes(resume_dir);
    } catch (...) {
      stop_actors();
      throw;
    }
  }

  ~pipeline_driver() { stop_actors(); }

  sim_summary run() {
    metrics_.open(out_dir_ + "/metrics.jsonl", resumed_ ? std::ios::app : std::ios::trunc);
    curve_.open(out_dir_ + "/curve.tsv", resumed_ ? std::ios::app : std::ios::trunc);
    if (!resumed_) curve_ << "# virtual_s\tbytes_sent\tmean_test_acc\tmin_test_acc\tmean_train_loss\tconsensus\n";
    for (auto& a : nodes_) caf::anon_send(a, start_atom::value);
    sched_.run();
    const int64_t eval_steps = c_.eval_every > 0 ? c_.eval_every : plan_.steps_per_epoch;
    uint64_t next_eval = static_cast<uint64_t>(eval_steps);
    while (!queue_.empty()) {
      // SIGINT/SIGTERM: the partial run's summary; the stages' last
      // checkpoint.every checkpoints resume it (they are from one step).
      if (stop_ && stop_->load() != 0) {
        sum_.interrupted = true;
        break;
      }
      handle(queue_.pop());
      // Evaluate when replica 0's last stage finishes an evaluation period.
      const uint64_t done = steps_of(0);
      if (done >= next_eval && done > last_eval_step_) {
        evaluate(queue_.now());
        next_eval = (done / static_cast<uint64_t>(eval_steps) + 1) * static_cast<uint64_t>(eval_steps);
      }
      if (c_.stop_after > 0 && all_reached(static_cast<uint64_t>(c_.stop_after))) break;
      // Nobody waits forever: a pipeline with a dead stage and no spare to
      // take it would tick heartbeats until the end of time.
      if (queue_.now() - last_progress_time_ > stall_s_) {
        errors_.push_back("pipeline stalled: no step finished for " + json_number(stall_s_) +
                          " s of virtual time; stopping the run");
        break;
      }
    }
    if (last_eval_step_ < steps_of(0) || last_eval_step_ == 0) evaluate(queue_.now());
    write_final_model();
    return summarise();
  }

  // out_dir/model.safetensors: the whole model of replica 0 (its stages'
  // parameters concatenated), or of the first replica whose stages are all
  // hosted; none is written when no replica has them all.
  void write_final_model() {
    for (uint16_t r = 0; r < plan_.replicas; ++r) {
      auto whole = build_model(c_.model, data_.train->sample_shape(), data_.train->num_classes);
      bool complete = true;
      for (uint16_t s = 0; s < plan_.stages && complete; ++s) {
        auto v = views_[host_of(r, s)];
        if (!v->stage) {
          complete = false;
          break;
        }
        const auto& m = *v->stage->model();
        const auto [b, e] = stage_param_span(*whole, plan_.ranges[s]);
        if (e - b != m.param_count()) throw std::logic_error("pipeline: a stage's parameters do not fit its layers");
        std::copy(m.params(), m.params() + m.param_count(), whole->params() + b);
      }
      if (!complete) continue;
      sum_.final_model = murmur::write_final_model(
          out_dir_ + "/" + run_model_file_name, c_, *whole, *data_.test,
          "murmur sim: replica " + std::to_string(r) + "'s " + std::to_string(plan_.stages) + " stages, concatenated",
          steps_of(r));
      return;
    }
  }

 private:
  void spawn_nodes(const std::string& resume_dir) {
    const std::string ckdir = c_.checkpoint_every > 0 ? out_dir_ + "/checkpoints" : "";
    auto make_stage = [this](uint16_t r, uint16_t s) {
      auto st = std::make_shared<pipeline_stage>(stage_settings_for(c_, plan_, r, s), data_.train, plan_.shards[r]);
      if (stage_backend_) st->use_backend(stage_backend_());
      return st;
    };
    // A spare that takes a stage of a hybrid run over gossips in its place,
    // with the current hosts of that stage in the neighbouring replicas.
    gossip_factory make_gossip;
    if (plan_.replicas > 1)
      make_gossip = [this](uint16_t r, uint16_t s, uint32_t node, std::shared_ptr<Sequential> model) {
        peer_settings ps = stage_gossip_settings(c_, plan_, r, s);
        ps.id = node;
        for (auto& n : ps.neighbours) n = host_of(static_cast<uint16_t>(n / plan_.stages), s);
        return spawn_gossip(sys_, ps, std::move(model), net_);
      };
    views_.resize(n_);
    gossip_.resize(n_);
    std::vector<resolved_device> devices;  // of the stages hosted from the start
    for (uint32_t node = 0; node < n_; ++node) {
      views_[node] = std::make_shared<stage_node_view>();
      std::shared_ptr<pipeline_stage> stage;
      const bool hosts = node < uint32_t{plan_.replicas} * plan_.stages;
      if (hosts) {
        const auto r = static_cast<uint16_t>(node / plan_.stages), s = static_cast<uint16_t>(node % plan_.stages);
        stage = make_stage(r, s);
        devices.push_back(stage->settings().train.device);
        if (!resume_dir.empty()) resume_stage(*stage, resume_dir, r, s);
        if (plan_.replicas > 1)
          gossip_[node] = spawn_gossip(sys_, stage_gossip_settings(c_, plan_, r, s), stage->model(), net_);
      }
      auto ns = stage_node_settings_for(c_, plan_, node, ckdir);
      if (hosts && plan_.replicas > 1)
        ns.gossip_neighbours = stage_gossip_settings(c_, plan_, static_cast<uint16_t>(node / plan_.stages),
                                                     static_cast<uint16_t>(node % plan_.stages))
                                   .neighbours;
      views_[node]->gossip = gossip_[node];
      nodes_.push_back(spawn_stage_node(sys_, ns, stage, make_stage, net_, clock_, observer_, gossip_[node],
                                        views_[node], make_gossip));
    }
    resumed_ = !resume_dir.empty();
    devices_label_ = devices_label(devices);
  }

  void resume_stage(pipeline_stage& st, const std::string& dir, uint16_t r, uint16_t s) {
    const std::string path = dir + "/checkpoints/stage-" + std::to_string(r) + "-" + std::to_string(s) + ".ckpt";
    checkpoint ck = read_checkpoint_file(path);
    try {
      st.restore(ck, 0);
    } catch (const std::invalid_argument& e) {
      throw checkpoint_error(path + ": " + e.what());
    }
    if (resume_step_ == ~0ull) resume_step_ = ck.step;
    if (ck.step != resume_step_)
      throw checkpoint_error(path + ": step " + std::to_string(ck.step) + ", but the other stages' checkpoints are at step " +
                             std::to_string(resume_step_) + " (a pipeline resumes from one step)");
  }

  void stop_actors() {
    for (auto& a : nodes_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& g : gossip_)
      if (g) caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
    for (auto& v : views_)
      if (v && v->gossip) caf::anon_send_exit(v->gossip, caf::exit_reason::user_shutdown);
    if (clock_) caf::anon_send_exit(clock_, caf::exit_reason::user_shutdown);
    if (observer_) caf::anon_send_exit(observer_, caf::exit_reason::user_shutdown);
    if (net_) caf::anon_send_exit(net_, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  void handle(const sim_event& e) {
    switch (e.kind) {
      case sim_event::deliver: {
        auto type = e.frame.bytes ? peek_type(*e.frame.bytes) : std::nullopt;
        if (type && *type == message_type::gossip_update && views_[e.peer]->gossip)
          caf::anon_send(views_[e.peer]->gossip, deliver_atom::value, e.from, e.frame);
        else
          caf::anon_send(nodes_[e.peer], deliver_atom::value, e.from, e.frame);
        break;
      }
      case sim_event::sent: {
        auto type = e.frame.bytes ? peek_type(*e.frame.bytes) : std::nullopt;
        if (type && *type == message_type::gossip_update && views_[e.peer]->gossip)
          caf::anon_send(views_[e.peer]->gossip, sent_atom::value, e.from);
        break;
      }
      case sim_event::wake:
        caf::anon_send(nodes_[e.peer], wake_atom::value, static_cast<uint8_t>(e.from));
        break;
      case sim_event::cycle: break;
      case sim_event::check_ready: break;  // data-parallel runs only
      case sim_event::reduce: break;  // data-parallel all-reduce rounds only
    }
    sched_.run();
    for (; seen_ < events_.size(); ++seen_) on_event(events_[seen_]);
  }

  void on_event(const timed_event& te) {
    const auto& e = te.e;
    if (e.kind == pipeline_event::step_done) {
      boundary_[uint32_t{e.replica} * plan_.stages + e.stage] = e.step;
      last_progress_time_ = te.t;
      last_step_time_ = te.t;  // the run's makespan ends with the last stage to finish (stage 0)
      if (e.stage + 1 == plan_.stages) {
        // Caught up: the crashed replica's last stage is past the crash step again.
        if (crash_ && crash_->second > 0 && caught_up_time_ < 0 && e.replica == crash_->first &&
            e.step >= crash_->second && taken_over_)
          caught_up_time_ = te.t;
        if (e.replica == 0 && on_progress_ && wall_s() - last_report_ > 0.25) {
          last_report_ = wall_s();
          report(te.t, false);
        }
      }
      return;
    }
    if (e.kind == pipeline_event::error) errors_.push_back(e.what);
    if (e.kind == pipeline_event::crashed && !crash_) crash_ = std::make_pair(e.replica, e.step);
    if (e.kind == pipeline_event::crashed && views_[e.node]->gossip) {
      // The whole peer died, its gossip with it.
      caf::anon_send_exit(views_[e.node]->gossip, caf::exit_reason::kill);
      views_[e.node]->gossip = gossip_actor{};
    }
    if (e.kind == pipeline_event::takeover) taken_over_ = true;
    timeline_.push_back(te);
  }

  uint64_t steps_of(uint16_t replica) const {
    auto v = views_[host_of(replica, static_cast<uint16_t>(plan_.stages - 1))];
    return v && v->stage ? v->stage->steps_done() : 0;
  }
  uint32_t host_of(uint16_t r, uint16_t s) const {
    for (uint32_t node = 0; node < n_; ++node) {
      const auto& v = views_[node];
      if (v->stage && v->stage->settings().replica == r && v->stage->settings().stage == s) return node;
    }
    return stage_node(r, s, plan_.stages);
  }
  // Every stage has finished `step`, its checkpoint included (a step's
  // boundary work is done in the same handler that reports it).
  bool all_reached(uint64_t step) const {
    if (boundary_.size() < size_t{plan_.replicas} * plan_.stages) return false;
    for (auto& [k, done] : boundary_)
      if (done < step) return false;
    return true;
  }

  // Test accuracy of replica r: copies of its stages' parameters, chained on
  // the test set (the stages' own layers hold micro-batches in flight).
  bool evaluate_replica(uint16_t r, double& acc, double& loss) {
    if (eval_models_.empty())
      for (uint16_t s = 0; s < plan_.stages; ++s)
      {
        eval_models_.push_back(
            build_stage_layers(c_.model, data_.train->sample_shape(), data_.train->num_classes, plan_.ranges[s]));
        eval_models_.back()->set_training(false);  // dropout off
      }
    for (uint16_t s = 0; s < plan_.stages; ++s) {
      auto v = views_[host_of(r, s)];
      if (!v->stage) return false;
      const auto& m = *v->stage->model();
      std::copy(m.params(), m.params() + m.param_count(), eval_models_[s]->params());
    }
    auto& models = eval_models_;
    const Dataset& test = *data_.test;
    const int64_t n = test.size(), chunk = 500;
    double l = 0;
    int64_t correct = 0;
    for (int64_t b = 0; b < n; b += chunk) {
      const int64_t e = std::min(n, b + chunk);
      Tensor x = test.images.rows(b, e);
      const Tensor* h = &x;
      for (auto& m : models) h = &m->forward(*h);
      int64_t k = 0;
      l += static_cast<double>(softmax_cross_entropy_eval(*h, test.labels.data() + b, &k)) * static_cast<double>(e - b);
      correct += k;
    }
    acc = n ? static_cast<double>(correct) / static_cast<double>(n) : 0;
    loss = n ? l / static_cast<double>(n) : 0;
    return true;
  }

  void evaluate(double t) {
    double acc_sum = 0, acc_min = 1, loss_sum = 0, train_sum = 0;
    uint32_t ok = 0;
    for (uint16_t r = 0; r < plan_.replicas; ++r) {
      double acc = 0, loss = 0;
      if (!evaluate_replica(r, acc, loss)) continue;
      auto last = views_[host_of(r, static_cast<uint16_t>(plan_.stages - 1))]->stage;
      const double train_loss = last->take_mean_loss();
      const uint64_t steps = last->steps_done();
      metrics_ << "{\"t\":" << json_number(t) << ",\"replica\":" << r << ",\"step\":" << steps << ",\"epoch\":"
               << json_number(static_cast<double>(steps) / static_cast<double>(plan_.steps_per_epoch))
               << ",\"train_loss\":" << json_number(train_loss) << ",\"test_loss\":" << json_number(loss) << ",\"test_acc\":"
               << json_number(acc) << ",\"bytes_sent\":" << net_stats_.bytes_sent << "}" << std::endl;
      acc_sum += acc;
      acc_min = std::min(acc_min, acc);
      loss_sum += loss;
      if (std::isfinite(train_loss)) train_sum += train_loss;
      ++ok;
    }
    last_eval_step_ = steps_of(0);
    if (!ok) return;
    curve_ << json_number(t) << '\t' << net_stats_.bytes_sent << '\t' << json_number(acc_sum / ok) << '\t' << json_number(acc_min) << '\t'
           << json_number(train_sum / ok) << '\t' << 0 << std::endl;
    sum_.final_test_accuracy = acc_sum / ok;
    sum_.min_test_accuracy = acc_min;
    sum_.final_test_loss = loss_sum / ok;
    report(t, true);
  }

  void report(double t, bool evaluation) {
    if (!on_progress_) return;
    run_progress p;
    const uint64_t done = steps_of(0);
    p.fraction = static_cast<double>(done) / static_cast<double>(plan_.total_steps);
    p.epoch = static_cast<double>(done) / static_cast<double>(plan_.steps_per_epoch);
    p.steps = done;
    p.accuracy = sum_.final_test_accuracy > 0 ? sum_.final_test_accuracy : -1;
    p.bytes_sent = net_stats_.bytes_sent;
    p.virtual_s = t;
    p.wall_s = wall_s();
    p.evaluation = evaluation;
    p.device = devices_label_;
    on_progress_(p);
  }

  double wall_s() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0_).count(); }

  sim_summary summarise() {
    auto& p = sum_.pipeline;
    p.enabled = true;
    p.stages = plan_.stages;
    p.replicas = plan_.replicas;
    p.microbatches = static_cast<uint32_t>(c_.microbatches);
    p.spares = plan_.spares;
    p.schedule = c_.schedule;
    p.makespan_s = last_step_time_;
    p.bound = pipeline_efficiency_bound(plan_.stages, static_cast<uint32_t>(c_.microbatches));
    p.placement = plan_.placement;
    p.predicted_batch_s = plan_.predicted_batch_s;
    p.predicted_index_batch_s = plan_.predicted_index_batch_s;
    double busy = 0;
    uint64_t steps_min = ~0ull;
    const double mb_samples = std::ceil(static_cast<double>(c_.batch) / static_cast<double>(c_.microbatches));
    for (uint16_t r = 0; r < plan_.replicas; ++r)
      for (uint16_t s = 0; s < plan_.stages; ++s) {
        stage_summary ss;
        ss.replica = r;
        ss.stage = s;
        ss.node = host_of(r, s);
        ss.machine = plan_.machine_of[ss.node];
        ss.layer_begin = plan_.ranges[s].begin;
        ss.layer_end = plan_.ranges[s].end;
        if (auto st = views_[ss.node]->stage) {
          const auto& k = st->stats();
          ss.busy_s = k.busy_seconds;
          ss.peak_in_flight = k.peak_slots;
          ss.peak_activation_mb = static_cast<double>(k.peak_slots) * mb_samples *
                                  static_cast<double>(k.activation_bytes_per_sample) / 1e6;
          ss.steps = st->steps_done();
          ss.rejected = k.rejected;
          ss.stale = k.stale;
        }
        if (auto g = views_[ss.node]->gossip) {
          caf::scoped_actor self{sys_};
          self->send(g, stats_atom::value);
          sched_.run();
          self->receive([&](gossip_counters& gc) { ss.gossip_bytes_sent = gc.bytes_sent; },
                        caf::after(std::chrono::seconds(0)) >> [] {});
        }
        busy += ss.busy_s;
        steps_min = std::min(steps_min, ss.steps);
        p.per_stage.push_back(ss);
      }
    const double slots = static_cast<double>(plan_.replicas) * plan_.stages;
    p.efficiency = p.makespan_s > 0 ? busy / (slots * p.makespan_s) : 0;
    const uint64_t first = resume_step_ == ~0ull ? 0 : resume_step_;
    p.samples_per_s = p.makespan_s > 0 ? static_cast<double>(steps_of(0) - std::min(steps_of(0), first)) *
                                             static_cast<double>(c_.batch) * plan_.replicas / p.makespan_s
                                       : 0;
    // One batch's makespan: the run's over its steps (a step ends with a
    // flush: stage 0 updates last, then starts the next batch).
    const uint64_t batches = steps_of(0) - std::min(steps_of(0), first);
    p.simulated_batch_s = batches > 0 ? p.makespan_s / static_cast<double>(batches) : 0;
    p.errors = errors_;
    sum_.samples_per_s = p.samples_per_s;
    // The take-over timeline.
    auto& to = p.takeover;
    for (const auto& te : timeline_) {
      const auto& e = te.e;
      if (e.kind == pipeline_event::crashed && to.crash_s < 0) {
        to.crash_s = te.t;
        to.crash_step = e.step;
        to.replica = e.replica;
        to.stage = e.stage;
      } else if (e.kind == pipeline_event::takeover && to.takeover_s < 0) {
        to.happened = true;
        to.takeover_s = te.t;
        to.new_node = e.node;
        to.resume_step = e.step;
      } else if (e.kind == pipeline_event::resumed && to.happened && to.resumed_s < 0 && e.stage == to.stage &&
                 e.replica == to.replica) {
        to.resumed_s = te.t;
      }
    }
    if (to.happened) {
      to.detection_s = to.crash_s >= 0 ? to.takeover_s - to.crash_s : 0;
      to.time_to_resume_s = to.resumed_s >= 0 ? to.resumed_s - to.takeover_s : -1;
      to.lost_steps = to.crash_step > to.resume_step ? to.crash_step - 1 - to.resume_step : 0;
      to.lost_microbatches = static_cast<uint64_t>(c_.microbatches);
      to.caught_up_s = caught_up_time_;
      to.time_to_catch_up_s = caught_up_time_ >= 0 ? caught_up_time_ - to.crash_s : -1;
    }
    sum_.virtual_time_s = queue_.now();
    sum_.bytes_sent_total = net_stats_.bytes_sent;
    sum_.msgs_sent_total = net_stats_.msgs_sent;
    sum_.msgs_lost = net_stats_.msgs_lost;
    sum_.steps = steps_min == ~0ull ? 0 : steps_min;
    int64_t params = 0;
    for (uint16_t s = 0; s < plan_.stages; ++s)
      if (auto st = views_[host_of(0, s)]->stage) params += st->model()->param_count();
    sum_.params = params;
    sum_.honest_test_accuracy = sum_.final_test_accuracy;
    write_events();
    return sum_;
  }

  void write_events() {
    std::ofstream ev(out_dir_ + "/events.jsonl", resumed_ ? std::ios::app : std::ios::trunc);
    for (const auto& te : timeline_)
      ev << "{\"t\":" << json_number(te.t) << ",\"event\":" << json_string(to_string(te.e.kind)) << ",\"replica\":" << te.e.replica
         << ",\"stage\":" << te.e.stage << ",\"node\":" << te.e.node << ",\"step\":" << te.e.step
         << ",\"lost_steps\":" << te.e.lost_steps << ",\"what\":" << json_string(te.e.what) << "}\n";
  }

 private:
  const RunConfig& c_;
  const std::string out_dir_;
  const run_data& data_;
  const std::function<void(const run_progress&)>& on_progress_;
  const stage_backend_factory& stage_backend_;
  std::string devices_label_;  // the stages' devices (progress lines)
  pipeline_plan plan_;
  const uint32_t n_;
  const std::chrono::steady_clock::time_point wall0_ = std::chrono::steady_clock::now();
  event_queue queue_;
  network_stats net_stats_;
  std::vector<timed_event> events_, timeline_;
  size_t seen_ = 0;
  caf::actor_system_config sys_cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
  transport_actor net_;
  clock_actor clock_;
  pipeline_observer observer_;
  std::vector<stage_actor> nodes_;
  std::vector<gossip_actor> gossip_;
  std::vector<std::shared_ptr<stage_node_view>> views_;
  std::vector<std::string> errors_;
  std::vector<std::unique_ptr<Sequential>> eval_models_;
  std::map<uint32_t, uint64_t> boundary_;  // last step each stage finished (replica * S + stage)
  bool resumed_ = false, taken_over_ = false;
  std::optional<std::pair<uint16_t, uint64_t>> crash_;  // replica, step
  uint64_t resume_step_ = ~0ull, last_eval_step_ = 0;
  double last_progress_time_ = 0, stall_s_ = 0;
  double last_step_time_ = 0, last_report_ = 0, caught_up_time_ = -1;
  std::ofstream metrics_, curve_;
  sim_summary sum_;
  const std::atomic<int>* const stop_;  // SIGINT/SIGTERM once non-zero (may be null)
};

}  // namespace

sim_summary run_pipeline_simulation(const RunConfig& c, const std::string& out_dir,
                                    const std::function<void(const run_progress&)>& on_progress,
                                    const std::string& resume_dir, const std::atomic<int>* stop,
                                    const stage_backend_factory& stage_backend) {
  const auto wall0 = std::chrono::steady_clock::now();
  set_blas_threads(1);
  std::filesystem::create_directories(out_dir);
  std::ofstream(out_dir + "/config.toml") << to_toml(c);
  const run_data data = load_run_data(c, on_progress ? &std::cerr : nullptr);
  sim_summary s;
  {
    pipeline_driver d(c, out_dir, data, on_progress, resume_dir, stop, stage_backend);
    s = d.run();
  }
  s.wall_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return s;
}

}  // namespace murmur
