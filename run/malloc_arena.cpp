#include "run/malloc_arena.hpp"

#include <cstdlib>  // before the test below: it defines __GLIBC__
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace murmur {

void use_one_malloc_arena() {
#if defined(__GLIBC__)
  // Not M_MMAP_THRESHOLD or M_TRIM_THRESHOLD: setting either turns off
  // glibc's dynamic thresholds, and the page faults that followed slowed
  // the step scheme's answers past their deadline. M_ARENA_MAX keeps them.
  // Nor malloc_trim after each check: with one arena, its walk holds the
  // only lock, and under load honest answers missed their deadline.
  mallopt(M_ARENA_MAX, 1);
#endif
}

}  // namespace murmur
