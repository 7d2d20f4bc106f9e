#include "tensor/dataset.hpp"

#include "tensor/input_file.hpp"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace murmur {

namespace {

// Headers are untrusted: refuse more elements than this before allocating, so
// a corrupt size field cannot exhaust memory. 2^28 pixels are 1 GiB as
// float32; Fashion-MNIST's training set has 47M.
constexpr uint64_t kMaxIdxElements = uint64_t{1} << 28;

std::string hex(uint64_t v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

// Parses and validates an IDX header; returns the dimension sizes.
std::vector<uint64_t> idx_header(InputFile& f, int want_ndim, const char* what) {
  unsigned char magic[4];
  uint64_t got = f.read(magic, 4);
  if (got < 4)
    f.fail("truncated header: expected 4 magic bytes, got " + std::to_string(got) +
           (got == 0 ? " (empty file)" : ""));
  uint32_t m = (uint32_t{magic[0]} << 24) | (uint32_t{magic[1]} << 16) |
               (uint32_t{magic[2]} << 8) | magic[3];
  uint32_t expect = 0x0800u | static_cast<uint32_t>(want_ndim);
  if (magic[0] != 0 || magic[1] != 0)
    f.fail("bad magic " + hex(m, 8) + ", expected " + hex(expect, 8) + " (IDX " + what +
           ": 2 zero bytes, type 0x08, " + std::to_string(want_ndim) + " dimension(s))");
  if (magic[2] != 0x08)
    f.fail("wrong element type " + hex(magic[2], 2) + " (magic " + hex(m, 8) +
           "), expected 0x08 (unsigned byte)");
  if (magic[3] != want_ndim)
    f.fail("wrong number of dimensions " + std::to_string(magic[3]) + " (magic " + hex(m, 8) +
           "), expected " + std::to_string(want_ndim) + " for " + what);

  unsigned char raw[4 * 3];
  uint64_t hbytes = 4u * static_cast<uint64_t>(want_ndim);
  got = f.read(raw, hbytes);
  if (got < hbytes)
    f.fail("truncated header: expected " + std::to_string(hbytes) + " bytes of dimension sizes, got " +
         std::to_string(got));
  std::vector<uint64_t> dims(static_cast<size_t>(want_ndim));
  uint64_t total = 1;
  std::string dims_str;
  for (int i = 0; i < want_ndim; ++i) {
    const unsigned char* p = raw + 4 * i;
    dims[static_cast<size_t>(i)] = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) |
                                   (uint64_t{p[2]} << 8) | p[3];
    if (i) dims_str += 'x';  // not "x" + to_string(): GCC 12 -Wrestrict false positive
    dims_str += std::to_string(dims[static_cast<size_t>(i)]);
  }
  // Each factor is < 2^32 and the running product is kept <= 2^28, so the
  // multiplication cannot overflow 64 bits before the check trips.
  bool too_large = false;
  for (uint64_t d : dims) {
    total *= d;
    if (total > kMaxIdxElements) too_large = true;
    if (total == 0 || too_large) break;
  }
  if (too_large)
    f.fail("dimensions " + dims_str + " are too large (limit " + std::to_string(kMaxIdxElements) +
           " elements, 1 GiB as float32)");
  return dims;
}

}  // namespace

Tensor load_idx_images(const std::string& path) {
  InputFile f(path);
  auto dims = idx_header(f, 3, "images");
  if (dims[0] > 0 && (dims[1] == 0 || dims[2] == 0))
    f.fail("empty image size " + std::to_string(dims[1]) + "x" + std::to_string(dims[2]));
  uint64_t n = dims[0] * dims[1] * dims[2];
  auto to_float = [](float* dst, const unsigned char* src, uint64_t count) {
    // Division (not * 1/255) to match torchvision's ToTensor bit for bit.
    for (uint64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]) / 255.f;
  };
  const Shape shape = {static_cast<int64_t>(dims[0]), 1, static_cast<int64_t>(dims[1]),
                       static_cast<int64_t>(dims[2])};
  Tensor images;
  if (f.size_agrees(16 + n)) {
    // Fast path: inflate straight into the tensor, chunk by chunk.
    images = Tensor(shape);
    float* dst = images.data();
    f.payload(n, 16, [&](const unsigned char* src, uint64_t count, uint64_t at) {
      to_float(dst + at, src, count);
    });
  } else {
    // Suspect file: buffer only what actually arrives (payload() then
    // reports the exact truncation/trailing problem), allocate afterwards.
    std::vector<unsigned char> raw;
    f.payload(n, 16, [&](const unsigned char* src, uint64_t count, uint64_t) {
      raw.insert(raw.end(), src, src + count);
    });
    images = Tensor(shape);
    to_float(images.data(), raw.data(), n);
  }
  return images;
}

std::vector<int32_t> load_idx_labels(const std::string& path, int32_t num_classes, int64_t expect_count,
                                     const std::string& images_path) {
  if (num_classes < 1)
    throw std::invalid_argument("load_idx_labels: num_classes must be >= 1, got " + std::to_string(num_classes));
  InputFile f(path);
  auto dims = idx_header(f, 1, "labels");
  uint64_t n = dims[0];
  if (expect_count >= 0 && n != static_cast<uint64_t>(expect_count))
    f.fail("image/label count mismatch: " + std::to_string(n) + " labels but " + std::to_string(expect_count) +
           " images in " + images_path);
  // A count that real images backed may size the vector up front; otherwise
  // only what arrives is kept (a lying header costs nothing).
  std::vector<int32_t> labels;
  if (expect_count >= 0 || f.size_agrees(8 + n)) labels.reserve(static_cast<size_t>(n));
  f.payload(n, 8, [&](const unsigned char* src, uint64_t count, uint64_t at) {
    for (uint64_t i = 0; i < count; ++i) {
      if (src[i] >= num_classes)
        f.fail("label " + std::to_string(src[i]) + " at index " + std::to_string(at + i) +
               " is out of range (num_classes " + std::to_string(num_classes) + ")");
      labels.push_back(src[i]);
    }
  });
  return labels;
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 int32_t num_classes) {
  if (num_classes < 1)
    throw std::invalid_argument("load_idx: num_classes must be >= 1, got " +
                                std::to_string(num_classes));
  Dataset d;
  d.num_classes = num_classes;
  d.images = load_idx_images(images_path);
  d.labels = load_idx_labels(labels_path, num_classes, d.images.dim(0), images_path);
  return d;
}

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  namespace fs = std::filesystem;
  const std::string prefix = train ? "train" : "t10k";
  auto locate = [&](const std::string& stem) {
    fs::path gz = fs::path(dir) / (stem + ".gz"), raw = fs::path(dir) / stem;
    std::error_code ec;
    if (fs::exists(gz, ec)) return gz.string();
    if (fs::exists(raw, ec)) return raw.string();
    throw DataError("Fashion-MNIST: " + gz.string() + " not found (nor " + raw.string() +
                    "); install Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist, "
                    "files land in /usr/share/datasets/fashion-mnist) or point to a directory "
                    "holding the IDX files");
  };
  std::string images = locate(prefix + "-images-idx3-ubyte");
  std::string labels = locate(prefix + "-labels-idx1-ubyte");
  return load_idx(images, labels, 10);
}

Dataset make_synthetic(int64_t n, int32_t classes, int64_t side, uint64_t seed) {
  if (n < 0) throw std::invalid_argument("make_synthetic: n must be >= 0, got " + std::to_string(n));
  if (classes < 1)
    throw std::invalid_argument("make_synthetic: classes must be >= 1, got " + std::to_string(classes));
  if (side < 1 || side > 1024)
    throw std::invalid_argument("make_synthetic: side must be in [1, 1024], got " + std::to_string(side));

  const int64_t pix = side * side;
  Rng root(seed);

  // Prototypes: a few Gaussian blobs per class on a dark background, so
  // classes differ in where the bright mass sits (as garments do). Each class
  // keeps the best of several candidates (largest distance to the classes
  // before it): purely random blobs sometimes nearly coincide, which would
  // make accuracy depend on the seed.
  std::vector<float> proto(static_cast<size_t>(classes * pix), 0.f), cand(static_cast<size_t>(pix));
  Rng prng = root.fork(1);
  auto render = [&](float* p) {
    std::fill(p, p + pix, 0.f);
    for (int b = 0; b < 3; ++b) {
      double cy = prng.uniform(0.15, 0.85) * static_cast<double>(side - 1);
      double cx = prng.uniform(0.15, 0.85) * static_cast<double>(side - 1);
      double w = prng.uniform(0.12, 0.25) * static_cast<double>(side);
      double amp = prng.uniform(0.6, 1.0);
      for (int64_t y = 0; y < side; ++y)
        for (int64_t x = 0; x < side; ++x) {
          double dy = static_cast<double>(y) - cy, dx = static_cast<double>(x) - cx;
          p[y * side + x] += static_cast<float>(amp * std::exp(-(dx * dx + dy * dy) / (2 * w * w)));
        }
    }
    for (int64_t i = 0; i < pix; ++i) p[i] = std::min(p[i], 1.f);
  };
  for (int32_t c = 0; c < classes; ++c) {
    float* p = proto.data() + c * pix;
    double best = -1;
    for (int attempt = 0; attempt < 16; ++attempt) {
      render(cand.data());
      double nearest = 1e300;
      for (int32_t o = 0; o < c; ++o) {
        const float* q = proto.data() + o * pix;
        double d2 = 0;
        for (int64_t i = 0; i < pix; ++i) d2 += (cand[static_cast<size_t>(i)] - q[i]) * (cand[static_cast<size_t>(i)] - q[i]);
        nearest = std::min(nearest, d2);
      }
      if (nearest > best) {
        best = nearest;
        std::copy(cand.begin(), cand.end(), p);
      }
      if (c == 0) break;
    }
  }

  Dataset d;
  d.num_classes = classes;
  d.labels.resize(static_cast<size_t>(n));
  // Balanced: n/classes (+1) of each class, in a seeded random order.
  for (int64_t i = 0; i < n; ++i) d.labels[static_cast<size_t>(i)] = static_cast<int32_t>(i % classes);
  Rng lrng = root.fork(2);
  lrng.shuffle(d.labels.begin(), d.labels.end());

  d.images = Tensor({n, 1, side, side});
  // Tuned at side 8, 10 classes: nearest-prototype accuracy ~99.4%, a
  // 64-hidden MLP reaches ~95% after one epoch of 2000 samples and ~98% after
  // three. Larger sides are easier (more pixels average the noise out).
  constexpr double kNoise = 0.4;
  Rng nrng = root.fork(3);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = proto.data() + d.labels[static_cast<size_t>(i)] * pix;
    float* x = d.images.data() + i * pix;
    for (int64_t j = 0; j < pix; ++j) {
      double v = p[j] + kNoise * nrng.normal();
      x[j] = static_cast<float>(std::clamp(v, 0.0, 1.0));
    }
  }
  return d;
}

Dataset take(const Dataset& d, int64_t n) {
  if (n < 0) throw std::invalid_argument("take: n must be >= 0, got " + std::to_string(n));
  n = std::min(n, d.size());
  Dataset out;
  out.num_classes = d.num_classes;
  out.images = d.images.rows(0, n).clone();
  out.labels.assign(d.labels.begin(), d.labels.begin() + n);
  return out;
}

namespace {
void check_shard_args(const char* fn, int64_t n, int peers) {
  if (peers < 1)
    throw std::invalid_argument(std::string(fn) + ": peers must be >= 1, got " + std::to_string(peers));
  if (n < peers)
    throw std::invalid_argument(std::string(fn) + ": " + std::to_string(n) +
                                " samples cannot give each of " + std::to_string(peers) +
                                " peers at least one");
}
}  // namespace

std::vector<std::vector<int64_t>> shard_iid(int64_t n, int peers, uint64_t seed) {
  check_shard_args("shard_iid", n, peers);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  Rng rng(seed);
  rng.shuffle(perm.begin(), perm.end());
  std::vector<std::vector<int64_t>> shards(static_cast<size_t>(peers));
  for (int p = 0; p < peers; ++p) {
    int64_t lo = n * p / peers, hi = n * (p + 1) / peers;
    shards[static_cast<size_t>(p)].assign(perm.begin() + lo, perm.begin() + hi);
    std::sort(shards[static_cast<size_t>(p)].begin(), shards[static_cast<size_t>(p)].end());
  }
  return shards;
}

std::vector<std::vector<int64_t>> shard_dirichlet(const std::vector<int32_t>& labels,
                                                  int32_t num_classes, int peers, double alpha,
                                                  uint64_t seed) {
  const int64_t n = static_cast<int64_t>(labels.size());
  check_shard_args("shard_dirichlet", n, peers);
  if (!(alpha > 0) || !std::isfinite(alpha))
    throw std::invalid_argument("shard_dirichlet: alpha must be a positive finite number, got " +
                                std::to_string(alpha));
  if (num_classes < 1)
    throw std::invalid_argument("shard_dirichlet: num_classes must be >= 1, got " +
                                std::to_string(num_classes));

  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (int64_t i = 0; i < n; ++i) {
    int32_t c = labels[static_cast<size_t>(i)];
    if (c < 0 || c >= num_classes)
      throw std::invalid_argument("shard_dirichlet: label " + std::to_string(c) + " at index " +
                                  std::to_string(i) + " is outside [0, " +
                                  std::to_string(num_classes) + ")");
    by_class[static_cast<size_t>(c)].push_back(i);
  }

  std::vector<std::vector<int64_t>> shards(static_cast<size_t>(peers));
  Rng root(seed);
  std::vector<double> q(static_cast<size_t>(peers));
  for (int32_t c = 0; c < num_classes; ++c) {
    // One stream per class keeps each class's split independent of the others.
    Rng rng = root.fork(static_cast<uint64_t>(c));
    auto& idx = by_class[static_cast<size_t>(c)];
    rng.shuffle(idx.begin(), idx.end());
    double sum = 0;
    for (auto& v : q) sum += (v = rng.gamma(alpha));
    if (!(sum > 0)) {
      // Tiny alpha can underflow every draw; the limit is "one peer takes all".
      std::fill(q.begin(), q.end(), 0.0);
      q[rng.below(static_cast<uint64_t>(peers))] = sum = 1.0;
    }
    // Cut points from rounded cumulative proportions: pieces are contiguous
    // and add up to the class size exactly.
    const int64_t m = static_cast<int64_t>(idx.size());
    double cum = 0;
    int64_t lo = 0;
    for (int p = 0; p < peers; ++p) {
      cum += q[static_cast<size_t>(p)];
      int64_t hi = p + 1 == peers ? m : std::min(m, static_cast<int64_t>(std::llround(cum / sum * static_cast<double>(m))));
      hi = std::max(hi, lo);
      shards[static_cast<size_t>(p)].insert(shards[static_cast<size_t>(p)].end(), idx.begin() + lo, idx.begin() + hi);
      lo = hi;
    }
  }

  // Every peer must train on something: an empty peer takes one sample from
  // the currently largest shard (lowest peer id on ties; that shard then has
  // >= 2 samples because n >= peers). The move is deterministic and tiny, so
  // the skew Dirichlet produced is kept.
  for (auto& s : shards) std::sort(s.begin(), s.end());
  for (auto& s : shards) {
    if (!s.empty()) continue;
    auto big = std::max_element(shards.begin(), shards.end(),
                                [](const auto& a, const auto& b) { return a.size() < b.size(); });
    s.push_back(big->back());
    big->pop_back();
  }
  return shards;
}

BatchIterator::BatchIterator(const Dataset& data, std::vector<int64_t> indices, int64_t batch,
                             uint64_t seed)
    : data_(data), indices_(std::move(indices)), batch_(batch), seed_(seed) {
  if (batch < 1) throw std::invalid_argument("BatchIterator: batch must be >= 1, got " + std::to_string(batch));
  if (indices_.empty()) throw std::invalid_argument("BatchIterator: empty shard");
  if (data.images.ndim() < 1 || data.images.dim(0) != data.size())
    throw std::invalid_argument("BatchIterator: dataset has " + shape_str(data.images.shape()) +
                                " images but " + std::to_string(data.size()) + " labels");
  for (int64_t i : indices_)
    if (i < 0 || i >= data.size())
      throw std::invalid_argument("BatchIterator: index " + std::to_string(i) +
                                  " outside the dataset of " + std::to_string(data.size()));
  reshuffle();
}

int64_t BatchIterator::steps_per_epoch() const {
  return (shard_size() + batch_ - 1) / batch_;
}

void BatchIterator::reshuffle() {
  order_ = indices_;  // same size after the first time: copies without allocating
  Rng rng = Rng(seed_).fork(static_cast<uint64_t>(epoch_));
  rng.shuffle(order_.begin(), order_.end());
}

void BatchIterator::seek(int64_t steps) {
  if (steps < 0)
    throw std::invalid_argument("BatchIterator::seek: steps must be >= 0, got " + std::to_string(steps));
  const int64_t per_epoch = steps_per_epoch();
  // last_indices() too must be what `steps` calls of next() leave behind:
  // the batch of step steps - 1, which may lie in the previous epoch.
  last_.clear();
  if (steps > 0) {
    const int64_t prev = steps - 1;
    epoch_ = prev / per_epoch;
    reshuffle();
    const int64_t from = (prev % per_epoch) * batch_;
    const int64_t b = std::min(batch_, shard_size() - from);
    last_.assign(order_.begin() + from, order_.begin() + from + b);
  }
  epoch_ = steps / per_epoch;
  pos_ = (steps % per_epoch) * batch_;
  reshuffle();
}

int64_t BatchIterator::next(Tensor& x, std::vector<int32_t>& y) {
  const int64_t b = std::min(batch_, shard_size() - pos_);
  const Shape& s = data_.images.shape();
  const int64_t row = data_.images.dim(0) ? data_.images.numel() / data_.images.dim(0) : 0;

  // Building a Shape allocates, so only resize when the shape really changes
  // (first call, and around the partial last batch).
  // A batch buffer shared with other trainers (trainer::share_activations)
  // may have been grown through another handle: stale, then resized.
  bool same = !x.stale() && x.ndim() == static_cast<int>(s.size()) && x.dim(0) == b;
  for (size_t k = 1; same && k < s.size(); ++k) same = x.shape()[k] == s[k];
  if (!same) {
    Shape xs = s;
    xs[0] = b;
    x.resize(std::move(xs));
  }
  y.resize(static_cast<size_t>(b));
  last_.resize(static_cast<size_t>(b));

  const float* src = data_.images.data();
  float* dst = x.data();
  for (int64_t k = 0; k < b; ++k) {
    int64_t i = order_[static_cast<size_t>(pos_ + k)];
    std::memcpy(dst + k * row, src + i * row, sizeof(float) * static_cast<size_t>(row));
    y[static_cast<size_t>(k)] = data_.labels[static_cast<size_t>(i)];
    last_[static_cast<size_t>(k)] = i;
  }
  pos_ += b;
  if (pos_ == shard_size()) {
    pos_ = 0;
    ++epoch_;
    reshuffle();
  }
  return b;
}

}  // namespace murmur
