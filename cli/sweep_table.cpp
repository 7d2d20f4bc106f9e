#include "cli/sweep_table.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace murmur {

namespace {

std::string num(double v, const char* f = "%.6g") {
  if (std::isnan(v)) return "";
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Verification wall time against the steps' (NaN when verification is off).
double check_pct(const sim_summary& s) {
  const auto& v = s.verification;
  return v.enabled && v.step_seconds > 0 ? 100 * v.check_seconds / v.step_seconds : std::nan("");
}
double commit_pct(const sim_summary& s) {
  const auto& v = s.verification;
  return v.enabled && v.step_seconds > 0 ? 100 * v.commit_seconds / v.step_seconds : std::nan("");
}

// A row's swept values as Markdown cells, "| v1 | v2 |"; a run a signal
// stopped partway says so after its last value.
std::string value_cells(const sweep_row& r) {
  std::string c = "|";
  for (size_t k = 0; k < r.values.size(); ++k)
    c += " " + r.values[k] + (k + 1 == r.values.size() && r.summary.interrupted ? " (interrupted)" : "") + " |";
  return c;
}

}  // namespace

std::string sweep_csv_header(const std::vector<std::string>& keys) {
  std::string h;
  for (const auto& k : keys) h += k + ",";
  return h +
         "final_test_accuracy,bytes_sent_total,virtual_time_s,min_test_accuracy,dense_allreduce_bytes,wall_time_s,"
         "honest_test_accuracy,accuracy_vs_clean,attackers,precision,recall,f1,honest_quarantined,"
         "steps_to_quarantine_median,steps_to_quarantine_p95,detect_overhead_pct,check_overhead_pct,commit_overhead_pct,"
         "samples_per_s,pipeline_efficiency,pipeline_bound,peak_in_flight,peak_activation_mb,interrupted\n";
}

std::string sweep_csv_line(const sweep_row& r) {
  const auto& s = r.summary;
  const auto& d = s.detection;
  std::ostringstream os;
  for (const auto& v : r.values) os << v << ',';
  os << s.final_test_accuracy << ',' << s.bytes_sent_total << ',' << s.virtual_time_s << ',' << s.min_test_accuracy
     << ',' << s.dense_allreduce_bytes << ',' << s.wall_time_s << ',' << s.honest_test_accuracy << ','
     << (r.clean_accuracy ? num(s.honest_test_accuracy - *r.clean_accuracy) : "") << ',' << s.attackers.size() << ','
     << num(d.precision) << ',' << num(d.recall) << ',' << num(d.f1) << ',' << d.honest_quarantined << ','
     << num(d.steps_to_quarantine_median) << ',' << num(d.steps_to_quarantine_p95) << ','
     << num(s.detect_overhead_pct) << ',' << num(check_pct(s)) << ',' << num(commit_pct(s)) << ','
     << num(s.samples_per_s) << ',';
  if (s.pipeline.enabled) {
    // Per stage of replica 0, joined by '/'.
    std::string peak, mb;
    for (const auto& q : s.pipeline.per_stage)
      if (q.replica == 0) {
        if (!peak.empty()) peak.push_back('/'), mb.push_back('/');
        peak.append(std::to_string(q.peak_in_flight));
        mb.append(num(q.peak_activation_mb, "%.3g"));
      }
    os << num(s.pipeline.efficiency) << ',' << num(s.pipeline.bound) << ',' << peak << ',' << mb;
  } else {
    os << ",,,";
  }
  os << ',' << (s.interrupted ? 1 : 0) << '\n';
  return os.str();
}

std::string pipeline_markdown(const std::vector<std::string>& keys, const std::vector<sweep_row>& rows) {
  std::ostringstream os;
  os << '|';
  for (const auto& k : keys) os << ' ' << k << " |";
  os << " efficiency | bound M/(M+S-1) | efficiency / bound | micro-batches in flight, per stage (peak)"
        " | activation memory per stage, MB (peak) | samples/s (virtual) | accuracy |\n|";
  for (size_t i = 0; i < keys.size() + 7; ++i) os << "---|";
  os << '\n';
  for (const auto& r : rows) {
    const auto& s = r.summary;
    const auto& p = s.pipeline;
    os << value_cells(r);
    std::string peak, mb;
    for (const auto& q : p.per_stage)
      if (q.replica == 0) {
        if (!peak.empty()) peak.append(" / "), mb.append(" / ");
        peak.append(std::to_string(q.peak_in_flight));
        mb.append(num(q.peak_activation_mb, "%.2f"));
      }
    os << ' ' << num(p.efficiency, "%.3f") << " | " << num(p.bound, "%.3f") << " | "
       << num(p.bound > 0 ? p.efficiency / p.bound : std::nan(""), "%.3f") << " | " << peak << " | " << mb << " | "
       << num(s.samples_per_s, "%.0f") << " | " << num(100 * s.final_test_accuracy, "%.2f %%") << " |\n";
  }
  return os.str();
}

std::string sweep_markdown(const std::vector<std::string>& keys, const std::vector<sweep_row>& rows) {
  std::ostringstream os;
  os << '|';
  for (const auto& k : keys) os << ' ' << k << " |";
  os << " attackers | honest acc. | vs clean (points) | precision | recall | F1 | honest quarantined"
        " | steps to quarantine (median / p95) | detection overhead | verification overhead: checks / commitments"
        " | bytes sent |\n|";
  for (size_t i = 0; i < keys.size() + 11; ++i) os << "---|";
  os << '\n';
  auto cell = [](double v, const char* f) { return std::isnan(v) ? std::string("-") : num(v, f); };
  for (const auto& r : rows) {
    const auto& s = r.summary;
    const auto& d = s.detection;
    os << value_cells(r);
    os << ' ' << s.attackers.size() << " | " << num(100 * s.honest_test_accuracy, "%.2f %%") << " | "
       << (r.clean_accuracy ? num(100 * (s.honest_test_accuracy - *r.clean_accuracy), "%+.2f") : "-") << " | "
       << cell(d.precision, "%.3f") << " | " << cell(d.recall, "%.3f") << " | " << cell(d.f1, "%.3f") << " | "
       << d.fp << " | " << cell(d.steps_to_quarantine_median, "%.0f") << " / "
       << cell(d.steps_to_quarantine_p95, "%.0f") << " | " << num(s.detect_overhead_pct, "%.2f %%") << " | "
       << (s.verification.enabled ? num(check_pct(s), "%.2f %%") + " / " + num(commit_pct(s), "%.0f %%") : "-") << " | "
       << num(static_cast<double>(s.bytes_sent_total) / 1e6, "%.1f MB") << " |\n";
  }
  return os.str();
}

}  // namespace murmur
