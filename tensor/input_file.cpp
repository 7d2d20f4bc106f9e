#include "tensor/input_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace murmur {

// gzread() is transparent for files without the gzip magic, so raw and
// gzipped files share one code path.
InputFile::InputFile(std::string path) : path_(std::move(path)) {
  errno = 0;
  f_ = gzopen(path_.c_str(), "rb");
  if (f_ == nullptr)
    fail(std::string("cannot open file (missing or unreadable): ") +
         (errno ? std::strerror(errno) : "out of memory"));
  // 256 KiB of input per syscall; payload() asks for more than twice that
  // per call, which lets zlib inflate straight into our buffer (no copy).
  gzbuffer(f_, 1u << 18);
}

InputFile::~InputFile() {
  if (f_) gzclose(f_);
}

uint64_t InputFile::read(void* dst, uint64_t n) {
  auto* out = static_cast<unsigned char*>(dst);
  uint64_t got = 0;
  while (got < n) {
    unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(n - got, 1u << 26));
    int r = gzread(f_, out + got, chunk);
    if (r < 0) zlib_error();
    got += static_cast<uint64_t>(r);
    if (static_cast<unsigned>(r) < chunk) {
      int err = Z_OK;
      gzerror(f_, &err);
      if (err != Z_OK) zlib_error();  // Z_BUF_ERROR: gzip stream cut short
      break;
    }
  }
  return got;
}

bool InputFile::size_agrees(uint64_t total) const {
  std::error_code ec;
  if (gzdirect(f_)) return std::filesystem::file_size(path_, ec) == total && !ec;
  // The trailer's ISIZE is as untrusted as the header: forged to agree, it
  // would make a caller allocate for data that is not there. Real data sets
  // compress far less than 64:1 (Fashion-MNIST: 1.8:1); a larger claim is
  // treated as suspect, and the caller buffers only what actually arrives.
  const uint64_t compressed = std::filesystem::file_size(path_, ec);
  if (ec || total > 64 * compressed + 4096) return false;
  std::unique_ptr<FILE, int (*)(FILE*)> raw(std::fopen(path_.c_str(), "rb"), &std::fclose);
  unsigned char t[4];
  if (!raw || std::fseek(raw.get(), -4, SEEK_END) != 0 || std::fread(t, 1, 4, raw.get()) != 4) return false;
  uint32_t isize = t[0] | (uint32_t{t[1]} << 8) | (uint32_t{t[2]} << 16) | (uint32_t{t[3]} << 24);
  return isize == static_cast<uint32_t>(total);
}

void InputFile::expect_end(uint64_t so_far) {
  // Counting the surplus (up to a bound) makes the message actionable; the
  // extra read also reaches the gzip trailer, so a bad CRC shows up here.
  unsigned char scratch[1 << 14];
  constexpr uint64_t kCountUpTo = uint64_t{1} << 26;
  uint64_t extra = 0;
  while (extra < kCountUpTo) {
    uint64_t r = read(scratch, sizeof scratch);
    extra += r;
    if (r < sizeof scratch) break;
  }
  if (extra > 0)
    fail("trailing data: " + std::string(extra >= kCountUpTo ? "at least " : "") + std::to_string(extra) +
         " unexpected extra byte(s) after the expected " + std::to_string(so_far) + " bytes");
}

void InputFile::zlib_error() const {
  int err = Z_OK;
  const char* msg = gzerror(f_, &err);
  if (err == Z_ERRNO) fail(std::string("read error: ") + std::strerror(errno));
  if (err == Z_BUF_ERROR) fail("truncated or corrupt gzip stream (unexpected end of file)");
  fail(std::string("corrupt gzip stream (zlib: ") + (msg ? msg : "unknown error") + ")");
}

}  // namespace murmur
