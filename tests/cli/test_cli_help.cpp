// The command line people know: per-verb --help with an example,
// --version, one-line usage errors with exit code 2, merge refusing a
// directory given twice, sweep progress and a table without nan.
#include <catch2/catch.hpp>
#include <array>
#include <cstdio>
#include <regex>
#include <sys/wait.h>

#include "murmur_process.hpp"

using namespace murmur::test;

namespace {

size_t lines_of(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n + (!s.empty() && s.back() != '\n');
}

// Two peer run directories as `murmur peer` writes them.
void write_peer_runs(const std::filesystem::path& dir) {
  for (int i = 0; i < 2; ++i) {
    auto r = dir / ("run" + std::to_string(i));
    std::filesystem::create_directories(r);
    std::ofstream(r / "summary.json") << "{\n  \"peer\": " << i << ",\n  \"final_test_accuracy\": 0.9,\n"
                                      << "  \"bytes_sent_total\": 1000,\n  \"dense_allreduce_bytes\": 50000,\n"
                                      << "  \"frames_rejected\": 1,\n  \"steps\": 10,\n  \"wall_time_s\": 3\n}\n";
    std::ofstream(r / "metrics.jsonl") << "{\"wall_s\":1,\"peer\":" << i
                                       << ",\"step\":5,\"test_acc\":0.5,\"bytes_sent\":500}\n";
  }
}

}  // namespace

TEST_CASE("every verb has its own --help: its options, a description and an example", "[cli][help]") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> verbs{
      {"sim", {"--set", "--out", "--resume", "--quiet"}},
      {"sweep", {"--param", "--set", "--out", "--jobs", "--part", "--merge"}},
      {"plot", {"DIR"}},
      {"split", {"--set"}},
      {"config-doc", {}},
      {"peer", {"--config", "--listen", "--join", "--set", "--out", "--quiet"}},
      {"merge", {"--out", "RUN_DIR"}},
      {"keygen", {"--out", "--force"}},
      {"serve", {"--stage", "--stages", "--split", "--arch", "--seed", "--keys", "--allowlist", "--listen"}},
      {"infer", {"FILE", "--keys", "--allowlist", "--connect", "--listen", "--batch", "--timeout-ms"}},
      {"export", {"--format", "--out", "RUN_DIR"}},
      {"eval", {"--data", "--labels", "--set", "--out", "RUN_DIR"}},
      {"predict", {"--table", "FILE.npy"}},
  };
  const auto top = murmur_run("--help");
  CHECK(top.code == 0);
  for (const auto& [verb, options] : verbs) {
    INFO("murmur " << verb << " --help");
    const auto r = murmur_run(verb + " --help");
    INFO(r.output);
    CHECK(r.code == 0);
    CHECK_THAT(r.output, Catch::Contains("Usage: murmur " + verb) && Catch::Contains("Example:\n  murmur " + verb));
    for (const auto& o : options) CHECK_THAT(r.output, Catch::Contains(o));
    // Another verb's options are not in this verb's help.
    if (verb != "peer" && verb != "serve" && verb != "infer") CHECK_THAT(r.output, !Catch::Contains("--listen"));
    if (verb != "sweep") CHECK_THAT(r.output, !Catch::Contains("--param"));
    CHECK_THAT(top.output, Catch::Contains("\n  " + verb + " "));
  }
  // The peer's help no longer says a LAN pipeline has one replica.
  CHECK_THAT(murmur_run("peer --help").output, !Catch::Contains("one replica") && Catch::Contains("replica r"));
}

TEST_CASE("murmur --version prints the project version", "[cli][help]") {
  const auto r = murmur_run("--version");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(std::regex_search(r.output, std::regex("^murmur [0-9]+\\.[0-9]+")));
  CHECK(lines_of(r.output) == 1);
}

TEST_CASE("a usage error is one line on stderr naming it, and exit code 2", "[cli][help]") {
  const std::string smoke = source_path("configs/synthetic-smoke.toml");
  for (const std::string& args : std::vector<std::string>{"sim " + smoke + " --foo", "sweep " + smoke + " --param gossip.threshold=0,1 --foo", "peer --foo",
        "merge --foo", "keygen --foo", "plot --foo", "config-doc --foo", "split " + smoke + " --foo",
        "export --foo", "eval --foo", "predict --foo", "serve --foo", "infer --foo"}) {
    const auto r = murmur_stderr(args);
    INFO("murmur " << args << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK(lines_of(r.output) == 1);
    const std::string verb = args.substr(0, args.find(' '));
    CHECK_THAT(r.output, Catch::StartsWith("murmur " + verb + ": unknown option --foo; see murmur " + verb + " --help"));
  }
  for (const std::string& args : std::vector<std::string>{"sim", "sim " + smoke + " --out", "sim " + smoke + " extra", "frobnicate", "--foo",
                                  "sweep " + smoke + " --param gossip.threshold", "serve", "serve --keys k --allowlist a --stage 2 --stages 2",
                                  "serve --keys k --allowlist a --input 1,x", "infer", "infer --keys k --allowlist a x.npy --batch 0"}) {
    const auto r = murmur_stderr(args);
    INFO("murmur " << args << "\n" << r.output);
    CHECK(r.code == 2);
    CHECK(lines_of(r.output) == 1);
  }
}

TEST_CASE("murmur merge refuses a run directory given twice, naming it", "[cli][help]") {
  const auto dir = scratch_path("merge-twice");
  write_peer_runs(dir);
  const std::string run0 = (dir / "run0").string(), run1 = (dir / "run1").string(), out = (dir / "m").string();
  auto r = murmur_run("merge " + run0 + " " + run1 + " " + run0 + " --out " + out);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains(run0 + " is given twice"));
  CHECK(lines_of(r.output) == 1);
  CHECK_FALSE(std::filesystem::exists(dir / "m" / "summary.json"));
  // The same directory spelled another way.
  r = murmur_run("merge " + run0 + " " + run1 + "/ --out " + out + " " + (dir / "." / "run1").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Catch::Contains("given twice"));
  // Each once: merged.
  r = murmur_run("merge " + run0 + " " + run1 + " --out " + out);
  CHECK(r.code == 0);
}

TEST_CASE("murmur merge reads summary.json as JSON, not by string search", "[cli][help]") {
  const auto dir = scratch_path("merge-json");
  write_peer_runs(dir);
  // A field name inside a string value: a string search finds it there.
  std::ofstream(dir / "run1" / "summary.json")
      << "{\"note\": \"\\\"steps\\\": 99\", \"final_test_accuracy\": 0.9, \"bytes_sent_total\": 1000,"
         " \"dense_allreduce_bytes\": 50000, \"frames_rejected\": 1, \"steps\": 10, \"wall_time_s\": 3}\n";
  auto r = murmur_run("merge " + (dir / "run0").string() + " " + (dir / "run1").string() + " --out " +
                      (dir / "m").string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(file_text(dir / "m" / "summary.json"), Catch::Contains("\"steps_mean\": 10"));
  // Not JSON: named, with the file.
  std::ofstream(dir / "run1" / "summary.json") << "{\"steps\": 10,";
  r = murmur_run("merge " + (dir / "run0").string() + " " + (dir / "run1").string() + " --out " + (dir / "m").string());
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Catch::Contains("run1/summary.json: not JSON"));
}

TEST_CASE("murmur sweep prints progress as runs finish and no nan in its table", "[cli][help]") {
  const auto out = scratch_path("cli-sweep-progress");
  // No attackers: precision, recall and F1 are undefined.
  const auto r = murmur_run("sweep " + source_path("configs/synthetic-smoke.toml") +
                            " --param gossip.threshold=0,0.01,0.1 --set sim.peers=4 --out " + out.string());
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.output, Catch::Contains("[1/3 runs done, ") && Catch::Contains("[2/3 runs done, ") &&
                           Catch::Contains("[3/3 runs done, ") && Catch::Contains("ETA"));
  CHECK_FALSE(std::regex_search(r.output, std::regex("\\bnan\\b", std::regex::icase)));
  // The F1 column of the first row shows '-'.
  CHECK(std::regex_search(r.output, std::regex("\n0 +[^\n]* -\n")));
}
