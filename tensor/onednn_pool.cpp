#include "tensor/onednn_pool.hpp"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>

#include "tensor/onednn_operand.hpp"

namespace murmur {

namespace {

using dims = dnnl::memory::dims;

void run(const dnnl::primitive& p, const dnnl::stream& s, std::initializer_list<dnnl_exec_arg_t> args) {
  onednn_run(p, s, args, "onednn_pool");
}

}  // namespace

struct onednn_pool::state {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  int64_t b = -1, c = -1, h = -1, w = -1, k = -1;
  int threads = 0;
  bool src_blocked = false, dst_blocked = false;
  dnnl::pooling_forward fwd;
  dnnl::pooling_backward bwd;
  dnnl::memory src, dsrc, ws, sp_fwd, sp_bwd;
  onednn_operand dst, ddst;  // the caller's y and dy, and the primitive's layout of them
};

onednn_pool::onednn_pool() = default;
onednn_pool::~onednn_pool() = default;

void onednn_pool::prepare(int64_t b, int64_t c, int64_t h, int64_t w, int64_t k, int threads, bool src_blocked,
                          bool dst_blocked) {
  if (s_ && s_->b == b && s_->c == c && s_->h == h && s_->w == w && s_->k == k && s_->threads == threads &&
      s_->src_blocked == src_blocked && s_->dst_blocked == dst_blocked)
    return;
  if (!supports(h, w, k)) throw std::runtime_error("onednn_pool: shape does not tile by the window");
  if ((src_blocked || dst_blocked) && c % channel_block != 0)
    throw std::runtime_error("onednn_pool: channel-blocked buffers need channels in multiples of " +
                             std::to_string(channel_block));
  omp_set_num_threads(threads);
  auto s = std::make_unique<state>();
  s->b = b;
  s->c = c;
  s->h = h;
  s->w = w;
  s->k = k;
  s->threads = threads;
  s->src_blocked = src_blocked;
  s->dst_blocked = dst_blocked;
  const int64_t oh = h / k, ow = w / k;
  const auto f32 = dnnl::memory::data_type::f32;
  const auto run_on = activation_tag(src_blocked);
  const dnnl::memory::desc x_md({b, c, h, w}, f32, run_on), y_md({b, c, oh, ow}, f32, run_on),
      y_user({b, c, oh, ow}, f32, activation_tag(dst_blocked));
  const dims strides{k, k}, kernel{k, k}, pl{0, 0}, pr{0, 0};
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::pooling_forward::primitive_desc fpd(
      {dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, x_md, y_md, strides, kernel, pl, pr}, attr,
      s->eng);
  dnnl::pooling_backward::primitive_desc bpd({dnnl::algorithm::pooling_max, x_md, y_md, strides, kernel, pl, pr},
                                             attr, s->eng, fpd);
  s->fwd = dnnl::pooling_forward(fpd);
  s->bwd = dnnl::pooling_backward(bpd);
  s->src = dnnl::memory(x_md, s->eng, DNNL_MEMORY_NONE);
  s->dsrc = dnnl::memory(x_md, s->eng, DNNL_MEMORY_NONE);
  omp_set_num_threads(1);  // the reorders' team (onednn_operand::load)
  s->dst.make(y_user, y_md, s->eng);
  s->ddst.make(y_user, y_md, s->eng);
  omp_set_num_threads(threads);
  s->ws = dnnl::memory(fpd.workspace_desc(), s->eng);
  s->sp_fwd = dnnl::memory(fpd.scratchpad_desc(), s->eng);
  s->sp_bwd = dnnl::memory(bpd.scratchpad_desc(), s->eng);
  s_ = std::move(s);
}

void onednn_pool::forward(const float* x, float* y) {
  state& s = *s_;
  s.src.set_data_handle(const_cast<float*>(x));
  s.dst.point(y);
  omp_set_num_threads(s.threads);
  run(s.fwd, s.strm,
      {{DNNL_ARG_SRC, s.src.get()},
       {DNNL_ARG_DST, s.dst.arg()},
       {DNNL_ARG_WORKSPACE, s.ws.get()},
       {DNNL_ARG_SCRATCHPAD, s.sp_fwd.get()}});
  s.dst.store(s.strm, s.threads);
}

void onednn_pool::backward(const float* dy, float* dx) {
  state& s = *s_;
  s.ddst.point(dy);
  s.dsrc.set_data_handle(dx);
  omp_set_num_threads(s.threads);
  s.ddst.load(s.strm, s.threads);
  run(s.bwd, s.strm,
      {{DNNL_ARG_DIFF_DST, s.ddst.arg()},
       {DNNL_ARG_DIFF_SRC, s.dsrc.get()},
       {DNNL_ARG_WORKSPACE, s.ws.get()},
       {DNNL_ARG_SCRATCHPAD, s.sp_bwd.get()}});
}

}  // namespace murmur
