#include "run/host_fingerprint.hpp"

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "run/config_schema.hpp"
#include "tensor/digest.hpp"
#include "tensor/gemm.hpp"
#include "tensor/onednn_matmul.hpp"

#ifndef MURMUR_VERSION
#define MURMUR_VERSION "unknown"
#endif
#ifndef MURMUR_GIT_COMMIT
#define MURMUR_GIT_COMMIT "unknown"
#endif
#ifndef MURMUR_CXX_FLAGS
#define MURMUR_CXX_FLAGS "unknown"
#endif

#if defined(__clang__)
#define compiler_name "clang"
#elif defined(__GNUC__)
#define compiler_name "gcc"
#else
#define compiler_name "c++"
#endif

namespace murmur {

namespace {

uint64_t prefix64(const digest& d) {
  uint64_t v = 0;
  std::memcpy(&v, d.data(), sizeof v);
  return v;
}

uint64_t hash64(const std::string& text) { return prefix64(sha256(text.data(), text.size())); }

// The executable's bytes: the same build, bit for bit.
std::string executable_digest() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  if (!in) throw std::runtime_error("replay fingerprint: cannot read /proc/self/exe to hash this program");
  digest_builder h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.add(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return to_hex(h.finish());
}

// Predefined macros of this translation unit that change float code.
std::string float_macros() {
  std::string m;
#ifdef __FAST_MATH__
  m += " fast-math";
#endif
#ifdef __FMA__
  m += " fma";
#endif
#ifdef __AVX__
  m += " avx";
#endif
#ifdef __AVX2__
  m += " avx2";
#endif
#ifdef __AVX512F__
  m += " avx512f";
#endif
#ifdef __OPTIMIZE__
  m += " optimize";
#endif
  return m.empty() ? " none" : m;
}

bool replay_relevant(const std::string& key) {
  static const char* const skipped[] = {"data.dir",         "data.train_features", "data.train_labels",
                                        "data.test_features", "data.test_labels",  "model.init_from",
                                        "train.eval_every", "train.eval_subset", "train.device"};
  for (const char* s : skipped)
    if (key == s) return false;
  if (key == "run.seed" || key == "peer.count" || key == "verify.scheme" || key == "verify.segment") return true;
  for (const char* section : {"data.", "model.", "train.", "gossip.", "detect.", "attack."})
    if (key.rfind(section, 0) == 0) return true;
  return false;
}

}  // namespace

host_fingerprint host_fingerprint_of(const RunConfig& c) {
  host_fingerprint f;
  f.build = "murmur " MURMUR_VERSION " (git " MURMUR_GIT_COMMIT "); compiler " compiler_name " " __VERSION__
            "; flags " MURMUR_CXX_FLAGS
            ";" + float_macros() + "; executable sha256 " + executable_digest();
  // oneDNN's version and the ISA its JIT kernels chose on this CPU (as
  // OpenBLAS its core type): convolutions run on it on any CPU.
  f.kernel = blas_kernel_description() + "; " + onednn_description();
  for (const auto& key : config_keys())
    if (replay_relevant(key)) f.config += key + " = " + get_key(c, key) + "\n";
  f.value = {hash64(f.build), hash64(f.kernel), hash64(f.config)};
  return f;
}

}  // namespace murmur
