#include "actors/boundary_store.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>

#include "tensor/blake3.hpp"

namespace murmur {

namespace {

constexpr char slot_magic[8] = {'M', 'R', 'M', 'R', 'B', 'S', 'L', 'T'};
constexpr uint32_t slot_version = 2;  // 2: the sum is BLAKE3 (1: SHA-256)

// A slot's header, as it lies at the slot's start (host order: the file
// never leaves this process).
struct slot_header {
  char magic[8];
  uint32_t version;
  uint32_t reserved;
  uint64_t step;
  uint64_t bytes;
  digest state;
  digest sum;  // BLAKE3 of the bytes
};
static_assert(sizeof(slot_header) == 96, "slot_header must have no padding");

// Slot sizes come in classes, 4 KiB times 2^(i/4) (each at most 19 % over
// what it holds): a freed slot fits any later entry of its class or a
// smaller one, so entries whose size drifts (records) or that differ in
// kind (records, boundaries) cannot grow the file without bound.
uint64_t slot_capacity(size_t bytes) {
  const double want = static_cast<double>(sizeof(slot_header) + bytes);
  uint64_t c = 4096;
  for (int i = 1; static_cast<double>(c) < want; ++i) c = static_cast<uint64_t>(std::ceil(std::exp2(i / 4.0))) * 4096;
  return c;
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

struct boundary_store::file {
  int fd = -1;
  std::string path;
  mutable std::mutex mu;
  struct region {
    uint64_t offset = 0, capacity = 0;
    bool used = false;
  };
  std::vector<region> slots;  // under mu
  uint64_t end = 0;           // under mu
  std::mutex sum_mu;          // puts come from one thread; the hasher is reused, not allocated per put
  blake3_builder sum_hash;    // under sum_mu

  ~file() {
    if (fd >= 0) ::close(fd);
  }
  std::string where(size_t slot) const { return path + " (boundary store), slot " + std::to_string(slot); }
  // pwrite/pread until done: a short transfer is retried, an error or the
  // file's end is an error naming what was being done.
  void write_all(const void* p, size_t n, uint64_t at, size_t slot) const {
    const auto* b = static_cast<const std::byte*>(p);
    while (n > 0) {
      const ssize_t w = ::pwrite(fd, b, n, static_cast<off_t>(at));
      if (w < 0) {
        if (errno == EINTR) continue;
        throw boundary_store_error(where(slot) + ": cannot write a boundary: " + errno_text(errno));
      }
      b += w, n -= static_cast<size_t>(w), at += static_cast<uint64_t>(w);
    }
  }
  // One gathering write of all pieces (pwritev, up to max_iov at a time),
  // a short write continued where it stopped.
  void write_all(std::span<const std::span<const std::byte>> parts, uint64_t at, size_t slot) const {
    constexpr size_t max_iov = 64;
    iovec iov[max_iov];
    size_t next = 0, skip = 0;  // the first part not fully written, and its bytes already written
    while (next < parts.size()) {
      size_t n = 0;
      for (size_t i = next; i < parts.size() && n < max_iov; ++i) {
        const size_t from = i == next ? skip : 0;
        if (parts[i].size() == from) continue;
        iov[n++] = {const_cast<std::byte*>(parts[i].data() + from), parts[i].size() - from};
      }
      if (n == 0) return;
      const ssize_t w = ::pwritev(fd, iov, static_cast<int>(n), static_cast<off_t>(at));
      if (w < 0) {
        if (errno == EINTR) continue;
        throw boundary_store_error(where(slot) + ": cannot write a boundary: " + errno_text(errno));
      }
      at += static_cast<uint64_t>(w);
      size_t left = static_cast<size_t>(w);
      while (next < parts.size() && left >= parts[next].size() - skip) {
        left -= parts[next].size() - skip;
        ++next, skip = 0;
      }
      skip += left;
    }
  }
  void read_all(void* p, size_t n, uint64_t at, size_t slot) const {
    auto* b = static_cast<std::byte*>(p);
    while (n > 0) {
      const ssize_t r = ::pread(fd, b, n, static_cast<off_t>(at));
      if (r < 0) {
        if (errno == EINTR) continue;
        throw boundary_store_error(where(slot) + ": cannot read a boundary: " + errno_text(errno));
      }
      if (r == 0)
        throw boundary_store_error(where(slot) + ": the file ends at byte " + std::to_string(at) +
                                   ", inside the slot (truncated)");
      b += r, n -= static_cast<size_t>(r), at += static_cast<uint64_t>(r);
    }
  }
  void release(size_t slot) {
    std::lock_guard lock(mu);
    if (slot < slots.size()) slots[slot].used = false;
  }
};

boundary_store::boundary_store(const std::string& dir) : file_(std::make_shared<file>()) {
  std::string tmpl = (dir.empty() ? std::string(".") : dir) + "/murmur-boundaries-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0)
    throw boundary_store_error("cannot create a boundary store file in " + dir + ": " + errno_text(errno));
  file_->fd = fd;
  file_->path = name.data();
  // No name from now on: nothing is left behind, however the process ends.
  if (::unlink(file_->path.c_str()) != 0)
    throw boundary_store_error(file_->path + ": cannot unlink the boundary store file: " + errno_text(errno));
}

boundary_store::~boundary_store() = default;

boundary_store::entry::~entry() { file_->release(slot_); }

std::shared_ptr<const boundary_store::entry> boundary_store::put(uint64_t step, const digest& state,
                                                                 std::span<const std::span<const std::byte>> parts) {
  file& f = *file_;
  size_t bytes = 0;
  digest sum{};
  {
    std::lock_guard lock(f.sum_mu);
    for (const auto& p : parts) {
      bytes += p.size();
      f.sum_hash.add(p.data(), p.size());
    }
    sum = f.sum_hash.finish();
  }
  size_t slot = 0;
  uint64_t at = 0;
  {
    std::lock_guard lock(f.mu);
    size_t best = f.slots.size();
    for (size_t i = 0; i < f.slots.size(); ++i) {
      const auto& r = f.slots[i];
      if (!r.used && r.capacity >= sizeof(slot_header) + bytes &&
          (best == f.slots.size() || r.capacity < f.slots[best].capacity))
        best = i;
    }
    if (best == f.slots.size()) {
      f.slots.push_back({f.end, slot_capacity(bytes), false});
      f.end += f.slots.back().capacity;
    }
    f.slots[best].used = true;
    slot = best;
    at = f.slots[best].offset;
  }
  // The slot is ours from here: written outside the lock; an entry frees it.
  auto e = std::shared_ptr<const entry>(new entry(file_, slot, step, state, bytes, sum));
  slot_header hd{};
  std::memcpy(hd.magic, slot_magic, sizeof hd.magic);
  hd.version = slot_version;
  hd.step = step;
  hd.bytes = bytes;
  hd.state = state;
  hd.sum = sum;
  // The header and the parts in one gathering write: a boundary is written
  // from where its pieces lie (the live state), never joined first.
  constexpr size_t max_parts = 255;
  if (parts.size() > max_parts) {
    f.write_all(&hd, sizeof hd, at, slot);
    f.write_all(parts, at + sizeof hd, slot);
    return e;
  }
  std::span<const std::byte> all[max_parts + 1];
  all[0] = std::as_bytes(std::span(&hd, 1));
  std::copy(parts.begin(), parts.end(), all + 1);
  f.write_all(std::span(all, parts.size() + 1), at, slot);
  return e;
}

void boundary_store::entry::append_to(std::vector<std::byte>& out) const {
  const entry& e = *this;
  const file& f = *file_;
  uint64_t at = 0;
  {
    std::lock_guard lock(f.mu);
    at = f.slots.at(e.slot_).offset;
  }
  slot_header hd{};
  f.read_all(&hd, sizeof hd, at, e.slot_);
  const std::string where = f.where(e.slot_);
  if (std::memcmp(hd.magic, slot_magic, sizeof hd.magic) != 0 || hd.version != slot_version)
    throw boundary_store_error(where + ": not a boundary slot header (overwritten)");
  if (hd.step != e.step_ || hd.bytes != e.bytes_ || hd.state != e.state_)
    throw boundary_store_error(where + ": holds the boundary of step " + std::to_string(hd.step) + " (" +
                               std::to_string(hd.bytes) + " bytes), not that of step " + std::to_string(e.step_) +
                               " (" + std::to_string(e.bytes_) + " bytes)");
  const size_t from = out.size();
  out.resize(from + e.bytes_);
  try {
    f.read_all(out.data() + from, e.bytes_, at + sizeof hd, e.slot_);
    if (blake3(out.data() + from, e.bytes_) != e.sum_)
      throw boundary_store_error(where + ": the boundary of step " + std::to_string(e.step_) +
                                 " does not read back as written (checksum mismatch)");
  } catch (...) {
    out.resize(from);
    throw;
  }
}

const std::string& boundary_store::path() const { return file_->path; }

uint64_t boundary_store::file_bytes() const {
  std::lock_guard lock(file_->mu);
  return file_->end;
}

size_t boundary_store::slots() const {
  std::lock_guard lock(file_->mu);
  return file_->slots.size();
}

size_t boundary_store::slots_in_use() const {
  std::lock_guard lock(file_->mu);
  size_t n = 0;
  for (const auto& r : file_->slots) n += r.used ? 1 : 0;
  return n;
}

}  // namespace murmur
