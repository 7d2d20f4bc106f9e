#include "tensor/onednn_matmul.hpp"

#include <omp.h>

#include <array>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <vector>

namespace murmur {

namespace {

struct matmul_key {
  bool ta, tb;
  int64_t m, n, k, lda, ldb, ldc;
  float alpha, beta;
  bool operator==(const matmul_key&) const = default;
};

// One primitive and the memory objects it executes on; execution only
// swaps their data handles. A shape oneDNN refuses keeps an entry without
// a primitive, so it is asked once.
struct matmul_entry {
  matmul_key key;
  dnnl::matmul prim;
  dnnl::memory a, b, c;
  bool supported = true;
};

// A thread's primitives: a layer sequence uses a handful of shapes
// (forward, weight and input gradients per layer, times the train and
// evaluation batch sizes), so a short list searched linearly is enough;
// when full, the oldest entry makes room.
class matmul_cache {
 public:
  static constexpr size_t kCapacity = 48;

  matmul_cache() : eng_(dnnl::engine::kind::cpu, 0), stream_(eng_) { entries_.reserve(kCapacity); }

  matmul_entry& get(const matmul_key& key) {
    for (auto& e : entries_)
      if (e.key == key) return e;
    if (entries_.size() == kCapacity) {
      entries_[next_evict_] = make(key);
      matmul_entry& e = entries_[next_evict_];
      next_evict_ = (next_evict_ + 1) % kCapacity;
      return e;
    }
    entries_.push_back(make(key));
    return entries_.back();
  }

  dnnl::stream& stream() { return stream_; }

 private:
  dnnl::engine eng_;
  dnnl::stream stream_;
  std::vector<matmul_entry> entries_;
  size_t next_evict_ = 0;

  matmul_entry make(const matmul_key& key) {
    using dt = dnnl::memory::data_type;
    using dims = dnnl::memory::dims;
    // op(A) is m x k: stored k x m (row stride lda) when transposed.
    const dims a_strides = key.ta ? dims{1, key.lda} : dims{key.lda, 1};
    const dims b_strides = key.tb ? dims{1, key.ldb} : dims{key.ldb, 1};
    const dnnl::memory::desc a_md({key.m, key.k}, dt::f32, a_strides);
    const dnnl::memory::desc b_md({key.k, key.n}, dt::f32, b_strides);
    const dnnl::memory::desc c_md({key.m, key.n}, dt::f32, dims{key.ldc, 1});
    dnnl::primitive_attr attr;
    if (key.alpha != 1.f) attr.set_output_scales(0, {key.alpha});
    if (key.beta != 0.f) {
      dnnl::post_ops po;
      po.append_sum(key.beta);
      attr.set_post_ops(po);
    }
    try {
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, eng_);
      return {key, dnnl::matmul(pd), dnnl::memory(a_md, eng_, DNNL_MEMORY_NONE),
              dnnl::memory(b_md, eng_, DNNL_MEMORY_NONE), dnnl::memory(c_md, eng_, DNNL_MEMORY_NONE), true};
    } catch (const dnnl::error&) {
      return {key, {}, {}, {}, {}, false};  // no implementation for these strides: gemm() uses OpenBLAS
    }
  }
};

matmul_cache& thread_cache() {
  thread_local matmul_cache cache;
  return cache;
}

}  // namespace

bool onednn_matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads) {
  if (m <= 0 || n <= 0 || k <= 0) return false;
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
  matmul_cache& cache = thread_cache();
  matmul_entry& e = cache.get({ta, tb, m, n, k, lda, ldb, ldc, alpha, beta});
  if (!e.supported) return false;
  e.a.set_data_handle(const_cast<float*>(a));
  e.b.set_data_handle(const_cast<float*>(b));
  e.c.set_data_handle(c);
  // The C API takes the arguments as an array: no map built per call.
  const std::array<dnnl_exec_arg_t, 3> args{{{DNNL_ARG_SRC, e.a.get()},
                                              {DNNL_ARG_WEIGHTS, e.b.get()},
                                              {DNNL_ARG_DST, e.c.get()}}};
  dnnl::error::wrap_c_api(
      dnnl_primitive_execute(e.prim.get(), cache.stream().get(), static_cast<int>(args.size()), args.data()),
      "onednn_matmul: execute");
  return true;
}

namespace {

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

}  // namespace

bool onednn_has_avx512() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto core = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  return (isa & core) == core;
}

std::string onednn_description() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         " isa " + isa_name(dnnl::get_effective_cpu_isa());
}

}  // namespace murmur
