#include "run/progress_printer.hpp"

#include <unistd.h>

#include <string>

namespace murmur {

namespace {

std::string human_bytes(double b) {
  const char* unit[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) { b /= 1000; ++u; }
  char s[32];
  std::snprintf(s, sizeof s, "%.1f %s", b, unit[u]);
  return s;
}

}  // namespace

progress_printer::progress_printer(std::FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

void progress_printer::operator()(const run_progress& p) {
  const bool first = !started_;
  if (first) {
    started_ = true;
    start_wall_s_ = p.wall_s;
    start_fraction_ = p.fraction;
    // Once, on a line of its own: which device the peers train on.
    if (!p.device.empty()) std::fprintf(out_, "device %s\n", p.device.c_str());
  }
  if (!tty_ && !p.evaluation) return;
  char acc[16] = "  -  ";
  if (p.accuracy >= 0) std::snprintf(acc, sizeof acc, "%5.2f%%", 100 * p.accuracy);
  char eta[32] = "-";
  // The first report has nothing before it: then the host's own clock,
  // which starts after its data is loaded, and all it has done.
  const double done = first ? p.fraction : p.fraction - start_fraction_;
  const double took = first ? p.wall_s : p.wall_s - start_wall_s_;
  if (done > 0) std::snprintf(eta, sizeof eta, "%.0fs", took * (1 - p.fraction) / done);
  char clock[32];
  if (p.virtual_clock) std::snprintf(clock, sizeof clock, "virtual %.1fs", p.virtual_s);
  else std::snprintf(clock, sizeof clock, "elapsed %.1fs", p.wall_s);
  std::fprintf(out_, "%sepoch %5.2f  steps %8llu (%3.0f%%)  loss %.4f  acc %s  sent %s  %s  ETA %s%s",
               tty_ ? "\r\033[K" : "", p.epoch, static_cast<unsigned long long>(p.steps), 100 * p.fraction,
               p.loss, acc, human_bytes(static_cast<double>(p.bytes_sent)).c_str(), clock, eta,
               tty_ ? "" : "\n");
  std::fflush(out_);
  dirty_ = tty_;
}

void progress_printer::finish() {
  if (dirty_) std::fputc('\n', out_);
  dirty_ = false;
}

}  // namespace murmur
