// onednn_operand: one operand of a oneDNN primitive, as the primitives of
// onednn_conv and onednn_pool hold it: the caller's buffer (its layout given
// by the caller's memory descriptor) and, where the primitive wants another
// layout, an internal buffer in that layout with the reorders between the
// two, all made once (make); per call only the caller's pointer changes.
// Also activation_tag(), the oneDNN tag of an activation buffer in either
// of Sequential's layouts, and onednn_run(): executes a primitive through the C API with a fixed argument
// array (the C++ API's std::unordered_map of arguments would allocate on
// every call). Errors throw std::runtime_error naming `who`.
#pragma once
#include <omp.h>

#include <initializer_list>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>

#include "tensor/channel_blocked.hpp"

namespace murmur {

// nchw, or channel-blocked (tensor/channel_blocked.hpp: oneDNN's nChw16c).
inline dnnl::memory::format_tag activation_tag(bool channel_blocked) {
  static_assert(channel_block == 16, "channel_blocked.hpp's layout is oneDNN's nChw16c");
  return channel_blocked ? dnnl::memory::format_tag::nChw16c : dnnl::memory::format_tag::nchw;
}

inline void onednn_run(const dnnl::primitive& p, const dnnl::stream& s, std::initializer_list<dnnl_exec_arg_t> args,
                       const char* who) {
  if (dnnl_primitive_execute(p.get(), s.get(), static_cast<int>(args.size()), args.begin()) != dnnl_success)
    throw std::runtime_error(std::string(who) + ": primitive execution failed");
}

struct onednn_operand {
  dnnl::memory user, inner;
  dnnl::reorder to_inner, to_user;
  bool reordered = false;

  // Call with omp_set_num_threads(1): the reorders keep the team they are
  // made with (see load).
  void make(const dnnl::memory::desc& users, const dnnl::memory::desc& want, const dnnl::engine& eng) {
    user = dnnl::memory(users, eng, DNNL_MEMORY_NONE);
    reordered = want != users;
    if (!reordered) return;
    inner = dnnl::memory(want, eng);
    to_inner = dnnl::reorder(dnnl::reorder::primitive_desc(eng, users, eng, want));
    to_user = dnnl::reorder(dnnl::reorder::primitive_desc(eng, want, eng, users));
  }
  void point(const float* p) { user.set_data_handle(const_cast<float*>(p)); }
  dnnl_memory_t arg() const { return reordered ? inner.get() : user.get(); }
  // Reorders run on the calling thread alone: they are short and
  // memory-bound, and with more threads each would be one more OpenMP
  // barrier per call. `threads` is the team restored afterwards.
  void load(const dnnl::stream& s, int threads) const {
    if (!reordered) return;
    omp_set_num_threads(1);
    onednn_run(to_inner, s, {{DNNL_ARG_FROM, user.get()}, {DNNL_ARG_TO, inner.get()}}, "onednn reorder");
    omp_set_num_threads(threads);
  }
  void store(const dnnl::stream& s, int threads) const {
    if (!reordered) return;
    omp_set_num_threads(1);
    onednn_run(to_user, s, {{DNNL_ARG_FROM, inner.get()}, {DNNL_ARG_TO, user.get()}}, "onednn reorder");
    omp_set_num_threads(threads);
  }
};

}  // namespace murmur
