// murmur plot: redraw a run's accuracy.png from its curve.tsv.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "cli/plot.hpp"

namespace murmur {

verb_run add_plot_verb(CLI::App& murmur) {
  auto dir = std::make_shared<std::string>();
  CLI::App* v = murmur.add_subcommand("plot", "redraw a run's accuracy.png (needs gnuplot)");
  v->add_option("run_dir", *dir, "the run directory (holds curve.tsv)")->type_name("DIR");
  v->footer("Example:\n  murmur plot runs/fmnist-gossip");
  return [dir] {
    if (dir->empty()) throw UsageError("expected a run directory");
    std::string note;
    if (!plot_run(*dir, &note)) {
      std::fprintf(stderr, "murmur plot: %s\n", note.c_str());
      return 1;
    }
    std::printf("wrote %s/accuracy.png\n", dir->c_str());
    return 0;
  };
}

}  // namespace murmur
