// libFuzzer harness for the network decoders (decode_frame, decode_gossip, and
// whatever else is listed in decoder_checks.hpp). Every input goes to every
// decoder, as it is and with its length/CRC header fields recomputed; the
// invariants are those of tests/fuzz/decoder_checks.hpp, which the normal test
// suite also replays on the committed corpus (tests/fuzz/corpus/decoders).
//
// Built by tests/fuzz/CMakeLists.txt with clang++ -fsanitize=fuzzer,address,undefined
// into build/fuzz_decoders; CTest runs it briefly (test fuzz_decoders). Longer:
//   mkdir -p /tmp/fz && build/fuzz_decoders -max_len=4096 -max_total_time=300 \
//       /tmp/fz tests/fuzz/corpus/decoders
// (new inputs go into the FIRST directory; keep the committed one second).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>

#include "tests/fuzz/decoder_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (auto f = murmur::fuzz::check_input(in)) {
    std::fprintf(stderr, "fuzz_decoders: invariant violated [%s%s]: %s\n", f->decoder,
                 f->resealed ? ", input resealed" : "", f->what);
    __builtin_trap();
  }
  return 0;
}
