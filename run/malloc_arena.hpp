// malloc_arena: a process allocates from one glibc malloc arena (a LAN
// peer; a simulation that runs its segment checks on a thread of its own).
//
// Why: a segment check moves multi-megabyte blocks (the reply frame and its
// ZeroMQ copies, the decoded boundary state, the replay's model) through
// several threads. glibc gives each thread an arena of its own and keeps
// what an arena frees below its dynamic trim threshold (megabytes once a
// reply has passed), so every thread that touched a check held its own
// spare copy: 3 peers on loopback peaked at 1.15x the memory of the same
// run without verification. One arena keeps one spare. The simulator's
// check thread (sim/check_worker.hpp) would likewise keep its replays'
// blocks in an arena of its own.
// Call it before the threads that allocate start (the actor system, the
// transport, the check thread).
// Elsewhere than glibc it does nothing. It changes no computed value.
#pragma once

namespace murmur {

void use_one_malloc_arena();

}  // namespace murmur
