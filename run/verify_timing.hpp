// verify_timing: the challenge deadline and the transcript retention a run
// uses when verify.deadline_ms / verify.keep_steps are 0 (derived).
//
// Deadline: a challenge's round trip over the configured link (sim.latency_ms,
// sim.bandwidth_mbps; the simulated link in `murmur sim`, the assumed one on
// a LAN): two latencies, plus sending the request, the largest layer's reply
// (verify.scheme = segment: a segment reply to every neighbour) and, queued ahead of it on the prover's uplink, one gossip round of dense
// frames to every neighbour; stretched by 1 / (1 - load) for the queue that
// verification's own traffic (every step's commitments to each neighbour,
// plus the expected replies, verify.rate x degree per step) builds on the
// uplink at the modelled step rate (load capped at 0.9); times 2 for margin;
// at least min_deadline_s (0 in virtual time; a LAN peer's wall clock also
// waits on scheduling). A load over 1 cannot be carried at all: the backlog
// grows through the run, and the deadline then also covers the backlog at
// the run's end (a warning says so): honest peers are excused rather than
// charged, and silent provers are caught only once the load is lowered.
// Retention: a prover keeps its transcripts for 2.5 deadlines at the fastest
// modelled step rate (sim.step_ms, or the model's FLOPs at sim.gflops), so a
// re-check (one deadline, plus the claim's and the request's travel) still
// finds the step, and a silent prover cannot get its challenges excused
// (docs/trust.md) by stepping on while the verifier waits.
#pragma once
#include <cstddef>
#include <cstdint>

#include "run/run_config.hpp"
#include "tensor/dataset.hpp"

namespace murmur {

struct verify_timing {
  double deadline_s = 0;
  size_t keep_steps = 0;
  double step_s = 0;                  // modelled fastest step
  double largest_reply_bytes = 0;     // one layer's tensor_reply
  double transcript_bytes = 0;        // one step's transcript, held by the prover
  double uplink_load = 0;             // verification traffic / uplink bandwidth
  // verify.scheme = segment: steps per segment (0 with the step scheme) and
  // the estimated size of one boundary state a prover keeps and sends in a
  // reply (parameters, optimizer state, the gossip estimates of itself and
  // each neighbour; the records are not counted). Its uplink load counts a
  // commitment per segment and a reply per challenged segment.
  uint64_t segment_steps = 0;
  double boundary_bytes = 0;
  // The deadline's segment reply: the boundary state plus a bound on the
  // records (every neighbour's complete frame at every step); the deadline
  // covers the replies to all neighbours queued on the uplink.
  double segment_reply_bytes = 0;
  // The records' bound in it (segment_records_cap) and the deadline the
  // same formula gives for records of 0 bytes: a verifier sizes each segment
  // challenge's deadline between the two by the records' size the prover
  // announces (verifier_settings). Both 0 with the step scheme.
  double segment_records_cap = 0;
  double segment_deadline_min_s = 0;
};

// degree: the most neighbours a peer gossips with; shards: how many the
// training data is cut into (run length). min_deadline_s floors the
// deadline; retention is derived from the link's deadline floored at
// min_retention_s instead (a LAN peer waits 1 s for answers because a loaded
// machine schedules late, but a step model that is faster than the real
// machine already makes the retention outlast that in wall time, and
// retention costs a transcript per step). Throws ConfigError if the model
// does not build on the data's shape.
verify_timing verify_timing_of(const RunConfig& c, const Dataset& data, uint32_t degree, uint32_t shards,
                               double min_deadline_s, double min_retention_s);

}  // namespace murmur
