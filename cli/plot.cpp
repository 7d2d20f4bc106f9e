#include "cli/plot.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace murmur {

namespace {

bool run_gnuplot(const std::string& script_path, std::string* note) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    if (note) *note = "gnuplot not found (apt-get install gnuplot-nox); plot script left at " + script_path;
    return false;
  }
  std::string cmd = "gnuplot '" + script_path + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    if (note) *note = "gnuplot failed on " + script_path;
    return false;
  }
  return true;
}

}  // namespace

bool plot_run(const std::string& dir, std::string* note) {
  if (!std::filesystem::exists(dir + "/curve.tsv")) {
    if (note) *note = "no curve.tsv in " + dir;
    return false;
  }
  const std::string script = dir + "/plot.gp";
  std::ofstream gp(script);
  gp << "set terminal pngcairo size 1200,450 noenhanced\n"
     << "set output '" << dir << "/accuracy.png'\n"
     << "set multiplot layout 1,2 title 'murmur sim: " << std::filesystem::path(dir).filename().string() << "'\n"
     << "set grid\nset key bottom right\nset ylabel 'test accuracy'\nset yrange [0:1]\n"
     << "set xlabel 'virtual time (s)'\n"
     << "plot '" << dir << "/curve.tsv' using 1:3 with linespoints title 'mean over peers', "
     << "'' using 1:4 with lines dashtype 2 title 'worst peer'\n"
     << "set xlabel 'bytes sent, all peers (MB)'\n"
     << "plot '" << dir << "/curve.tsv' using ($2/1e6):3 with linespoints title 'mean over peers'\n"
     << "unset multiplot\n";
  gp.close();
  if (std::system("gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo") != 0) {
    // gnuplot-nox may lack cairo: fall back to the plain png terminal.
    std::ifstream in(script);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    s.replace(s.find("pngcairo"), 8, "png");
    std::ofstream(script) << s;
  }
  return run_gnuplot(script, note);
}

bool plot_peers(const std::string& dir, int peers, std::string* note) {
  const std::string script = dir + "/plot.gp";
  std::ofstream gp(script);
  gp << "set terminal png size 1200,450 noenhanced\n"
     << "set output '" << dir << "/accuracy.png'\n"
     << "set multiplot layout 1,2 title 'murmur peers (merged)'\n"
     << "set grid\nset key bottom right\nset ylabel 'test accuracy'\nset yrange [0:1]\n"
     << "set xlabel 'wall time of each peer (s)'\n"
     << "plot for [i=0:" << peers - 1 << "] '" << dir << "/peers.tsv' index i using 2:4 with linespoints title 'peer '.i\n"
     << "set xlabel 'bytes sent by the peer (MB)'\n"
     << "plot for [i=0:" << peers - 1 << "] '" << dir
     << "/peers.tsv' index i using ($3/1e6):4 with linespoints title 'peer '.i\n"
     << "unset multiplot\n";
  gp.close();
  return run_gnuplot(script, note);
}

bool plot_sweep(const std::string& dir, const std::string& key, std::string* note, size_t key_columns) {
  const size_t acc = key_columns + 1, bytes = key_columns + 2;
  const std::string script = dir + "/sweep.gp";
  std::ofstream gp(script);
  gp << "set terminal png size 800,500 noenhanced\n"
     << "set output '" << dir << "/sweep.png'\n"
     << "set datafile separator ','\nset grid\nset logscale x\n"
     << "set title 'sweep of " << key << ": accuracy against bytes'\n"
     << "set xlabel 'bytes sent, all peers'\nset ylabel 'final mean test accuracy'\n"
     << "plot '" << dir << "/sweep.csv' every ::1 using " << bytes << ':' << acc << " with linespoints notitle, "
     << "'' every ::1 using " << bytes << ':' << acc << ":1 with labels offset 1,1 notitle\n";
  gp.close();
  return run_gnuplot(script, note);
}

bool plot_confusion(const std::string& tsv, const std::string& png, const std::string& title, std::string* note) {
  const std::string script = png + ".gp";
  std::ofstream gp(script);
  gp << "set terminal png size 700,650 noenhanced\n"
     << "set output '" << png << "'\n"
     << "set title '" << title << "'\n"
     << "set xlabel 'predicted class'\nset ylabel 'true class'\n"
     << "set yrange [] reverse\nset size square\nset xtics 1\nset ytics 1\nunset key\n"
     << "set palette defined (0 'white', 1 '#2166ac')\n"
     << "plot '" << tsv << "' matrix with image, '' matrix using 1:2:(sprintf('%d', $3)) with labels font ',9'\n";
  gp.close();
  return run_gnuplot(script, note);
}

}  // namespace murmur
