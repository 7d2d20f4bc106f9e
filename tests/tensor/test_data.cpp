// Data loading, sharding and batching.
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tensor/dataset.hpp"
#include "tensor/rng.hpp"

using namespace murmur;
namespace fs = std::filesystem;

namespace {

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

// A scratch directory removed on scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("murmur_test_data_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

using Bytes = std::vector<unsigned char>;

void put_u32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

// IDX bytes: magic (00 00 type ndim), sizes, payload.
Bytes idx_bytes(std::vector<uint32_t> dims, const Bytes& payload, unsigned char type = 0x08,
                int ndim = -1) {
  Bytes b = {0, 0, type, static_cast<unsigned char>(ndim < 0 ? static_cast<int>(dims.size()) : ndim)};
  for (auto d : dims) put_u32(b, d);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes images_payload(uint32_t n, uint32_t h, uint32_t w) {
  Bytes p(static_cast<size_t>(n) * h * w);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<unsigned char>((i * 37) % 256);
  return p;
}

Bytes labels_payload(uint32_t n, int classes = 10) {
  Bytes p(n);
  for (uint32_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>(i % static_cast<uint32_t>(classes));
  return p;
}

void write_raw(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  gzclose(f);
}

Bytes read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

// Writes a file either raw or gzipped (name gets ".gz").
std::string write(const TempDir& dir, const std::string& name, const Bytes& b, bool gz) {
  std::string path = dir.file(gz ? name + ".gz" : name);
  if (gz)
    write_gz(path, b);
  else
    write_raw(path, b);
  return path;
}

// Runs load_idx expecting a DataError whose message names `blamed` and
// contains every word in `words`.
void expect_error(const std::string& images, const std::string& labels, const std::string& blamed,
                  std::vector<std::string> words, int32_t classes = 10) {
  try {
    load_idx(images, labels, classes);
    FAIL("load_idx accepted a bad file; expected an error naming " << blamed);
  } catch (const DataError& e) {
    std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(blamed) != std::string::npos);
    for (const auto& w : words) CHECK(msg.find(w) != std::string::npos);
  }
}

void check_partition(const std::vector<std::vector<int64_t>>& shards, int64_t n) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (const auto& s : shards)
    for (int64_t i : s) {
      REQUIRE(i >= 0);
      REQUIRE(i < n);
      ++seen[static_cast<size_t>(i)];
    }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
}

// Mean over peers of the share of each peer's most frequent class.
double mean_majority_fraction(const std::vector<std::vector<int64_t>>& shards,
                              const std::vector<int32_t>& labels, int classes) {
  double sum = 0;
  for (const auto& s : shards) {
    std::vector<int64_t> count(static_cast<size_t>(classes), 0);
    for (int64_t i : s) ++count[static_cast<size_t>(labels[static_cast<size_t>(i)])];
    sum += static_cast<double>(*std::max_element(count.begin(), count.end())) / static_cast<double>(s.size());
  }
  return sum / static_cast<double>(shards.size());
}

std::vector<int32_t> balanced_labels(int64_t n, int classes) {
  std::vector<int32_t> l(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) l[static_cast<size_t>(i)] = static_cast<int32_t>(i % classes);
  return l;
}

}  // namespace

TEST_CASE("Fashion-MNIST loads with the expected shapes and values", "[data]") {
  if (!fs::exists(fs::path(kFashionDir) / "train-images-idx3-ubyte.gz"))
    FAIL("Fashion-MNIST not installed in " << kFashionDir << ": run scripts/setup.sh (Debian: dataset-fashion-mnist)");
  auto t0 = std::chrono::steady_clock::now();
  Dataset train = load_fashion_mnist(kFashionDir, true);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("training set load took " << secs << " s");
  REQUIRE(train.images.shape() == Shape{60000, 1, 28, 28});
  REQUIRE(train.size() == 60000);
  CHECK(train.num_classes == 10);
  CHECK(train.sample_shape() == Shape{1, 28, 28});
  CHECK(train.labels[0] == 9);  // the first training image is an ankle boot

  Dataset test = load_fashion_mnist(kFashionDir, false);
  REQUIRE(test.images.shape() == Shape{10000, 1, 28, 28});
  REQUIRE(test.size() == 10000);

  for (const Dataset* d : {&train, &test}) {
    auto [lo, hi] = std::minmax_element(d->labels.begin(), d->labels.end());
    CHECK(*lo == 0);
    CHECK(*hi == 9);
    auto [pmin, pmax] = std::minmax_element(d->images.begin(), d->images.end());
    CHECK(*pmin == 0.f);
    CHECK(*pmax == 1.f);
    // Pixels are exactly k/255.
    bool on_grid = true;
    for (int64_t i = 0; i < 28 * 28 * 10; ++i) {
      float k = std::round(d->images[i] * 255.f);
      on_grid = on_grid && d->images[i] == k / 255.f;
    }
    CHECK(on_grid);
  }
  // Fashion-MNIST is balanced: 6000 training images per class.
  std::vector<int> count(10, 0);
  for (int32_t l : train.labels) ++count[static_cast<size_t>(l)];
  CHECK(std::all_of(count.begin(), count.end(), [](int c) { return c == 6000; }));
}

TEST_CASE("load_idx reads small raw and gzipped files", "[data]") {
  TempDir dir;
  Bytes img = images_payload(5, 3, 4);
  for (bool gz : {false, true}) {
    INFO("gzipped: " << gz);
    auto ip = write(dir, "img", idx_bytes({5, 3, 4}, img), gz);
    auto lp = write(dir, "lab", idx_bytes({5}, labels_payload(5, 3)), gz);
    Dataset d = load_idx(ip, lp, 3);
    REQUIRE(d.images.shape() == Shape{5, 1, 3, 4});
    CHECK(d.num_classes == 3);
    CHECK(d.labels == std::vector<int32_t>{0, 1, 2, 0, 1});
    for (size_t i = 0; i < img.size(); ++i) CHECK(d.images[static_cast<int64_t>(i)] == static_cast<float>(img[i]) / 255.f);
  }
  // The gzip magic, not the name, decides: a raw file named .gz still loads.
  auto ip = dir.file("raw_named.gz");
  write_raw(ip, idx_bytes({5, 3, 4}, img));
  auto lp = write(dir, "lab", idx_bytes({5}, labels_payload(5, 3)), false);
  CHECK(load_idx(ip, lp, 3).size() == 5);
  // An empty set is not an error.
  auto ie = write(dir, "img0", idx_bytes({0, 28, 28}, {}), false);
  auto le = write(dir, "lab0", idx_bytes({0}, {}), false);
  Dataset e = load_idx(ie, le);
  CHECK(e.size() == 0);
  CHECK(e.images.shape() == Shape{0, 1, 28, 28});
}

TEST_CASE("load_idx rejects malformed files with a message naming file and problem", "[data]") {
  TempDir dir;
  const Bytes good_img = idx_bytes({4, 2, 2}, images_payload(4, 2, 2));
  const Bytes good_lab = idx_bytes({4}, labels_payload(4));

  for (bool gz : {false, true}) {
    DYNAMIC_SECTION("gzipped: " << gz) {
      auto img = write(dir, "img", good_img, gz);
      auto lab = write(dir, "lab", good_lab, gz);
      REQUIRE(load_idx(img, lab).size() == 4);

      SECTION("bad magic states found and expected values") {
        Bytes b = good_img;
        b[0] = 0x12;
        b[1] = 0x34;
        auto p = write(dir, "badmagic", b, gz);
        expect_error(p, lab, p, {"bad magic", "0x12340803", "expected 0x00000803"});
      }
      SECTION("truncated image data states expected and actual bytes") {
        Bytes b = good_img;
        b.resize(b.size() - 5);
        auto p = write(dir, "trunc", b, gz);
        expect_error(p, lab, p, {"truncated", "expected 16", "got 11"});
      }
      SECTION("truncated labels") {
        Bytes b = good_lab;
        b.pop_back();
        auto p = write(dir, "trunclab", b, gz);
        expect_error(img, p, p, {"truncated", "expected 4", "got 3"});
      }
      SECTION("a header promising far more data than present") {
        // 10M 5x5 images (1 GiB as float) backed by 3 bytes: must be reported
        // as truncated without first allocating what the header claims.
        auto p = write(dir, "liar", idx_bytes({10000000, 5, 5}, {1, 2, 3}), gz);
        expect_error(p, lab, p, {"truncated", "expected 250000000", "got 3"});
      }
      SECTION("trailing extra data") {
        Bytes b = good_img;
        b.push_back(1);
        b.push_back(2);
        auto p = write(dir, "trailing", b, gz);
        expect_error(p, lab, p, {"trailing", "2 unexpected extra"});
      }
      SECTION("truncated header") {
        Bytes b(good_img.begin(), good_img.begin() + 9);
        auto p = write(dir, "shorthdr", b, gz);
        expect_error(p, lab, p, {"truncated header"});
      }
      SECTION("empty file") {
        auto p = write(dir, "empty", {}, gz);
        expect_error(p, lab, p, {"truncated header", "empty"});
      }
    }
  }

  auto img = write(dir, "img", good_img, false);
  auto lab = write(dir, "lab", good_lab, false);

  SECTION("missing image file") {
    auto p = dir.file("does_not_exist");
    expect_error(p, lab, p, {"cannot open", "No such file"});
  }
  SECTION("missing label file") {
    auto p = dir.file("no_labels");
    expect_error(img, p, p, {"cannot open"});
  }
  SECTION("a directory is unreadable") {
    auto p = dir.file("subdir");
    fs::create_directories(p);
    expect_error(p, lab, p, {"read error"});
  }
  SECTION("wrong element type") {
    auto p = write(dir, "float", idx_bytes({4, 2, 2}, images_payload(4, 2, 2), 0x0D), false);
    expect_error(p, lab, p, {"wrong element type 0x0d", "expected 0x08"});
  }
  SECTION("wrong number of dimensions for images") {
    auto p = write(dir, "img2d", idx_bytes({4, 4}, images_payload(4, 2, 2)), false);
    expect_error(p, lab, p, {"wrong number of dimensions 2", "expected 3"});
  }
  SECTION("wrong number of dimensions for labels") {
    auto p = write(dir, "lab3d", idx_bytes({4, 1, 1}, labels_payload(4)), false);
    expect_error(img, p, p, {"wrong number of dimensions 3", "expected 1"});
  }
  SECTION("absurd dimensions are refused before allocating") {
    // 100000^3 bytes; only the header is present, so reading would fail too,
    // but the size check must come first.
    auto p = write(dir, "huge", idx_bytes({100000, 100000, 100000}, {}), false);
    expect_error(p, lab, p, {"too large", "100000x100000x100000", "1 GiB"});
    auto q = write(dir, "huge_lab", idx_bytes({0xFFFFFFFFu}, {}), true);
    expect_error(img, q, q, {"too large"});
    auto z = write(dir, "zero", idx_bytes({4, 0, 28}, {}), false);
    expect_error(z, lab, z, {"empty image size"});
  }
  SECTION("corrupt gzip stream") {
    // A valid gzip header followed by an invalid deflate block type.
    Bytes b = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    auto p = dir.file("corrupt.gz");
    write_raw(p, b);
    expect_error(p, lab, p, {"corrupt gzip stream"});
  }
  SECTION("gzip stream cut short") {
    Bytes big = idx_bytes({200, 28, 28}, images_payload(200, 28, 28));
    auto full = write(dir, "full", big, true);
    Bytes gzb = read_all(full);
    gzb.resize(gzb.size() / 2);
    auto p = dir.file("cut.gz");
    write_raw(p, gzb);
    expect_error(p, lab, p, {"gzip stream", "unexpected end of file"});
  }
  SECTION("a gzip file whose size fields lie gets no allocation for the data it claims") {
    // Header: 2^28 pixels (1 GiB as float32); the gzip trailer's ISIZE forged
    // to agree (16 + 2^28 mod 2^32); the data: 2 MB of noise, more than
    // zlib reads ahead with the header, so the lie shows only at the end.
    // Before the check, the loader trusted the agreeing sizes, allocated and
    // zeroed 1 GiB, then failed.
    const uint32_t n = 16384;
    Bytes noise(2000000);
    Rng r(5);
    for (auto& x : noise) x = static_cast<unsigned char>(r.next_u64());
    Bytes b = idx_bytes({1, n, n}, noise);
    auto full = write(dir, "liar", b, true);
    Bytes gzb = read_all(full);
    const uint32_t isize = 16 + n * n;
    for (int i = 0; i < 4; ++i) gzb[gzb.size() - 4 + static_cast<size_t>(i)] = static_cast<unsigned char>(isize >> (8 * i));
    auto p = dir.file("liar-isize.gz");
    write_raw(p, gzb);
    struct rusage before {}, after {};
    getrusage(RUSAGE_SELF, &before);
    expect_error(p, lab, p, {"gzip stream"});
    getrusage(RUSAGE_SELF, &after);
    CHECK(after.ru_maxrss - before.ru_maxrss < 256 * 1024);  // KiB: far below the 1 GiB claimed
  }
  SECTION("gzip with a damaged checksum") {
    auto full = write(dir, "crc", good_img, true);
    Bytes gzb = read_all(full);
    gzb[gzb.size() - 8] ^= 0xff;  // first byte of the CRC32 trailer
    auto p = dir.file("badcrc.gz");
    write_raw(p, gzb);
    expect_error(p, lab, p, {"corrupt gzip stream", "incorrect data check"});
  }
  SECTION("image/label count mismatch names both files") {
    auto p = write(dir, "lab5", idx_bytes({5}, labels_payload(5)), false);
    expect_error(img, p, p, {"count mismatch", "5 labels", "4 images", img});
  }
  SECTION("label out of range names index and value") {
    Bytes l = labels_payload(4);
    l[2] = 12;
    auto p = write(dir, "badlabel", idx_bytes({4}, l), false);
    expect_error(img, p, p, {"label 12", "index 2", "num_classes 10"});
    // The same file is fine with more classes.
    CHECK(load_idx(img, p, 13).labels[2] == 12);
  }
  SECTION("num_classes must be positive") {
    CHECK_THROWS_AS(load_idx(img, lab, 0), std::invalid_argument);
  }
}

TEST_CASE("load_idx fails cleanly on randomly damaged files", "[data]") {
  // Header and payload bytes flipped, files cut or extended at random: the
  // loader must either succeed or throw DataError, never crash or misread.
  TempDir dir;
  const Bytes img = idx_bytes({6, 5, 5}, images_payload(6, 5, 5));
  const Bytes lab = idx_bytes({6}, labels_payload(6));
  auto lp = write(dir, "lab", lab, false);
  Rng rng(2024);
  int ok = 0, rejected = 0;
  for (int trial = 0; trial < 300; ++trial) {
    Bytes b = img;
    bool gz = trial % 2 == 1;
    if (gz) {
      auto full = write(dir, "tmp", b, true);
      b = read_all(full);
    }
    switch (rng.below(3)) {
      case 0: b[rng.below(gz ? b.size() : 16)] ^= static_cast<unsigned char>(1 + rng.below(255)); break;
      case 1: b.resize(rng.below(b.size())); break;
      default: b.push_back(static_cast<unsigned char>(rng.below(256))); break;
    }
    auto p = dir.file("fuzz");
    write_raw(p, b);
    try {
      Dataset d = load_idx(p, lp);
      CHECK(d.size() == 6);
      ++ok;
    } catch (const DataError& e) {
      CHECK(std::string(e.what()).find(p) != std::string::npos);
      ++rejected;
    }
  }
  CHECK(rejected > 200);
  INFO("accepted " << ok);
}

TEST_CASE("load_fashion_mnist locates files and explains when they are missing", "[data]") {
  TempDir dir;
  try {
    load_fashion_mnist(dir.path.string(), true);
    FAIL("expected a DataError");
  } catch (const DataError& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("train-images-idx3-ubyte.gz") != std::string::npos);
    CHECK(msg.find("install Debian's dataset-fashion-mnist") != std::string::npos);
  }
  // Un-gzipped files are the fallback; .gz wins when both exist.
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_bytes({3, 2, 2}, images_payload(3, 2, 2)));
  write_raw(dir.file("t10k-labels-idx1-ubyte"), idx_bytes({3}, labels_payload(3)));
  CHECK(load_fashion_mnist(dir.path.string(), false).size() == 3);
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_bytes({2, 2, 2}, images_payload(2, 2, 2)));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_bytes({2}, labels_payload(2)));
  CHECK(load_fashion_mnist(dir.path.string(), false).size() == 2);
}

TEST_CASE("make_synthetic is deterministic, balanced and learnable but noisy", "[data]") {
  Dataset a = make_synthetic(3000, 10, 8, 42), b = make_synthetic(3000, 10, 8, 42);
  Dataset c = make_synthetic(3000, 10, 8, 43);
  REQUIRE(a.images.shape() == Shape{3000, 1, 8, 8});
  CHECK(a.num_classes == 10);
  CHECK(a.labels == b.labels);
  CHECK(std::equal(a.images.begin(), a.images.end(), b.images.begin()));
  CHECK(a.labels != c.labels);
  CHECK(!std::equal(a.images.begin(), a.images.end(), c.images.begin()));

  auto [lo, hi] = std::minmax_element(a.images.begin(), a.images.end());
  CHECK(*lo >= 0.f);
  CHECK(*hi <= 1.f);
  std::vector<int> count(10, 0);
  for (int32_t l : a.labels) ++count[static_cast<size_t>(l)];
  CHECK(*std::min_element(count.begin(), count.end()) == 300);
  CHECK(*std::max_element(count.begin(), count.end()) == 300);
  // Labels are in random order, not cycling.
  CHECK(std::count_if(a.labels.begin() + 1, a.labels.end(),
                      [&, i = 0](int32_t l) mutable { return l == (a.labels[static_cast<size_t>(i++)] + 1) % 10; }) < 1000);

  // Nearest class mean (fitted on the first 2000, scored on the last 1000) is
  // a stand-in for "a small MLP can learn it": high, but not perfect.
  const int64_t D = 64, fit = 2000;
  std::vector<double> mean(10 * D, 0.0);
  for (int64_t i = 0; i < fit; ++i)
    for (int64_t k = 0; k < D; ++k) mean[static_cast<size_t>(a.labels[static_cast<size_t>(i)] * D + k)] += a.images[i * D + k];
  std::vector<int> fit_count(10, 0);
  for (int64_t i = 0; i < fit; ++i) ++fit_count[static_cast<size_t>(a.labels[static_cast<size_t>(i)])];
  for (int64_t cl = 0; cl < 10; ++cl)
    for (int64_t k = 0; k < D; ++k) mean[static_cast<size_t>(cl * D + k)] /= fit_count[static_cast<size_t>(cl)];
  int correct = 0;
  for (int64_t i = fit; i < a.size(); ++i) {
    int best = 0;
    double best_d = 1e300;
    for (int cl = 0; cl < 10; ++cl) {
      double d2 = 0;
      for (int64_t k = 0; k < D; ++k) {
        double diff = a.images[i * D + k] - mean[static_cast<size_t>(cl * D + k)];
        d2 += diff * diff;
      }
      if (d2 < best_d) best_d = d2, best = cl;
    }
    correct += best == a.labels[static_cast<size_t>(i)];
  }
  double acc = correct / static_cast<double>(a.size() - fit);
  INFO("nearest-mean accuracy " << acc);
  CHECK(acc > 0.97);
  CHECK(acc < 1.0);

  CHECK(make_synthetic(0, 3, 4, 1).size() == 0);
  CHECK_THROWS_AS(make_synthetic(-1, 10, 8, 1), std::invalid_argument);
  CHECK_THROWS_AS(make_synthetic(10, 0, 8, 1), std::invalid_argument);
  CHECK_THROWS_AS(make_synthetic(10, 10, 0, 1), std::invalid_argument);
}

TEST_CASE("take copies the first n samples", "[data]") {
  Dataset d = make_synthetic(50, 5, 4, 7);
  Dataset t = take(d, 20);
  REQUIRE(t.images.shape() == Shape{20, 1, 4, 4});
  CHECK(t.num_classes == 5);
  CHECK(std::vector<int32_t>(d.labels.begin(), d.labels.begin() + 20) == t.labels);
  CHECK(std::equal(t.images.begin(), t.images.end(), d.images.begin()));
  t.images[0] = -1.f;  // a copy, not a view
  CHECK(d.images[0] != -1.f);
  CHECK(take(d, 500).size() == 50);  // clamped
  CHECK(take(d, 0).size() == 0);
  CHECK_THROWS_AS(take(d, -1), std::invalid_argument);
}

TEST_CASE("shard_iid partitions evenly and deterministically", "[data]") {
  for (int peers : {1, 3, 7, 10}) {
    auto s = shard_iid(1003, peers, 5);
    REQUIRE(s.size() == static_cast<size_t>(peers));
    check_partition(s, 1003);
    auto [mn, mx] = std::minmax_element(s.begin(), s.end(), [](auto& a, auto& b) { return a.size() < b.size(); });
    CHECK(mx->size() - mn->size() <= 1);
  }
  CHECK(shard_iid(1003, 7, 5) == shard_iid(1003, 7, 5));
  CHECK(shard_iid(1003, 7, 5) != shard_iid(1003, 7, 6));
  // A shard is a random subset, not a contiguous block.
  auto s = shard_iid(1000, 4, 1);
  CHECK(s[0].back() - s[0].front() > 500);
  CHECK(shard_iid(4, 4, 1).size() == 4);
  CHECK_THROWS_AS(shard_iid(100, 0, 1), std::invalid_argument);
  CHECK_THROWS_AS(shard_iid(3, 4, 1), std::invalid_argument);
}

TEST_CASE("shard_dirichlet partitions with tunable skew", "[data]") {
  const int classes = 10, peers = 10;
  auto labels = balanced_labels(6000, classes);
  Rng(3).shuffle(labels.begin(), labels.end());

  for (double alpha : {0.01, 0.1, 1.0, 100.0}) {
    auto s = shard_dirichlet(labels, classes, peers, alpha, 9);
    REQUIRE(s.size() == static_cast<size_t>(peers));
    check_partition(s, 6000);
    CHECK(std::none_of(s.begin(), s.end(), [](const auto& v) { return v.empty(); }));
  }

  double skewed = mean_majority_fraction(shard_dirichlet(labels, classes, peers, 0.1, 9), labels, classes);
  double uniform = mean_majority_fraction(shard_dirichlet(labels, classes, peers, 1000.0, 9), labels, classes);
  INFO("majority fraction alpha=0.1: " << skewed << ", alpha=1000: " << uniform);
  CHECK(skewed > 0.5);
  CHECK(uniform < 0.15);  // 0.1 would be perfectly uniform
  // With large alpha the shard sizes are near n/peers too.
  for (const auto& v : shard_dirichlet(labels, classes, peers, 1000.0, 9)) {
    CHECK(v.size() > 500);
    CHECK(v.size() < 700);
  }

  CHECK(shard_dirichlet(labels, classes, peers, 0.5, 9) == shard_dirichlet(labels, classes, peers, 0.5, 9));
  CHECK(shard_dirichlet(labels, classes, peers, 0.5, 9) != shard_dirichlet(labels, classes, peers, 0.5, 10));

  // Every peer gets something even when there are barely enough samples.
  auto few = balanced_labels(12, 2);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto s = shard_dirichlet(few, 2, 12, 0.05, seed);
    check_partition(s, 12);
    CHECK(std::all_of(s.begin(), s.end(), [](const auto& v) { return v.size() == 1; }));
  }

  CHECK_THROWS_AS(shard_dirichlet(labels, classes, 0, 0.5, 1), std::invalid_argument);
  CHECK_THROWS_AS(shard_dirichlet(labels, classes, peers, 0.0, 1), std::invalid_argument);
  CHECK_THROWS_AS(shard_dirichlet(labels, classes, peers, -1.0, 1), std::invalid_argument);
  CHECK_THROWS_AS(shard_dirichlet(few, 2, 13, 0.5, 1), std::invalid_argument);
  CHECK_THROWS_AS(shard_dirichlet(labels, 5, peers, 0.5, 1), std::invalid_argument);  // label 9 >= 5
}

TEST_CASE("BatchIterator walks epochs with a partial last batch", "[data]") {
  Dataset d = make_synthetic(40, 4, 3, 11);
  std::vector<int64_t> shard = {1, 3, 5, 7, 11, 13, 17, 19, 23, 29};
  BatchIterator it(d, shard, 4, 77);
  CHECK(it.steps_per_epoch() == 3);
  CHECK(it.shard_size() == 10);
  CHECK(it.epoch() == 0);

  Tensor x;
  std::vector<int32_t> y;
  const int64_t row = 9;
  std::vector<std::vector<int64_t>> epoch_orders;
  const float* buffer = nullptr;
  for (int e = 0; e < 3; ++e) {
    std::vector<int64_t> order;
    for (int step = 0; step < 3; ++step) {
      CHECK(it.epoch() == e);
      int64_t b = it.next(x, y);
      CHECK(b == (step < 2 ? 4 : 2));
      REQUIRE(x.shape() == Shape{b, 1, 3, 3});
      REQUIRE(y.size() == static_cast<size_t>(b));
      if (buffer == nullptr) buffer = x.data();
      CHECK(x.data() == buffer);  // storage reused, never reallocated
      // Identify each sample by its pixels and check the label travels with it.
      for (int64_t k = 0; k < b; ++k) {
        int64_t found = -1;
        for (int64_t i : shard)
          if (std::equal(x.data() + k * row, x.data() + (k + 1) * row, d.images.data() + i * row)) found = i;
        REQUIRE(found >= 0);
        CHECK(y[static_cast<size_t>(k)] == d.labels[static_cast<size_t>(found)]);
        order.push_back(found);
      }
    }
    CHECK(it.epoch() == e + 1);
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == shard);  // each epoch visits the shard exactly once
    epoch_orders.push_back(order);
  }
  CHECK(epoch_orders[0] != epoch_orders[1]);  // reshuffled per epoch
  CHECK(epoch_orders[1] != epoch_orders[2]);

  // Same seed, same batches; another seed, another order.
  auto first_epoch = [&](uint64_t seed) {
    BatchIterator j(d, shard, 4, seed);
    Tensor xx;
    std::vector<int32_t> yy;
    std::vector<float> all;
    for (int s = 0; s < 3; ++s) {
      j.next(xx, yy);
      all.insert(all.end(), xx.begin(), xx.end());
    }
    return all;
  };
  CHECK(first_epoch(77) == first_epoch(77));
  CHECK(first_epoch(77) != first_epoch(78));

  // Batch larger than the shard: one step per epoch with everything.
  BatchIterator big(d, {0, 1, 2}, 8, 1);
  CHECK(big.steps_per_epoch() == 1);
  CHECK(big.next(x, y) == 3);
  CHECK(big.epoch() == 1);

  CHECK_THROWS_AS(BatchIterator(d, shard, 0, 1), std::invalid_argument);
  CHECK_THROWS_AS(BatchIterator(d, {}, 4, 1), std::invalid_argument);
  CHECK_THROWS_AS(BatchIterator(d, {0, 40}, 4, 1), std::invalid_argument);
  CHECK_THROWS_AS(BatchIterator(d, {-1}, 4, 1), std::invalid_argument);
}
