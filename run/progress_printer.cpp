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
  if (!tty_ && !p.evaluation) return;
  char acc[16] = "  -  ";
  if (p.accuracy >= 0) std::snprintf(acc, sizeof acc, "%5.2f%%", 100 * p.accuracy);
  double eta = p.fraction > 0 ? p.wall_s * (1 - p.fraction) / p.fraction : 0;
  std::fprintf(out_, "%sepoch %5.2f  steps %8llu (%3.0f%%)  loss %.4f  acc %s  sent %s  virtual %.1fs  ETA %.0fs%s",
               tty_ ? "\r\033[K" : "", p.epoch, static_cast<unsigned long long>(p.steps), 100 * p.fraction,
               p.loss, acc, human_bytes(static_cast<double>(p.bytes_sent)).c_str(), p.virtual_s, eta,
               tty_ ? "" : "\n");
  std::fflush(out_);
  dirty_ = tty_;
}

void progress_printer::finish() {
  if (dirty_) std::fputc('\n', out_);
  dirty_ = false;
}

}  // namespace murmur
