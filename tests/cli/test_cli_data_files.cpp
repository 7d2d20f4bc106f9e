// murmur sim on the user's own files, as README's "Train on your own data"
// shows: the recipe itself, and bad files refused in one line naming them.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../npy_bytes.hpp"
#include "murmur_process.hpp"

using namespace murmur::test;
namespace fs = std::filesystem;

namespace {

// The text of README's first ```LANG block after `heading`.
std::string readme_block(const std::string& heading, const std::string& lang) {
  const std::string readme = file_text(source_path("README.md"));
  const size_t at = readme.find(heading);
  REQUIRE(at != std::string::npos);
  const std::string open = "```" + lang + "\n";
  const size_t begin = readme.find(open, at);
  REQUIRE(begin != std::string::npos);
  const size_t end = readme.find("```", begin + open.size());
  REQUIRE(end != std::string::npos);
  return readme.substr(begin + open.size(), end - begin - open.size());
}

}  // namespace

TEST_CASE("README's train-on-your-own-data recipe runs and learns", "[cli][npy]") {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    WARN("skipped: no numpy (/usr/bin/python3 -c 'import numpy' failed; apt install python3-numpy to run it)");
    return;
  }
  const fs::path dir = scratch_path("readme-own-data");
  fs::create_directories(dir);
  const std::string heading = "## Train on your own data";
  std::ofstream(dir / "make.py") << readme_block(heading, "python");
  std::ofstream(dir / "mydata.toml") << readme_block(heading, "toml");
  REQUIRE(std::system(("cd " + dir.string() + " && /usr/bin/python3 make.py").c_str()) == 0);
  // Relative paths: the run starts in the directory holding the files.
  const std::string cmd = "cd " + dir.string() + " && " + MURMUR_BINARY_DIR + "/murmur sim mydata.toml --out run 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  REQUIRE(pclose(p) == 0);
  INFO(out);
  CHECK(out.find("warning") == std::string::npos);
  const size_t at = out.find("final test accuracy: mean ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(out.substr(at + 26)) > 90.0);  // two classes: chance is 50%
}

TEST_CASE("a hostile or wrong npy file stops murmur sim with one line naming it", "[cli][npy]") {
  const fs::path dir = scratch_path("bad-npy");
  fs::create_directories(dir);
  const std::string x = (dir / "x.npy").string(), y = (dir / "y.npy").string(), huge = (dir / "huge.npy").string(),
                    f64 = (dir / "f64.npy").string();
  write_bytes(x, npy_array_bytes("<f4", {8, 4}, std::vector<float>(32, 0.5f)));
  write_bytes(y, npy_array_bytes("<i8", {8}, std::vector<int64_t>{0, 1, 0, 1, 0, 1, 0, 1}));
  write_bytes(huge, npy_file_bytes(npy_dict("<f4", {int64_t{1} << 20, int64_t{1} << 20}), npy_raw(64)));
  write_bytes(f64, npy_file_bytes(npy_dict("<f8", {8, 4}), npy_raw(256)));
  const std::string base = "sim " + source_path("configs/synthetic-smoke.toml") +
                           " --set data.dataset=files --set data.train_labels=" + y + " --set data.test_features=" +
                           x + " --set data.test_labels=" + y + " --set sim.peers=2 --out " +
                           (dir / "run").string() + " --set data.train_features=";
  struct { std::string file, problem; } cases[] = {
      {huge, "shape (1048576, 1048576) has more than the limit of 268435456 elements"},
      {f64, "unsupported dtype '<f8'"},
      {(dir / "missing.npy").string(), "cannot open file"},
  };
  for (const auto& c : cases) {
    const auto r = murmur_stderr(base + c.file);
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK_THAT(r.output, Catch::Contains(c.file + ": " + c.problem));
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
  }
}
