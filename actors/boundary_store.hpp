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
// step, the state digest, the length, and the bytes' own digest: a BLAKE3
// of them taken at put, or, for bytes put with a state_check, the state
// digest recomputed from them): a short file, a slot holding another
// boundary or bytes that changed is a boundary_store_error naming the file,
// the slot and the problem, never other bytes. Every I/O failure (disk
// full, ...) is one too, with errno. Thread-safe: the log puts from the
// training thread while the verifier reads from its own.
//
// Slots prepared ahead (prepare_slots): the first write into a part of the
// file costs 5-20x a rewrite of it (the kernel allocates its page-cache
// pages; issue 14's measurements), and puts come on the training thread.
// So each time a slot of some size is added at the file's end, a thread of
// the store's writes zeros into one more of that size beyond it; the next
// put that needs a new slot of that size takes it once written. The file
// then holds at most one slot per size more than otherwise. (An I/O thread,
// idle but for that: tensor/cpu_threads.hpp's rule is about kernel pools.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
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
  struct preparer;

 public:
  // Throws boundary_store_error when no file can be made in dir.
  explicit boundary_store(const std::string& dir, bool prepare_slots = false);
  ~boundary_store();
  boundary_store(const boundary_store&) = delete;
  boundary_store& operator=(const boundary_store&) = delete;

  // The state digest of bytes put under one, recomputed from them
  // (segment_log's: the boundary decoded and hashed); may throw on bytes it
  // cannot read, and may first complete them in place (fill in what the
  // writer left to reading back: segment_log's checkpoint checksum). Bytes
  // put with one are checked by it on reading back, not by a checksum: the
  // caller hashed them already, one hash per put instead of two (reading
  // back, rare, pays for the decoding).
  using state_check = std::function<digest(std::span<std::byte>)>;

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
    entry(std::shared_ptr<file> f, size_t slot, uint64_t step, const digest& state, size_t bytes, const digest& sum,
          std::shared_ptr<const state_check> check)
        : file_(std::move(f)), slot_(slot), step_(step), state_(state), bytes_(bytes), sum_(sum),
          check_(std::move(check)) {}
    std::shared_ptr<file> file_;  // keeps the file open while an entry lives
    size_t slot_;
    uint64_t step_;
    digest state_;
    size_t bytes_;
    digest sum_;  // BLAKE3 of the bytes written (none with check_)
    std::shared_ptr<const state_check> check_;
  };

  // Writes the concatenation of parts into a free slot (a new one at the
  // file's end when none fits) under step and state digest: one gathering
  // write (pwritev) from where the parts lie, nothing joined or copied.
  // check: how reading back checks the bytes (null: a BLAKE3 of them, taken
  // here).
  std::shared_ptr<const entry> put(uint64_t step, const digest& state, std::span<const std::span<const std::byte>> parts,
                                   std::shared_ptr<const state_check> check = nullptr);
  const std::string& path() const;  // as created (unlinked since): for messages
  uint64_t file_bytes() const;      // the file's size
  size_t slots() const;             // slots in the file
  size_t slots_in_use() const;
  // prepare_slots: blocks until the slots queued for preparing are written
  // (tests; a put never waits for one).
  void wait_prepared() const;

 private:
  std::shared_ptr<file> file_;
  std::unique_ptr<preparer> preparer_;  // null: prepare_slots off
};

}  // namespace murmur
