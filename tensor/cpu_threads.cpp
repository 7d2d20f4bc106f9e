#include "tensor/cpu_threads.hpp"

#include "tensor/conv2d.hpp"
#include "tensor/gemm.hpp"
#include "tensor/maxpool2d.hpp"
#include "tensor/residual.hpp"

namespace murmur {

namespace {

// Sets n on l's oneDNN layers (l itself or inside a residual body); whether any.
bool set_layer_threads(Layer& l, int n) {
  if (auto* c = dynamic_cast<Conv2d*>(&l)) {
    c->set_threads(n);
    return true;
  }
  if (dynamic_cast<MaxPool2d*>(&l)) return true;  // pools stay on the calling thread (cpu_threads.hpp)
  bool any = false;
  if (auto* r = dynamic_cast<Residual*>(&l))
    for (size_t i = 0; i < r->body_size(); ++i) any = set_layer_threads(r->body(i), n) || any;
  return any;
}

}  // namespace

bool set_model_threads(Sequential& m, int n) {
  if (n < 1) n = 1;
  bool onednn = false;
  for (size_t i = 0; i < m.layer_count(); ++i) onednn = set_layer_threads(m.layer(i), n) || onednn;
  set_blas_threads(onednn ? 1 : n);
  return onednn;
}

}  // namespace murmur
