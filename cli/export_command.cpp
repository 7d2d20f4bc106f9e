// murmur export: a run's final model (or a model file, or a pipeline's stage
// files) written as safetensors or ONNX (model_io/model_export.hpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "model_io/model_export.hpp"
#include "model_io/model_source.hpp"

namespace murmur {

namespace {

struct export_args {
  std::vector<std::string> inputs;
  std::string format, out;
};

}  // namespace

verb_run add_export_verb(CLI::App& murmur) {
  auto a = std::make_shared<export_args>();
  CLI::App* v = murmur.add_subcommand("export", "write a run's final model as safetensors or ONNX");
  v->add_option("model", a->inputs,
                "a run directory (its model.safetensors, or a pipeline node's stage-R-S.safetensors), a model file, "
                "or several: the stage files or run directories of all a pipeline's stages")
      ->type_name("RUN_DIR|MODEL ...");
  v->add_option("--format", a->format, "safetensors or onnx (default: from --out's extension)")
      ->type_name("safetensors|onnx");
  v->add_option("--out", a->out, "the file to write (required)")->type_name("FILE");
  v->footer("A pipeline run's model is in pieces, one stage file per node (stage-R-S.safetensors in each node's\n"
            "run directory): name all the directories (or copy the files into one) and export assembles replica\n"
            "R's stages, or says which files are missing.\n"
            "Example:\n  murmur export runs/fmnist-cnn --format onnx --out cnn.onnx\n"
            "  murmur export runs/peer-0 runs/peer-1 runs/peer-2 --out model.safetensors");
  return [a] {
    if (a->inputs.empty()) throw UsageError("expected a run directory or model file");
    if (a->out.empty()) throw UsageError("expected --out FILE");
    model_format f;
    try {
      f = choose_model_format(a->format, a->out);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    const model_weights w = load_whole_model(a->inputs);
    export_model(w, f, a->out);
    auto source = w.model.notes.find("source");
    std::printf("wrote %s (%s): model '%s', input %s, %lld classes, %zu parameters%s%s\n", a->out.c_str(), to_string(f),
                w.model.spec.c_str(), shape_str(w.model.input_shape).c_str(),
                static_cast<long long>(w.model.num_classes), w.params.size(),
                source == w.model.notes.end() ? "" : "; ", source == w.model.notes.end() ? "" : source->second.c_str());
    return 0;
  };
}

}  // namespace murmur
