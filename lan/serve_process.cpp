#include "lan/serve_process.hpp"

#include <cstdio>
#include <stdexcept>

#include "lan/inference_host.hpp"

namespace murmur {

int run_serve_process(const serve_process_options& o, const std::atomic<int>& stop) {
  if (o.stages == 0 || o.stage >= o.stages)
    throw std::invalid_argument("--stage " + std::to_string(o.stage) + " with --stages " + std::to_string(o.stages) +
                                ": stages are numbered 0.." + std::to_string(o.stages > 0 ? o.stages - 1 : 0));
  const served_model m = load_served_model(o.model);
  const auto ranges = served_stage_ranges(m, o.stages, o.split);
  const stage_range r = ranges[o.stage];
  auto part = served_stage(m, r);
  inference_stage_settings s;
  s.stage = o.stage;
  s.stages = o.stages;
  s.keys = read_curve_keys(o.keys_dir);
  s.keys_source = o.keys_dir + "/peer.pub";
  s.allowlist = peer_identities::read(o.allowlist);
  s.listen = o.listen;
  s.quiet = o.quiet;
  std::printf("serve stage %u of %u: model %s, layers %zu..%zu of %zu (eval mode)\n", static_cast<unsigned>(o.stage),
              static_cast<unsigned>(o.stages), m.spec.c_str(), r.begin, r.end, m.whole->layer_count());
  std::fflush(stdout);
  return run_inference_stage(s, *part, stop);
}

}  // namespace murmur
