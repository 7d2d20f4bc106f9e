// murmur peer on a LAN machine (see peer_host.hpp): the data-parallel
// peer, or a pipeline node (pipeline_host.hpp) when pipeline.stages > 1.
#include "lan/peer_host.hpp"

#include <iostream>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "actors/membership_actor.hpp"
#include "actors/topology.hpp"
#include "actors/peer.hpp"
#include "actors/zmq_bridge.hpp"
#include "run/malloc_arena.hpp"
#include "lan/peer_checkpoint.hpp"
#include "model_io/model_source.hpp"
#include "run/final_model.hpp"
#include "run/initial_model.hpp"
#include "lan/peer_rendezvous.hpp"
#include "lan/pipeline_host.hpp"
#include "run/attack_plan.hpp"
#include "run/config_schema.hpp"
#include "run/json_text.hpp"
#include "run/offload_setup.hpp"
#include "run/host_fingerprint.hpp"
#include "run/rewards_json.hpp"
#include "run/segment_replay_factory.hpp"
#include "run/peer_device.hpp"
#include "run/peer_settings_from_config.hpp"
#include "run/progress_printer.hpp"
#include "run/run_data.hpp"
#include "run/verification_choice.hpp"
#include "tensor/gemm.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

int run_peer_host(const RunConfig& requested, const peer_host_options& a, const std::atomic<int>& stop) {
  const std::string& out = a.out;
  // verify.rate = auto and verify.scheme = auto decided for this peer (run/verification_choice.hpp);
  // config.toml keeps them as asked, so that --resume decides anew.
  const verification_choice verify = choose_verification(requested);
  const RunConfig c = with_verification(requested, verify);
  // pipeline.stages > 1: this process is a pipeline node (lan/pipeline_host.hpp).
  if (c.stages > 1) {
    if (!a.join.empty()) std::fprintf(stderr, "murmur peer: --join is ignored by pipeline nodes (static layout)\n");
    if (!a.resume.empty())
      throw ConfigError("--resume " + a.resume +
                        ": pipeline nodes (pipeline.stages > 1) do not resume; a spare takes over a stopped stage "
                        "from its checkpoint");
    pipeline_host_options po;
    po.listen = a.listen;
    po.out = out;
    po.quiet = a.quiet;
    return run_pipeline_host(requested, po, stop);
  }
  set_blas_threads(1);
  const auto wall0 = std::chrono::steady_clock::now();
  auto wall = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count(); };

  const curve_keys keys = read_curve_keys(c.keys_dir);
  // Peer i is key line i: a key on two lines, or our own key not on line
  // peer.index, is a configuration error (the file is read as usual first).
  const auto identities = [&] {
    auto lines = read_authorized_peer_entries(c.authorized_peers);
    try {
      peer_identities ids(std::move(lines), c.authorized_peers);
      ids.check_self(static_cast<uint32_t>(c.peer_index), keys.public_key, c.keys_dir + "/peer.pub");
      return ids;
    } catch (const std::runtime_error& e) {
      throw ConfigError(e.what());
    }
  }();
  // Offload (docs/trust.md): every peer of an offloading run answers
  // products; offload.to may name the helper by its allowlist label.
  std::vector<std::string> labels;
  for (const auto& line : identities.lines()) labels.push_back(line.label);
  const offload_setup offload = offload_setup_of(c, static_cast<uint32_t>(c.peer_count), labels, nullptr);
  // Where this peer trains, before anything loads or is written:
  // train.device = cuda without a usable GPU ends here. An offloading peer
  // trains on the CPU; an explicit cuda there is a config error.
  const bool offloads = offload.offloads(static_cast<uint32_t>(c.peer_index));
  check_offloader_device(c, offloads);
  const resolved_device device = peer_device_of(c, static_cast<uint32_t>(c.peer_index), offloads);
  // --resume: this peer's checkpoint, read and checked before anything is
  // loaded or written.
  std::optional<peer_resume_point> resumed;
  if (!a.resume.empty()) resumed = read_peer_checkpoint(a.resume, static_cast<uint32_t>(c.peer_index), c.seed);
  const peer_checkpoint_counters base = resumed ? resumed->counters : peer_checkpoint_counters{};
  // Training wall time: a resumed peer's continues its earlier runs'.
  auto train_wall = [&] { return base.wall_s + wall(); };
  // A --join endpoint without an allowlist line is a config error, named
  // before anything is bound or loaded.
  std::vector<std::string> contacts;
  for (const auto& line : contact_lines(identities, a.join, keys.public_key, c.authorized_peers))
    contacts.push_back(line.endpoint);
  std::filesystem::create_directories(out);
  std::ofstream(out + "/config.toml") << to_toml(requested);

  // Listen before loading data, so a port in use is reported at once
  // (frames that come before the actors exist are dropped; joins are resent).
  // Before the actor system's threads exist: one malloc arena, which a
  // segment check's transient blocks do not ratchet up (malloc_arena.hpp).
  use_one_malloc_arena();
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  zmq_transport_options zo;
  zo.listen = a.listen;
  zo.keys = keys;
  for (auto& e : identities.lines()) zo.authorized.push_back(e.public_key);
  zo.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  auto bridge = spawn_zmq_bridge(sys, zo);
  // However this function ends, the actors stop first: the actor system's
  // destructor waits for them all.
  struct actors_stop {
    caf::actor bridge;
    std::vector<caf::actor> others;
    ~actors_stop() {
      caf::anon_send(bridge, stop_atom::value);
      for (auto& h : others) caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    }
  } stopper{bridge.actor, {}};
  const double start_timeout_s = static_cast<double>(c.start_timeout_ms) / 1000.0;
  // A contact with nothing listening fails here, before the data loads.
  if (!wait_for_contacts(contacts, start_timeout_s, stop, stdout)) return 128 + stop.load();

  // Data: this process's shard, cut the same way on every machine.
  const run_data data = load_run_data(c, a.quiet ? nullptr : &std::cerr);
  const auto& train = data.train;
  const auto& test = data.test;
  const int n = static_cast<int>(c.peer_count);
  auto shards = c.partition == "dirichlet" ? shard_dirichlet(train->labels, train->num_classes, n, c.alpha, c.seed)
                                           : shard_iid(train->size(), n, c.seed);
  auto shard = shards[static_cast<size_t>(c.peer_index)];
  const int64_t steps_per_epoch = (static_cast<int64_t>(shard.size()) + c.batch - 1) / c.batch;
  const int64_t total = std::max<int64_t>(1, std::llround(c.epochs * static_cast<double>(steps_per_epoch)));

  if (c.mode == "delta" || c.mode == "allreduce")
    throw ConfigError("gossip.mode = " + c.mode + " is simulation-only; murmur peer supports threshold, dense, local_sgd");
  // Neighbours come from the membership actor as peers join.
  const peer_settings ps = [&] {
    auto r = peer_settings_from_config(c, static_cast<uint32_t>(c.peer_index), static_cast<uint32_t>(c.peer_count), {},
                                       total);
    r.names = peer_names(labels);
    r.train.device = device;
    return r;
  }();
  // Deadlines run on the wall clock here, which also waits on scheduling
  // and the checks of other challenges: at least 1 s (100 ms charged honest
  // peers on a loaded 2-core machine); retention as for a 100 ms deadline.
  verify_timing timing;
  if (c.verify_rate > 0) {
    size_t degree = 0;
    for (const auto& nb : make_topology(c.topology, static_cast<uint32_t>(c.peer_count), static_cast<uint32_t>(c.degree),
                                        c.seed))
      degree = std::max(degree, nb.size());
    // Segments: the replays run on a replay actor of their own
    // (actors/segment_replay_actor.hpp), not on the actor that answers
    // challenges, so the 30 s floor they needed is gone; but a segment's
    // answer (a boundary state, MBs) still took up to 7.2 s to arrive with
    // three peers on two cores at loadavg 15-22 (lan-segments e2e), so at
    // least 10 s rather than a step's 1 s.
    const double floor_s = c.verify_scheme == "segment" ? 10.0 : 1.0;
    timing = verify_timing_of(c, *train, static_cast<uint32_t>(degree), static_cast<uint32_t>(c.peer_count), floor_s,
                              0.1);
  }
  // verify.scheme = segment: a verifier replays a neighbour's segments
  // bit for bit, so both must run the same binary on the same float kernel
  // path with the same training config; this process's fingerprint of
  // those goes into every commitment (docs/trust.md "Replays across
  // machines"). The BLAS thread count is set above, before it is read.
  const bool segmented = c.verify_scheme == "segment" && c.verify_rate > 0;
  host_fingerprint fingerprint;
  if (segmented) {
    fingerprint = host_fingerprint_of(c);
    std::printf("replay fingerprint %s\n  build: %s\n  kernel: %s\n", to_string(fingerprint.value).c_str(),
                fingerprint.build.c_str(), fingerprint.kernel.c_str());
    std::fflush(stdout);
  }
  // Evidence and miss claims go to every peer of the run; each re-checks
  // them against the commitments it holds itself.
  auto pv = peer_verification_from_config(
      c, ps, shards,
      [n = c.peer_count](uint32_t) {
        std::vector<uint32_t> all;
        for (uint32_t i = 0; i < static_cast<uint32_t>(n); ++i) all.push_back(i);
        return all;
      },
      c.seed ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()), timing, {});
  // This life's incarnation (membership's, below): wall-clock ms at start,
  // so a restart (--resume) states a higher one in its segment commitments
  // and its verifiers start a new chain of its segments.
  const auto incarnation = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  if (pv && segmented) {
    pv->settings.fingerprint = fingerprint.value;
    pv->settings.incarnation = incarnation;
    // A request reaches a prover late on a loaded machine (seconds, with
    // three peers on two shared cores). A prover that dropped the segment
    // meanwhile answers "unavailable", excused once the commitments it
    // dropped it for reach the verifier (verifier_actor.hpp), so this no
    // longer charges honest peers misses; but an excused challenge is a
    // segment not replayed, so keep_segments x K steps must outlast the
    // challenge's round trip under load (docs/trust.md "Running ahead"):
    // 6 kept (was 12; a boundary state each, 4.7 MB for the MLP): with 4,
    // build/test_e2e "[segment],[trust]" had 1-2 honest answers "unavailable"
    // (excused) per run at loadavg 8-10, with 6 none (docs/trust.md).
    pv->settings.keep_segments = std::max<size_t>(pv->settings.keep_segments, 6);
    pv->replay_of = segment_replay_factory(
        c, static_cast<uint32_t>(n), run_overlay(c, static_cast<uint32_t>(n)), shards, train, test);
    const auto model = build_model(c.model, train->sample_shape(), train->num_classes);
    pv->step_flops = 6.0 * static_cast<double>(model->forward_flops()) * static_cast<double>(c.batch);
  }
  std::function<void(trainer&)> restore;
  // model.init_from: this peer starts from it (a joining peer then pulls its donors' state; a resumed one has its checkpoint).
  const initial_params init = resumed ? nullptr : load_initial_parameters(c, train->sample_shape(), train->num_classes);
  if (init) restore = [&init](trainer& t) { std::copy(init->begin(), init->end(), t.model()->params()); };
  if (resumed)
    restore = [&](trainer& t) {
      try {
        t.restore(resumed->state);
      } catch (const std::invalid_argument& e) {
        throw checkpoint_error(peer_checkpoint_path(a.resume, static_cast<uint32_t>(c.peer_index)) + ": " + e.what());
      }
    };
  const auto po = peer_offload_of(c, offload, ps.id,
                                  c.seed ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()),
                                  c.offload_timeout_ms / 1000.0);
  auto peer = spawn_peer(sys, ps, train, shard, test, bridge.transport, pv ? &*pv : nullptr, restore,
                         po ? &*po : nullptr);
  stopper.others = {caf::actor_cast<caf::actor>(peer.shard), caf::actor_cast<caf::actor>(peer.gossip)};
  if (peer.verifier) stopper.others.push_back(caf::actor_cast<caf::actor>(peer.verifier));
  // The gossip state was built from the restored parameters: its first
  // frame is a complete copy, so neighbours' estimates of us are exact.
  if (resumed) caf::anon_send(peer.gossip, resync_atom::value);
  caf::anon_send(bridge.actor, bind_atom::value, peer.gossip);
  if (peer.verifier) caf::anon_send(bridge.actor, bind_atom::value, peer.verifier);

  membership_settings ms;
  ms.self.index = ps.id;
  ms.self.endpoint = a.listen.find(":*") == std::string::npos ? a.listen : bridge.endpoint;
  ms.self.public_key = keys.public_key;
  ms.self.incarnation = incarnation;
  ms.identities = identities;
  ms.join = a.join;
  ms.timeouts.suspect_s = static_cast<double>(c.suspect_ms) / 1000.0;
  ms.timeouts.dead_s = static_cast<double>(c.dead_ms) / 1000.0;
  ms.heartbeat_s = static_cast<double>(c.heartbeat_ms) / 1000.0;
  ms.topology = c.topology;
  ms.degree = static_cast<uint32_t>(c.degree);
  ms.seed = c.seed;
  ms.donors = static_cast<uint32_t>(c.donors);
  ms.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  // State chunks obey the bound gossip frames obey (gossip.max_value).
  ms.max_state_value = parameter_bound(
      c.max_value, {peer.train->model()->params(), static_cast<size_t>(peer.train->model()->param_count())});
  auto members = spawn_membership(sys, ms, bridge.actor, peer.gossip, peer.shard, peer.verifier);
  stopper.others.push_back(members);
  caf::anon_send(bridge.actor, route_atom::value, members);

  caf::scoped_actor self{sys};
  const auto timeout = std::chrono::seconds(60);
  auto live = [&] {
    std::vector<uint32_t> v;
    self->request(members, timeout, members_atom::value).receive([&](std::vector<uint32_t>& x) { v = x; }, [](caf::error&) {});
    return v;
  };
  std::printf("murmur peer %lld/%lld listening on %s, joining %zu contact(s), device %s -> %s\n",
              static_cast<long long>(c.peer_index), static_cast<long long>(c.peer_count), ms.self.endpoint.c_str(),
              a.join.size(), device.label.c_str(), out.c_str());
  std::printf("murmur peer: %s\n", verify.line().c_str());
  std::fflush(stdout);

  // Nobody trains until peer.min_peers are live (itself included), and a
  // peer that joined heard from someone (lan/peer_rendezvous.hpp).
  peer_wait_settings wait;
  wait.count = static_cast<uint32_t>(c.peer_count);
  wait.required = static_cast<uint32_t>(c.min_peers > 0 ? c.min_peers : c.peer_count);
  wait.contacts = contacts;
  wait.timeout_s = start_timeout_s;
  wait.start_anyway = c.on_start_timeout == "start";
  wait.quiet = a.quiet;
  const auto gate = wait_for_peers(live, identities, wait, stop, stdout);
  if (gate.interrupted) return 128 + stop.load();
  std::printf("peers: %zu of %lld live after %.2f s of waiting; training starts at unix_ms %lld (%.2f s after start)\n",
              gate.live.size(), static_cast<long long>(c.peer_count), gate.waited_s,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()),
              wall());
  std::fflush(stdout);

  // A (re)joining peer first pulls the current parameters from the members
  // present: donors are those that heartbeat us, which takes a heartbeat or
  // two after they are live; past the failure-detection horizon they would be
  // gone anyway. A resumed one keeps its own (its checkpoint, optimizer state
  // and step belong together) and gossip pulls it toward the others.
  if (resumed) {
    std::printf("resumed from %s at step %llu; no state transfer (gossip mixes it back in)\n",
                peer_checkpoint_path(a.resume, static_cast<uint32_t>(c.peer_index)).c_str(),
                static_cast<unsigned long long>(resumed->state.step));
    std::fflush(stdout);
  } else if (!contacts.empty()) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(
                                                         std::max<int64_t>(c.suspect_ms + c.dead_ms, 10 * c.heartbeat_ms));
    const auto dim = static_cast<uint32_t>(peer.train->model()->param_count());
    int32_t got = -1;
    while (got < 0 && std::chrono::steady_clock::now() < until) {
      self->request(members, timeout, fetch_atom::value, dim, 5.0).receive([&](int32_t x) { got = x; }, [](caf::error&) {});
      if (got < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::printf("state transfer: %d of %u parameters from live peers (%.2f s after start)\n", std::max(got, 0), dim, wall());
    std::fflush(stdout);
  }

  // Segments: the log opened when the gossip actor started; whatever came
  // since (neighbour lists, donors' state, a resync) is the start state now,
  // committed afresh before the first step (the trainer is idle here).
  if (peer.verifier && segmented) {
    bool opened = false;
    self->request(peer.gossip, timeout, segstart_atom::value).receive([&](bool x) { opened = x; }, [](caf::error&) {});
    if (!opened) throw std::runtime_error("verify.scheme = segment: the gossip actor could not open its segment log");
  }

  // One line when the first gossip frame is on its way: how long a start
  // takes, as an operator sees it. Polls until then, beside the training loop.
  std::jthread first_gossip([&sys, &wall, gossip = peer.gossip](std::stop_token done) {
    caf::scoped_actor asker{sys};
    while (!done.stop_requested()) {
      bool failed = false;
      uint64_t sent = 0;
      asker->request(gossip, std::chrono::seconds(10), stats_atom::value)
          .receive([&](gossip_counters& x) { sent = x.msgs_sent; }, [&](caf::error&) { failed = true; });
      if (failed) return;
      if (sent > 0) {
        std::printf("first gossip sent %.2f s after start (unix_ms %lld)\n", wall(),
                    static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count()));
        std::fflush(stdout);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });

  // A resumed peer appends to its earlier lines.
  std::ofstream metrics(out + "/metrics.jsonl", resumed ? std::ios::app : std::ios::trunc);
  progress_printer show(stdout);
  const int64_t eval_steps = c.eval_every > 0 ? c.eval_every : steps_per_epoch;
  eval_report last;
  gossip_counters g;
  bridge_stats net_stats;
  membership_stats control;
  // Frames dropped anywhere: gossip validation, unknown senders at the
  // bridge, bad control messages.
  auto rejected = [&] {
    uint64_t n = g.rejected_total() + net_stats.unknown_sender_frames + net_stats.net.malformed_messages +
                 control.dropped + control.identity_refused_total();
    for (auto e : net_stats.frame_errors) n += e;
    return n;
  };
  // Per reason: frame errors caught at the bridge plus the gossip actor's
  // own rejections (same names), then what only the bridge or the
  // membership actor can tell.
  auto rejected_by_reason = [&] {
    std::string r;
    for (size_t k = 1; k < g.rejected.size(); ++k) {
      uint64_t n = g.rejected[k] + (k < net_stats.frame_errors.size() ? net_stats.frame_errors[k] : 0);
      r += '"';
      r += to_string(static_cast<reject_reason>(k));
      r += "\": ";
      r += std::to_string(n);
      r += ", ";
    }
    r += "\"unknown_sender_key\": " + std::to_string(net_stats.unknown_sender_frames);
    r += ", \"malformed_zmq_message\": " + std::to_string(net_stats.net.malformed_messages);
    r += ", \"bad_control_frame\": " + std::to_string(control.dropped);
    r += '}';
    return r;
  };

  // Control frames (and relayed records) claiming a peer index their key
  // does not own (membership_actor.hpp), by kind.
  auto identity_refused_by_kind = [&] {
    std::string r = "{";
    for (size_t k = 0; k < control.identity_refused.size(); ++k) {
      if (k > 0) r += ", ";
      r += '"';
      r += to_string(static_cast<identity_claim>(k));
      r += "\": ";
      r += std::to_string(control.identity_refused[k]);
    }
    return r + "}";
  };

  bool interrupted = false;
  double loss_recent = 0;
  auto evaluate = [&](uint64_t step) {
    self->request(peer.shard, timeout, eval_atom::value).receive([&](eval_report& r) { last = r; }, [](caf::error&) {});
    self->request(peer.gossip, timeout, stats_atom::value).receive([&](gossip_counters& x) { g = x; }, [](caf::error&) {});
    g.bytes_sent += base.bytes_sent, g.msgs_sent += base.msgs_sent;
    g.bytes_received += base.bytes_received, g.msgs_received += base.msgs_received;
    auto alive = live();
    self->request(bridge.actor, timeout, stats_atom::value).receive([&](bridge_stats& b) { net_stats = b; }, [](caf::error&) {});
    self->request(members, timeout, stats_atom::value).receive([&](membership_stats& m) { control = m; }, [](caf::error&) {});
    metrics << "{\"wall_s\":" << json_number(train_wall()) << ",\"peer\":" << c.peer_index << ",\"step\":" << last.steps
            << ",\"epoch\":" << json_number(static_cast<double>(last.steps) / static_cast<double>(steps_per_epoch))
            << ",\"train_loss\":" << json_number(last.train_loss) << ",\"test_loss\":" << json_number(last.test_loss)
            << ",\"test_acc\":" << json_number(last.test_accuracy) << ",\"bytes_sent\":" << g.bytes_sent
            << ",\"msgs_sent\":" << g.msgs_sent << ",\"bytes_recv\":" << g.bytes_received
            << ",\"msgs_recv\":" << g.msgs_received << ",\"rejected\":" << rejected()
            << ",\"handshakes_refused\":" << net_stats.net.handshakes_refused
            << ",\"peers_alive\":" << alive.size() << "}\n";
    metrics.flush();
    if (!a.quiet) {
      run_progress p;
      p.fraction = static_cast<double>(step) / static_cast<double>(total);
      p.epoch = static_cast<double>(last.steps) / static_cast<double>(steps_per_epoch);
      p.steps = step;
      p.loss = loss_recent;
      p.accuracy = last.test_accuracy;
      p.bytes_sent = g.bytes_sent;
      p.wall_s = wall();
      p.virtual_clock = false;
      p.evaluation = true;
      show(p);
    }
  };
  uint64_t step = 0;
  self->request(peer.shard, timeout, state_atom::value, uint32_t{0}, uint32_t{0})
      .receive([&](state_slice& s) { step = s.step; }, [](caf::error&) {});
  const uint64_t resumed_from = step;
  // Between cycles (checkpoint.every, a stop): the counters as of now.
  std::string last_checkpoint;
  auto checkpoint_now = [&] {
    gossip_counters x;
    self->request(peer.gossip, timeout, stats_atom::value).receive([&](gossip_counters& y) { x = y; }, [](caf::error&) {});
    const uint32_t me = static_cast<uint32_t>(c.peer_index);
    try {
      write_peer_checkpoint(out, *peer.train, me, c.seed,
                            {base.bytes_sent + x.bytes_sent, base.msgs_sent + x.msgs_sent,
                             base.bytes_received + x.bytes_received, base.msgs_received + x.msgs_received, train_wall()});
      last_checkpoint = peer_checkpoint_path(out, me);
    } catch (const checkpoint_error& e) {
      std::fprintf(stderr, "murmur peer: could not write a checkpoint: %s\n", e.what());
    }
  };
  // outcome: finished (train.epochs done), stopped (run.stop_after), interrupted (a signal).
  std::string outcome = "finished";
  if (!a.quiet) {  // the first report: the progress line's ETA counts from here, not from data loading
    run_progress p;
    p.fraction = static_cast<double>(step) / static_cast<double>(total);
    p.steps = step;
    p.wall_s = wall();
    p.virtual_clock = false;
    show(p);
  }
  while (static_cast<int64_t>(step) < total) {
    if (stop.load() != 0) {
      interrupted = true;
      outcome = "interrupted";
      break;
    }
    if (c.stop_after > 0 && step >= static_cast<uint64_t>(c.stop_after)) {
      outcome = "stopped";
      break;
    }
    self->request(peer.shard, timeout, cycle_atom::value)
        .receive([&](step_report& r) { step = r.step; loss_recent = loss_recent == 0 ? r.loss : 0.98 * loss_recent + 0.02 * r.loss; },
                 [&](caf::error& e) { throw std::runtime_error("local step failed: " + to_string(e)); });
    if (c.checkpoint_every > 0 && step % static_cast<uint64_t>(c.checkpoint_every) == 0) checkpoint_now();
    if (step % static_cast<uint64_t>(eval_steps) == 0) evaluate(step);
  }
  // A signal's stop is resumable from exactly here (run.stop_after's, like
  // the simulation's, leaves the checkpoint.every ones).
  if (interrupted) checkpoint_now();
  evaluate(step);
  show.finish();
  // This peer's own final parameters: the model of a DDP run (the peers
  // agree up to their consensus distance), written however the run ended.
  final_model_info model_file;
  try {
    model_file = write_final_model(out + "/" + run_model_file_name, c, *peer.train->model(), *test,
                                   "murmur peer " + std::to_string(c.peer_index) + ": its own parameters", step);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "murmur peer: could not write its model: %s\n", e.what());
  }

  // Graceful leave: tell the others, give the frames a moment, then stop.
  self->request(members, timeout, leave_atom::value).receive([](bool) {}, [](caf::error&) {});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double secs = wall();
  // Whom this peer quarantined, and why (its own evidence only).
  auto quarantined = [&] {
    std::string r = "[";
    for (auto& q : g.quarantines) {
      if (r.size() > 1) r += ", ";
      r += "{\"peer\": " + std::to_string(q.peer) + ", \"step\": " + std::to_string(q.step) + ", \"cause\": \"" +
           std::string(to_string(q.cause)) + "\"}";
    }
    return r + "]";
  };
  verifier_stats vs;
  if (peer.verifier)
    self->request(peer.verifier, timeout, stats_atom::value).receive([&](verifier_stats& x) { vs = x; }, [](caf::error&) {});
  // Quarantines decided since the last evaluation (a verdict on a reply
  // that came in during the last steps) belong in the summary too.
  self->request(peer.gossip, timeout, stats_atom::value)
      .receive([&](gossip_counters& x) { g.quarantines = x.quarantines, g.link_sends = x.link_sends; },
               [](caf::error&) {});
  auto verification = [&]() -> std::string {
    if (!peer.verifier) return "";
    const double step_s = peer.train->step_seconds();
    return ",\n  \"verification\": {\"commits_sent\": " + std::to_string(vs.commits_sent) +
           ", \"challenges\": " + std::to_string(vs.challenges) + ", \"checks_passed\": " + std::to_string(vs.passed) +
           ", \"checks_failed\": " + std::to_string(vs.failed) + ", \"requests_answered\": " +
           std::to_string(vs.requests_answered) + ", \"evidence_sent\": " + std::to_string(vs.evidence_sent) +
           ", \"evidence_confirmed\": " + std::to_string(vs.evidence_confirmed) + ", \"evidence_rejected\": " +
           std::to_string(vs.evidence_rejected) + ", \"challenges_completed\": " +
           std::to_string(vs.challenges_completed) + ", \"challenges_missed\": " + std::to_string(vs.challenges_missed) +
           ", \"challenges_late\": " + std::to_string(vs.challenges_late) + ", \"challenges_expired\": " +
           std::to_string(vs.challenges_expired) + ", \"challenges_abandoned\": " +
           std::to_string(vs.challenges_abandoned) + ", \"misses_announced\": " + std::to_string(vs.misses_announced) +
           ", \"miss_claims_received\": " + std::to_string(vs.miss_claims_received) + ", \"misses_confirmed\": " +
           std::to_string(vs.misses_confirmed) + ", \"misses_rejected\": " + std::to_string(vs.misses_rejected) +
           ", \"misses_ignored\": " + std::to_string(vs.misses_ignored) + ", \"deadline_ms\": " +
           json_number(1000 * timing.deadline_s) + ", \"max_answer_ms\": " + json_number(1000 * vs.max_answer_s) +
           ", \"keep_steps\": " + std::to_string(timing.keep_steps) +
           (segmented ? ", \"segment_steps\": " + std::to_string(c.verify_segment) + ", \"segment_commits_sent\": " +
                            std::to_string(vs.segment_commits_sent) + ", \"segment_commits_received\": " +
                            std::to_string(vs.segment_commits_received) + ", \"segments_challenged\": " +
                            std::to_string(vs.segments_challenged) + ", \"segments_passed\": " +
                            std::to_string(vs.segments_passed) + ", \"segments_failed\": " +
                            std::to_string(vs.segments_failed) + ", \"segment_requests_answered\": " +
                            std::to_string(vs.segment_requests_answered) + ", \"segment_requests_unavailable\": " +
                            std::to_string(vs.segment_requests_unavailable) + ", \"segment_reply_bytes_max\": " +
                            std::to_string(vs.segment_reply_bytes_max) + ", \"segment_checks_dropped\": " +
                            std::to_string(vs.segment_checks_dropped) + ", \"segment_checks_waited\": " +
                            std::to_string(vs.segment_checks_waited) + ", \"segment_checks_waiting_max\": " +
                            std::to_string(vs.segment_checks_waiting_max) + ", \"segment_commits_refused\": " +
                            std::to_string(vs.segment_commits_refused) + ", \"segment_unavailable_answers\": " +
                            std::to_string(vs.segment_unavailable_answers) + ", \"keep_segments\": " +
                            std::to_string(pv->settings.keep_segments) + ", \"segment_replay_s\": " +
                            json_number(vs.segment_replay_seconds) + ", \"segment_chains_restarted\": " +
                            std::to_string(vs.segment_chains_restarted) + ", \"segment_frames_stale\": " +
                            std::to_string(vs.segment_frames_stale) + ", \"segment_gaps_implied\": " +
                            std::to_string(vs.segment_gaps_implied) + ", \"segment_gaps\": " +
                            std::to_string(vs.segment_gaps) + ", \"replay_fingerprint\": " +
                            json_string(to_string(fingerprint.value))
                      : std::string()) +
           ", \"commit_overhead_pct\": " +
           json_number(step_s > 0 ? 100 * peer.train->commit_seconds() / step_s : 0) + ", \"check_overhead_pct\": " +
           json_number(step_s > 0 ? 100 * vs.check_seconds / step_s : 0) + "}";
  };
  // What this peer offloaded (or, as the helper, served); "" when offload is off.
  auto offload_json = [](const peer_handles& h, const verifier_stats& v, const offload_setup& o) -> std::string {
    if (!o.on) return "";
    std::string r = ",\n  \"offload\": {\"helper\": " + std::to_string(o.helper) +
                    ", \"tasks_served\": " + std::to_string(v.tasks_served) + ", \"offloads\": " +
                    std::to_string(v.offloads) + ", \"offloads_verified\": " + std::to_string(v.offloads_verified) +
                    ", \"offloads_rejected\": " + std::to_string(v.offloads_rejected);
    if (h.offload) {
      const auto& t = h.offload->total();
      auto it = v.ledger.find(o.helper);
      r += ", \"products_local\": " + std::to_string(t.local) + ", \"timed_out\": " + std::to_string(t.timed_out) +
           ", \"verified_gflop\": " + json_number(t.verified_flops / 1e9) + ", \"helper_credit_gflop\": " +
           json_number(it == v.ledger.end() ? 0.0 : it->second.verified_flops / 1e9) +
           ", \"helper_trusted\": " + (h.offload->helper_trusted() ? "true" : "false");
    }
    return r + "}";
  };
  // What this peer's own checks credited each other peer with, and their
  // standing with it; murmur merge combines the peers' views.
  auto rewards = [&]() -> std::string {
    if (!peer.verifier) return "";
    std::vector<uint32_t> others;
    for (uint32_t i = 0; i < static_cast<uint32_t>(c.peer_count); ++i)
      if (i != static_cast<uint32_t>(c.peer_index)) others.push_back(i);
    return ",\n  \"rewards\": " + rewards_json(reputation_of(vs), others);
  };
  // Each other peer's link as this peer saw it (actors/link_stats.hpp):
  // frames and bytes each way, their mean rate over the run, heartbeat
  // round trips. Peers never heard from or sent to are left out.
  // Under a link budget, this peer's gossip frames to i: the send period
  // (published rounds per frame, as last planned), the frames sent, and our
  // published rounds (rounds / frames: the mean period).
  auto gossip_sends = [&](uint32_t i) -> std::string {
    for (const auto& l : g.link_sends)
      if (l.peer == i)
        return ", \"gossip_send_period\": " + std::to_string(l.period) + ", \"gossip_frames_sent\": " +
               std::to_string(l.frames) + ", \"gossip_rounds\": " + std::to_string(l.rounds);
    return "";
  };
  auto links_json = [&] {
    std::string r;
    for (uint32_t i = 0; i < static_cast<uint32_t>(c.peer_count); ++i) {
      if (i == static_cast<uint32_t>(c.peer_index)) continue;
      const auto b = net_stats.links.find(i);
      const auto t = control.rtt.find(i);
      if (b == net_stats.links.end() && t == control.rtt.end()) continue;
      const link_bytes l = b == net_stats.links.end() ? link_bytes{} : b->second;
      const link_rtt rtt = t == control.rtt.end() ? link_rtt{} : t->second;
      const double run_s = std::max(train_wall(), 1e-9);
      // The label first: `{"peer": N, ` stays the quarantine list's (tests and scripts count it).
      r += std::string(r.empty() ? "\n    " : ",\n    ") + "{\"label\": " +
           json_string(i < labels.size() ? labels[i] : "") + ", \"peer\": " + std::to_string(i) +
           ", \"frames_sent\": " + std::to_string(l.frames_sent) + ", \"bytes_sent\": " + std::to_string(l.bytes_sent) +
           ", \"frames_received\": " + std::to_string(l.frames_received) +
           ", \"bytes_received\": " + std::to_string(l.bytes_received) +
           ", \"sent_mbps_mean\": " + json_number(8e-6 * static_cast<double>(l.bytes_sent) / run_s) +
           ", \"received_mbps_mean\": " + json_number(8e-6 * static_cast<double>(l.bytes_received) / run_s) +
           ", \"rtt_samples\": " + std::to_string(rtt.samples()) + ", \"rtt_ms_min\": " + json_number(1000 * rtt.min_s()) +
           ", \"rtt_ms_median\": " + json_number(1000 * rtt.median_s()) +
           ", \"rtt_ms_max\": " + json_number(1000 * rtt.max_s()) + gossip_sends(i) + "}";
    }
    return "[" + r + (r.empty() ? "]" : "\n  ]");
  };
  const double allreduce = 2.0 * static_cast<double>(c.peer_count - 1) / static_cast<double>(c.peer_count) * 4.0 *
                           static_cast<double>(peer.train->model()->param_count()) * static_cast<double>(step);
  std::ofstream(out + "/summary.json")
      << "{\n  \"peer\": " << c.peer_index << ",\n  \"device\": " << json_string(device.label)
      << ",\n  \"final_test_accuracy\": " << json_number(last.test_accuracy)
      << ",\n  \"final_test_loss\": " << json_number(last.test_loss) << ",\n  \"bytes_sent_total\": " << g.bytes_sent
      << ",\n  \"bytes_received_total\": " << g.bytes_received
      << ",\n  \"dense_allreduce_bytes\": " << static_cast<uint64_t>(allreduce)
      << ",\n  \"frames_rejected\": " << rejected()
      << ",\n  \"links\": " << links_json()
      << ",\n  \"handshakes_refused\": " << net_stats.net.handshakes_refused << ",\n  \"rejected_by_reason\": {"
      << rejected_by_reason()
      << ",\n  \"identity_refused\": " << control.identity_refused_total() << ",\n  \"identity_refused_by_kind\": "
      << identity_refused_by_kind() << ",\n  \"state_chunks_refused\": " << control.state_refused
      << ",\n  \"attacker\": " << (ps.attack.kind != attack_kind::none ? "true" : "false")
      << ",\n  \"quarantined\": " << quarantined() << ",\n  \"verify\": " << verify.json()
      << verification() << rewards()
      << offload_json(peer, vs, offload)
      << ",\n  \"steps\": " << step << ",\n  \"total_steps\": " << total
      << ",\n  \"resumed_from_step\": " << (resumed ? std::to_string(resumed_from) : "null")
      << ",\n  \"outcome\": " << json_string(outcome)
      << ",\n  \"interrupted\": " << (interrupted ? "true" : "false")
      << ",\n  \"last_checkpoint\": " << (last_checkpoint.empty() ? "null" : json_string(last_checkpoint))
      << ",\n  \"final_model\": " << final_model_json(model_file)
      << ",\n  \"wall_time_s\": " << json_number(secs)
      << "\n}\n";
  std::printf("%s: test accuracy %.2f%%, %llu steps, sent %.3f MB (a ring all-reduce: %.3f MB), %.1f s%s\n",
              ps.names(static_cast<uint32_t>(c.peer_index)).c_str(), 100 * last.test_accuracy, static_cast<unsigned long long>(step),
              static_cast<double>(g.bytes_sent) / 1e6, allreduce / 1e6, secs,
              interrupted ? " (interrupted: left; continue with --resume)"
                          : (outcome == "stopped" ? " (run.stop_after reached)" : ""));
  caf::anon_send(bridge.actor, stop_atom::value);
  for (auto& h : {caf::actor_cast<caf::actor>(peer.shard), caf::actor_cast<caf::actor>(peer.gossip), members})
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  if (peer.verifier) caf::anon_send_exit(peer.verifier, caf::exit_reason::user_shutdown);
  return interrupted ? 128 + stop.load() : 0;
}

}  // namespace murmur
