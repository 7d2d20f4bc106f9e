// Traffic classes: which frames may overtake which on a busy link.
// Every frame type belongs to exactly one class (traffic_class_of); both
// hosts schedule by it: the simulator's uplinks (run/link_model.hpp) and
// `murmur peer`'s ZeroMQ bridge (actors/zmq_bridge.hpp).
//   control       membership, heartbeats and their acks, leaves, pipeline
//                 stage heartbeats and takeovers: tiny, and a late one makes
//                 a failure detector suspect a live peer;
//   gossip        training traffic: model updates, pipeline activations and
//                 gradients, offloaded products, inference;
//   verification  commitments, challenges, replies, evidence, miss claims;
//   bulk          state transfer and stage checkpoints.
// Lower value = served first. A class never waits for a frame of a lower one
// longer than one chunk (traffic_chunk_bytes) of it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocols/frame_codec.hpp"

namespace murmur {

enum class traffic_class : uint8_t { control = 0, gossip = 1, verification = 2, bulk = 3 };
inline constexpr int traffic_class_count = 4;

traffic_class traffic_class_of(message_type t);
std::string_view to_string(traffic_class c);

// The unit a busy link is shared in: a frame of a higher class waits at most
// this much of a lower class's frame (64 KiB: 0.5 ms at 1 Gbit/s, 52 ms on
// a 10 Mbit/s home uplink).
inline constexpr size_t traffic_chunk_bytes = 64 * 1024;

}  // namespace murmur
