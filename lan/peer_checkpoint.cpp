#include "lan/peer_checkpoint.hpp"

#include <bit>
#include <cmath>
#include <filesystem>

namespace murmur {

namespace {
constexpr size_t host_extra = 5;  // bytes/msgs sent, bytes/msgs received, wall time
}

std::string peer_checkpoint_path(const std::string& run_dir, uint32_t peer) {
  return run_dir + "/checkpoints/peer-" + std::to_string(peer) + ".ckpt";
}

void write_peer_checkpoint(const std::string& run_dir, const trainer& t, uint32_t peer, uint64_t seed,
                           const peer_checkpoint_counters& n) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir + "/checkpoints", ec);
  if (ec) throw checkpoint_error(run_dir + "/checkpoints: " + ec.message());
  checkpoint ck = t.make_checkpoint(static_cast<uint16_t>(peer), seed);
  for (uint64_t v : {n.bytes_sent, n.msgs_sent, n.bytes_received, n.msgs_received, std::bit_cast<uint64_t>(n.wall_s)})
    ck.extra.push_back(v);
  write_checkpoint_file(peer_checkpoint_path(run_dir, peer), ck);
}

peer_resume_point read_peer_checkpoint(const std::string& run_dir, uint32_t peer, uint64_t seed) {
  const std::string path = peer_checkpoint_path(run_dir, peer);
  peer_resume_point r{read_checkpoint_file(path), {}};
  const checkpoint& ck = r.state;
  auto refuse = [&](const std::string& what) { throw checkpoint_error(path + ": " + what); };
  if (ck.kind != checkpoint_kind::peer) refuse("not a data-parallel peer's checkpoint (a pipeline stage's?)");
  if (ck.replica != peer)
    refuse("the checkpoint of peer " + std::to_string(ck.replica) + ", not of peer.index = " + std::to_string(peer));
  if (ck.seed != seed)
    refuse("written by a run with run.seed = " + std::to_string(ck.seed) + ", this run has " + std::to_string(seed) +
           " (other shards)");
  if (ck.extra.size() != trainer::checkpoint_extra + host_extra)
    refuse(std::to_string(ck.extra.size()) + " extra values, a LAN peer's checkpoint has " +
           std::to_string(trainer::checkpoint_extra + host_extra) + " (a simulated peer's?)");
  const uint64_t* x = ck.extra.data() + trainer::checkpoint_extra;
  r.counters = {x[0], x[1], x[2], x[3], std::bit_cast<double>(x[4])};
  if (!std::isfinite(r.counters.wall_s) || r.counters.wall_s < 0) refuse("bad wall time in the checkpoint");
  return r;
}

}  // namespace murmur
