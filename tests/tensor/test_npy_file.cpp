// The .npy reader and data sets from named files (npy or IDX by content).
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "../npy_bytes.hpp"
#include "tensor/dataset_files.hpp"
#include "tensor/npy_file.hpp"
#include "tensor/rng.hpp"

using namespace murmur;
using namespace murmur::test;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / ("murmur_test_npy_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string put(const TempDir& d, const std::string& name, const npy_raw& b) {
  write_bytes(d.file(name), b);
  return d.file(name);
}

std::string put_gz(const TempDir& d, const std::string& name, const npy_raw& b) {
  const std::string path = d.file(name);
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(gzwrite(f, b.data(), static_cast<unsigned>(b.size())) == static_cast<int>(b.size()));
  gzclose(f);
  return path;
}

// Calls fn expecting a DataError whose message names the file and contains every word.
template <class Fn>
void expect_refused(Fn&& fn, const std::string& path, const std::vector<std::string>& words) {
  try {
    fn();
    FAIL("accepted " << path << "; expected an error with: " << words.front());
  } catch (const DataError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(path) != std::string::npos);
    for (const auto& w : words) CHECK(msg.find(w) != std::string::npos);
  }
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

std::vector<float> iota_floats(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.25f - 1.f;
  return v;
}

}  // namespace

TEST_CASE("npy features of each dtype, version and shape load to the right values", "[data][npy]") {
  TempDir d;
  const auto v = iota_floats(2 * 3 * 4 * 5);
  for (int major : {1, 2, 3}) {
    INFO("format " << major << ".0");
    Tensor t4 = read_npy_features(put(d, "a4.npy", npy_array_bytes("<f4", {2, 3, 4, 5}, v, major)));
    CHECK(t4.shape() == Shape{2, 3, 4, 5});
    CHECK(std::vector<float>(t4.begin(), t4.end()) == v);

    Tensor t3 = read_npy_features(put(d, "a3.npy", npy_array_bytes("<f4", {6, 4, 5}, v, major)));
    CHECK(t3.shape() == Shape{6, 1, 4, 5});
    CHECK(std::vector<float>(t3.begin(), t3.end()) == v);

    Tensor t2 = read_npy_features(put(d, "a2.npy", npy_array_bytes("<f4", {12, 10}, v, major)));
    CHECK(t2.shape() == Shape{12, 1, 1, 10});
    CHECK(std::vector<float>(t2.begin(), t2.end()) == v);
  }
  std::vector<uint8_t> px = {0, 1, 128, 254, 255, 17};
  for (const char* descr : {"|u1", "<u1"}) {
    Tensor u = read_npy_features(put(d, "u.npy", npy_array_bytes(descr, {3, 2}, px)));
    REQUIRE(u.shape() == Shape{3, 1, 1, 2});
    for (size_t i = 0; i < px.size(); ++i) CHECK(u.data()[i] == static_cast<float>(px[i]) / 255.f);
  }
  // gzip-compressed, double quotes, no trailing comma, no padding.
  const std::string dict = "{\"descr\": \"<f4\", \"shape\": (2, 3), \"fortran_order\": False}";
  Tensor g = read_npy_features(put_gz(d, "g.npy.gz", npy_file_bytes(dict, npy_data(std::vector<float>(v.begin(), v.begin() + 6)))));
  CHECK(g.shape() == Shape{2, 1, 1, 3});
  CHECK(g.data()[5] == v[5]);
  // The header alone.
  const npy_header h = read_npy_header(put(d, "h.npy", npy_array_bytes("<f4", {2, 3, 4, 5}, v, 2)));
  CHECK(h.major == 2);
  CHECK(h.dtype == npy_dtype::f4);
  CHECK(h.shape == std::vector<int64_t>{2, 3, 4, 5});
  CHECK(h.count == 120);
  CHECK(h.data_offset % 64 == 0);
}

TEST_CASE("npy labels of every integer dtype load to the right values", "[data][npy]") {
  TempDir d;
  const std::vector<int32_t> want = {0, 3, 1, 127, 2};
  auto check = [&](const std::string& descr, auto sample) {
    using T = decltype(sample);
    std::vector<T> v(want.begin(), want.end());
    INFO("dtype " << descr);
    CHECK(read_npy_labels(put(d, "l.npy", npy_array_bytes(descr, {5}, v))) == want);
  };
  check("|u1", uint8_t{}), check("|i1", int8_t{}), check("<u2", uint16_t{}), check("<i2", int16_t{});
  check("<u4", uint32_t{}), check("<i4", int32_t{}), check("<u8", uint64_t{}), check("<i8", int64_t{});
  CHECK(read_npy_labels(put(d, "e.npy", npy_array_bytes("<i8", {0}, std::vector<int64_t>{}))).empty());
}

TEST_CASE("bad npy files are refused with a message naming the file and the problem", "[data][npy]") {
  TempDir d;
  const auto v = iota_floats(6);
  const npy_raw good = npy_array_bytes("<f4", {2, 3}, v);
  auto features = [&](const std::string& name, const npy_raw& b, std::vector<std::string> words) {
    const std::string p = put(d, name, b);
    expect_refused([&] { read_npy_features(p); }, p, words);
  };
  auto labels = [&](const std::string& name, const npy_raw& b, std::vector<std::string> words) {
    const std::string p = put(d, name, b);
    expect_refused([&] { read_npy_labels(p); }, p, words);
  };
  npy_raw b = good;
  b[1] = 'n';
  features("magic.npy", b, {"bad magic", "\\x93NUMPY"});
  features("empty.npy", {}, {"bad magic", "empty"});
  features("short.npy", npy_raw(good.begin(), good.begin() + 7), {"truncated header"});
  b = good, b[6] = 4;
  features("v4.npy", b, {"unsupported .npy format version 4.0"});
  b = good, b[7] = 1;
  features("v11.npy", b, {"unsupported .npy format version 1.1"});
  features("f8.npy", npy_file_bytes(npy_dict("<f8", {2, 3}), npy_raw(48)), {"unsupported dtype '<f8'", "float32"});
  features("big.npy", npy_file_bytes(npy_dict(">f4", {2, 3}), npy_raw(24)), {"big-endian", "'>f4'"});
  labels("bigl.npy", npy_file_bytes(npy_dict(">i8", {2}), npy_raw(16)), {"big-endian"});
  features("fortran.npy", npy_file_bytes(npy_dict("<f4", {2, 3}, true), npy_data(v)), {"fortran_order", "C order"});
  features("struct.npy", npy_file_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", npy_raw(8)),
           {"structured"});
  features("nodict.npy", npy_file_bytes("hello", npy_data(v)), {"bad header text", "expected '{'"});
  features("noclose.npy", npy_file_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", npy_data(v)),
           {"bad header text"});
  features("nokey.npy", npy_file_bytes("{'descr': '<f4', 'shape': (2, 3)}", npy_data(v)),
           {"bad header text", "missing key 'fortran_order'"});
  features("extra.npy", npy_file_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", npy_data(v)),
           {"bad header text", "unexpected key 'x'"});
  features("dup.npy", npy_file_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", npy_data(v)),
           {"duplicate key 'descr'"});
  features("neg.npy", npy_file_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3)}", npy_data(v)),
           {"bad header text", "non-negative integer"});
  features("after.npy", npy_file_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk", npy_data(v)),
           {"bad header text", "unexpected text after the dict"});
  features("latin.npy", npy_file_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} \xe9", npy_data(v)),
           {"non-ASCII"});
  // A header length of 4 GiB - 1 in a 3.0 file: refused before any allocation.
  b = npy_array_bytes("<f4", {2, 3}, v, 3);
  b[8] = b[9] = b[10] = b[11] = 0xff;
  features("hlen.npy", b, {"header length 4294967295", "limit"});
  b = npy_array_bytes("<f4", {2, 3}, v, 2);
  b[10] = 0x01, b[11] = 0x00;  // 64 KiB + 64 claimed, 64 present
  features("htrunc.npy", npy_raw(b.begin(), b.begin() + 200), {"header length"});
  b = good;
  b[8] = 200;  // 200 bytes of text claimed in a 96-byte file
  features("htext.npy", npy_raw(b.begin(), b.begin() + 96), {"truncated header", "200"});
  features("trunc.npy", npy_raw(good.begin(), good.end() - 3), {"truncated data", "expected 24 bytes", "got 21"});
  b = good, b.push_back(7), b.push_back(7);
  features("trail.npy", b, {"trailing data", "2 unexpected extra byte(s)"});
  features("huge.npy", npy_file_bytes(npy_dict("<f4", {1 << 20, 1 << 20}), npy_data(v)),
           {"shape (1048576, 1048576)", "more than the limit of 268435456 elements"});
  features("hugedim.npy", npy_file_bytes(npy_dict("<f4", {0, int64_t{1} << 40}), {}), {"shape dimension over the limit"});
  features("intfeat.npy", npy_array_bytes("<i4", {2, 3}, std::vector<int32_t>(6)), {"features must be float32", "'<i4'"});
  features("rank1.npy", npy_array_bytes("<f4", {6}, v), {"features must have shape", "(6,)"});
  features("rank5.npy", npy_array_bytes("<f4", {1, 1, 2, 3, 1}, v), {"features must have shape", "(1, 1, 2, 3, 1)"});
  features("emptysample.npy", npy_file_bytes(npy_dict("<f4", {4, 0}), {}), {"empty samples"});
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    auto w = v;
    w[4] = bad;
    features("nan.npy", npy_array_bytes("<f4", {2, 3}, w), {"non-finite value", "flat index 4"});
  }
  labels("float.npy", npy_array_bytes("<f4", {6}, v), {"labels must have an integer dtype", "'<f4'"});
  labels("l2d.npy", npy_array_bytes("<i8", {3, 1}, std::vector<int64_t>(3)), {"labels must have shape [N]", "(3, 1)"});
  labels("lneg.npy", npy_array_bytes("<i8", {3}, std::vector<int64_t>{0, 1, -1}), {"negative label -1 at index 2"});
  labels("lneg1.npy", npy_array_bytes("|i1", {2}, std::vector<int8_t>{-3, 1}), {"negative label -3 at index 0"});
  labels("lbig.npy", npy_array_bytes("<u8", {2}, std::vector<uint64_t>{1, uint64_t{1} << 63}), {"at index 1 is too large"});
  labels("ltrunc.npy", npy_file_bytes(npy_dict("<i8", {3}), npy_raw(23)), {"truncated data"});
}

TEST_CASE("a lying npy header costs no big allocation", "[data][npy]") {
  TempDir d;
  // Exactly at the element limit (1 GiB as float32) with 6 floats of data:
  // the container does not vouch for that size, so nothing is sized from it.
  const int64_t side = int64_t{1} << 14;
  const std::string raw = put(d, "lie.npy", npy_file_bytes(npy_dict("<f4", {side, side}), npy_data(iota_floats(6))));
  const std::string gz = put_gz(d, "lie.npy.gz", npy_file_bytes(npy_dict("<f4", {side, side}), npy_data(iota_floats(6))));
  const std::string lab = put(d, "lie_labels.npy", npy_file_bytes(npy_dict("<i8", {side * side}), npy_raw(16)));
  const long before = peak_rss_kib();
  expect_refused([&] { read_npy_features(raw); }, raw, {"truncated data", "expected 1073741824 bytes"});
  expect_refused([&] { read_npy_features(gz); }, gz, {"truncated data"});
  expect_refused([&] { read_npy_labels(lab); }, lab, {"truncated data"});
  const long grew_mib = (peak_rss_kib() - before) / 1024;
  INFO("peak RSS grew by " << grew_mib << " MiB");
  CHECK(grew_mib < 128);
}

TEST_CASE("load_dataset_files reads npy and IDX by content, any name, and checks labels", "[data][npy]") {
  TempDir d;
  const auto v = iota_floats(4 * 6);
  const std::string x = put(d, "x.npy", npy_array_bytes("<f4", {4, 6}, v));
  const std::string y = put(d, "y.npy", npy_array_bytes("<i8", {4}, std::vector<int64_t>{0, 2, 1, 2}));
  Dataset ds = load_dataset_files(x, y, 0);
  CHECK(ds.size() == 4);
  CHECK(ds.num_classes == 3);  // inferred: max label + 1
  CHECK(ds.sample_shape() == Shape{1, 1, 6});
  CHECK(ds.labels == std::vector<int32_t>{0, 2, 1, 2});
  CHECK(load_dataset_files(x, y, 10).num_classes == 10);
  expect_refused([&] { load_dataset_files(x, y, 2); }, y, {"label 2 at index 1 is out of range for 2 classes"});

  const std::string y3 = put(d, "y3.npy", npy_array_bytes("|u1", {3}, std::vector<uint8_t>{0, 1, 2}));
  expect_refused([&] { load_dataset_files(x, y3, 0); }, y3, {"feature/label count mismatch", "3 labels but 4 samples", x});
  const std::string e = put(d, "e.npy", npy_array_bytes("<f4", {0, 6}, std::vector<float>{}));
  const std::string ey = put(d, "ey.npy", npy_array_bytes("<i8", {0}, std::vector<int64_t>{}));
  expect_refused([&] { load_dataset_files(e, ey, 0); }, ey, {"no samples"});
  const std::string ybig = put(d, "ybig.npy", npy_array_bytes("<i4", {4}, std::vector<int32_t>{0, 1, 2, 1 << 30}));
  expect_refused([&] { load_dataset_files(x, ybig, 0); }, ybig, {"give the class count explicitly"});

  // IDX under arbitrary names, raw and gzipped, mixed with npy.
  npy_raw img = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 3};
  for (int i = 0; i < 24; ++i) img.push_back(static_cast<unsigned char>(i * 10));
  const npy_raw lab = {0, 0, 8, 1, 0, 0, 0, 4, 3, 0, 1, 3};
  const std::string ix = put(d, "my images.bin", img), iy = put_gz(d, "lbl", lab);
  Dataset idx = load_dataset_files(ix, iy, 0);
  CHECK(idx.images.shape() == Shape{4, 1, 2, 3});
  CHECK(idx.images.data()[23] == 230.f / 255.f);
  CHECK(idx.labels == std::vector<int32_t>{3, 0, 1, 3});
  CHECK(idx.num_classes == 4);
  CHECK(detect_data_file(ix) == data_file_format::idx);
  CHECK(detect_data_file(x) == data_file_format::npy);
  Dataset mixed = load_dataset_files(x, iy, 0);
  CHECK(mixed.labels == std::vector<int32_t>{3, 0, 1, 3});
  expect_refused([&] { load_dataset_files(ix, y, 2); }, y, {"out of range for 2 classes"});

  const std::string text = put(d, "notes.txt", npy_raw{'h', 'e', 'l', 'l', 'o', '\n'});
  expect_refused([&] { load_dataset_files(text, y, 0); }, text, {"neither a .npy file", "nor an IDX file", "68 65 6c"});
  const std::string missing = d.file("nope.npy");
  expect_refused([&] { load_dataset_files(missing, y, 0); }, missing, {"cannot open file"});
  const std::string empty = put(d, "empty", {});
  expect_refused([&] { load_features_file(empty); }, empty, {"empty file"});
}

TEST_CASE("npy files written by NumPy itself load to the same values", "[data][npy]") {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    WARN("skipped: no numpy (/usr/bin/python3 -c 'import numpy' failed; apt install python3-numpy to run it)");
    return;
  }
  TempDir d;
  const std::string script = d.file("write.py");
  std::ofstream(script) << R"(import sys, numpy as np
from numpy.lib import format as F
d = sys.argv[1]
x = (np.arange(2 * 3 * 4 * 5, dtype=np.float32) * 0.25 - 1).reshape(2, 3, 4, 5)
np.save(d + '/x4.npy', x)
for v in ((1, 0), (2, 0), (3, 0)):
    with open(d + '/x3_%d.npy' % v[0], 'wb') as f:
        F.write_array(f, x.reshape(6, 4, 5), version=v)
np.save(d + '/x2.npy', x.reshape(12, 10))
np.save(d + '/u8.npy', np.arange(256, dtype=np.uint8).reshape(4, 8, 8))
for t in ('i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8'):
    np.save(d + '/y_%s.npy' % t, np.array([0, 3, 1, 127, 2], dtype=t))
np.save(d + '/fortran.npy', np.asfortranarray(x.reshape(12, 10)))
np.save(d + '/f64.npy', x.astype(np.float64))
np.save(d + '/be.npy', x.astype('>f4'))
)";
  REQUIRE(std::system(("/usr/bin/python3 " + script + " " + d.path.string()).c_str()) == 0);
  std::vector<float> v(120);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.25f - 1.f;
  Tensor x4 = read_npy_features(d.file("x4.npy"));
  CHECK(x4.shape() == Shape{2, 3, 4, 5});
  CHECK(std::vector<float>(x4.begin(), x4.end()) == v);
  for (int major : {1, 2, 3}) {
    INFO("format " << major << ".0");
    const std::string p = d.file("x3_" + std::to_string(major) + ".npy");
    CHECK(read_npy_header(p).major == major);
    Tensor x3 = read_npy_features(p);
    CHECK(x3.shape() == Shape{6, 1, 4, 5});
    CHECK(std::vector<float>(x3.begin(), x3.end()) == v);
  }
  CHECK(read_npy_features(d.file("x2.npy")).shape() == Shape{12, 1, 1, 10});
  Tensor u8 = read_npy_features(d.file("u8.npy"));
  CHECK(u8.shape() == Shape{4, 1, 8, 8});
  CHECK(u8.data()[255] == 1.f);
  CHECK(u8.data()[51] == 51.f / 255.f);
  for (const char* t : {"i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8"}) {
    INFO("dtype " << t);
    CHECK(read_npy_labels(d.file(std::string("y_") + t + ".npy")) == std::vector<int32_t>{0, 3, 1, 127, 2});
  }
  expect_refused([&] { read_npy_features(d.file("fortran.npy")); }, d.file("fortran.npy"), {"fortran_order"});
  expect_refused([&] { read_npy_features(d.file("f64.npy")); }, d.file("f64.npy"), {"'<f8'"});
  expect_refused([&] { read_npy_features(d.file("be.npy")); }, d.file("be.npy"), {"big-endian"});
}

TEST_CASE("npy readers fail cleanly on randomly damaged files", "[data][npy]") {
  // Header and data bytes flipped, files cut or extended at random: each
  // reader either succeeds with the right shape or throws DataError naming
  // the file, never crashes or misreads.
  TempDir d;
  const npy_raw feat = npy_array_bytes("|u1", {6, 5, 5}, std::vector<uint8_t>(150, 9), 2);
  const npy_raw lab = npy_array_bytes("<i2", {6}, std::vector<int16_t>{0, 1, 2, 3, 4, 5}, 1);
  Rng rng(2026);
  int rejected = 0;
  const int trials = 400;
  for (int trial = 0; trial < trials; ++trial) {
    const bool labels = trial % 2 == 1;
    npy_raw b = labels ? lab : feat;
    const size_t header = labels ? 64 : 128;
    switch (rng.below(3)) {
      case 0: b[rng.below(header)] ^= static_cast<unsigned char>(1 + rng.below(255)); break;
      case 1: b.resize(rng.below(b.size())); break;
      default: b.push_back(static_cast<unsigned char>(rng.below(256))); break;
    }
    const std::string p = put(d, "fuzz.npy", b);
    try {
      const size_t n = labels ? read_npy_labels(p).size() : static_cast<size_t>(read_npy_features(p).numel());
      CHECK(n == (labels ? 6u : 150u));
    } catch (const DataError& e) {
      CHECK(std::string(e.what()).find(p) != std::string::npos);
      ++rejected;
    }
  }
  CHECK(rejected > trials / 2);
}
