// check_worker (sim/check_worker.hpp): where the simulator's segment checks
// run. Works run once each, in order; wait returns only after its work did
// and rethrows what it threw, wait_idle after all did; a worker destroyed
// with works queued stops.
#include <catch2/catch.hpp>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "sim/check_worker.hpp"

using namespace murmur;

TEST_CASE("check_worker runs works once each, in the order submitted, and wait returns after its work",
          "[check_worker]") {
  const bool threaded = GENERATE(false, true);
  INFO("threaded " << threaded);
  check_worker w(threaded);
  CHECK(w.threaded() == threaded);
  std::vector<int> order;  // written by the worker, read after wait
  std::vector<uint64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(w.submit([&order, i] { order.push_back(i); }));
  for (uint64_t k = 0; k < ids.size(); ++k) CHECK(ids[k] == k);
  w.wait_idle();  // every work returned
  REQUIRE(order.size() == 20);
  w.wait(ids.back());
  for (int i = 0; i < 20; ++i) CHECK(order[static_cast<size_t>(i)] == i);
}

TEST_CASE("check_worker: a work that throws is rethrown by its wait, the others are not affected",
          "[check_worker]") {
  const bool threaded = GENERATE(false, true);
  INFO("threaded " << threaded);
  check_worker w(threaded);
  std::atomic<int> ran{0};
  const auto a = w.submit([&] { ++ran; });
  const auto b = w.submit([] { throw std::runtime_error("replay broke"); });
  const auto c = w.submit([&] { ++ran; });
  CHECK_NOTHROW(w.wait(a));
  CHECK_THROWS_WITH(w.wait(b), "replay broke");
  CHECK_NOTHROW(w.wait(c));
  CHECK(ran == 2);
}

TEST_CASE("check_worker: a threaded worker runs beside its caller, and one destroyed with works queued stops",
          "[check_worker]") {
  std::atomic<bool> release{false}, started{false};
  std::atomic<int> ran{0};
  {
    check_worker w(true);
    const auto id = w.submit([&] {
      started = true;
      while (!release) std::this_thread::yield();
      ++ran;
    });
    // submit returned while the work still runs: it is not on this thread.
    while (!started) std::this_thread::yield();
    CHECK(ran == 0);
    for (int i = 0; i < 5; ++i) w.submit([&] { ++ran; });
    release = true;
    w.wait(id);
    CHECK(ran >= 1);
  }  // destroyed: joins, whatever was not started is dropped
  CHECK(ran >= 1);
  CHECK(ran <= 6);
}
