#include "tensor/onednn_conv.hpp"

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>

#include "tensor/onednn_operand.hpp"

namespace murmur {

namespace {

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
using md = dnnl::memory::desc;

// Right padding that makes oneDNN's output size equal Conv2d's floor-mode one.
int64_t pad_right(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p) { return (out - 1) * s + k - in - p; }

void run(const dnnl::primitive& p, const dnnl::stream& s, std::initializer_list<dnnl_exec_arg_t> args) {
  onednn_run(p, s, args, "onednn_conv");
}

}  // namespace

struct onednn_conv::state {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  conv_geometry g;
  int64_t out = -1;
  int threads = 0;
  onednn_layout layout = onednn_layout::plain;
  bool src_blocked = false, dst_blocked = false;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_w;
  onednn_operand f_src, f_wei, f_dst;        // forward
  onednn_operand w_src, w_ddst, w_dwei;      // backward-weights
  onednn_operand d_ddst, d_wei, d_dsrc;      // backward-data
  bool w_src_is_f_src = false;        // backward-weights reads the forward's copy of x
  bool d_ddst_is_w_ddst = false;      // both backwards read one copy of dy
  dnnl::memory bias, dbias, sp_fwd, sp_data, sp_w;
  std::string impl;
};

onednn_conv::onednn_conv() = default;
onednn_conv::~onednn_conv() = default;

bool onednn_conv::supports(const conv_geometry& g) {
  return g.batch > 0 && pad_right(g.height, g.out_h, g.kernel, g.stride, g.pad) >= 0 &&
         pad_right(g.width, g.out_w, g.kernel, g.stride, g.pad) >= 0;
}

void onednn_conv::prepare(const conv_geometry& g, int64_t out, int threads, onednn_layout layout, bool src_blocked,
                          bool dst_blocked) {
  if (s_ && s_->out == out && s_->threads == threads && s_->layout == layout && s_->src_blocked == src_blocked &&
      s_->dst_blocked == dst_blocked && s_->g.batch == g.batch &&
      s_->g.channels == g.channels && s_->g.height == g.height && s_->g.width == g.width &&
      s_->g.kernel == g.kernel && s_->g.stride == g.stride && s_->g.pad == g.pad)
    return;
  if (!supports(g)) throw std::runtime_error("onednn_conv: geometry not expressible");
  if ((src_blocked || dst_blocked) && layout != onednn_layout::blocked)
    throw std::runtime_error("onednn_conv: channel-blocked buffers need the blocked layout");
  omp_set_num_threads(threads);
  auto s = std::make_unique<state>();
  s->g = g;
  s->out = out;
  s->threads = threads;
  s->layout = layout;
  s->src_blocked = src_blocked;
  s->dst_blocked = dst_blocked;
  const auto f32 = dnnl::memory::data_type::f32;
  const dims x_d{g.batch, g.channels, g.height, g.width}, w_d{out, g.channels, g.kernel, g.kernel}, b_d{out},
      y_d{g.batch, out, g.out_h, g.out_w};
  const dims strides{g.stride, g.stride}, pl{g.pad, g.pad},
      pr{pad_right(g.height, g.out_h, g.kernel, g.stride, g.pad), pad_right(g.width, g.out_w, g.kernel, g.stride, g.pad)};
  // The caller's buffers: x/dx and y/dy nchw, or channel-blocked where the
  // neighbouring layer takes it.
  const md x_md(x_d, f32, activation_tag(src_blocked)), w_md(w_d, f32, tag::oihw), b_md(b_d, f32, tag::x),
      y_md(y_d, f32, activation_tag(dst_blocked));
  const bool blocked = layout == onednn_layout::blocked;
  const md x_q = blocked ? md(x_d, f32, tag::any) : x_md, w_q = blocked ? md(w_d, f32, tag::any) : w_md,
           y_q = blocked ? md(y_d, f32, tag::any) : y_md;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto algo = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::primitive_desc fpd(
      {dnnl::prop_kind::forward_training, algo, x_q, w_q, b_md, y_q, strides, pl, pr}, attr, s->eng);
  dnnl::convolution_backward_data::primitive_desc dpd({algo, x_q, w_q, y_q, strides, pl, pr}, attr, s->eng, fpd);
  dnnl::convolution_backward_weights::primitive_desc wpd({algo, x_q, w_q, b_md, y_q, strides, pl, pr}, attr, s->eng,
                                                         fpd);
  s->fwd = dnnl::convolution_forward(fpd);
  s->bwd_data = dnnl::convolution_backward_data(dpd);
  s->bwd_w = dnnl::convolution_backward_weights(wpd);
  omp_set_num_threads(1);  // the reorders' team (onednn_operand::load)
  s->f_src.make(x_md, fpd.src_desc(), s->eng);
  s->f_wei.make(w_md, fpd.weights_desc(), s->eng);
  s->f_dst.make(y_md, fpd.dst_desc(), s->eng);
  s->w_src_is_f_src = wpd.src_desc() == fpd.src_desc();
  s->w_src.make(x_md, wpd.src_desc(), s->eng);
  s->w_ddst.make(y_md, wpd.diff_dst_desc(), s->eng);
  s->w_dwei.make(w_md, wpd.diff_weights_desc(), s->eng);
  s->d_ddst_is_w_ddst = dpd.diff_dst_desc() == wpd.diff_dst_desc();
  s->d_ddst.make(y_md, dpd.diff_dst_desc(), s->eng);
  s->d_wei.make(w_md, dpd.weights_desc(), s->eng);
  s->d_dsrc.make(x_md, dpd.diff_src_desc(), s->eng);
  omp_set_num_threads(threads);
  s->bias = dnnl::memory(b_md, s->eng, DNNL_MEMORY_NONE);
  s->dbias = dnnl::memory(b_md, s->eng, DNNL_MEMORY_NONE);
  s->sp_fwd = dnnl::memory(fpd.scratchpad_desc(), s->eng);
  s->sp_data = dnnl::memory(dpd.scratchpad_desc(), s->eng);
  s->sp_w = dnnl::memory(wpd.scratchpad_desc(), s->eng);
  s->impl = std::string("fwd ") + fpd.impl_info_str() + ", bwd_data " + dpd.impl_info_str() + ", bwd_weights " +
            wpd.impl_info_str();
  s_ = std::move(s);
}

void onednn_conv::forward(const float* x, const float* w, const float* b, float* y) {
  state& s = *s_;
  omp_set_num_threads(s.threads);
  s.f_src.point(x);
  s.f_wei.point(w);
  s.f_dst.point(y);
  s.bias.set_data_handle(const_cast<float*>(b));
  s.f_src.load(s.strm, s.threads);
  s.f_wei.load(s.strm, s.threads);
  run(s.fwd, s.strm,
      {{DNNL_ARG_SRC, s.f_src.arg()},
       {DNNL_ARG_WEIGHTS, s.f_wei.arg()},
       {DNNL_ARG_BIAS, s.bias.get()},
       {DNNL_ARG_DST, s.f_dst.arg()},
       {DNNL_ARG_SCRATCHPAD, s.sp_fwd.get()}});
  s.f_dst.store(s.strm, s.threads);
}

void onednn_conv::backward(const float* x, const float* dy, const float* w, float* dw, float* db, float* dx) {
  state& s = *s_;
  omp_set_num_threads(s.threads);
  s.w_ddst.point(dy);
  s.w_ddst.load(s.strm, s.threads);
  s.w_dwei.point(dw);
  s.dbias.set_data_handle(db);
  dnnl_memory_t src = s.f_src.arg();
  if (!s.w_src_is_f_src) {
    s.w_src.point(x);
    s.w_src.load(s.strm, s.threads);
    src = s.w_src.arg();
  }
  run(s.bwd_w, s.strm,
      {{DNNL_ARG_SRC, src},
       {DNNL_ARG_DIFF_DST, s.w_ddst.arg()},
       {DNNL_ARG_DIFF_WEIGHTS, s.w_dwei.arg()},
       {DNNL_ARG_DIFF_BIAS, s.dbias.get()},
       {DNNL_ARG_SCRATCHPAD, s.sp_w.get()}});
  s.w_dwei.store(s.strm, s.threads);
  if (!dx) return;
  dnnl_memory_t ddst = s.w_ddst.arg();
  if (!s.d_ddst_is_w_ddst) {
    s.d_ddst.point(dy);
    s.d_ddst.load(s.strm, s.threads);
    ddst = s.d_ddst.arg();
  }
  s.d_wei.point(w);
  s.d_wei.load(s.strm, s.threads);
  s.d_dsrc.point(dx);
  run(s.bwd_data, s.strm,
      {{DNNL_ARG_DIFF_DST, ddst},
       {DNNL_ARG_WEIGHTS, s.d_wei.arg()},
       {DNNL_ARG_DIFF_SRC, s.d_dsrc.arg()},
       {DNNL_ARG_SCRATCHPAD, s.sp_data.get()}});
  s.d_dsrc.store(s.strm, s.threads);
}

std::string onednn_conv::kernels() const { return s_ ? s_->impl : std::string(); }

}  // namespace murmur
