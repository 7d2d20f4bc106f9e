// A data file opened for reading, raw or gzip-compressed (decided by content,
// not by name), whose every error names the file. Shared by the IDX and .npy
// readers. Contract:
//  - Every problem throws DataError "PATH: problem" (tensor/dataset.hpp).
//  - read() returns fewer bytes than asked only at the end of the data; a
//    damaged gzip stream throws instead.
//  - payload() streams exactly n bytes in chunks of at most 1 MiB (no second
//    full-size buffer) and then insists the file ends there (truncated and
//    trailing data are reported with byte counts).
#pragma once
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/data_error.hpp"

namespace murmur {

class InputFile {
 public:
  explicit InputFile(std::string path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  [[noreturn]] void fail(const std::string& problem) const { throw DataError(path_ + ": " + problem); }

  // Reads up to n bytes; returns how many arrived (less only at end of data).
  uint64_t read(void* dst, uint64_t n);

  // True when the container itself vouches for a total of `total` bytes of
  // content: a raw file of exactly that size, or a gzip trailer whose ISIZE
  // (uncompressed length mod 2^32) matches and `total` is at most 64 times
  // the compressed file (ISIZE can be forged too). Only then may a reader allocate
  // a buffer of a header's size before the data has arrived; otherwise a
  // lying header would cost up to 1 GiB for a file of a few bytes.
  bool size_agrees(uint64_t total) const;

  // Streams exactly n payload bytes through consume(bytes, count, offset),
  // then insists the file ends there. header_bytes only words the messages.
  template <class Consume>
  void payload(uint64_t n, uint64_t header_bytes, Consume&& consume) {
    std::vector<unsigned char> buf(static_cast<size_t>(std::min<uint64_t>(n, 1u << 20)));
    uint64_t got = 0;
    while (got < n) {
      uint64_t want = std::min<uint64_t>(n - got, buf.size());
      uint64_t r = read(buf.data(), want);
      consume(buf.data(), r, got);
      got += r;
      if (r < want) break;
    }
    if (got < n)
      fail("truncated data: expected " + std::to_string(n) + " bytes after the " +
           std::to_string(header_bytes) + "-byte header, got " + std::to_string(got));
    expect_end(header_bytes + n);
  }

  // Throws "trailing data" unless the content ends here; `so_far` is the
  // number of bytes consumed (for the message).
  void expect_end(uint64_t so_far);

 private:
  [[noreturn]] void zlib_error() const;

  std::string path_;
  gzFile f_ = nullptr;
};

}  // namespace murmur
