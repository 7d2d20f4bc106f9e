// The replay fingerprint of this process (run/host_fingerprint.hpp): equal
// for equal builds, kernel paths and training configs; a training key
// changes only its config part, a path or a peer's own key changes nothing,
// the BLAS thread count changes the kernel part.
#include <catch2/catch.hpp>

#include "run/config_schema.hpp"
#include "run/host_fingerprint.hpp"
#include "tensor/gemm.hpp"

using namespace murmur;

TEST_CASE("the replay fingerprint names build, kernel path and training config apart", "[segment]") {
  set_blas_threads(1);
  const RunConfig base = parse_config("", "test");
  const host_fingerprint a = host_fingerprint_of(base);
  CHECK(a.value == host_fingerprint_of(base).value);
  CHECK(a.value.build != 0);
  CHECK(a.build.find("executable sha256 ") != std::string::npos);
  CHECK(a.kernel.find("threads 1") != std::string::npos);
  CHECK(a.config.find("train.lr = ") != std::string::npos);
  CHECK(a.config.find("data.dir") == std::string::npos);

  // Peer-local keys and paths: the same fingerprint.
  for (const char* k : {"peer.index=1", "data.dir=/elsewhere", "train.eval_every=7", "peer.keys=/k", "verify.rate=0.5"}) {
    INFO(k);
    CHECK(host_fingerprint_of(parse_config("", "test", {k, "peer.count=4"})).value ==
          host_fingerprint_of(parse_config("", "test", {"peer.count=4"})).value);
  }
  // A key the steps depend on: only the config part.
  for (const char* k : {"train.lr=0.05", "verify.segment=8", "gossip.gamma=0.25", "run.seed=2", "peer.count=5"}) {
    INFO(k);
    const auto b = host_fingerprint_of(parse_config("", "test", {k}));
    CHECK(b.value.config != a.value.config);
    CHECK(b.value.build == a.value.build);
    CHECK(b.value.kernel == a.value.kernel);
  }
  // Another BLAS thread count: another kernel part.
  set_blas_threads(2);
  const auto two = host_fingerprint_of(base);
  set_blas_threads(1);
  CHECK(two.value.kernel != a.value.kernel);
  CHECK(two.value.config == a.value.config);
  CHECK(to_string(a.value).rfind("build ", 0) == 0);
}
