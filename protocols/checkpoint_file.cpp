#include "protocols/checkpoint_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <type_traits>

#include "tensor/digest.hpp"

namespace murmur {

namespace {

constexpr char magic[8] = {'M', 'R', 'M', 'R', 'C', 'K', 'P', 'T'};
constexpr uint16_t version = 1;
// magic, version u16, kind u8, reserved u8, payload_bytes u64, SHA-256.
constexpr size_t header_bytes = 8 + 2 + 1 + 1 + 8 + 32;
constexpr size_t payload_bytes_at = 12, checksum_at = 20;
// step, replica, stage, stages, layer_begin, layer_end, seed.
constexpr size_t fixed_bytes = 8 + 2 * 5 + 8;
// The smallest payload: the fixed fields and four empty arrays.
constexpr size_t min_payload_bytes = fixed_bytes + 4 + 8 + 8 + 8 + 4;
// The largest: every count at its limit. Files above header + this are
// refused before they are read.
constexpr uint64_t max_payload_bytes = min_payload_bytes + uint64_t{max_checkpoint_spec_bytes} +
                                       8 * max_checkpoint_floats + 8ull * max_checkpoint_extra;

std::string errno_text(int e) { return std::strerror(e); }

// ---- writing --------------------------------------------------------------------

struct writer {
  std::vector<std::byte>& out;
  void raw(const void* p, size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  }
  template <class T>
  void le(T v) {
    static_assert(std::is_unsigned_v<T>);
    for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  }
  template <class T>
  void words(const std::vector<T>& v) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8);
    if constexpr (std::endian::native == std::endian::little) {
      raw(v.data(), v.size() * sizeof(T));
    } else {
      using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
      for (T x : v) le(std::bit_cast<U>(x));
    }
  }
};

template <class T>
void put_le_at(std::vector<std::byte>& out, size_t at, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// ---- reading --------------------------------------------------------------------

// Reads the payload in order; every read is checked against the bytes left,
// and every failure is a checkpoint_error naming the source.
struct reader {
  std::span<const std::byte> p;
  const std::string& source;
  size_t at = 0;

  [[noreturn]] void fail(const std::string& what) const { throw checkpoint_error(source + ": " + what); }
  size_t left() const { return p.size() - at; }
  void need(uint64_t n, const char* what) const {
    if (n > left())
      fail(std::string("payload ends inside ") + what + " (needs " + std::to_string(n) + " bytes, " +
           std::to_string(left()) + " left)");
  }
  template <class T>
  T le(const char* what) {
    need(sizeof(T), what);
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(std::to_integer<T>(p[at + i]) << (8 * i));
    at += sizeof(T);
    return v;
  }
  // A count, refused when over its limit or over what the bytes left can hold
  // (elem bytes each): before anything is allocated for it.
  uint64_t count(uint64_t n, uint64_t limit, size_t elem, const char* what) const {
    if (n > limit)
      fail(std::string(what) + " count " + std::to_string(n) + " is over the limit of " + std::to_string(limit));
    if (n > left() / elem)
      fail(std::string(what) + " count " + std::to_string(n) + " needs " + std::to_string(n) + " x " +
           std::to_string(elem) + " bytes, the payload has " + std::to_string(left()) + " left");
    return n;
  }
  void floats(std::vector<float>& v, uint64_t n, const char* what) {
    v.resize(n);
    if constexpr (std::endian::native == std::endian::little) {
      if (n) std::memcpy(v.data(), p.data() + at, 4 * n);
    } else {
      for (size_t i = 0; i < n; ++i) {
        uint32_t u = 0;
        for (size_t b = 0; b < 4; ++b) u |= std::to_integer<uint32_t>(p[at + 4 * i + b]) << (8 * b);
        v[i] = std::bit_cast<float>(u);
      }
    }
    at += 4 * n;
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(v[i])) fail(std::string("non-finite ") + what + " at index " + std::to_string(i));
  }
};

// An error from the write path: names the path, the step that failed and errno.
[[noreturn]] void write_failed(const std::string& path, const std::string& what, int e) {
  throw checkpoint_error(path + ": cannot write checkpoint: " + what + ": " + errno_text(e));
}

}  // namespace

checkpoint_view view_of(const checkpoint& c) {
  checkpoint_view v;
  v.kind = c.kind;
  v.step = c.step;
  v.replica = c.replica, v.stage = c.stage, v.stages = c.stages, v.layer_begin = c.layer_begin, v.layer_end = c.layer_end;
  v.seed = c.seed;
  v.model_spec = c.model_spec;
  v.params = c.params;
  v.opt_steps = c.opt_steps;
  v.opt_state[0] = c.opt_state;
  v.extra = c.extra;
  return v;
}

uint64_t encoded_checkpoint_bytes(const checkpoint_view& v) {
  return header_bytes + min_payload_bytes + v.model_spec.size() + 4 * uint64_t{v.params.size()} +
         4 * uint64_t{v.opt_state_size()} + 8 * uint64_t{v.extra.size()};
}

std::vector<std::byte> encode_checkpoint(const checkpoint& c) {
  byte_pieces p;
  encode_checkpoint(view_of(c), p);
  std::vector<std::byte> out;
  p.append_to(out);
  return out;
}

namespace {

// Little-endian values into a byte_pieces' own storage; float arrays
// referred to where they lie (converted into own bytes on a big-endian host).
struct piece_writer {
  byte_pieces& out;
  void raw(const void* p, size_t n) { out.copy(p, n); }
  template <class T>
  void le(T v) {
    static_assert(std::is_unsigned_v<T>);
    std::byte* b = out.extend(sizeof(T));
    for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  }
  template <class T>
  void words(std::span<const T> v) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8);
    if constexpr (std::endian::native == std::endian::little) {
      out.refer(std::as_bytes(v));
    } else {
      using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
      for (T x : v) le(std::bit_cast<U>(x));
    }
  }
};

}  // namespace

namespace {

void encode_checkpoint_pieces(const checkpoint_view& c, byte_pieces& out, bool seal) {
  const auto refuse = [](const std::string& what) { throw checkpoint_error("cannot encode checkpoint: " + what); };
  if (c.model_spec.size() > max_checkpoint_spec_bytes)
    refuse("model spec of " + std::to_string(c.model_spec.size()) + " bytes is over the limit of " +
           std::to_string(max_checkpoint_spec_bytes));
  if (c.params.size() > max_checkpoint_floats)
    refuse(std::to_string(c.params.size()) + " parameters, over the limit of " + std::to_string(max_checkpoint_floats));
  if (c.opt_state_size() > max_checkpoint_floats)
    refuse(std::to_string(c.opt_state_size()) + " optimizer state values, over the limit of " +
           std::to_string(max_checkpoint_floats));
  if (c.extra.size() > max_checkpoint_extra)
    refuse(std::to_string(c.extra.size()) + " extra values, over the limit of " + std::to_string(max_checkpoint_extra));
  if (auto k = static_cast<uint8_t>(c.kind); k > static_cast<uint8_t>(checkpoint_kind::stage))
    refuse("unknown kind " + std::to_string(k));
  // A checkpoint the reader would refuse is refused now, not at resume time.
  const auto check_finite = [&](std::span<const float> v, size_t from, bool param) {
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        refuse(std::string("non-finite ") + (param ? "parameter" : "optimizer state value") + " at index " +
               std::to_string(from + i));
  };
  check_finite(c.params, 0, true);
  check_finite(c.opt_state[0], 0, false);
  check_finite(c.opt_state[1], c.opt_state[0].size(), false);

  const uint64_t payload = encoded_checkpoint_bytes(c) - header_bytes;
  piece_writer w{out};
  const size_t begin = out.size();
  w.raw(magic, sizeof magic);
  w.le(version);
  w.le(static_cast<uint8_t>(c.kind));
  w.le(uint8_t{0});
  w.le(payload);
  const size_t checksum = out.own_size();
  out.extend(sizeof(digest));  // filled in below
  w.le(c.step);
  w.le(c.replica);
  w.le(c.stage);
  w.le(c.stages);
  w.le(c.layer_begin);
  w.le(c.layer_end);
  w.le(c.seed);
  w.le(static_cast<uint32_t>(c.model_spec.size()));
  w.raw(c.model_spec.data(), c.model_spec.size());
  w.le(static_cast<uint64_t>(c.params.size()));
  w.words(c.params);
  w.le(c.opt_steps);
  w.le(static_cast<uint64_t>(c.opt_state_size()));
  w.words(c.opt_state[0]);
  w.words(c.opt_state[1]);
  w.le(static_cast<uint32_t>(c.extra.size()));
  w.words(c.extra);
  if (!seal) return;
  // SHA-256 of the payload: the pieces from begin + header_bytes on.
  digest_builder h;
  size_t at = 0;
  const size_t from = begin + header_bytes;
  for (const auto& p : out.pieces()) {
    if (at + p.size() > from) {
      const size_t skip = from > at ? from - at : 0;
      h.add(p.data() + skip, p.size() - skip);
    }
    at += p.size();
  }
  const digest d = h.finish();
  std::memcpy(out.own_at(checksum), d.data(), d.size());
}

}  // namespace

void encode_checkpoint(const checkpoint_view& c, byte_pieces& out) { encode_checkpoint_pieces(c, out, true); }

void encode_checkpoint_unsealed(const checkpoint_view& c, byte_pieces& out) { encode_checkpoint_pieces(c, out, false); }

void seal_checkpoint(std::span<std::byte> bytes) {
  if (bytes.size() < header_bytes) throw checkpoint_error("cannot seal a checkpoint: shorter than its header");
  uint64_t declared = 0;
  for (size_t i = 0; i < 8; ++i) declared |= uint64_t{std::to_integer<uint8_t>(bytes[payload_bytes_at + i])} << (8 * i);
  if (declared != bytes.size() - header_bytes)
    throw checkpoint_error("cannot seal a checkpoint: its header says " + std::to_string(declared) +
                           " payload bytes, not " + std::to_string(bytes.size() - header_bytes));
  const digest d = sha256(bytes.data() + header_bytes, bytes.size() - header_bytes);
  std::memcpy(bytes.data() + checksum_at, d.data(), d.size());
}

checkpoint decode_checkpoint(std::span<const std::byte> bytes, const std::string& source) {
  const auto fail = [&](const std::string& what) -> void { throw checkpoint_error(source + ": " + what); };
  const auto u = [&](size_t at) { return std::to_integer<uint8_t>(bytes[at]); };

  // Header: magic first (a short file that is not even a checkpoint says so).
  if (bytes.empty()) fail("empty (0 bytes), not a murmur checkpoint");
  if (std::memcmp(bytes.data(), magic, std::min(bytes.size(), sizeof magic)) != 0)
    fail("not a murmur checkpoint (bad magic)");
  if (bytes.size() < header_bytes)
    fail("truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the " + std::to_string(header_bytes) +
         "-byte checkpoint header");
  const uint16_t v = static_cast<uint16_t>(u(8) | (u(9) << 8));
  if (v != version)
    fail("checkpoint version " + std::to_string(v) + ", this build reads version " + std::to_string(version));
  const uint8_t kind = u(10);
  if (kind > static_cast<uint8_t>(checkpoint_kind::stage))
    fail("unknown checkpoint kind " + std::to_string(kind) + " (this build knows 0 = peer and 1 = stage)");
  if (u(11) != 0) fail("reserved header byte is " + std::to_string(u(11)) + ", expected 0");
  uint64_t declared = 0;
  for (size_t i = 0; i < 8; ++i) declared |= uint64_t{u(payload_bytes_at + i)} << (8 * i);
  const uint64_t present = bytes.size() - header_bytes;
  if (declared > present)
    fail("truncated: header says " + std::to_string(declared) + " payload bytes, found " + std::to_string(present));
  if (declared < present)
    fail(std::to_string(present - declared) + " unexpected trailing bytes: header says " + std::to_string(declared) +
         " payload bytes, found " + std::to_string(present));

  const std::span<const std::byte> payload = bytes.subspan(header_bytes);
  digest d{};
  try {
    d = sha256(payload.data(), payload.size());
  } catch (const std::exception& e) {
    fail(std::string("cannot compute the checksum: ") + e.what());
  }
  if (std::memcmp(d.data(), bytes.data() + checksum_at, d.size()) != 0) fail("checksum mismatch (file corrupted)");

  // Payload: the checksum held, but every count is still checked against the
  // bytes left (and its limit) before anything is allocated for it.
  checkpoint c;
  reader r{payload, source};
  c.kind = static_cast<checkpoint_kind>(kind);
  c.step = r.le<uint64_t>("the fixed fields");
  c.replica = r.le<uint16_t>("the fixed fields");
  c.stage = r.le<uint16_t>("the fixed fields");
  c.stages = r.le<uint16_t>("the fixed fields");
  c.layer_begin = r.le<uint16_t>("the fixed fields");
  c.layer_end = r.le<uint16_t>("the fixed fields");
  c.seed = r.le<uint64_t>("the fixed fields");
  const uint64_t spec = r.count(r.le<uint32_t>("the model spec length"), max_checkpoint_spec_bytes, 1, "model spec byte");
  c.model_spec.assign(reinterpret_cast<const char*>(payload.data() + r.at), spec);
  r.at += spec;
  const uint64_t params = r.count(r.le<uint64_t>("the parameter count"), max_checkpoint_floats, 4, "parameter");
  r.floats(c.params, params, "parameter");
  c.opt_steps = r.le<uint64_t>("the optimizer step count");
  const uint64_t opt = r.count(r.le<uint64_t>("the optimizer state count"), max_checkpoint_floats, 4, "optimizer state");
  r.floats(c.opt_state, opt, "optimizer state value");
  const uint64_t extra = r.count(r.le<uint32_t>("the extra count"), max_checkpoint_extra, 8, "extra value");
  c.extra.resize(extra);
  for (auto& x : c.extra) x = r.le<uint64_t>("the extra values");
  if (r.left() != 0)
    fail(std::to_string(r.left()) + " bytes left over after the last field (the counts do not match the payload)");
  return c;
}

void write_checkpoint_file(const std::string& path, std::span<const std::byte> bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) write_failed(path, "cannot create " + tmp, errno);
  const auto abandon = [&](const std::string& what, int e, bool open) {
    if (open) ::close(fd);
    ::unlink(tmp.c_str());
    write_failed(path, what, e);
  };
  const std::byte* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, std::min(left, size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon("writing " + tmp, errno, true);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) abandon("fsync of " + tmp, errno, true);
  if (::close(fd) != 0) abandon("closing " + tmp, errno, false);
  if (::rename(tmp.c_str(), path.c_str()) != 0) abandon("renaming " + tmp + " over it", errno, false);
  // The rename is durable once the directory is: fsync it.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) write_failed(path, "opening its directory " + dir + " to fsync it", errno);
  if (::fsync(dfd) != 0) {
    const int e = errno;
    ::close(dfd);
    write_failed(path, "fsync of its directory " + dir, e);
  }
  ::close(dfd);
}

checkpoint read_checkpoint_file(const std::string& path) {
  const auto fail = [&](const std::string& what, int e) -> void {
    throw checkpoint_error(path + ": cannot read checkpoint: " + what + (e ? ": " + errno_text(e) : ""));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open it", errno);
  struct fd_guard {
    int fd;
    ~fd_guard() { ::close(fd); }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("fstat", errno);
  if (!S_ISREG(st.st_mode)) fail("not a regular file", 0);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > header_bytes + max_payload_bytes)
    fail("file is " + std::to_string(size) + " bytes, larger than any checkpoint (at most " +
             std::to_string(header_bytes + max_payload_bytes) + ")",
         0);
  std::vector<std::byte> bytes(size);
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, std::min(bytes.size() - got, size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read", errno);
    }
    if (n == 0) break;  // shrank since fstat: decode what is there (it says truncated)
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  return decode_checkpoint(bytes, path);
}

}  // namespace murmur
