// PNG plots through gnuplot (Debian's gnuplot-nox). Plotting is best effort:
// without gnuplot the data files stay and a note says how to get the plots.
#pragma once
#include <cstddef>
#include <string>

namespace murmur {

// run_dir/curve.tsv -> run_dir/accuracy.png (accuracy vs virtual time and vs bytes).
bool plot_run(const std::string& run_dir, std::string* note);
// dir/peers.tsv (one block per peer) -> dir/accuracy.png (accuracy vs wall time and vs bytes).
bool plot_peers(const std::string& dir, int peers, std::string* note);
// sweep_dir/sweep.csv -> sweep_dir/sweep.png (accuracy vs bytes, one point per
// run, labelled by the first column); the CSV starts with key_columns keys.
bool plot_sweep(const std::string& sweep_dir, const std::string& key, std::string* note, size_t key_columns = 1);

// A confusion matrix (tsv: one row per true class, one count per predicted
// class) -> png: a heat map with the counts written in.
bool plot_confusion(const std::string& tsv, const std::string& png, const std::string& title, std::string* note);

}  // namespace murmur
