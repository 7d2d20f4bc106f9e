// Traffic classes on the simulated uplinks (protocols/traffic_class.hpp,
// run/link_model.hpp send_ranked, sim/sim_network.hpp): a heartbeat queued
// behind a 5 MB verification reply waits for one chunk, not the reply; frames
// of one class get FIFO's times exactly; the event queue drops cancelled events.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "protocols/traffic_class.hpp"
#include "run/config_schema.hpp"
#include "run/link_model.hpp"
#include "sim/sim_network.hpp"
#include "sim/simulation.hpp"
#include "run_dir.hpp"

using namespace murmur;
using murmur::test::scratch;
using murmur::test::slurp;

namespace {

constexpr double gbit = 1e9;
constexpr double chunk = static_cast<double>(traffic_chunk_bytes);
constexpr int control = static_cast<int>(traffic_class::control);
constexpr int gossip = static_cast<int>(traffic_class::gossip);
constexpr int verification = static_cast<int>(traffic_class::verification);
constexpr int bulk = static_cast<int>(traffic_class::bulk);

}  // namespace

TEST_CASE("ranked uplink: a heartbeat behind a 5 MB reply waits at most one chunk", "[network][traffic]") {
  const double lat = 0.001, reply = 5e6, hb = 64, upd = 100e3;
  const double chunk_s = chunk * 8 / gbit;  // 0.52 ms at 1 Gbit/s
  // Before: one FIFO. The heartbeat leaves after the whole reply (40 ms).
  auto fifo = link_model::uniform(gbit, lat, 3);
  const auto r0 = fifo.send(0, 1, reply, 0.0);
  const auto h0 = fifo.send(0, 2, hb, 0.001);
  const auto g0 = fifo.send(0, 2, upd, 0.001);
  CHECK(h0.arrive - 0.001 > 0.039);
  CHECK(g0.arrive - 0.001 > 0.04);

  // After: the reply is cut at its next chunk boundary, the heartbeat and
  // the gossip frame go, then the rest of the reply.
  auto m = link_model::uniform(gbit, lat, 3);
  std::vector<link_model::moved_frame> moved;
  const auto r = m.send_ranked(0, 1, reply, 0.0, verification, 1, chunk, moved);
  CHECK(r.up_done == r0.up_done);
  CHECK(moved.empty());
  const auto h = m.send_ranked(0, 2, hb, 0.001, control, 2, chunk, moved);
  INFO("heartbeat arrives " << (h.arrive - 0.001) * 1e3 << " ms after it was sent; FIFO " << (h0.arrive - 0.001) * 1e3);
  CHECK(h.up_done - 0.001 <= chunk_s + hb * 8 / gbit + 1e-12);
  CHECK(h.arrive - 0.001 <= chunk_s + hb * 8 / gbit + lat + 1e-12);
  REQUIRE(moved.size() == 1);
  CHECK(moved[0].id == 1);
  CHECK(moved[0].t.up_done == Approx(r0.up_done + hb * 8 / gbit).epsilon(1e-12));
  moved.clear();
  const auto g = m.send_ranked(0, 2, upd, 0.001, gossip, 3, chunk, moved);
  CHECK(g.up_done == Approx(h.up_done + upd * 8 / gbit).epsilon(1e-12));  // right after the heartbeat
  CHECK(g.arrive - 0.001 < 0.003);
  REQUIRE(moved.size() == 1);  // the reply again, by the gossip frame's time
  CHECK(moved[0].t.up_done == Approx(r0.up_done + (hb + upd) * 8 / gbit).epsilon(1e-12));
  CHECK(moved[0].t.arrive == Approx(moved[0].t.up_done + lat).epsilon(1e-12));
  // Bytes are conserved: the uplink is busy exactly as long as under FIFO.
  CHECK(moved[0].t.up_done == Approx(g0.up_done).epsilon(1e-12));
}

TEST_CASE("ranked uplink: strict order between classes, FIFO within one, a bulk frame goes last", "[network][traffic]") {
  auto m = link_model::uniform(8e6, 0.0, 2);  // 1 MB/s: times in s are MB
  std::vector<link_model::moved_frame> moved;
  const auto b = m.send_ranked(0, 1, 1e6, 0.0, bulk, 1, chunk, moved);              // 0 .. 1
  const auto v = m.send_ranked(0, 1, 1e6, 0.1, verification, 2, chunk, moved);      // cuts b
  const auto v2 = m.send_ranked(0, 1, 0.5e6, 0.2, verification, 3, chunk, moved);  // behind v
  const auto c = m.send_ranked(0, 1, 1e3, 0.3, control, 4, chunk, moved);           // cuts v
  CHECK(b.up_done == Approx(1.0));
  // v starts at b's first chunk boundary after 0.1 s (chunks of 65536 bytes).
  const double cut_b = 2 * chunk / 1e6;  // 0.131 s
  CHECK(v.up_done == Approx(cut_b + 1.0));
  CHECK(v2.up_done == Approx(cut_b + 1.5));
  // The heartbeat waits for v's chunk in progress at 0.3 s: v started at cut_b.
  const double k = std::ceil((0.3 - cut_b) * 1e6 / chunk);
  CHECK(c.up_done == Approx(cut_b + k * chunk / 1e6 + 1e3 / 1e6));
  CHECK(c.up_done - 0.3 <= chunk / 1e6 + 1e3 / 1e6 + 1e-9);
  // Everything ends when 2.501 MB have gone, b last.
  double b_done = 0, v2_done = 0;
  for (const auto& f : moved) {
    if (f.id == 1) b_done = f.t.up_done;
    if (f.id == 3) v2_done = f.t.up_done;
  }
  CHECK(v2_done == Approx(cut_b + 1.5 + 1e-3));
  CHECK(b_done == Approx(2.5 + 1e-3));
}

TEST_CASE("ranked uplink: frames of one class get send()'s times to the last bit", "[network][traffic]") {
  for (const char* classes : {"", "home:1,office:2"}) {
    RunConfig c;
    c.peers = 3;
    c.link_classes = classes;
    auto fifo = link_model::from_config(c, 3);
    auto ranked = link_model::from_config(c, 3);
    std::vector<link_model::moved_frame> moved;
    double t = 0;
    for (uint64_t k = 0; k < 200; ++k) {
      const auto from = static_cast<uint32_t>(k % 3), to = static_cast<uint32_t>((from + 1 + (k / 3) % 2) % 3);
      const double bytes = 100.0 + static_cast<double>((k * 7919) % 300000);
      t += static_cast<double>(k % 5) * 1e-4;
      const auto a = fifo.send(from, to, bytes, t);
      const auto b = ranked.send_ranked(from, to, bytes, t, gossip, k, chunk, moved);
      REQUIRE(a.up_done == b.up_done);
      REQUIRE(a.arrive == b.arrive);
    }
    CHECK(moved.empty());
  }
}

TEST_CASE("event queue: a cancelled event is never popped", "[network][traffic]") {
  event_queue q;
  sim_event e;
  e.time = 1;
  const auto a = q.push(e);
  e.time = 2;
  q.push(e);
  e.time = 0.5;
  const auto c = q.push(e);
  q.cancel(c);
  CHECK(q.next_time() == 1);
  q.cancel(a);
  CHECK(q.next_time() == 2);
  CHECK(q.pop().time == 2);
  CHECK(q.empty());
}

TEST_CASE("every frame type has a traffic class", "[network][traffic]") {
  CHECK(traffic_class_of(message_type::heartbeat) == traffic_class::control);
  CHECK(traffic_class_of(message_type::stage_heartbeat) == traffic_class::control);
  CHECK(traffic_class_of(message_type::gossip_update) == traffic_class::gossip);
  CHECK(traffic_class_of(message_type::segment_reply) == traffic_class::verification);
  CHECK(traffic_class_of(message_type::state_chunk) == traffic_class::bulk);
  for (uint16_t t = 0; t < 64; ++t) {
    if (!known_message_type(t)) continue;
    const auto c = traffic_class_of(static_cast<message_type>(t));
    CHECK(static_cast<int>(c) < traffic_class_count);
    CHECK(to_string(c) != "?");
  }
}

namespace {

// The 1 Gbit/s default with segment verification at rate 1, K = 4: every
// segment's start state (4.7 MB, 38 ms on the uplink) goes to both ring
// neighbours every 4 steps, several times what the uplink carries
// (tests/sim/test_segment_misses.cpp): before traffic classes, every
// gossip frame queued behind that backlog.
sim_summary overloaded_run(const std::string& uplink) {
  auto cfg = load_config(std::string(MURMUR_SOURCE_DIR) + "/configs/fmnist-gossip.toml",
                         {"data.train_samples=16000", "data.test_samples=500", "train.epochs=1",
                          "verify.scheme=segment", "verify.segment=4", "verify.rate=1", "sim.uplink=" + uplink});
  return run_simulation(cfg, scratch("traffic-" + uplink).string());
}

const traffic_delay& delay_of(const sim_summary& s, const std::string& cls) {
  for (const auto& t : s.traffic)
    if (t.cls == cls) return t;
  FAIL("no traffic class " << cls << " in the summary");
  return s.traffic.front();
}

}  // namespace

TEST_CASE("verification replies that overload a 1 Gbit/s uplink no longer delay gossip; nobody is suspected",
          "[network][traffic][sim]") {
  const auto fifo = overloaded_run("fifo");
  const auto ranked = overloaded_run("classes");
  const auto& gf = delay_of(fifo, "gossip");
  const auto& gr = delay_of(ranked, "gossip");
  const auto& vr = delay_of(ranked, "verification");
  INFO("gossip delay, fifo: mean " << gf.mean_s * 1e3 << " ms, max " << gf.max_s * 1e3 << " ms; classes: mean "
                                   << gr.mean_s * 1e3 << " ms, max " << gr.max_s * 1e3 << " ms; verification (classes) mean "
                                   << vr.mean_s * 1e3 << " ms, max " << vr.max_s * 1e3 << " ms");
  REQUIRE(gf.frames > 100);
  REQUIRE(gr.frames > 100);
  REQUIRE(vr.frames > 50);
  CHECK(gf.max_s > 0.05);   // behind at least one whole 38 ms reply (76 ms here)
  CHECK(gr.max_s < 0.005);  // a chunk (0.5 ms), gossip's own frames, 1 ms latency (1.6 ms here)
  CHECK(gr.mean_s < gf.mean_s / 4);  // 1.26 against 9.3 ms here, 1 ms of it latency
  const auto& v = ranked.verification;
  INFO("challenges " << v.challenges << " completed " << v.challenges_completed << " missed " << v.challenges_missed
                     << " deadline " << v.deadline_s << " s, slowest answer " << v.max_answer_s << " s");
  CHECK(v.challenges > 20);
  CHECK(v.challenges_missed == 0);
  CHECK(v.segments_failed == 0);
  CHECK(ranked.quarantines_by_cause.empty());
  CHECK(ranked.detection.honest_quarantined == 0);
  CHECK(fifo.final_test_accuracy > 0.6);
  CHECK(ranked.final_test_accuracy > 0.6);
}
