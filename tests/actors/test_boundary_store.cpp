// The boundary store (actors/boundary_store.hpp): bytes read back as
// written, slots reused once their entry is gone and never before, and a
// damaged, truncated or overwritten file read back as a boundary_store_error
// naming the file and slot, never as other bytes.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "actors/boundary_store.hpp"

using namespace murmur;

namespace {

std::vector<std::byte> bytes_of(size_t n, unsigned seed) {
  std::vector<std::byte> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = std::byte{static_cast<unsigned char>((i * 131 + seed * 7) & 0xff)};
  return b;
}

digest digest_of(uint8_t v) {
  digest d{};
  d[0] = v;
  return d;
}

std::shared_ptr<const boundary_store::entry> put(boundary_store& s, uint64_t step, const std::vector<std::byte>& b) {
  const std::span<const std::byte> part(b);
  return s.put(step, digest_of(static_cast<uint8_t>(step)), {&part, 1});
}

// The store's file has no name: it is reached through this process's open
// descriptor for it (the test's way in; a real fault needs none).
int reopen(const boundary_store& s) {
  const std::string want = s.path() + " (deleted)";
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    char target[PATH_MAX];
    const ssize_t n = ::readlink(e.path().c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    if (std::string(target, static_cast<size_t>(n)) == want) return ::open(e.path().c_str(), O_RDWR);
  }
  return -1;
}

std::string tmpdir() { return std::filesystem::temp_directory_path().string(); }

}  // namespace

TEST_CASE("a boundary store reads back what it wrote, reusing slots only once freed", "[segment][store]") {
  boundary_store s(tmpdir());
  CHECK(!std::filesystem::exists(s.path()));  // unlinked: nothing left behind
  CHECK(s.path().rfind(tmpdir(), 0) == 0);
  const auto a = bytes_of(10000, 1), b = bytes_of(10000, 2), c = bytes_of(9000, 3);
  // Put in two parts, read back as one, appended after what out holds.
  const std::span<const std::byte> halves[2] = {std::span(a).first(4000), std::span(a).subspan(4000)};
  auto ea = s.put(64, digest_of(64), halves);
  auto eb = put(s, 128, b);
  CHECK((ea->step() == 64 && ea->state() == digest_of(64) && ea->bytes() == a.size()));
  std::vector<std::byte> out{std::byte{42}};
  ea->append_to(out);
  REQUIRE(out.size() == 1 + a.size());
  CHECK(out[0] == std::byte{42});
  CHECK(std::equal(a.begin(), a.end(), out.begin() + 1));
  CHECK(s.slots() == 2);
  CHECK(s.slots_in_use() == 2);
  const uint64_t two_slots = s.file_bytes();
  CHECK(two_slots >= 2 * (10000 + 96));

  // A freed slot takes the next boundary that fits; the others are untouched.
  ea.reset();
  CHECK(s.slots_in_use() == 1);
  auto ec = put(s, 192, c);
  CHECK(s.slots() == 2);
  CHECK(s.file_bytes() == two_slots);
  out.clear();
  ec->append_to(out);
  CHECK(out == c);
  out.clear();
  eb->append_to(out);
  CHECK(out == b);
  // None free: a new slot, at the end; one too large for any: a new one too.
  auto ed = put(s, 256, a);
  CHECK(s.slots() == 3);
  eb.reset();
  auto ee = put(s, 320, bytes_of(50000, 5));
  CHECK(s.slots() == 4);
  CHECK(s.slots_in_use() == 4 - 1);
  out.clear();
  ee->append_to(out);
  CHECK(out == bytes_of(50000, 5));

  // An entry outliving its store still reads back (it keeps the file).
  auto kept = std::make_unique<boundary_store>(tmpdir());
  auto ef = put(*kept, 1, b);
  kept.reset();
  out.clear();
  ef->append_to(out);
  CHECK(out == b);
}

TEST_CASE("a damaged boundary store is a clear error, never other bytes", "[segment][store]") {
  boundary_store s(tmpdir());
  const auto a = bytes_of(20000, 1), b = bytes_of(20000, 2);
  auto ea = put(s, 64, a);
  auto eb = put(s, 128, b);
  const int fd = reopen(s);
  REQUIRE(fd >= 0);
  std::vector<std::byte> out;

  SECTION("a flipped byte in the boundary") {
    const std::byte x{0xff};
    REQUIRE(::pwrite(fd, &x, 1, 96 + 5000) == 1);
    CHECK_THROWS_WITH(ea->append_to(out), Catch::Contains(s.path()) && Catch::Contains("slot 0") &&
                                              Catch::Contains("checksum mismatch"));
    CHECK(out.empty());  // nothing appended
    eb->append_to(out);  // the other slot is fine
    CHECK(out == b);
  }
  SECTION("a slot overwritten with another boundary") {
    // Slot 1's header and bytes copied over slot 0: a consistent slot, but
    // not the boundary entry a was written as.
    std::vector<std::byte> slot1(96 + b.size());
    const off_t at1 = static_cast<off_t>(s.file_bytes() / 2);
    REQUIRE(::pread(fd, slot1.data(), slot1.size(), at1) == static_cast<ssize_t>(slot1.size()));
    REQUIRE(::pwrite(fd, slot1.data(), slot1.size(), 0) == static_cast<ssize_t>(slot1.size()));
    CHECK_THROWS_WITH(ea->append_to(out), Catch::Contains("holds the boundary of step 128") &&
                                              Catch::Contains("not that of step 64"));
  }
  SECTION("a header overwritten") {
    const char junk[8] = {'j', 'u', 'n', 'k', 'j', 'u', 'n', 'k'};
    REQUIRE(::pwrite(fd, junk, sizeof junk, 0) == static_cast<ssize_t>(sizeof junk));
    CHECK_THROWS_WITH(ea->append_to(out), Catch::Contains("not a boundary slot header"));
  }
  SECTION("a truncated file") {
    REQUIRE(::ftruncate(fd, static_cast<off_t>(s.file_bytes() / 2 + 200)) == 0);
    CHECK_THROWS_WITH(eb->append_to(out), Catch::Contains("slot 1") && Catch::Contains("truncated"));
    CHECK_THROWS_AS(eb->append_to(out), boundary_store_error);
    ea->append_to(out);
    CHECK(out == a);
  }
  ::close(fd);
}

TEST_CASE("a boundary store in a directory that does not exist is refused, naming it", "[segment][store]") {
  const std::string dir = tmpdir() + "/murmur-no-such-dir-for-boundaries";
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH(boundary_store(dir), Catch::Contains(dir) && Catch::Contains("cannot create"));
}
