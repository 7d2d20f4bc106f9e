// Helpers shared by the simulation tests: a fresh run directory under the
// build tree, and a whole file as a string.
#pragma once
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace murmur::test {

inline std::filesystem::path scratch(const std::string& name) {
  std::filesystem::path p = std::filesystem::path(MURMUR_BINARY_DIR) / "test-runs" / name;
  std::filesystem::remove_all(p);
  return p;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace murmur::test
