// A joining peer's state fetch with a hostile donor among the live members
// (issue 10; state_fetch.hpp): a silent donor does not stall the join, a
// wrong one is refused and routed around, and no donor moves our step past
// the others'.
#include <catch2/catch.hpp>
#include <map>

#include "actors/state_fetch.hpp"

using namespace murmur;

namespace {

constexpr uint32_t dim = 3 * max_state_chunk_floats + 17;  // several ranges per donor

// A donor's honest answer: coordinate i holds value(i).
state_chunk answer(uint32_t donor, const state_request& r, uint64_t step) {
  state_chunk c{donor, r.request_id, step, dim, r.offset, std::vector<float>(r.length)};
  for (uint32_t i = 0; i < r.length; ++i) c.values[i] = 0.001f * static_cast<float>((r.offset + i) % 1000);
  return c;
}

// Every coordinate installed exactly once, with the honest values.
void check_cover(const std::vector<state_slice>& slices, uint64_t step) {
  std::vector<int> seen(dim, 0);
  size_t wrong = 0;
  for (auto& s : slices) {
    CHECK(s.step == step);
    CHECK(s.dim == dim);
    for (size_t i = 0; i < s.values.size(); ++i) {
      ++seen[s.offset + i];
      wrong += s.values[i] != 0.001f * static_cast<float>((s.offset + i) % 1000);
    }
  }
  CHECK(wrong == 0);
  CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<long>(dim));
}

}  // namespace

TEST_CASE("state fetch: a silent donor's ranges go to the donor that delivered", "[state_fetch]") {
  state_fetch f(/*self*/ 1, dim, {0, 3}, 100, 1000.f);
  auto asks = f.start();
  REQUIRE(asks.size() >= 4);
  for (auto& [donor, r] : asks)
    if (donor == 0) CHECK(f.on_chunk(0, answer(0, r, 500)) == state_fetch::verdict::taken);
  CHECK_FALSE(f.complete());
  auto again = f.on_deadline({0, 3});  // donor 3 never answered
  REQUIRE_FALSE(again.empty());
  for (auto& [donor, r] : again) {
    CHECK(donor == 0);
    for (auto& [d0, r0] : asks) CHECK(r.request_id != r0.request_id);  // fresh ids: 3's late answers are not taken
  }
  // Donor 3 wakes up late: its answers are unexpected now.
  for (auto& [donor, r] : asks)
    if (donor == 3) CHECK(f.on_chunk(3, answer(3, r, 500)) == state_fetch::verdict::unexpected);
  state_fetch::verdict last{};
  for (auto& [donor, r] : again) last = f.on_chunk(0, answer(0, r, 500));
  CHECK(last == state_fetch::verdict::complete);
  CHECK_FALSE(f.failed());
  check_cover(f.take_slices(), 500);
}

TEST_CASE("state fetch: chunks of the wrong range, donor or magnitude are refused and asked again elsewhere",
          "[state_fetch]") {
  state_fetch f(1, dim, {0, 3}, 100, 10.f);
  auto asks = f.start();
  bool lied = false;
  for (auto& [donor, r] : asks) {
    auto c = answer(donor, r, 500);
    if (donor == 0) {
      CHECK(f.on_chunk(0, std::move(c)) == state_fetch::verdict::taken);
      continue;
    }
    // Donor 3: another donor's request id, a shifted range, a short one,
    // another dim, values beyond the bound: each refused or unexpected.
    auto other = std::find_if(asks.begin(), asks.end(), [](auto& a) { return a.first == 0; });
    auto foreign = answer(3, other->second, 500);
    CHECK(f.on_chunk(3, std::move(foreign)) == state_fetch::verdict::unexpected);
    if (!lied) {
      auto shifted = c;
      shifted.offset += 1;
      CHECK(f.on_chunk(3, std::move(shifted)) == state_fetch::verdict::refused);
      auto short_one = c;
      short_one.values.pop_back();
      CHECK(f.on_chunk(3, std::move(short_one)) == state_fetch::verdict::refused);
      auto wrong_dim = c;
      wrong_dim.dim = dim + 1;
      CHECK(f.on_chunk(3, std::move(wrong_dim)) == state_fetch::verdict::refused);
      lied = true;
    }
    c.values[0] = 11.f;  // finite, beyond the bound of 10
    CHECK(f.on_chunk(3, std::move(c)) == state_fetch::verdict::refused);
  }
  CHECK(f.refused_donors() == std::set<uint32_t>{3});
  auto again = f.on_deadline({0, 3});
  REQUIRE_FALSE(again.empty());
  for (auto& [donor, r] : again) {
    CHECK(donor == 0);
    CHECK(f.on_chunk(donor, answer(donor, r, 500)) != state_fetch::verdict::refused);
  }
  CHECK(f.complete());
  check_cover(f.take_slices(), 500);
}

TEST_CASE("state fetch: the smallest step any donor reported is installed", "[state_fetch]") {
  state_fetch f(1, dim, {0, 2}, 100, 0.f);
  for (auto& [donor, r] : f.start()) f.on_chunk(donor, answer(donor, r, donor == 2 ? UINT64_MAX : 700));
  REQUIRE(f.complete());
  check_cover(f.take_slices(), 700);  // not UINT64_MAX: a donor cannot end our run
}

TEST_CASE("state fetch: with no donor that delivered, the fetch fails and installs nothing", "[state_fetch]") {
  state_fetch f(1, dim, {0, 3}, 100, 1000.f);
  auto asks = f.start();
  // Only donor 3 answers, and wrongly; donor 0 is silent.
  for (auto& [donor, r] : asks)
    if (donor == 3) {
      auto c = answer(3, r, 500);
      c.values[0] = 1e9f;
      f.on_chunk(3, std::move(c));
    }
  CHECK(f.on_deadline({0, 3}).empty());
  CHECK(f.failed());
  CHECK(f.take_slices().empty());
  // After one retry, a second deadline gives up too.
  state_fetch g(1, dim, {0, 3}, 100, 1000.f);
  auto first = g.start();
  for (auto& [donor, r] : first)
    if (donor == 0) g.on_chunk(0, answer(0, r, 1));
  REQUIRE_FALSE(g.on_deadline({0, 3}).empty());
  CHECK(g.on_deadline({0, 3}).empty());  // donor 0 went silent too
  CHECK(g.failed());
  CHECK_THROWS_AS(state_fetch(1, dim, {}, 1, 0.f), std::invalid_argument);
}

TEST_CASE("state fetch: when the only donor is silent, members that came since are asked", "[state_fetch]") {
  // A hostile member heartbeats a joiner first, so it may be the only donor.
  state_fetch f(1, dim, {3}, 100, 1000.f, /*retries*/ 2);
  auto first = f.start();
  REQUIRE_FALSE(first.empty());
  auto again = f.on_deadline({0, 3});
  REQUIRE_FALSE(again.empty());
  for (auto& [donor, r] : again) CHECK(donor == 0);
  for (auto& [donor, r] : again) f.on_chunk(donor, answer(donor, r, 9));
  CHECK(f.complete());
  check_cover(f.take_slices(), 9);
  // Nobody new and nobody who delivered: the fetch gives up.
  state_fetch g(1, dim, {3}, 100, 1000.f, 2);
  g.start();
  CHECK(g.on_deadline({3}).empty());
  CHECK(g.failed());
}
