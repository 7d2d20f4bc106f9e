// Model files (model_io/): the safetensors layout and names, the round trip,
// every kind of bad file refused by name, stage files assembled into one
// model, and evaluation.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "model_io/model_evaluation.hpp"
#include "model_io/model_file.hpp"
#include "model_io/model_source.hpp"
#include "model_io/model_prediction.hpp"
#include "model_io/onnx_export.hpp"
#include "model_io/param_tensors.hpp"
#include "model_io/safetensors_file.hpp"
#include "tensor/dataset.hpp"

using namespace murmur;
namespace fs = std::filesystem;

namespace {

const std::string kSpec = "conv2d:4:3:1:1,relu,maxpool2d:2,flatten,linear:10";
const Shape kInput{1, 8, 8};

std::string temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("murmur-model-io-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::string write_test_model(const std::string& dir, uint64_t seed = 3) {
  auto m = build_model(kSpec, kInput, 10);
  m->init(seed);
  const std::string path = dir + "/m.safetensors";
  write_model_file(path, describe_model(kSpec, kInput, 10), *m);
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A safetensors file from a header (JSON text) and data bytes.
std::string craft(const std::string& path, const std::string& header, const std::string& data,
                  uint64_t claimed_len = 0) {
  const uint64_t n = claimed_len ? claimed_len : header.size();
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  spit(path, bytes + header + data);
  return path;
}

// The header of a valid file, as JSON, and its data bytes.
std::pair<nlohmann::json, std::string> split_file(const std::string& path) {
  const std::string b = slurp(path);
  uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  return {nlohmann::json::parse(b.substr(8, n)), b.substr(8 + n)};
}

std::string refused(const std::string& path) {
  try {
    read_model_file(path);
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL("read_model_file accepted " << path);
  return "";
}

}  // namespace

TEST_CASE("model file: PyTorch state-dict names and shapes, metadata, parameters back bit for bit", "[model_io]") {
  const std::string dir = temp_dir("roundtrip");
  const std::string path = write_test_model(dir);
  auto [header, data] = split_file(path);
  const auto& meta = header["__metadata__"];
  CHECK(meta["format"] == "murmur-model/1");
  CHECK(meta["spec"] == kSpec);
  CHECK(meta["input_shape"] == "1,8,8");
  CHECK(meta["num_classes"] == "10");
  CHECK(meta["layer_begin"] == "0");
  CHECK(meta["layer_end"] == "5");
  CHECK(header["0.weight"]["shape"] == nlohmann::json::array({4, 1, 3, 3}));
  CHECK(header["0.bias"]["shape"] == nlohmann::json::array({4}));
  CHECK(header["4.weight"]["shape"] == nlohmann::json::array({10, 64}));
  CHECK(header["4.weight"]["dtype"] == "F32");
  CHECK(header.size() == 5);  // 4 tensors and the metadata
  CHECK(slurp(path).size() % 8 == (8 + 4 * (36 + 4 + 640 + 10)) % 8);

  auto m = build_model(kSpec, kInput, 10);
  m->init(3);
  const model_weights w = read_model_file(path);
  REQUIRE(w.params.size() == static_cast<size_t>(m->param_count()));
  CHECK(std::memcmp(w.params.data(), m->params(), w.params.size() * 4) == 0);
  CHECK(w.model.whole());
  auto back = build_model_from(w);
  Tensor x({2, 1, 8, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(i % 7) / 7.f;
  const Tensor a = m->forward(x).clone();
  const Tensor& b = back->forward(x);
  CHECK(std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * 4) == 0);
}

TEST_CASE("model file: shorthands are recorded expanded, so the file names its layers", "[model_io]") {
  const std::string dir = temp_dir("cnn");
  auto m = build_model("cnn", {1, 28, 28}, 10);
  write_model_file(dir + "/cnn.safetensors", describe_model("cnn", {1, 28, 28}, 10), *m);
  auto [header, data] = split_file(dir + "/cnn.safetensors");
  CHECK(header["__metadata__"]["layers"] ==
        "conv2d:32:5,relu,maxpool2d:2,conv2d:64:5,relu,maxpool2d:2,flatten,linear:256,relu,linear:10");
  CHECK(header["3.weight"]["shape"] == nlohmann::json::array({64, 32, 5, 5}));
  CHECK(header["7.weight"]["shape"] == nlohmann::json::array({256, 1024}));
  CHECK(header["9.bias"]["shape"] == nlohmann::json::array({10}));
}

TEST_CASE("model file: bad files are refused with the file named and the problem said", "[model_io]") {
  const std::string dir = temp_dir("bad");
  const std::string good = write_test_model(dir);
  const std::string bytes = slurp(good);
  auto [header, data] = split_file(good);

  SECTION("missing file") { CHECK_THAT(refused(dir + "/nope.safetensors"), Catch::Contains("nope.safetensors: cannot open")); }
  SECTION("shorter than the length field") {
    spit(dir + "/t.safetensors", bytes.substr(0, 5));
    CHECK_THAT(refused(dir + "/t.safetensors"), Catch::Contains("t.safetensors: truncated: 5 bytes"));
  }
  SECTION("truncated data") {
    spit(dir + "/t.safetensors", bytes.substr(0, bytes.size() - 7));
    CHECK_THAT(refused(dir + "/t.safetensors"), Catch::Contains("t.safetensors: tensor '4.bias': data_offsets end"));
  }
  SECTION("trailing bytes") {
    spit(dir + "/t.safetensors", bytes + "xxxx");
    CHECK_THAT(refused(dir + "/t.safetensors"), Catch::Contains("trailing bytes"));
  }
  SECTION("header length beyond the file") {
    craft(dir + "/h.safetensors", header.dump(), data, 1u << 30);
    CHECK_THAT(refused(dir + "/h.safetensors"),
               Catch::Contains("h.safetensors: header length 1073741824 runs past the end of the file"));
    craft(dir + "/h.safetensors", header.dump(), data, ~uint64_t{0});  // no allocation of 2^64 bytes
    CHECK_THAT(refused(dir + "/h.safetensors"), Catch::Contains("runs past the end of the file"));
  }
  SECTION("header not JSON") {
    std::string text = header.dump();
    text[text.size() / 2] = '{';
    craft(dir + "/j.safetensors", text, data);
    CHECK_THAT(refused(dir + "/j.safetensors"), Catch::Contains("j.safetensors: the header is not valid JSON"));
  }
  SECTION("wrong dtype") {
    header["0.bias"]["dtype"] = "I32";  // same size: only the dtype is wrong
    craft(dir + "/d.safetensors", header.dump(), data);
    CHECK_THAT(refused(dir + "/d.safetensors"), Catch::Contains("d.safetensors: tensor '0.bias' is I32, murmur reads F32 only"));
    header["0.bias"]["dtype"] = "F7";
    craft(dir + "/d.safetensors", header.dump(), data);
    CHECK_THAT(refused(dir + "/d.safetensors"), Catch::Contains("tensor '0.bias': unknown dtype 'F7'"));
  }
  SECTION("shape not matching the spec") {
    header["4.weight"]["shape"] = {64, 10};  // same size, transposed
    craft(dir + "/s.safetensors", header.dump(), data);
    CHECK_THAT(refused(dir + "/s.safetensors"),
               Catch::Contains("s.safetensors: tensor '4.weight' has shape [64,10], the model"));
    CHECK_THAT(refused(dir + "/s.safetensors"), Catch::Contains("needs [10,64]"));
  }
  SECTION("shape not matching its bytes") {
    header["4.weight"]["shape"] = {10, 65};
    craft(dir + "/s.safetensors", header.dump(), data);
    CHECK_THAT(refused(dir + "/s.safetensors"), Catch::Contains("tensor '4.weight': shape [10,65] of F32 needs 650 x 4 bytes"));
    header["4.weight"]["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
    craft(dir + "/s.safetensors", header.dump(), data);
    CHECK_THAT(refused(dir + "/s.safetensors"), Catch::Contains("tensor '4.weight': shape too large"));
  }
  SECTION("overlapping and gapped data") {
    auto h = header;
    h["0.bias"]["data_offsets"] = h["0.weight"]["data_offsets"];
    h["0.bias"]["shape"] = {36};
    craft(dir + "/o.safetensors", h.dump(), data);
    CHECK_THAT(refused(dir + "/o.safetensors"), Catch::Contains("overlaps tensor"));
    h = header;
    h.erase("0.bias");
    craft(dir + "/g.safetensors", h.dump(), data);
    CHECK_THAT(refused(dir + "/g.safetensors"), Catch::Contains("16 unused bytes before tensor"));
  }
  SECTION("a tensor missing or extra") {
    auto h = header;
    const auto end = h["4.bias"]["data_offsets"][1].get<uint64_t>();
    h.erase("4.bias");
    craft(dir + "/m.safetensors", h.dump(), data.substr(0, end - 40));
    CHECK_THAT(refused(dir + "/m.safetensors"), Catch::Contains("m.safetensors: no tensor '4.bias'"));
    h = header;
    h["9.weight"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {end, end + 4}}};
    craft(dir + "/x.safetensors", h.dump(), data + "abcd");
    CHECK_THAT(refused(dir + "/x.safetensors"), Catch::Contains("tensor '9.weight' is not a parameter"));
  }
  SECTION("metadata that is not murmur's, or describes no model") {
    auto h = header;
    h.erase("__metadata__");
    craft(dir + "/n.safetensors", h.dump(), data);
    CHECK_THAT(refused(dir + "/n.safetensors"), Catch::Contains("without murmur's metadata"));
    h = header;
    h["__metadata__"]["spec"] = "flatten,linear:10";
    craft(dir + "/n.safetensors", h.dump(), data);
    CHECK_THAT(refused(dir + "/n.safetensors"), Catch::Contains("the metadata describes no valid model"));
    h = header;
    h["__metadata__"]["num_classes"] = "ten";
    craft(dir + "/n.safetensors", h.dump(), data);
    CHECK_THAT(refused(dir + "/n.safetensors"), Catch::Contains("metadata 'num_classes' = 'ten' is not an integer"));
    // A hostile spec claiming a model of 10^12 parameters: refused by its
    // tensors' shapes, before anything of that size is allocated.
    h = header;
    h["__metadata__"]["spec"] = "conv2d:4:3:1:1,relu,maxpool2d:2,flatten,linear:1000000000000";
    h["__metadata__"]["layers"] = "conv2d:4:3:1:1,relu,maxpool2d:2,flatten,linear:1000000000000";
    h["__metadata__"]["num_classes"] = "1000000000000";
    craft(dir + "/n.safetensors", h.dump(), data);
    CHECK_THAT(refused(dir + "/n.safetensors"), Catch::Contains("tensor '4.weight' has shape [10,64]") &&
                                                    Catch::Contains("needs [1000000000000,64]"));
    h = header;
    h["__metadata__"]["input_shape"] = 7;
    craft(dir + "/n.safetensors", h.dump(), data);
    CHECK_THAT(refused(dir + "/n.safetensors"), Catch::Contains("__metadata__ value of 'input_shape' is not a string"));
  }
}

TEST_CASE("model source: a pipeline's stage files assemble into one model, or the missing ones are named",
          "[model_io]") {
  const std::string dir = temp_dir("stages");
  auto whole = build_model(kSpec, kInput, 10);
  whole->init(5);
  const std::vector<stage_range> ranges{{0, 3}, {3, 5}};
  for (uint32_t r = 0; r < 2; ++r)
    for (uint32_t s = 0; s < 2; ++s) {
      if (r == 0 && s == 1) continue;  // replica 0 lacks its last stage
      auto part = build_stage(kSpec, kInput, 10, 5, ranges[s]);
      auto d = describe_model(kSpec, kInput, 10, ranges[s]);
      d.notes = {{"replica", std::to_string(r)}, {"stage", std::to_string(s)}, {"stages", "2"}};
      write_model_file(dir + "/" + stage_model_file_name(r, s), d, *part);
    }
  // Replica 1 is complete: the model is its stages, in order.
  const model_weights w = load_whole_model({dir});
  REQUIRE(w.model.whole());
  REQUIRE(w.params.size() == static_cast<size_t>(whole->param_count()));
  CHECK(std::memcmp(w.params.data(), whole->params(), w.params.size() * 4) == 0);
  CHECK(w.model.notes.at("source") == "stages of replica 1 assembled");

  fs::remove(dir + "/" + stage_model_file_name(1, 0));
  try {
    load_whole_model({dir});
    FAIL("an incomplete pipeline was accepted");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Catch::Contains("replica 0 lacks layers [3, 5) (stage-0-1.safetensors"));
    CHECK_THAT(e.what(), Catch::Contains("replica 1 lacks layers [0, 3) (stage-1-0.safetensors"));
  }
  CHECK_THROWS_WITH(load_whole_model({dir + "/none"}), Catch::Contains("none: no such file or directory"));
  fs::create_directories(dir + "/empty");
  CHECK_THROWS_WITH(load_whole_model({dir + "/empty"}), Catch::Contains("holds neither model.safetensors"));
}

TEST_CASE("model evaluation: accuracy, loss and a confusion matrix that sums to the samples", "[model_io]") {
  Dataset d = make_synthetic(200, 10, 8, 1);
  auto m = build_model(kSpec, kInput, 10);
  m->init(1);
  const model_evaluation e = evaluate_model(*m, d, 64);
  CHECK(e.samples == 200);
  int64_t sum = 0, diag = 0;
  for (int32_t t = 0; t < 10; ++t)
    for (int32_t p = 0; p < 10; ++p) sum += e.count(t, p), diag += t == p ? e.count(t, p) : 0;
  CHECK(sum == 200);
  CHECK(diag == e.correct);
  CHECK(e.accuracy == Approx(static_cast<double>(diag) / 200));
  CHECK(e.mean_loss > 0);
  auto other = build_model("flatten,linear:10", {1, 12, 12}, 10);
  CHECK_THROWS_WITH(evaluate_model(*other, d), Catch::Contains("the model takes [1,12,12]"));
}

TEST_CASE("ONNX export: a whole model is written, a stage is refused", "[model_io]") {
  const std::string dir = temp_dir("onnx");
  const model_weights w = read_model_file(write_test_model(dir));
  write_onnx(dir + "/m.onnx", w);
  CHECK(fs::file_size(dir + "/m.onnx") > w.params.size() * 4);
  model_weights part = w;
  part.model.layers = {0, 3};
  CHECK_THROWS_WITH(write_onnx(dir + "/p.onnx", part), Catch::Contains("needs a whole model"));
}

TEST_CASE("model file: random damage is refused as DataError or read as a valid model, never anything else",
          "[model_io]") {
  const std::string dir = temp_dir("mutate");
  const std::string bytes = slurp(write_test_model(dir));
  const std::string path = dir + "/x.safetensors";
  Rng rng(11);
  int refused_count = 0, read_count = 0;
  for (int trial = 0; trial < 600; ++trial) {
    std::string b = bytes;
    // Damage the length field, the header (most of the rules live there) or the size.
    const uint64_t header_end = 8 + *reinterpret_cast<const uint64_t*>(bytes.data());
    const int flips = 1 + static_cast<int>(rng.next_u64() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t at = static_cast<size_t>(rng.next_u64() % (trial % 3 == 0 ? 8 : header_end));
      b[at] = static_cast<char>(rng.next_u64());
    }
    if (trial % 5 == 0) b.resize(static_cast<size_t>(rng.next_u64() % b.size()));
    spit(path, b);
    try {
      const model_weights w = read_model_file(path);
      CHECK(w.params.size() == 36 + 4 + 640 + 10);
      ++read_count;
    } catch (const DataError& e) {
      CHECK_THAT(e.what(), Catch::StartsWith(path + ": "));
      ++refused_count;
    }
  }
  CHECK(refused_count > 500);
  INFO(read_count << " damaged files still read as valid models");
}

TEST_CASE("model file: GroupNorm and residual blocks are named as PyTorch names their modules", "[model_io]") {
  const std::string dir = temp_dir("resnet");
  const Shape in{1, 28, 28};
  auto m = build_model("resnet9:8", in, 10);
  m->init(1);
  write_model_file(dir + "/r.safetensors", describe_model("resnet9:8", in, 10), *m);
  auto [header, data] = split_file(dir + "/r.safetensors");
  CHECK(header["0.weight"]["shape"] == nlohmann::json::array({8, 1, 3, 3}));
  CHECK(header["1.weight"]["shape"] == nlohmann::json::array({8}));  // groupnorm:8 over 8 channels
  CHECK(header["1.bias"]["shape"] == nlohmann::json::array({8}));
  CHECK(header["7.body.0.weight"]["shape"] == nlohmann::json::array({16, 16, 3, 3}));  // res[...]: module 7's body
  CHECK(header["7.body.1.weight"]["shape"] == nlohmann::json::array({16}));
  CHECK(header["7.body.3.bias"]["shape"] == nlohmann::json::array({16}));
  CHECK_THAT(header["__metadata__"]["layers"].get<std::string>(), Catch::Contains(",res[conv2d:16:3:1:1,groupnorm:8,relu,"));
  const model_weights w = read_model_file(dir + "/r.safetensors");
  REQUIRE(w.params.size() == static_cast<size_t>(m->param_count()));
  CHECK(std::memcmp(w.params.data(), m->params(), w.params.size() * 4) == 0);
  write_onnx(dir + "/r.onnx", w);  // every kind has its ONNX form
  CHECK(fs::file_size(dir + "/r.onnx") > w.params.size() * 4);
}

TEST_CASE("prediction: each row's class is its largest logit, its probabilities a softmax that sums to 1",
          "[model_io]") {
  auto m = build_model(kSpec, kInput, 10);
  m->init(2);
  Dataset d = make_synthetic(7, 10, 8, 3);
  const prediction_rows p = predict_rows(*m, d.images, 3);
  REQUIRE(p.label.size() == 7);
  const Tensor logits = m->forward(d.images).clone();
  for (size_t i = 0; i < 7; ++i) {
    const float* z = logits.data() + i * 10;
    CHECK(p.label[i] == std::max_element(z, z + 10) - z);
    double sum = 0;
    for (size_t k = 0; k < 10; ++k) sum += p.probabilities[i * 10 + k];
    CHECK(sum == Approx(1.0).margin(1e-6));
    CHECK(p.probabilities[i * 10 + 1] / p.probabilities[i * 10] == Approx(std::exp(z[1] - z[0])).epsilon(1e-4));
  }
  Tensor wrong({2, 1, 9, 8});
  CHECK_THROWS_WITH(predict_rows(*m, wrong), Catch::Contains("the samples are [1,9,8], the model takes [1,8,8]"));
}
