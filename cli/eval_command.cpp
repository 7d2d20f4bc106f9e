// murmur eval: a saved model's accuracy, mean loss and confusion matrix on a
// test set (model_io/model_evaluation.hpp; the data as runs load it,
// run/eval_data.hpp), printed, and the matrix as a PNG heat map.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/commands.hpp"
#include "cli/plot.hpp"
#include "model_io/model_evaluation.hpp"
#include "model_io/model_source.hpp"
#include "run/eval_data.hpp"

namespace murmur {

namespace {

struct eval_args {
  std::vector<std::string> model, overrides;
  std::string data, labels, out;
  bool quiet = false;
};

}  // namespace

verb_run add_eval_verb(CLI::App& murmur) {
  auto a = std::make_shared<eval_args>();
  CLI::App* v = murmur.add_subcommand("eval", "a saved model's test accuracy, loss and confusion matrix");
  v->add_option("model", a->model, "a run directory, a model file, or a pipeline's stage files (as murmur export)")
      ->type_name("RUN_DIR|MODEL ...");
  v->add_option("--data", a->data,
                "a directory of Fashion-MNIST-named IDX files (as data.dir), or a features file (.npy or IDX) with "
                "--labels (default: Debian's Fashion-MNIST test set)")
      ->type_name("DIR|FILE");
  v->add_option("--labels", a->labels, "the labels of --data FILE (.npy or IDX)")->type_name("FILE");
  v->add_option("--set", a->overrides, "a data.* key, as in a run config; repeatable")->type_name("data.KEY=VALUE");
  v->add_option("--out", a->out,
                "where confusion.tsv and confusion.png go (default: the run directory, or the model file's)")
      ->type_name("DIR");
  v->add_flag("--quiet", a->quiet, "no notice while the data loads");
  v->footer("Example:\n  murmur eval runs/fmnist-cnn\n  murmur eval model.safetensors --set data.test_samples=1000\n"
            "  murmur eval runs/mine --data test_x.npy --labels test_y.npy");
  return [a] {
    if (a->model.empty()) throw UsageError("expected a run directory or model file");
    const model_weights w = load_whole_model(a->model);
    auto model = build_model_from(w);
    const auto test =
        load_eval_data(a->data, a->labels, a->overrides, w.model.num_classes, a->quiet ? nullptr : &std::cerr);
    const model_evaluation e = evaluate_model(*model, *test);
    std::string out = a->out;
    if (out.empty()) {
      const std::filesystem::path first(a->model.front());
      out = std::filesystem::is_directory(first) ? first.string() : first.parent_path().string();
      if (out.empty()) out = ".";
    }
    std::filesystem::create_directories(out);
    std::printf("model '%s' (%zu parameters) on %lld test samples: accuracy %.2f%%, mean loss %.4f\n",
                w.model.spec.c_str(), w.params.size(), static_cast<long long>(e.samples), 100 * e.accuracy,
                e.mean_loss);
    std::fputs(confusion_table(e).c_str(), stdout);
    const std::string tsv = out + "/confusion.tsv", png = out + "/confusion.png";
    std::ofstream(tsv) << confusion_tsv(e);
    std::string note;
    char title[128];
    std::snprintf(title, sizeof title, "confusion matrix: accuracy %.2f%% on %lld samples", 100 * e.accuracy,
                  static_cast<long long>(e.samples));
    if (plot_confusion(tsv, png, title, &note))
      std::printf("wrote %s and %s\n", tsv.c_str(), png.c_str());
    else
      std::printf("wrote %s; note: %s\n", tsv.c_str(), note.c_str());
    return 0;
  };
}

}  // namespace murmur
