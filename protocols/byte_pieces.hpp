// byte_pieces: a byte sequence made of small values encoded into its own
// storage and spans of large buffers held elsewhere, referred to, not
// copied: what a gathering write (pwritev) or a hash over pieces reads, so
// that a megabyte state is written from where it lives. The referred
// buffers must stay valid and unchanged until the pieces are read. Reuses
// its storage after clear() (no allocation once it has held the largest
// sequence). Not thread-safe.
#pragma once
#include <cstddef>
#include <span>
#include <vector>

namespace murmur {

class byte_pieces {
 public:
  void clear();
  // n bytes at the end, in its own storage, to fill; the pointer is valid
  // until the next call that adds.
  std::byte* extend(size_t n);
  void copy(const void* p, size_t n);
  // A buffer held elsewhere, not copied (an empty one adds nothing).
  void refer(std::span<const std::byte> s);
  size_t size() const { return size_; }
  // Where the next own byte goes, to fill in later with own_at (a checksum
  // computed over what follows).
  size_t own_size() const { return own_.size(); }
  std::byte* own_at(size_t at) { return own_.data() + at; }
  // The pieces in order (own bytes as spans into the storage); valid until
  // the next change.
  std::span<const std::span<const std::byte>> pieces();
  void append_to(std::vector<std::byte>& out);

 private:
  struct piece {
    const std::byte* ext;  // null: own bytes from own_at
    size_t own_at, n;
  };
  std::vector<std::byte> own_;
  std::vector<piece> list_;
  std::vector<std::span<const std::byte>> resolved_;
  size_t size_ = 0;
};

}  // namespace murmur
