// Helpers for tests that run the murmur binary: run it, read what it wrote.
#pragma once
#include <catch2/catch.hpp>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

namespace murmur::test {

struct process_result {
  int code;            // exit status; -1 if it did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `murmur ARGS` through the shell with `redirect` appended and
// collects what reaches the pipe.
inline process_result murmur_piped(const std::string& args, const std::string& redirect) {
  const std::string cmd = std::string(MURMUR_BINARY_DIR) + "/murmur " + args + " " + redirect;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline process_result murmur_run(const std::string& args) { return murmur_piped(args, "2>&1"); }

// stdout discarded: the exit code and stderr alone.
inline process_result murmur_stderr(const std::string& args) { return murmur_piped(args, "2>&1 >/dev/null"); }

inline std::string source_path(const std::string& rel) { return std::string(MURMUR_SOURCE_DIR) + "/" + rel; }

// A fresh path under the build tree (removed if it exists).
inline std::filesystem::path scratch_path(const std::string& name) {
  std::filesystem::path p = std::filesystem::path(MURMUR_BINARY_DIR) / "test-runs" / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p.parent_path());
  return p;
}

inline std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace murmur::test
