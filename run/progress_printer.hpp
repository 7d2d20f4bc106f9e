// Shows a run's progress: on a terminal one line rewritten in place
// (epoch, step, loss, accuracy, bytes sent, ETA); otherwise, for logs and CI,
// a plain line after each evaluation.
#pragma once
#include <cstdio>

#include "run/run_progress.hpp"

namespace murmur {

class progress_printer {
 public:
  explicit progress_printer(std::FILE* out);
  void operator()(const run_progress& p);
  void finish();

 private:
  std::FILE* out_;
  bool tty_;
  bool dirty_ = false;
};

}  // namespace murmur
