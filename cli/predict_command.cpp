// murmur predict: a saved model's class and probabilities for each row of a
// features file (.npy or IDX; model_io/model_prediction.hpp), printed as
// JSON lines or a table.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/prediction_lines.hpp"
#include "cli/commands.hpp"
#include "model_io/model_prediction.hpp"
#include "model_io/model_source.hpp"
#include "tensor/dataset_files.hpp"

namespace murmur {

namespace {

struct predict_args {
  std::string model, features;
  bool table = false;
};

}  // namespace

verb_run add_predict_verb(CLI::App& murmur) {
  auto a = std::make_shared<predict_args>();
  CLI::App* v = murmur.add_subcommand("predict", "a saved model's class and probabilities for each row of a file");
  v->add_option("model", a->model, "a run directory or model file (as murmur export)")->type_name("RUN_DIR|MODEL");
  v->add_option("features", a->features,
                "the samples: .npy (float32 [0,1] or uint8 /255; [N,C,H,W], [N,H,W] or [N,D]) or IDX")
      ->type_name("FILE.npy");
  v->add_flag("--table", a->table, "a table (row, class, its probability, all probabilities) instead of JSON lines");
  v->footer("Prints one line per row: {\"row\": i, \"class\": k, \"probabilities\": [p0, p1, ...]}.\n"
            "Example:\n  murmur predict runs/fmnist-cnn samples.npy");
  return [a] {
    if (a->model.empty() || a->features.empty()) throw UsageError("expected a model (run directory or file) and FILE.npy");
    const model_weights w = load_whole_model({a->model});
    auto model = build_model_from(w);
    const Tensor x = load_features_file(a->features);
    prediction_rows p;
    try {
      p = predict_rows(*model, x);
    } catch (const std::invalid_argument& e) {
      throw DataError(a->features + ": " + e.what());
    }
    print_prediction_lines(p, 0, a->table);
    return 0;
  };
}

}  // namespace murmur
