// murmur export and murmur eval on a real run directory: the files they
// write, what they print, and bad input refused in one line naming it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

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
