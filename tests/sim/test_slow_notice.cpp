// slow_notice (run/slow_notice.hpp): data loading that takes more than a
// second says so once a second and when done; a fast one says nothing.
#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "run/slow_notice.hpp"

using namespace murmur;

TEST_CASE("slow_notice: silent when fast, a line a second and a done line when slow", "[slow_notice]") {
  std::ostringstream fast;
  { slow_notice n("loading X", &fast, 0.5); }
  CHECK(fast.str().empty());

  std::ostringstream slow;
  {
    slow_notice n("loading Y", &slow, 0.05);
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  }
  const std::string s = slow.str();
  INFO(s);
  CHECK(s.find("loading Y... 0 s\n") != std::string::npos);
  CHECK(s.find("loading Y... 1 s\n") != std::string::npos);
  CHECK(s.find("loading Y: done in 1.") != std::string::npos);

  { slow_notice quiet("loading Z", nullptr, 0.0); }  // nullptr: nothing, no thread
}
