// inference_client: the client side of `murmur serve` (inference_host.hpp).
// Sends a batch of samples to stage 0 and waits for the logits from the
// last stage, over zmq_transport (CurveZMQ): it listens on its own endpoint
// (named in each request, so the answering stage can connect back) and lets
// in only the allowlist's keys. One request at a time; not thread-safe.
// infer throws std::runtime_error when no answer comes in time (a stage
// down, or this key not in the stages' allowlist: they refuse it without a
// word) or when the stage answers bad_input (the sample's shape is wrong).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocols/curve_keys.hpp"
#include "tensor/tensor.hpp"

namespace murmur {

class zmq_transport;

struct inference_client_options {
  curve_keys keys;                      // the client's own
  std::vector<std::string> authorized;  // keys that may connect back (the stages')
  std::string connect;                  // stage 0: tcp://HOST:PORT
  std::string connect_key;              // stage 0's public key
  std::string listen = "tcp://127.0.0.1:*";  // an address the stages can reach; '*' = any free port
  int timeout_ms = 10000;
};

// Options from files: keys from keys_dir (murmur keygen); authorized: the
// keys of the allowlist lines that give an endpoint (the stages; a client's
// line gives none, so no other client can answer in a stage's name); connect defaults to the endpoint of line 0 (stage 0), and its key is
// that of the allowlist line with that endpoint. Throws std::runtime_error
// naming the file or the endpoint.
inference_client_options inference_client_options_from_files(const std::string& keys_dir,
                                                              const std::string& allowlist,
                                                              const std::string& connect);

class inference_client {
 public:
  explicit inference_client(inference_client_options o);
  ~inference_client();
  inference_client(const inference_client&) = delete;
  inference_client& operator=(const inference_client&) = delete;

  // x: [batch, per-sample shape...]; returns the logits [batch, classes].
  // Samples with the model's element count in another layout ([N, 784] for
  // a model of 1x28x28) are sent again in the model's (the stage's
  // bad_input answer names it).
  Tensor infer(const Tensor& x);
  // Where this client listens (what its requests name).
  const std::string& endpoint() const;
  // Replies that came for no pending request (late, after a time-out), frames
  // that did not decode, and frames from keys other than the stages'.
  uint64_t stray_frames() const { return stray_; }

 private:
  Tensor infer(const Tensor& x, bool reshaped);
  inference_client_options o_;
  std::unique_ptr<zmq_transport> transport_;
  uint64_t next_id_ = 1;
  uint64_t stray_ = 0;
  std::vector<std::byte> buf_;
};

}  // namespace murmur
