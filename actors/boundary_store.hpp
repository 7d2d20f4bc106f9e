// boundary_store: a prover's segment boundary states (segment_log.hpp) on
// disk instead of in memory. A boundary is needed again only if a verifier
// challenges its segment (a few in a run), yet the log keeps keep_segments +
// 1 of them, a parameter vector and optimizer state plus a gossip state with
// every neighbour's estimate each: most of what verification would cost in
// memory. Here each lies in a slot of one file, written once (pwrite) and
// read back only to answer a challenge (pread), as Verde keeps checkpoints;
// so do a closed segment's records. The store keeps bytes: segment_log
// decides what they are.
//
// The file: one per store, created in `dir` (mkstemp) and unlinked at once,
// so it has no name and the kernel frees its blocks when the store and its
// last entry are gone, however the process ends. Its size is about the most
// entries ever held at once (each its bytes and a 96-byte header, in a slot
// of a size class 4 KiB x 2^(i/4)): for a segment_log whose verifier keeps
// keep_segments segments, keep_segments + 2 boundaries and keep_segments + 1
// segments' records. A slot is reused once its entry is destroyed (the last
// segment holding it dropped it), never while an entry exists.
//
// Reading back is checked against what the entry remembers in memory (the
// step, the state digest, the length, and a BLAKE3 of the bytes written): a
// short file, a slot holding another boundary or bytes that changed is a
// boundary_store_error naming the file, the slot and the problem, never
// other bytes. Every I/O failure (disk full, ...) is one too, with errno.
// Thread-safe: the log puts from the training thread while the verifier
// reads from its own.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/digest.hpp"

namespace murmur {

struct boundary_store_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class boundary_store {
  struct file;

 public:
  // Throws boundary_store_error when no file can be made in dir.
  explicit boundary_store(const std::string& dir);
  ~boundary_store();
  boundary_store(const boundary_store&) = delete;
  boundary_store& operator=(const boundary_store&) = delete;

  // One boundary in the store; its slot is free again once it is destroyed.
  class entry {
   public:
    ~entry();
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;
    uint64_t step() const { return step_; }
    const digest& state() const { return state_; }  // the boundary's state digest (segment_state_digest)
    size_t bytes() const { return bytes_; }
    // Appends the bytes put under this entry to out, checked (above).
    void append_to(std::vector<std::byte>& out) const;

   private:
    friend class boundary_store;
    entry(std::shared_ptr<file> f, size_t slot, uint64_t step, const digest& state, size_t bytes, const digest& sum)
        : file_(std::move(f)), slot_(slot), step_(step), state_(state), bytes_(bytes), sum_(sum) {}
    std::shared_ptr<file> file_;  // keeps the file open while an entry lives
    size_t slot_;
    uint64_t step_;
    digest state_;
    size_t bytes_;
    digest sum_;  // BLAKE3 of the bytes written
  };

  // Writes the concatenation of parts into a free slot (a new one at the
  // file's end when none fits) under step and state digest: one gathering
  // write (pwritev) from where the parts lie, nothing joined or copied.
  std::shared_ptr<const entry> put(uint64_t step, const digest& state, std::span<const std::span<const std::byte>> parts);
  const std::string& path() const;  // as created (unlinked since): for messages
  uint64_t file_bytes() const;      // the file's size
  size_t slots() const;             // slots in the file
  size_t slots_in_use() const;

 private:
  std::shared_ptr<file> file_;
};

}  // namespace murmur
