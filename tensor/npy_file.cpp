#include "tensor/npy_file.hpp"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string_view>

#include "tensor/input_file.hpp"

namespace murmur {

static_assert(std::endian::native == std::endian::little,
              "the .npy reader copies little-endian data as is");

namespace {

constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// np.save pads its header to a multiple of 64 bytes and NumPy's own reader
// refuses headers over 10000 bytes by default; a longer length field is
// corrupt or hostile, and is refused before anything is allocated for it.
constexpr uint64_t kMaxHeaderText = 65536;

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string printable(std::string_view s, size_t limit = 40) {
  std::string out;
  for (char c : s.substr(0, limit)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  return s.size() > limit ? out + "..." : out;
}

// The header text is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 28, 28), }
// followed by spaces and '\n'. This parser accepts exactly that grammar
// (either quote, any whitespace, an optional trailing comma) and nothing else.
class HeaderText {
 public:
  HeaderText(const InputFile& f, std::string_view s) : f_(f), s_(s) {}

  void parse(npy_header& h) {
    bool seen_descr = false, seen_order = false, seen_shape = false;
    std::string descr;
    bool fortran = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') break;
      std::string key = quoted();
      expect(':');
      if (key == "descr") {
        if (seen_descr) bad("duplicate key 'descr'");
        seen_descr = true;
        skip_ws();
        if (peek() == '[') bad("structured dtype (a field list) is not supported; save a plain array");
        descr = quoted();
      } else if (key == "fortran_order") {
        if (seen_order) bad("duplicate key 'fortran_order'");
        seen_order = true;
        fortran = boolean();
      } else if (key == "shape") {
        if (seen_shape) bad("duplicate key 'shape'");
        seen_shape = true;
        h.shape = tuple();
      } else {
        bad("unexpected key '" + printable(key) + "' (expected 'descr', 'fortran_order', 'shape')");
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() != '}') bad("expected ',' or '}' at offset " + std::to_string(i_));
    }
    ++i_;  // '}'
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\0'))
      ++i_;
    if (i_ != s_.size()) bad("unexpected text after the dict at offset " + std::to_string(i_));
    if (!seen_descr || !seen_order || !seen_shape)
      bad(std::string("missing key '") + (!seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape") + "'");
    if (fortran)
      f_.fail("fortran_order is True (column-major data) and only C order is supported; save "
              "np.ascontiguousarray(a) instead");
    h.dtype = dtype_of(descr);
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    f_.fail("bad header text: " + what + " in \"" + printable(s_, 120) + "\"");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) bad(std::string("expected '") + c + "' at offset " + std::to_string(i_));
    ++i_;
  }
  std::string quoted() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string at offset " + std::to_string(i_));
    const size_t end = s_.find(q, i_ + 1);
    if (end == std::string_view::npos) bad("unterminated string at offset " + std::to_string(i_));
    std::string out(s_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    if (s_.substr(i_, 4) == "True") return i_ += 4, true;
    if (s_.substr(i_, 5) == "False") return i_ += 5, false;
    bad("expected True or False at offset " + std::to_string(i_));
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') bad("expected a non-negative integer in 'shape' at offset " + std::to_string(i_));
      uint64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        v = v * 10 + static_cast<uint64_t>(peek() - '0');
        // Any dimension over the element limit is refused, even next to a 0.
        if (v > static_cast<uint64_t>(kNpyMaxElements))
          f_.fail("shape dimension over the limit of " + std::to_string(kNpyMaxElements) + " elements");
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 long
      dims.push_back(static_cast<int64_t>(v));
      if (dims.size() > 32) bad("more than 32 dimensions in 'shape'");
      skip_ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip_ws();
      if (peek() != ')') bad("expected ',' or ')' in 'shape' at offset " + std::to_string(i_));
    }
    ++i_;
    return dims;
  }
  npy_dtype dtype_of(const std::string& d) const {
    if (d.size() == 3 && d[0] == '>' && d != ">u1" && d != ">i1")
      f_.fail("big-endian dtype '" + printable(d) + "' is not supported; save a.astype(a.dtype.newbyteorder('<'))");
    static constexpr std::pair<const char*, npy_dtype> known[] = {
        {"<f4", npy_dtype::f4}, {"|u1", npy_dtype::u1}, {"<u1", npy_dtype::u1}, {">u1", npy_dtype::u1},
        {"|i1", npy_dtype::i1}, {"<i1", npy_dtype::i1}, {">i1", npy_dtype::i1}, {"<u2", npy_dtype::u2},
        {"<i2", npy_dtype::i2}, {"<u4", npy_dtype::u4}, {"<i4", npy_dtype::i4}, {"<u8", npy_dtype::u8},
        {"<i8", npy_dtype::i8}};
    for (const auto& [name, t] : known)
      if (d == name) return t;
    f_.fail("unsupported dtype '" + printable(d) +
            "' (supported: float32 '<f4', uint8 '|u1' and little-endian integers i1/u1/i2/u2/i4/u4/i8/u8; "
            "float64 data: save a.astype(np.float32))");
  }

  const InputFile& f_;
  std::string_view s_;
  size_t i_ = 0;
};

npy_header parse_header(InputFile& f) {
  npy_header h;
  unsigned char pre[8];
  const uint64_t got = f.read(pre, 8);
  if (got < 6 || std::memcmp(pre, kMagic, 6) != 0)
    f.fail("bad magic \"" + printable(std::string_view(reinterpret_cast<const char*>(pre), got)) +
           "\", expected \"\\x93NUMPY\" (not a .npy file" + (got == 0 ? ": empty)" : ")"));
  if (got < 8) f.fail("truncated header: " + std::to_string(got) + " bytes, no format version");
  h.major = pre[6];
  h.minor = pre[7];
  if (h.major < 1 || h.major > 3 || h.minor != 0)
    f.fail("unsupported .npy format version " + std::to_string(h.major) + "." + std::to_string(h.minor) +
           " (supported: 1.0, 2.0, 3.0)");
  const int len_bytes = h.major == 1 ? 2 : 4;
  unsigned char lb[4] = {0, 0, 0, 0};
  if (f.read(lb, static_cast<uint64_t>(len_bytes)) < static_cast<uint64_t>(len_bytes))
    f.fail("truncated header: no header length");
  const uint64_t len = lb[0] | (uint64_t{lb[1]} << 8) | (uint64_t{lb[2]} << 16) | (uint64_t{lb[3]} << 24);
  if (len > kMaxHeaderText)
    f.fail("header length " + std::to_string(len) + " is over the limit of " + std::to_string(kMaxHeaderText) +
           " bytes (corrupt file?)");
  std::string text(static_cast<size_t>(len), '\0');
  const uint64_t tgot = f.read(text.data(), len);
  if (tgot < len)
    f.fail("truncated header: header length says " + std::to_string(len) + " bytes of text, file has " +
           std::to_string(tgot));
  for (size_t i = 0; i < text.size(); ++i)
    if (static_cast<unsigned char>(text[i]) >= 0x80)
      f.fail("bad header text: non-ASCII byte at offset " + std::to_string(i));
  h.data_offset = 8 + static_cast<uint64_t>(len_bytes) + len;
  HeaderText(f, text).parse(h);
  int64_t total = 1;
  for (int64_t d : h.shape) {
    // Each factor is <= 2^28 and the running product is kept <= 2^28, so
    // the multiplication cannot overflow before the check trips.
    total *= d;
    if (total > kNpyMaxElements)
      f.fail("shape " + shape_text(h.shape) + " has more than the limit of " + std::to_string(kNpyMaxElements) +
             " elements");
    if (total == 0) break;
  }
  h.count = total;
  return h;
}

// Streams the data as whole elements through decode(bytes, elements, first
// element index). Chunks are 1 MiB, a multiple of every item size, so an
// element never straddles two of them.
template <class Decode>
void read_data(InputFile& f, const npy_header& h, Decode&& decode) {
  const auto item = static_cast<uint64_t>(npy_itemsize(h.dtype));
  f.payload(static_cast<uint64_t>(h.count) * item, h.data_offset,
            [&](const unsigned char* src, uint64_t bytes, uint64_t at) {
              decode(src, bytes / item, at / item);
            });
}

}  // namespace

std::string to_string(npy_dtype t) {
  switch (t) {
    case npy_dtype::f4: return "<f4";
    case npy_dtype::u1: return "|u1";
    case npy_dtype::i1: return "|i1";
    case npy_dtype::u2: return "<u2";
    case npy_dtype::i2: return "<i2";
    case npy_dtype::u4: return "<u4";
    case npy_dtype::i4: return "<i4";
    case npy_dtype::u8: return "<u8";
    case npy_dtype::i8: return "<i8";
  }
  return "?";
}

int npy_itemsize(npy_dtype t) {
  switch (t) {
    case npy_dtype::u1:
    case npy_dtype::i1: return 1;
    case npy_dtype::u2:
    case npy_dtype::i2: return 2;
    case npy_dtype::f4:
    case npy_dtype::u4:
    case npy_dtype::i4: return 4;
    case npy_dtype::u8:
    case npy_dtype::i8: return 8;
  }
  return 1;
}

bool npy_is_integer(npy_dtype t) { return t != npy_dtype::f4; }

bool has_npy_magic(const std::string& path) {
  try {
    InputFile f(path);
    unsigned char m[6];
    return f.read(m, 6) == 6 && std::memcmp(m, kMagic, 6) == 0;
  } catch (const DataError&) {
    return false;
  }
}

npy_header read_npy_header(const std::string& path) {
  InputFile f(path);
  return parse_header(f);
}

Tensor read_npy_features(const std::string& path) {
  InputFile f(path);
  const npy_header h = parse_header(f);
  if (h.dtype != npy_dtype::f4 && h.dtype != npy_dtype::u1)
    f.fail("features must be float32 ('<f4') or uint8 ('|u1'), got dtype '" + to_string(h.dtype) +
           "'; save a.astype(np.float32)");
  Shape shape;
  switch (h.shape.size()) {
    case 4: shape = h.shape; break;
    case 3: shape = {h.shape[0], 1, h.shape[1], h.shape[2]}; break;
    case 2: shape = {h.shape[0], 1, 1, h.shape[1]}; break;
    default:
      f.fail("features must have shape [N, C, H, W], [N, H, W] or [N, D], got " + shape_text(h.shape));
  }
  for (size_t i = 1; i < shape.size(); ++i)
    if (shape[i] == 0) f.fail("features of shape " + shape_text(h.shape) + " have empty samples");

  auto decode = [&](float* dst, const unsigned char* src, uint64_t n, uint64_t first) {
    if (h.dtype == npy_dtype::u1) {
      // Division (not * 1/255) to match torchvision's ToTensor bit for bit, as the IDX path.
      for (uint64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) / 255.f;
      return;
    }
    std::memcpy(dst, src, n * sizeof(float));
    for (uint64_t i = 0; i < n; ++i)
      if (!std::isfinite(dst[i]))
        f.fail("non-finite value " + std::to_string(dst[i]) + " at flat index " + std::to_string(first + i));
  };
  const uint64_t bytes = static_cast<uint64_t>(h.count) * static_cast<uint64_t>(npy_itemsize(h.dtype));
  Tensor out;
  if (f.size_agrees(h.data_offset + bytes)) {
    out = Tensor(shape);
    read_data(f, h, [&](const unsigned char* src, uint64_t n, uint64_t first) {
      decode(out.data() + first, src, n, first);
    });
  } else {
    // The container does not vouch for the size: keep only what arrives
    // (read_data then names the truncation or trailing data).
    std::vector<float> kept;
    read_data(f, h, [&](const unsigned char* src, uint64_t n, uint64_t first) {
      kept.resize(static_cast<size_t>(first + n));
      decode(kept.data() + first, src, n, first);
    });
    out = Tensor(shape);
    std::copy(kept.begin(), kept.end(), out.data());
  }
  return out;
}

std::vector<int32_t> read_npy_labels(const std::string& path) {
  InputFile f(path);
  const npy_header h = parse_header(f);
  if (!npy_is_integer(h.dtype))
    f.fail("labels must have an integer dtype (i1/u1/i2/u2/i4/u4/i8/u8), got '" + to_string(h.dtype) +
           "'; save a.astype(np.int64)");
  if (h.shape.size() != 1) f.fail("labels must have shape [N], got " + shape_text(h.shape) + "; save a.ravel()");
  const uint64_t bytes = static_cast<uint64_t>(h.count) * static_cast<uint64_t>(npy_itemsize(h.dtype));
  std::vector<int32_t> labels;
  if (f.size_agrees(h.data_offset + bytes)) labels.reserve(static_cast<size_t>(h.count));
  auto take = [&](int64_t v, uint64_t at) {
    if (v < 0) f.fail("negative label " + std::to_string(v) + " at index " + std::to_string(at));
    if (v > std::numeric_limits<int32_t>::max())
      f.fail("label " + std::to_string(v) + " at index " + std::to_string(at) + " is too large");
    labels.push_back(static_cast<int32_t>(v));
  };
  read_data(f, h, [&](const unsigned char* src, uint64_t n, uint64_t first) {
    for (uint64_t i = 0; i < n; ++i) {
      const unsigned char* p = src + i * static_cast<uint64_t>(npy_itemsize(h.dtype));
      int64_t v = 0;
      switch (h.dtype) {
        case npy_dtype::u1: v = p[0]; break;
        case npy_dtype::i1: v = static_cast<int8_t>(p[0]); break;
        case npy_dtype::u2: { uint16_t x; std::memcpy(&x, p, 2); v = x; break; }
        case npy_dtype::i2: { int16_t x; std::memcpy(&x, p, 2); v = x; break; }
        case npy_dtype::u4: { uint32_t x; std::memcpy(&x, p, 4); v = x; break; }
        case npy_dtype::i4: { int32_t x; std::memcpy(&x, p, 4); v = x; break; }
        case npy_dtype::u8: {
          uint64_t x;
          std::memcpy(&x, p, 8);
          v = x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                            : static_cast<int64_t>(x);
          break;
        }
        case npy_dtype::i8: std::memcpy(&v, p, 8); break;
        case npy_dtype::f4: break;
      }
      take(v, first + i);
    }
  });
  return labels;
}

}  // namespace murmur
