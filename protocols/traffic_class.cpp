#include "protocols/traffic_class.hpp"

namespace murmur {

traffic_class traffic_class_of(message_type t) {
  switch (t) {  // no default: a new frame type must be given a class (-Wswitch)
    case message_type::membership_join:
    case message_type::membership_update:
    case message_type::heartbeat:
    case message_type::heartbeat_ack:
    case message_type::leave:
    case message_type::stage_heartbeat:
    case message_type::stage_takeover:
      return traffic_class::control;
    case message_type::gossip_update:
    case message_type::matmul_task:
    case message_type::matmul_result:
    case message_type::stage_activation:
    case message_type::stage_gradient:
    case message_type::inference_request:
    case message_type::inference_activation:
    case message_type::inference_reply:
      return traffic_class::gossip;
    case message_type::transcript_commit:
    case message_type::tensor_request:
    case message_type::tensor_reply:
    case message_type::evidence:
    case message_type::miss_claim:
    case message_type::segment_commit:
    case message_type::segment_request:
    case message_type::segment_reply:
    case message_type::segment_evidence:
    case message_type::segment_unavailable:
      return traffic_class::verification;
    case message_type::state_request:
    case message_type::state_chunk:
    case message_type::stage_checkpoint:
      return traffic_class::bulk;
  }
  return traffic_class::bulk;  // not a known type: last (the receiver rejects it anyway)
}

std::string_view to_string(traffic_class c) {
  switch (c) {
    case traffic_class::control: return "control";
    case traffic_class::gossip: return "gossip";
    case traffic_class::verification: return "verification";
    case traffic_class::bulk: return "bulk";
  }
  return "?";
}

}  // namespace murmur
