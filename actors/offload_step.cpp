#include "actors/offload_step.hpp"

#include <algorithm>
#include <stdexcept>

#include "tensor/gemm.hpp"

namespace murmur {

namespace {

// Thrown into a step stopped at a product when its owner goes away.
struct step_abandoned {};

// op(X) as a dense row-major rows x cols matrix (X stored cols x rows when transposed).
std::vector<float> dense(bool trans, int64_t rows, int64_t cols, const float* x) {
  if (!trans) return {x, x + rows * cols};
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out[static_cast<size_t>(i * cols + j)] = x[j * rows + i];
  return out;
}

}  // namespace

void offload_counters::add(const offload_counters& o) {
  steps += o.steps;
  offloaded += o.offloaded;
  verified += o.verified;
  rejected += o.rejected;
  timed_out += o.timed_out;
  local += o.local;
  verified_flops += o.verified_flops;
  rejected_flops += o.rejected_flops;
  local_flops += o.local_flops;
  check_flops += o.check_flops;
}

class offload_step::route : public product_route {
 public:
  explicit route(offload_step& o) : o_(o) {}
  void run(const product_call& p) override { o_.on_product(p); }

 private:
  offload_step& o_;
};

offload_step::offload_step(std::shared_ptr<trainer> t, offload_plan p)
    : t_(std::move(t)), plan_(p), route_(std::make_unique<route>(*this)) {
  // Products are routed out of the host model's layers; a backend's step has none.
  if (t_->on_backend()) throw std::invalid_argument("offload_step: the trainer steps on a compute backend");
}

offload_step::~offload_step() {
  {
    std::lock_guard lk(m_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void offload_step::loop() {
  std::unique_lock lk(m_);
  for (;;) {
    cv_.wait(lk, [this] { return step_turn_ || quit_; });
    if (quit_) return;
    lk.unlock();
    float loss = 0;
    std::exception_ptr err;
    bool abandoned = false;
    t_->model()->set_product_route(route_.get());
    try {
      loss = t_->step();
    } catch (const step_abandoned&) {
      abandoned = true;
    } catch (...) {
      err = std::current_exception();
    }
    t_->model()->set_product_route(nullptr);
    lk.lock();
    if (abandoned) return;
    job_.reset();
    done_ = true;
    loss_ = loss;
    error_ = err;
    step_turn_ = false;
    cv_.notify_all();
  }
}

void offload_step::on_product(const product_call& p) {
  const double flops = p.flops();
  if (!trusted_ || flops < plan_.min_flops || p.m == 0 || p.n == 0 || p.k == 0) {
    gemm(p.trans_a, p.trans_b, p.m, p.n, p.k, 1.f, p.a, p.b, p.beta, p.c);
    ++cur_.local;
    cur_.local_flops += flops;
    return;
  }
  auto job = std::make_shared<matmul_job>();
  job->m = static_cast<uint32_t>(p.m);
  job->n = static_cast<uint32_t>(p.n);
  job->k = static_cast<uint32_t>(p.k);
  job->a = dense(p.trans_a, p.m, p.k, p.a);
  job->b = dense(p.trans_b, p.k, p.n, p.b);
  ++cur_.offloaded;
  const matmul_outcome* o = nullptr;
  {
    std::unique_lock lk(m_);
    job_ = std::move(job);
    done_ = false;
    step_turn_ = false;
    cv_.notify_all();
    cv_.wait(lk, [this] { return step_turn_ || quit_; });
    if (quit_) throw step_abandoned{};
    o = answer_;
    answer_ = nullptr;
  }
  const size_t cells = static_cast<size_t>(p.m * p.n);
  if (!o || o->c.size() != cells) {  // no answer in time: here, and no more offloading
    ++cur_.timed_out;
    cur_.local_flops += flops;
    trusted_ = false;
    gemm(p.trans_a, p.trans_b, p.m, p.n, p.k, 1.f, p.a, p.b, p.beta, p.c);
    return;
  }
  cur_.check_flops += (plan_.rounds + 1) * 2.0 * static_cast<double>(p.m * p.k + p.k * p.n + p.m * p.n);
  if (o->verified) {
    ++cur_.verified;
    cur_.verified_flops += flops;
  } else {  // the verifier recomputed it here, and quarantined the helper
    ++cur_.rejected;
    cur_.rejected_flops += flops;
    trusted_ = false;
  }
  if (p.beta == 0.f)
    std::copy(o->c.begin(), o->c.end(), p.c);
  else
    for (size_t i = 0; i < cells; ++i) p.c[i] = p.beta * p.c[i] + o->c[i];
}

offload_step::yield offload_step::hand_over() {
  std::unique_lock lk(m_);
  step_turn_ = true;
  cv_.notify_all();
  cv_.wait(lk, [this] { return !step_turn_; });
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  yield y{job_, done_, loss_};
  if (done_) {
    cur_.steps = 1;
    last_ = cur_;
    total_.add(cur_);
  }
  return y;
}

offload_step::yield offload_step::start() {
  cur_ = {};
  {
    std::lock_guard lk(m_);
    answer_ = nullptr;
    done_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  return hand_over();
}

offload_step::yield offload_step::resume(const matmul_outcome* outcome) {
  {
    std::lock_guard lk(m_);
    answer_ = outcome;
  }
  return hand_over();
}

}  // namespace murmur
