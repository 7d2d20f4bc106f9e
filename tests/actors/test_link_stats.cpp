// link_stats (actors/link_stats.hpp): round trips counted only for acks of
// our own recent heartbeats, once each, newest only; min, median, max.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>

#include "actors/link_stats.hpp"

using namespace murmur;

TEST_CASE("link_rtt: min, max and the median of the last 64 round trips", "[link_stats]") {
  link_rtt r;
  CHECK(r.samples() == 0);
  CHECK(r.median_s() == 0);
  CHECK(r.min_s() == 0);
  for (double s : {0.003, 0.001, 0.002}) r.add(s);
  CHECK(r.samples() == 3);
  CHECK(r.min_s() == 0.001);
  CHECK(r.max_s() == 0.003);
  CHECK(r.median_s() == 0.002);
  r.add(0.004);
  CHECK(r.median_s() == Approx(0.0025));
  // Not a time: ignored.
  r.add(-1);
  r.add(std::numeric_limits<double>::quiet_NaN());
  r.add(std::numeric_limits<double>::infinity());
  CHECK(r.samples() == 4);
  // The median follows the last 64; min and max stay over all.
  for (int i = 0; i < 64; ++i) r.add(0.010);
  CHECK(r.median_s() == 0.010);
  CHECK(r.min_s() == 0.001);
  CHECK(r.samples() == 68);
}

TEST_CASE("heartbeat_clock: an ack counts once, for our own recent heartbeat, newest first", "[link_stats]") {
  heartbeat_clock c;
  std::map<uint32_t, link_rtt> rtt;
  c.sent(1, 10.0);
  c.sent(2, 10.25);
  CHECK(c.acked(7, 1, 10.004, rtt));
  CHECK(rtt[7].samples() == 1);
  CHECK(rtt[7].min_s() == Approx(0.004));
  CHECK(!c.acked(7, 1, 10.5, rtt));    // the same ack again
  CHECK(!c.acked(7, 3, 10.5, rtt));    // a heartbeat we never sent
  CHECK(!c.acked(7, 0, 10.5, rtt));
  CHECK(c.acked(8, 1, 10.010, rtt));   // another peer's ack of the same heartbeat
  CHECK(c.acked(7, 2, 10.252, rtt));
  CHECK(!c.acked(8, 1, 10.6, rtt));    // older than one counted for that peer
  CHECK(rtt[7].samples() == 2);
  CHECK(rtt[8].samples() == 1);
  // Beyond the window the slot holds a newer heartbeat: an old ack is refused.
  for (uint64_t s = 3; s <= 3 + heartbeat_clock::window; ++s) c.sent(s, 11.0 + 0.25 * static_cast<double>(s));
  CHECK(!c.acked(9, 3, 40.0, rtt));
  CHECK(rtt.count(9) == 0);
}
