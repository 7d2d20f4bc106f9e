// run_inference_stage: one stage process of `murmur serve`, distributed
// inference of a model split over S stage processes (the seeds' DIANNE).
// Stage s hosts a contiguous range of the model's layers (served_model.hpp)
// and runs them in evaluation mode on whatever reaches it:
//   client --inference_request--> stage 0 --inference_activation--> stage 1
//   ... stage S-1 --inference_reply (logits)--> client
// over the same transport as `murmur peer` (protocols/zmq_transport.hpp:
// CurveZMQ, a ZAP allowlist). Layout: stage i is the i-th key line of the
// allowlist (peer_identities.hpp), which gives its tcp://HOST:PORT; any
// other line is a client. A client's request carries the endpoint where the
// client listens; the stage that answers connects there with the client's
// key (learnt from its handshake at stage 0) as the CurveZMQ server key, so
// only that client can read the answer.
// Refused, counted and logged (never answered, never fatal):
//   - a key not in the allowlist: its handshake fails (handshakes_refused);
//   - a frame that does not decode (protocols/inference_messages.hpp): the
//     frame_error's name;
//   - a request anywhere but at stage 0, an activation not from the stage
//     before, a reply, or another message family: "wrong_sender" /
//     "unexpected_type";
//   - an activation whose per-sample shape is not this stage's input:
//     "bad_shape". A request whose shape is not the model's input is
//     answered with inference_status::bad_input.
// Log lines (stdout) start "serve stage S:": one when listening, one per
// refusal (the first ten of a reason, then every power of ten), and a
// summary at the end. Runs until `stop` turns non-zero; returns 128 + it.
// Throws std::runtime_error naming the allowlist or endpoint on a layout
// that cannot work (own key not on line s, no endpoint for a stage, ...).
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "protocols/curve_keys.hpp"
#include "protocols/peer_identities.hpp"
#include "tensor/sequential.hpp"

namespace murmur {

struct inference_stage_settings {
  uint16_t stage = 0, stages = 1;
  curve_keys keys;
  std::string keys_source = "the stage's keys";  // where keys came from, for errors
  peer_identities allowlist;   // stages first, then clients
  std::string listen;          // empty: the endpoint on the stage's allowlist line
  std::string name;            // in log lines; default "serve stage S"
  bool quiet = false;          // no per-refusal lines (the summary stays)
};

struct inference_stage_counters {
  uint64_t requests = 0;       // accepted at stage 0
  uint64_t activations = 0;    // accepted from the stage before
  uint64_t forwarded = 0;      // sent on to the next stage
  uint64_t answered = 0;       // replies sent to clients (bad_input included)
  uint64_t send_failed = 0;    // the transport would not queue it
  uint64_t handshakes_refused = 0;
  std::map<std::string, uint64_t> dropped;  // reason -> frames
};

// Runs the stage until stop != 0; `part` is the stage's layers (evaluation
// mode). counters, when given, holds the final figures on return.
int run_inference_stage(const inference_stage_settings& s, Sequential& part, const std::atomic<int>& stop,
                        inference_stage_counters* counters = nullptr);

}  // namespace murmur
