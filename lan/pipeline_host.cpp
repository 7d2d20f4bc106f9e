// murmur peer as a pipeline node (see pipeline_host.hpp): the LAN host of a
// stage actor, the real-network counterpart of sim/pipeline_simulation.cpp.
//
//   zmq bridge --(frame_atom, sender key, frame)--> adapter
//   adapter --deliver(node, frame)--> stage actor   (key -> node: the layout)
//   stage actor --send(from, to, frame)--> zmq bridge
//   stage actor --wake(node, delay, tag)--> clock --wake(tag)--> stage actor
//   stage actor --pevent--> observer (log lines, events, progress)
// The main thread polls what the observer and the adapter recorded and
// decides when this process is done.
#include "lan/pipeline_host.hpp"

#include <iostream>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "actors/gossip_actor.hpp"
#include "actors/stage_actor.hpp"
#include "actors/zmq_bridge.hpp"
#include "protocols/checkpoint_file.hpp"
#include "protocols/curve_keys.hpp"
#include "protocols/membership_messages.hpp"
#include "protocols/pipeline_messages.hpp"
#include "model_io/model_source.hpp"
#include "run/final_model.hpp"
#include "run/config_schema.hpp"
#include "run/json_text.hpp"
#include "run/peer_device.hpp"
#include "run/pipeline_plan.hpp"
#include "run/run_data.hpp"
#include "run/stage_placement.hpp"
#include "tensor/gemm.hpp"

namespace murmur {

namespace {

using clock_type = std::chrono::steady_clock;
using stage_key = std::pair<uint16_t, uint16_t>;  // (replica, stage)

constexpr int linger_ms = 2000;  // how long the last frames may take to leave

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct timed_event {
  pipeline_event e;
  int64_t unix_ms = 0;
  double wall_s = 0;
};

// What the actors of this process record for the main thread.
struct lan_shared {
  std::mutex m;
  clock_type::time_point t0 = clock_type::now();
  double last_progress_s = 0;             // a step done, a take-over, a heartbeat with a new step
  double first_step_s = -1, last_step_s = -1;  // our stage's steps 1 and `steps` done (time per batch)
  // Observer: our stage actor's events.
  std::vector<timed_event> events;        // all but step_done
  bool hosting = false;                   // a stage host (from the start, or since a take-over)
  uint16_t replica = 0, stage = 0;
  uint64_t steps = 0;                     // our stage's steps done (back after a roll-back)
  // Adapter: frames from the wire.
  std::map<stage_key, uint64_t> heard_step;  // highest step a stage's heartbeats reported
  std::map<stage_key, uint32_t> host_of;     // who hosts each stage (take-overs move it)
  uint64_t unknown_key = 0;               // a key that holds no node
  uint64_t not_pipeline = 0;              // a frame of another family
  uint64_t early_dropped = 0;             // past max_early_frames before the stage actor existed

  double now_s() const { return std::chrono::duration<double>(clock_type::now() - t0).count(); }
};

// Wakes the stage actor: op_done at once (a real op has already taken its
// time), ticks after their delay.
clock_actor::behavior_type lan_clock(clock_actor::pointer self) {
  return {[=](wake_atom, uint32_t, double delay, uint8_t tag) {
    auto to = caf::actor_cast<stage_actor>(self->current_sender());
    if (!to) return;
    if (tag == static_cast<uint8_t>(wake_tag::op_done) || !(delay > 0))
      self->send(to, wake_atom::value, tag);
    else
      self->delayed_send(to, std::chrono::microseconds(std::llround(delay * 1e6)), wake_atom::value, tag);
  }};
}

struct observer_settings {
  uint32_t node = 0;
  std::string name;  // "node N", or "node N (LABEL)" with the label of its authorized_peers line
  uint64_t total = 0, progress_every = 1;
  bool quiet = false;
};

// Forgets the connection to a node that no longer hosts anything: frames
// still queued for it would only make the exit linger.
void replaced(const std::shared_ptr<lan_shared>& sh, stage_key k, uint32_t new_host, uint32_t self_node,
              const caf::actor& bridge) {
  uint32_t old = 0;
  {
    std::lock_guard<std::mutex> g(sh->m);
    auto it = sh->host_of.find(k);
    if (it == sh->host_of.end() || it->second == new_host) return;
    old = it->second;
    it->second = new_host;
  }
  if (old != self_node) caf::anon_send(bridge, remove_peer_atom::value, old);
}

pipeline_observer::behavior_type lan_observer(pipeline_observer::pointer, std::shared_ptr<lan_shared> sh,
                                              observer_settings os, caf::actor bridge) {
  return {[=](pevent_atom, const pipeline_event& e) {
    const int64_t ms = unix_ms();
    double t = 0;
    {
      std::lock_guard<std::mutex> g(sh->m);
      t = sh->now_s();
      switch (e.kind) {
        case pipeline_event::step_done:
        case pipeline_event::takeover:
        case pipeline_event::rollback:
          sh->hosting = true;
          sh->replica = e.replica;
          sh->stage = e.stage;
          sh->steps = e.step;
          if (e.kind == pipeline_event::step_done) {
            if (e.step == 1) sh->first_step_s = t;
            sh->last_step_s = t;
          }
          sh->last_progress_s = t;
          if (e.kind != pipeline_event::step_done) sh->events.push_back({e, ms, t});  // steps are too many to log
          break;
        default: sh->events.push_back({e, ms, t});
      }
    }
    const auto r = static_cast<unsigned>(e.replica), s = static_cast<unsigned>(e.stage);
    const auto step = static_cast<unsigned long long>(e.step), lost = static_cast<unsigned long long>(e.lost_steps);
    const auto at = static_cast<long long>(ms);
    switch (e.kind) {
      case pipeline_event::step_done:
        if (os.quiet || (e.step % os.progress_every != 0 && e.step != os.total)) return;
        std::printf("%s: progress: replica %u stage %u step %llu/%llu, %.2f s, unix_ms %lld\n", os.name.c_str(), r, s,
                    step, static_cast<unsigned long long>(os.total), t, at);
        break;
      case pipeline_event::takeover:
        std::printf("%s: takeover: replica %u stage %u from its step-%llu checkpoint (%llu steps lost), "
                    "%.2f s, unix_ms %lld\n",
                    os.name.c_str(), r, s, step, lost, t, at);
        replaced(sh, {e.replica, e.stage}, os.node, os.node, bridge);
        break;
      case pipeline_event::rollback:
        std::printf("%s: rollback: replica %u stage %u to step %llu (%llu steps recomputed), %.2f s, "
                    "unix_ms %lld\n",
                    os.name.c_str(), r, s, step, lost, t, at);
        break;
      case pipeline_event::resumed:
        std::printf("%s: resumed: replica %u stage %u, step %llu done, %.2f s, unix_ms %lld\n", os.name.c_str(), r, s,
                    step, t, at);
        break;
      case pipeline_event::crashed:
        std::printf("%s: crashed: replica %u stage %u in step %llu, unix_ms %lld\n", os.name.c_str(), r, s, step, at);
        break;
      case pipeline_event::error:
        std::printf("%s: error: replica %u stage %u at step %llu: %s, unix_ms %lld\n", os.name.c_str(), r, s, step,
                    e.what.c_str(), at);
        break;
    }
    std::fflush(stdout);
  }};
}

struct adapter_settings {
  std::map<std::string, uint32_t> node_of_key;
  uint32_t self_node = 0;
  std::string self_name;  // as observer_settings::name
  size_t max_frame_bytes = 0;
};

// Frames that come before the stage actor exists (this node listens before
// it loads its data; a neighbour may already be running), delivered once it
// does: a lost activation or gradient would stall the pipeline.
struct early_frames {
  stage_actor target;
  std::vector<std::pair<uint32_t, wire_frame>> held;
};
constexpr size_t max_early_frames = 100000;  // beyond this, dropped and counted (a neighbour far ahead)

// Frames from the bridge: a known key becomes its node id for the stage
// actor (which checks everything else); heartbeats and take-overs are also
// noted here, for the main thread's decisions. It holds frames until
// (bind_atom, stage_actor) names the stage actor.
caf::behavior lan_adapter(caf::event_based_actor* self, std::shared_ptr<lan_shared> sh, adapter_settings as,
                          caf::actor bridge) {
  auto early = std::make_shared<early_frames>();  // this actor's own: no lock
  return {[=](bind_atom, stage_actor target) {
            early->target = target;
            for (auto& [from, w] : early->held) self->send(target, deliver_atom::value, from, std::move(w));
            early->held.clear();
            early->held.shrink_to_fit();
          },
          [=](frame_atom, const std::string& key, const wire_frame& w) {
            auto it = as.node_of_key.find(key);
            if (it == as.node_of_key.end() || !w.bytes) {
              std::lock_guard<std::mutex> g(sh->m);
              if (++sh->unknown_key <= 10)
                std::fprintf(stderr, "%s: dropped a frame from key %s, which holds no node\n", as.self_name.c_str(),
                             key.c_str());
              return;
            }
            const uint32_t from = it->second;
            auto type = peek_type(*w.bytes);
            if (!type || !is_pipeline_message(*type)) {
              std::lock_guard<std::mutex> g(sh->m);
              ++sh->not_pipeline;
              return;
            }
            if (*type == message_type::stage_heartbeat) {
              stage_heartbeat m;
              if (decode_stage_heartbeat(*w.bytes, as.max_frame_bytes, m) == frame_error::none && m.node == from) {
                std::lock_guard<std::mutex> g(sh->m);
                auto& h = sh->heard_step[{m.replica, m.stage}];
                if (m.step > h) {
                  h = m.step;
                  sh->last_progress_s = sh->now_s();
                }
              }
            } else if (*type == message_type::stage_takeover) {
              stage_takeover m;
              if (decode_stage_takeover(*w.bytes, as.max_frame_bytes, m) == frame_error::none && m.node == from) {
                {
                  std::lock_guard<std::mutex> g(sh->m);
                  sh->last_progress_s = sh->now_s();
                }
                replaced(sh, {m.replica, m.stage}, m.node, as.self_node, bridge);
              }
            }
            if (early->target) {
              self->send(early->target, deliver_atom::value, from, w);
            } else if (early->held.size() < max_early_frames) {
              early->held.emplace_back(from, w);
            } else {
              std::lock_guard<std::mutex> g(sh->m);
              ++sh->early_dropped;
            }
          }};
}

// "node N", "node N (LABEL)" where its key line has a label, and
// "node N (peer.index M, LABEL)" where placement put node N on another
// process than its index.
std::string node_name(uint32_t node, uint32_t machine, const std::string& label) {
  std::string parts = node == machine ? "" : "peer.index " + std::to_string(machine);
  if (!label.empty()) parts += (parts.empty() ? "" : ", ") + label;
  return "node " + std::to_string(node) + (parts.empty() ? "" : " (" + parts + ")");
}

// pipeline.split's form of a cut: "2,8,9".
std::string split_text(const std::vector<stage_range>& ranges) {
  std::string out;
  for (size_t s = 0; s + 1 < ranges.size(); ++s) {
    if (s) out += ',';
    out += std::to_string(ranges[s].end);
  }
  return out;
}

// The machines (peer.index) of each replica's stages 0..S-1, as JSON.
std::string stage_machines_json(const pipeline_plan& p) {
  std::string out = "[";
  for (uint16_t r = 0; r < p.replicas; ++r) {
    out += r ? ", [" : "[";
    for (uint16_t s = 0; s < p.stages; ++s) {
      if (s) out += ", ";
      out += std::to_string(p.machine_of[stage_node(r, s, p.stages)]);
    }
    out += "]";
  }
  return out + "]";
}

// Machine i = the i-th key line of the allowlist (see pipeline_host.hpp);
// node n runs on machine plan.machine_of[n].
std::vector<authorized_peer> machine_layout(const RunConfig& c, uint32_t nodes, const curve_keys& keys,
                                         const std::vector<authorized_peer>& allowed) {
  const std::string file = "peer.authorized_peers = " + c.authorized_peers;
  if (allowed.size() < nodes)
    throw ConfigError(file + " has " + std::to_string(allowed.size()) + " key line(s), but this pipeline has " +
                      std::to_string(nodes) + " nodes (stages x replicas + spares): node i is the i-th key line");
  std::vector<authorized_peer> layout(allowed.begin(), allowed.begin() + nodes);
  std::map<std::string, uint32_t> seen;
  for (uint32_t i = 0; i < nodes; ++i) {
    if (layout[i].endpoint.empty())
      throw ConfigError(file + ": key line " + std::to_string(i) + " (peer.index " + std::to_string(i) +
                        ") has no tcp://HOST:PORT; a pipeline node needs every node's address");
    if (!seen.emplace(layout[i].public_key, i).second)
      throw ConfigError(file + ": nodes " + std::to_string(seen[layout[i].public_key]) + " and " +
                        std::to_string(i) + " have the same key");
  }
  const auto self = static_cast<uint32_t>(c.peer_index);
  if (layout[self].public_key != keys.public_key)
    throw ConfigError("peer.index = " + std::to_string(self) + ", but key line " + std::to_string(self) + " of " +
                      c.authorized_peers + " is not this process's key (" + c.keys_dir +
                      "/peer.pub): node i is the i-th key line");
  return layout;
}

}  // namespace

int run_pipeline_host(const RunConfig& c, const pipeline_host_options& o, const std::atomic<int>& stop) {
  const std::string& listen = o.listen;
  const std::string& out = o.out;
  const bool quiet = o.quiet;
  if (c.replicas > 1 && c.mode == "delta")
    throw ConfigError("gossip.mode = delta is simulation-only; murmur peer supports threshold, dense, local_sgd");
  if (c.crash_stage >= 0)
    throw ConfigError("pipeline.crash_stage is the simulation's fault injection; on a LAN, kill the process");
  set_blas_threads(1);
  const curve_keys keys = read_curve_keys(c.keys_dir);
  const auto allowed = read_authorized_peer_entries(c.authorized_peers);
  // The layout needs no data: it is checked, and the port bound, before the
  // data loads (a mistake or a port in use is reported at once).
  const auto stages = static_cast<uint16_t>(c.stages);
  const uint32_t hosts = static_cast<uint32_t>(c.replicas) * stages,
                 nodes = hosts + static_cast<uint32_t>(c.spares);
  const auto machine = static_cast<uint32_t>(c.peer_index);
  if (static_cast<uint32_t>(c.peer_count) != nodes)
    throw ConfigError("peer.count = " + std::to_string(c.peer_count) + ", but this pipeline has " +
                      std::to_string(nodes) + " nodes (pipeline.stages x pipeline.replicas + pipeline.spares)");
  const auto lines = machine_layout(c, nodes, keys, allowed);
  // train.device = cuda without a usable GPU ends here, before anything loads
  // (a stage this node hosts, or takes over, trains there: run/pipeline_plan.hpp).
  const resolved_device device = peer_device_of(c, machine);
  std::filesystem::create_directories(out);
  std::ofstream(out + "/config.toml") << to_toml(c);
  const std::string ckdir = out + "/checkpoints";

  // The layout: which node (stage) this process runs. With placement = auto
  // it depends on the model's layer costs (run/pipeline_plan.hpp), so the
  // data loads first and the port is bound after (neighbours' frames wait
  // in their ZeroMQ queues meanwhile); with index, node = peer.index and the
  // port is bound before the data loads.
  run_data data;
  pipeline_plan plan;
  auto load_and_plan = [&] {  // false: interrupted while loading
    data = load_run_data(c, quiet ? nullptr : &std::cerr);
    if (stop.load() != 0) return false;
    try {
      plan = make_pipeline_plan(c, *data.train);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(e.what());
    }
    return true;
  };
  auto interrupted_before_training = [&](const std::string& who) {  // nothing trained, nothing written but config.toml
    std::fprintf(stderr, "%s: interrupted before training\n", who.c_str());
    return 128 + stop.load();
  };
  const bool placed = placement_is_auto(c);
  if (placed && !load_and_plan()) return interrupted_before_training("peer.index " + std::to_string(machine));
  std::vector<uint32_t> machine_of(nodes);
  for (uint32_t n = 0; n < nodes; ++n) machine_of[n] = placed ? plan.machine_of[n] : n;
  uint32_t node = machine;
  std::vector<authorized_peer> layout(nodes);  // per node: its machine's key line
  for (uint32_t n = 0; n < nodes; ++n) {
    layout[n] = lines[machine_of[n]];
    if (machine_of[n] == machine) node = n;
  }
  const std::string self_name = node_name(node, machine, layout[node].label);

  auto sh = std::make_shared<lan_shared>();
  for (uint32_t i = 0; i < hosts; ++i)
    sh->host_of[{static_cast<uint16_t>(i / stages), static_cast<uint16_t>(i % stages)}] = i;

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  zmq_transport_options zo;
  zo.listen = listen;
  zo.keys = keys;
  // The bridge's peer i is the i-th authorized key: node i's, then the
  // lines that hold no node.
  for (auto& e : layout) zo.authorized.push_back(e.public_key);
  for (size_t i = nodes; i < allowed.size(); ++i) zo.authorized.push_back(allowed[i].public_key);
  zo.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  auto bridge = spawn_zmq_bridge(sys, zo);  // a port in use throws here, naming the endpoint
  // However this function ends (an error below included), the actors stop
  // first: the actor system's destructor waits for them all.
  struct actors_stop {
    caf::actor bridge;
    std::vector<caf::actor> others;
    std::shared_ptr<stage_node_view> view;  // a take-over's gossip actor
    ~actors_stop() {
      caf::anon_send(bridge, stop_atom::value);
      for (auto& h : others) caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
      if (view && view->gossip) caf::anon_send_exit(view->gossip, caf::exit_reason::user_shutdown);
    }
  } stopper{bridge.actor, {}, {}};
  // Frames that come while the data loads are held by the adapter (pipeline
  // frames) or dropped by the bridge (gossip, before its actor exists;
  // counted apart, see gossip_before_start below).
  adapter_settings as;
  for (uint32_t i = 0; i < nodes; ++i) as.node_of_key[layout[i].public_key] = i;
  as.self_node = node;
  as.self_name = self_name;
  as.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  auto adapter = sys.spawn(lan_adapter, sh, as, bridge.actor);
  stopper.others.push_back(adapter);
  caf::anon_send(bridge.actor, route_atom::value, adapter);

  if (!placed && !load_and_plan()) return interrupted_before_training(self_name);
  const auto total = static_cast<uint64_t>(plan.total_steps);
  {  // Wall times count from here, as before the port was bound early.
    std::lock_guard<std::mutex> g(sh->m);
    sh->t0 = clock_type::now();
    sh->last_progress_s = 0;
  }

  auto make_stage = [&c, &plan, &data](uint16_t r, uint16_t s) {
    return std::make_shared<pipeline_stage>(stage_settings_for(c, plan, r, s), data.train, plan.shards[r]);
  };
  std::shared_ptr<pipeline_stage> hosted;
  if (node < hosts)
    hosted = make_stage(static_cast<uint16_t>(node / plan.stages), static_cast<uint16_t>(node % plan.stages));
  // A spare watches the stages whose index mod spares is its own number.
  std::vector<stage_key> watched;
  if (node >= hosts)
    for (uint32_t i = 0; i < hosts; ++i)
      if (i % plan.spares == node - hosts)
        watched.emplace_back(static_cast<uint16_t>(i / plan.stages), static_cast<uint16_t>(i % plan.stages));

  observer_settings os;
  os.node = node;
  os.name = self_name;
  os.total = total;
  os.progress_every = c.eval_every > 0 ? static_cast<uint64_t>(c.eval_every) : std::max<uint64_t>(1, total / 20);
  os.quiet = quiet;
  auto clock = sys.spawn(lan_clock);
  auto observer = sys.spawn(lan_observer, sh, os, bridge.actor);
  stopper.others.push_back(caf::actor_cast<caf::actor>(clock));
  stopper.others.push_back(caf::actor_cast<caf::actor>(observer));
  // Hybrid (replicas > 1): stage s gossips with stage s of the neighbouring
  // replicas (run/pipeline_plan.cpp, stage_gossip_settings); gossip frames
  // go from the bridge straight to the gossip actor. A spare that takes a
  // stage over makes its own and binds it; the other replicas' stage actors
  // swap the dead node for it when they hear the take-over.
  auto ns = stage_node_settings_for(c, plan, node, ckdir);
  gossip_actor gossip;
  gossip_factory make_gossip;
  // Gossip frames the bridge dropped before there was a gossip actor (its
  // neighbours started training while this node loaded its data): not
  // rejections. Everything the bridge counted as unknown until it bound ours.
  uint64_t gossip_before_start = 0;
  caf::scoped_actor self{sys};
  if (plan.replicas > 1) {
    if (hosted) {
      const auto gs = stage_gossip_settings(c, plan, static_cast<uint16_t>(node / plan.stages),
                                            static_cast<uint16_t>(node % plan.stages));
      ns.gossip_neighbours = gs.neighbours;
      gossip = spawn_gossip(sys, gs, hosted->model(), bridge.transport);
      stopper.others.push_back(caf::actor_cast<caf::actor>(gossip));
      caf::anon_send(bridge.actor, bind_atom::value, gossip);
      self->request(bridge.actor, std::chrono::seconds(60), stats_atom::value)
          .receive([&](bridge_stats& b) { gossip_before_start = b.unknown_sender_frames; }, [](caf::error&) {});
    }
    make_gossip = [&sys, &c, &plan, transport = bridge.transport, b = bridge.actor](
                      uint16_t r, uint16_t s, uint32_t n, std::shared_ptr<Sequential> model) {
      peer_settings ps = stage_gossip_settings(c, plan, r, s);
      ps.id = n;  // neighbours: the default hosts (this process cannot see other take-overs)
      auto g = spawn_gossip(sys, ps, std::move(model), transport);
      caf::anon_send(b, bind_atom::value, g);
      return g;
    };
  }
  auto view = std::make_shared<stage_node_view>();
  stopper.view = view;
  auto stage = spawn_stage_node(sys, ns, hosted, make_stage, bridge.transport, clock, observer, gossip, view,
                                make_gossip);
  stopper.others.push_back(caf::actor_cast<caf::actor>(stage));
  gossip = gossip_actor{};  // view->gossip holds it (or the one a take-over makes)
  hosted.reset();  // the actor owns it now; view->stage reads it once the actor is down
  caf::anon_send(adapter, bind_atom::value, stage);  // and the frames held so far
  for (uint32_t i = 0; i < nodes; ++i)
    if (i != node) caf::anon_send(bridge.actor, add_peer_atom::value, i, layout[i].endpoint, layout[i].public_key);

  const bool spare = node >= hosts;
  std::printf("murmur peer: pipeline %s of %u (%s), device %s, listening on %s, %llu steps -> %s\n", self_name.c_str(),
              nodes,
              spare ? "spare" : ("stage " + std::to_string(node % plan.stages) + " of replica " +
                                 std::to_string(node / plan.stages))
                                    .c_str(),
              device.label.c_str(), bridge.endpoint.c_str(), static_cast<unsigned long long>(total), out.c_str());
  // Every process computes the same layout from the same config: this line
  // is the same on all of them.
  std::string machines_text;
  for (uint16_t r = 0; r < plan.replicas; ++r) {
    if (r) machines_text += "; replica " + std::to_string(r) + " on ";
    machines_text += "peer.index ";
    for (uint16_t s = 0; s < plan.stages; ++s) {
      if (s) machines_text += ',';
      machines_text += std::to_string(plan.machine_of[stage_node(r, s, plan.stages)]);
    }
  }
  std::printf("murmur peer: pipeline placement %s: split \"%s\", stages 0..%u on %s; predicted %.3f ms per batch "
              "(index layout: %.3f ms; declared speeds and links: sim.speed_spread, sim.slow_peers, sim.link_*)\n",
              plan.placement.c_str(), split_text(plan.ranges).c_str(), static_cast<unsigned>(plan.stages - 1),
              machines_text.c_str(), 1e3 * plan.predicted_batch_s, 1e3 * plan.predicted_index_batch_s);
  std::fflush(stdout);
  caf::anon_send(stage, start_atom::value);

  // Wait for the end: ours, or a stall.
  const double stall_s = 5.0 + 10.0 * static_cast<double>(c.heartbeat_ms + c.suspect_ms + c.dead_ms) / 1000.0;
  const double start_s = static_cast<double>(c.start_timeout_ms) / 1000.0;
  self->monitor(stage);
  bool stage_down = false;
  std::string outcome, why;
  for (;;) {
    self->receive([&](caf::down_msg&) { stage_down = true; }, caf::after(std::chrono::milliseconds(10)) >> [] {});
    if (stop.load() != 0) {
      outcome = "interrupted";
      why = "interrupted by a signal";
      break;
    }
    std::lock_guard<std::mutex> g(sh->m);
    if (sh->hosting && sh->steps >= total) {
      outcome = "finished";
      break;
    }
    if (!sh->hosting && spare) {
      bool all = true;
      for (auto& k : watched) all = all && sh->heard_step.count(k) && sh->heard_step[k] >= total;
      if (all) {
        outcome = "finished";
        why = "every stage it watches has finished";
        break;
      }
    }
    if (stage_down) {
      outcome = "failed";
      why = "the stage actor stopped (see the error above)";
      break;
    }
    // Before anything moved, other nodes may still be starting (loading
    // their data): they get peer.start_timeout_ms, as data-parallel peers do.
    const bool started = sh->last_progress_s > 0;
    if (sh->now_s() - sh->last_progress_s > (started ? stall_s : std::max(stall_s, start_s))) {
      outcome = "stalled";
      why = started ? "nothing moved for " + json_number(stall_s) + " s (no step done, no heartbeat with a new step)"
                    : "no step in " + json_number(std::max(stall_s, start_s)) +
                          " s (peer.start_timeout_ms): are all the nodes of authorized_peers started?";
      break;
    }
  }

  // Stop the stage actor; then its stage can be read here.
  caf::anon_send_exit(stage, caf::exit_reason::user_shutdown);
  self->wait_for(stage);
  const auto st = view->stage;
  // The gossip's counters, then it stops (frames still queued may be lost).
  gossip_counters gc;
  const bool gossiped = static_cast<bool>(view->gossip);
  if (auto g = view->gossip) {
    self->request(g, std::chrono::seconds(5), stats_atom::value)
        .receive([&](gossip_counters& x) { gc = std::move(x); }, [](caf::error&) {});
    caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
    view->gossip = gossip_actor{};
  }
  std::string final_ckpt;
  final_model_info model_file;
  std::set<uint32_t> owed;  // nodes this one still owes frames
  if (st) {
    const auto& ss = st->settings();
    try {
      std::filesystem::create_directories(ckdir);
      final_ckpt = ckdir + "/stage-" + std::to_string(ss.replica) + "-" + std::to_string(ss.stage) + ".ckpt";
      write_checkpoint_file(final_ckpt, st->make_checkpoint(c.seed));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: could not write the final checkpoint: %s\n", self_name.c_str(), e.what());
      final_ckpt.clear();
    }
    // The layers this node hosts at the end, as a model file that murmur
    // export assembles with the other stages' (model_io/model_source.hpp).
    try {
      model_file = write_stage_model(out + "/" + stage_model_file_name(ss.replica, ss.stage), c, *st->model(),
                                     plan.input_shape, plan.num_classes, ss.range, ss.replica, ss.stage, plan.stages,
                                     st->steps_done());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "node %u: could not write its stage's model: %s\n", node, e.what());
    }
    // What this stage still owes: its last gradients to the previous
    // stage's host, and one last heartbeat to the spare watching it (the
    // stage actor's own last tick may not have come yet), so that the spare
    // knows it is done rather than dead.
    std::lock_guard<std::mutex> g(sh->m);
    if (ss.stage > 0) owed.insert(sh->host_of[{ss.replica, static_cast<uint16_t>(ss.stage - 1)}]);
    const uint32_t watcher = hosts + stage_node(ss.replica, ss.stage, plan.stages) % std::max<uint32_t>(1, plan.spares);
    bool watcher_hosts = false;
    for (auto& [k, h] : sh->host_of) watcher_hosts = watcher_hosts || h == watcher;
    if (plan.spares > 0 && watcher != node && !watcher_hosts && outcome == "finished") {
      owed.insert(watcher);
      stage_heartbeat hb{ss.replica, ss.stage, node, st->steps_done(), st->generation()};
      auto buf = std::make_shared<std::vector<std::byte>>();
      encode_stage_heartbeat(hb, *buf);
      caf::anon_send(bridge.transport, send_atom::value, node, watcher, wire_frame{std::move(buf)});
    }
  }
  // Frames queued for anyone else are not needed (e.g. heartbeats to a
  // spare that has taken a stage over and may have left): dropped, so that
  // they cannot hold the exit up.
  for (uint32_t j = 0; j < nodes; ++j)
    if (j != node && !owed.count(j)) caf::anon_send(bridge.actor, remove_peer_atom::value, j);
  // Hand the last frames to ZeroMQ and let them leave.
  bridge_stats net_stats;
  self->request(bridge.actor, caf::infinite, stats_atom::value)
      .receive([&](bridge_stats& b) { net_stats = b; }, [](caf::error&) {});
  bool flushed = false;
  self->send(bridge.actor, flush_atom::value, int32_t{linger_ms});
  self->receive([&](bool) { flushed = true; }, caf::after(std::chrono::milliseconds(linger_ms + 3000)) >> [] {});
  for (auto h : {caf::actor_cast<caf::actor>(adapter), caf::actor_cast<caf::actor>(clock),
                 caf::actor_cast<caf::actor>(observer)})
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);

  // summary.json and events.jsonl.
  std::vector<timed_event> events;
  uint64_t unknown = 0, not_pipeline = 0, early_dropped = 0;
  double wall_s = 0, batch_s = -1;
  {
    std::lock_guard<std::mutex> g(sh->m);
    if (sh->steps > 1 && sh->first_step_s >= 0 && sh->last_step_s > sh->first_step_s)
      batch_s = (sh->last_step_s - sh->first_step_s) / static_cast<double>(sh->steps - 1);
    events = sh->events;
    unknown = sh->unknown_key;
    not_pipeline = sh->not_pipeline;
    early_dropped = sh->early_dropped;
    wall_s = sh->now_s();
  }
  bool took_over = false;
  for (auto& te : events) took_over = took_over || te.e.kind == pipeline_event::takeover;
  uint64_t rejected = unknown + not_pipeline + view->frames_rejected +
                      (net_stats.unknown_sender_frames - std::min(net_stats.unknown_sender_frames, gossip_before_start)) +
                      net_stats.net.malformed_messages;
  for (auto n : net_stats.frame_errors) rejected += n;
  rejected += gc.rejected_total();
  uint64_t stale = 0;
  if (st) {
    rejected += st->stats().rejected;
    stale = st->stats().stale;
  }
  const bool last_stage = st && st->settings().stage + 1 == plan.stages;
  std::ofstream ev(out + "/events.jsonl");
  std::string ev_json = "[";
  for (auto& te : events) {
    std::string line = "{\"event\": \"" + std::string(to_string(te.e.kind)) +
                       "\", \"replica\": " + std::to_string(te.e.replica) + ", \"stage\": " +
                       std::to_string(te.e.stage) + ", \"step\": " + std::to_string(te.e.step) +
                       ", \"lost_steps\": " + std::to_string(te.e.lost_steps) + ", \"unix_ms\": " +
                       std::to_string(te.unix_ms) + ", \"wall_s\": " + json_number(te.wall_s) + ", \"what\": " +
                       json_string(te.e.what) + "}";
    ev << line << "\n";
    ev_json += (ev_json.size() > 1 ? ",\n    " : "\n    ") + line;
  }
  ev_json += events.empty() ? "]" : "\n  ]";
  std::ofstream(out + "/summary.json")
      << "{\n  \"node\": " << node << ",\n  \"role\": \"" << (spare ? "spare" : "stage")
      << "\",\n  \"replica\": " << (st ? std::to_string(st->settings().replica) : "-1")
      << ",\n  \"stage\": " << (st ? std::to_string(st->settings().stage) : "-1")
      << ",\n  \"took_over\": " << (took_over ? "true" : "false") << ",\n  \"outcome\": " << json_string(outcome) << ",\n  \"interrupted\": " << (outcome == "interrupted" ? "true" : "false")
      << ",\n  \"steps\": " << (st ? st->steps_done() : 0) << ",\n  \"total_steps\": " << total
      << ",\n  \"final_loss\": " << (last_stage && st->steps_done() > 0 ? json_number(st->last_step_loss()) : "null")
      << ",\n  \"mean_loss\": "
      << (last_stage && st->stats().loss_steps
              ? json_number(st->stats().loss_sum / static_cast<double>(st->stats().loss_steps))
              : "null")
      << ",\n  \"events\": " << ev_json << ",\n  \"frames_rejected\": " << rejected
      << ",\n  \"stale_frames\": " << stale << ",\n  \"gossip_frames_before_start\": " << gossip_before_start
      << ",\n  \"early_frames_dropped\": " << early_dropped << ",\n  \"frames_sent\": " << net_stats.net.frames_sent
      << ",\n  \"bytes_sent\": " << net_stats.net.bytes_sent << ",\n  \"frames_received\": "
      << net_stats.net.frames_received << ",\n  \"bytes_received\": " << net_stats.net.bytes_received
      << ",\n  \"gossip\": " << (gossiped ? "true" : "false") << ",\n  \"gossip_bytes_sent\": " << gc.bytes_sent
      << ",\n  \"gossip_msgs_sent\": " << gc.msgs_sent << ",\n  \"gossip_bytes_received\": " << gc.bytes_received
      << ",\n  \"gossip_msgs_received\": " << gc.msgs_received << ",\n  \"gossip_rounds\": " << gc.rounds
      << ",\n  \"send_dropped\": " << net_stats.net.send_dropped << ",\n  \"handshakes_refused\": "
      << net_stats.net.handshakes_refused << ",\n  \"flushed\": " << (flushed ? "true" : "false")
      << ",\n  \"final_checkpoint\": " << json_string(final_ckpt)
      << ",\n  \"final_model\": " << final_model_json(model_file) << ",\n  \"wall_time_s\": " << json_number(wall_s)
      << ",\n  \"placement\": " << json_string(plan.placement) << ",\n  \"split\": " << json_string(split_text(plan.ranges))
      << ",\n  \"stage_machines\": " << stage_machines_json(plan)
      << ",\n  \"predicted_batch_s\": " << json_number(plan.predicted_batch_s)
      << ",\n  \"predicted_index_batch_s\": " << json_number(plan.predicted_index_batch_s)
      << ",\n  \"batch_s\": " << (batch_s > 0 ? json_number(batch_s) : "null") << "\n}\n";
  if (outcome == "finished") {
    std::printf("%s: done: %s, %llu/%llu steps%s, %.2f s\n", self_name.c_str(),
                st ? ("replica " + std::to_string(st->settings().replica) + " stage " +
                      std::to_string(st->settings().stage))
                         .c_str()
                   : "spare",
                static_cast<unsigned long long>(st ? st->steps_done() : 0), static_cast<unsigned long long>(total),
                why.empty() ? "" : (" (" + why + ")").c_str(), wall_s);
    std::fflush(stdout);
    return 0;
  }
  if (outcome == "interrupted" && st)
    why += ", after step " + std::to_string(st->steps_done()) + " of " + std::to_string(total) +
           (final_ckpt.empty() ? "" : "; its checkpoint: " + final_ckpt);
  std::fprintf(stderr, "%s: %s: %s\n", self_name.c_str(), outcome.c_str(), why.c_str());
  return outcome == "interrupted" ? 128 + stop.load() : 1;
}

}  // namespace murmur
