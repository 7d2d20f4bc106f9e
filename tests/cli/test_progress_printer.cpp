// The run progress line: which clock it names, and an ETA that counts from
// the first report (the first step), not from data loading.
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "run/progress_printer.hpp"

using murmur::progress_printer;
using murmur::run_progress;

namespace {

std::string printed(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  for (int c; (c = std::fgetc(f)) != EOF;) s.push_back(static_cast<char>(c));
  return s;
}

}  // namespace

TEST_CASE("progress line: ETA from the first report, elapsed not virtual on a real network", "[cli][progress]") {
  std::FILE* f = std::tmpfile();  // not a terminal: one line per evaluation
  REQUIRE(f != nullptr);
  progress_printer show(f);
  run_progress p;
  p.virtual_clock = false;
  p.wall_s = 30;  // 30 s of data loading before the first step
  show(p);
  p.fraction = 0.5;
  p.steps = 100;
  p.wall_s = 40;  // half the steps in 10 s: 10 s to go
  p.evaluation = true;
  show(p);
  const std::string s = printed(f);
  INFO(s);
  CHECK_THAT(s, Catch::Contains("ETA 10s") && Catch::Contains("elapsed 40.0s") && !Catch::Contains("virtual"));
  std::fclose(f);
}

TEST_CASE("progress line: a resumed run's ETA counts only the steps it did itself", "[cli][progress]") {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  progress_printer show(f);
  run_progress p;
  p.fraction = 0.5;  // resumed halfway
  p.virtual_s = 5;
  p.wall_s = 1;
  show(p);
  p.fraction = 0.75;
  p.wall_s = 11;  // a quarter in 10 s: 10 s to go
  p.evaluation = true;
  show(p);
  const std::string s = printed(f);
  INFO(s);
  CHECK_THAT(s, Catch::Contains("ETA 10s") && Catch::Contains("virtual 5.0s"));
  std::fclose(f);
}
