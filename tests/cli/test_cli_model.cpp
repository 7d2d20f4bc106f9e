// murmur export and murmur eval on a real run directory: the files they
// write, what they print, and bad input refused in one line naming it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model_io/model_file.hpp"
#include "murmur_process.hpp"

using namespace murmur::test;
namespace fs = std::filesystem;

namespace {

// A short synthetic run (seconds), once per test binary.
const fs::path& trained_run() {
  static const fs::path dir = [] {
    auto d = scratch_path("cli-model-run");
    const auto r = murmur_run("sim " + source_path("configs/synthetic-smoke.toml") + " --quiet --set train.epochs=1 --out " +
                              d.string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    return d;
  }();
  return dir;
}

// A .npy file of `descr` ('<f4' or '<i8') with the given shape and values.
template <class T>
void write_npy(const fs::path& p, const std::string& descr, const std::string& shape, const std::vector<T>& v) {
  std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  h.append(63 - (10 + h.size()) % 64, ' ');
  h += '\n';
  std::ofstream out(p, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t n = static_cast<uint16_t>(h.size());
  out.write(reinterpret_cast<const char*>(&n), 2);
  out << h;
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}

}  // namespace

TEST_CASE("murmur sim says where its model is; murmur export writes it as safetensors and ONNX", "[cli][model_io]") {
  const auto run = trained_run();
  REQUIRE(fs::exists(run / "model.safetensors"));
  const auto out = scratch_path("cli-model-export");
  fs::create_directories(out);
  auto r = murmur_run("export " + run.string() + " --format onnx --out " + (out / "m.onnx").string());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("(onnx): model 'flatten,linear:64,relu,linear:10', input [1,12,12], 10 classes"));
  CHECK(fs::file_size(out / "m.onnx") > 4 * 9000);
  // The format from the extension; the copy holds the same model, byte for byte.
  r = murmur_run("export " + (run / "model.safetensors").string() + " --out " + (out / "m.safetensors").string());
  CHECK(r.code == 0);
  CHECK(file_text(out / "m.safetensors") == file_text(run / "model.safetensors"));
}

TEST_CASE("murmur export refuses bad requests in one line", "[cli][model_io]") {
  const auto run = trained_run();
  const auto out = scratch_path("cli-model-export-bad");
  fs::create_directories(out);
  auto r = murmur_stderr("export " + run.string() + " --out " + (out / "m.bin").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("says none (.safetensors or .onnx)"));
  r = murmur_stderr("export " + run.string() + " --format tflite --out " + (out / "m.bin").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("--format tflite: expected safetensors or onnx"));
  r = murmur_stderr("export " + run.string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("expected --out FILE"));
  // A damaged model file: a data error naming it, exit 1.
  const std::string bytes = file_text(run / "model.safetensors");
  std::ofstream(out / "cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  r = murmur_stderr("export " + (out / "cut.safetensors").string() + " --out " + (out / "m.onnx").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::StartsWith("murmur export: data error: " + (out / "cut.safetensors").string() + ": "));
  CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

TEST_CASE("murmur eval prints accuracy, loss and the confusion matrix, and writes it as TSV (and PNG)",
          "[cli][model_io]") {
  const auto run = trained_run();
  const auto out = scratch_path("cli-model-eval");
  // The run's own test set: synthetic, as its config says.
  const auto r = murmur_run("eval " + run.string() + " --quiet --out " + out.string() +
                            " --set data.dataset=synthetic --set data.train_samples=4000 --set data.test_samples=1000");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const auto m = murmur::read_model_file((run / "model.safetensors").string());
  char acc[32];
  std::snprintf(acc, sizeof acc, "accuracy %.2f%%", 100 * std::stod(m.model.notes.at("test_accuracy")));
  CHECK_THAT(r.output, Catch::Contains("on 1000 test samples: " + std::string(acc)));
  CHECK_THAT(r.output, Catch::Contains("true\\pred") && Catch::Contains("recall"));
  const std::string tsv = file_text(out / "confusion.tsv");
  CHECK(std::count(tsv.begin(), tsv.end(), '\n') == 10);
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0)
    CHECK(fs::file_size(out / "confusion.png") > 1000);
  else
    WARN("gnuplot missing: confusion.png not checked");
  // Only data keys.
  const auto bad = murmur_stderr("eval " + run.string() + " --set train.lr=1");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.output, Catch::Contains("takes data.* keys only"));
}

TEST_CASE("murmur predict gives each row's class and probabilities; eval takes .npy features and labels",
          "[cli][model_io]") {
  const auto run = trained_run();
  const auto dir = scratch_path("cli-model-predict");
  fs::create_directories(dir);
  std::vector<float> x(3 * 12 * 12);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 100) / 100.f;
  write_npy(dir / "x.npy", "<f4", "3, 12, 12", x);
  write_npy(dir / "y.npy", "<i8", "3,", std::vector<int64_t>{0, 4, 9});
  auto r = murmur_piped("predict " + run.string() + " " + (dir / "x.npy").string(), "2>/dev/null");
  INFO(r.output);
  REQUIRE(r.code == 0);
  std::istringstream lines(r.output);
  std::string line;
  int rows = 0;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    CHECK(j["row"] == rows);
    const auto p = j["probabilities"].get<std::vector<double>>();
    REQUIRE(p.size() == 10);
    double sum = 0;
    for (double q : p) sum += q;
    CHECK(sum == Approx(1.0).margin(1e-5));
    CHECK(j["class"].get<size_t>() == static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin()));
    ++rows;
  }
  CHECK(rows == 3);
  CHECK_THAT(murmur_run("predict " + run.string() + " " + (dir / "x.npy").string() + " --table").output,
             Catch::Contains("row class        p"));
  r = murmur_run("eval " + run.string() + " --quiet --data " + (dir / "x.npy").string() + " --labels " +
                 (dir / "y.npy").string() + " --out " + dir.string());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("on 3 test samples: accuracy"));
  // Samples of another shape, and labels as features: refused naming the file.
  write_npy(dir / "wide.npy", "<f4", "2, 13, 12", std::vector<float>(2 * 13 * 12, 0.5f));
  r = murmur_stderr("predict " + run.string() + " " + (dir / "wide.npy").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("data error: " + (dir / "wide.npy").string() +
                                       ": the samples are [1,13,12], the model takes [1,12,12]"));
  r = murmur_stderr("predict " + run.string() + " " + (dir / "y.npy").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains((dir / "y.npy").string() + ": features must be float32"));
  r = murmur_stderr("eval " + run.string() + " --data " + (dir / "x.npy").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("give its labels with --labels FILE"));
}
