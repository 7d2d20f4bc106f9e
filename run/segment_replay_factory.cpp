#include "run/segment_replay_factory.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "run/peer_settings_from_config.hpp"

namespace murmur {

segment_replay_maker segment_replay_factory(const RunConfig& c, uint32_t peers,
                                            std::vector<std::vector<uint32_t>> overlay,
                                            std::vector<std::vector<int64_t>> shards,
                                            std::shared_ptr<const Dataset> train, std::shared_ptr<const Dataset> test) {
  // Shared by the factory's copies (one per verifier): every peer's sample
  // indices, a copy each would be the size of the data set's index.
  auto all = std::make_shared<const std::vector<std::vector<int64_t>>>(std::move(shards));
  return [c, peers, overlay = std::move(overlay), all = std::move(all), train = std::move(train),
          test = std::move(test)](uint32_t p) {
    const auto& shards = *all;
    if (p >= peers || p >= shards.size())
      throw std::invalid_argument("segment replay of peer " + std::to_string(p) + " in a run of " +
                                  std::to_string(peers) + " peers");
    const int64_t per_epoch = (static_cast<int64_t>(shards[p].size()) + c.batch - 1) / c.batch;
    const int64_t total = std::max<int64_t>(1, std::llround(c.epochs * static_cast<double>(per_epoch)));
    const std::vector<uint32_t> neighbours = p < overlay.size() ? overlay[p] : std::vector<uint32_t>{};
    const auto ps = peer_settings_from_config(c, p, peers, neighbours, total);
    return std::make_unique<segment_replay>(ps.train, ps.model, train, shards[p], test, p, neighbours, ps.gossip, false);
  };
}

}  // namespace murmur
