// Shows a run's progress: on a terminal one line rewritten in place
// (epoch, step, loss, accuracy, bytes sent, ETA); otherwise, for logs and CI,
// a plain line after each evaluation. The first report is preceded by
// "device <where the peers train>" when the host says it. The ETA is measured from the first
// report (wall time and fraction done then): data loading, start-up and, on
// a resumed run, the steps done before do not count. The first report
// itself gets an ETA from the host's wall_s (the simulator's clock starts
// after its data is loaded; the peer reports first at its first step).
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
  bool started_ = false;
  double start_wall_s_ = 0, start_fraction_ = 0;
};

}  // namespace murmur
