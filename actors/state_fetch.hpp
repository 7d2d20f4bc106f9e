// state_fetch: a (re)joining peer's pull of the current parameters from
// live members, as a plain state machine that the membership actor drives.
// A donor is any authorized member, so a hostile one must not be able to
// stall the join or decide what we install:
//  - the ranges (split_state_requests) go round-robin to the donors;
//  - a chunk is taken only from the donor it was asked of, for exactly the
//    range asked, every value within max_value (finite is the decoder's
//    check); anything else is refused, and that donor is asked nothing more;
//  - at a deadline, ranges still missing are asked again, with fresh request
//    ids, of donors that delivered or were never asked, never of one that
//    was refused or let a range time out (`retries` times); with no such
//    donor left the fetch fails (the peer trains on from its own);
//  - all or nothing: slices are handed out once every range is in, all
//    carrying the smallest step any donor reported, so that no donor can
//    move us past the others' progress (and end our run early).
// It does not tell a donor's honest-looking but wrong values from right
// ones: one donor per range (docs/trust.md says so).
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "protocols/state_transfer_messages.hpp"

namespace murmur {

class state_fetch {
 public:
  using asks = std::vector<std::pair<uint32_t /*donor*/, state_request>>;
  enum class verdict { taken, complete, unexpected, refused };

  // max_value <= 0: no bound. Throws std::invalid_argument without donors.
  state_fetch(uint32_t self, uint32_t dim, std::vector<uint32_t> donors, uint64_t first_id, float max_value,
              uint32_t retries = 1);

  asks start();
  // unexpected: not a range we wait for from that sender (late, foreign or
  // replayed); refused: the asked donor sent a wrong shape or value.
  verdict on_chunk(uint32_t sender, state_chunk&& c);
  // Called at each deadline with the members that could serve now: what to
  // ask again (empty when done or failed).
  asks on_deadline(const std::vector<uint32_t>& available);

  bool complete() const { return waiting_.empty(); }
  bool failed() const { return failed_; }
  // Once complete: the slices, each with the smallest reported step.
  std::vector<state_slice> take_slices();
  const std::set<uint32_t>& refused_donors() const { return refused_; }
  std::set<uint32_t> missing_from() const;  // donors of the ranges still missing

 private:
  uint32_t self_, dim_;
  std::vector<uint32_t> donors_;
  uint64_t next_id_;
  float max_value_;
  uint32_t retries_;
  bool failed_ = false;
  std::map<uint64_t, std::pair<uint32_t, state_request>> waiting_;  // by request id
  std::vector<state_slice> received_;
  std::set<uint32_t> asked_, delivered_, refused_, silent_;
};

}  // namespace murmur
