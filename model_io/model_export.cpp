#include "model_io/model_export.hpp"

#include <filesystem>
#include <stdexcept>

#include "model_io/onnx_export.hpp"

namespace murmur {

model_format choose_model_format(const std::string& name, const std::string& out) {
  if (name == "safetensors") return model_format::safetensors;
  if (name == "onnx") return model_format::onnx;
  if (!name.empty()) throw std::invalid_argument("--format " + name + ": expected safetensors or onnx");
  const std::string ext = std::filesystem::path(out).extension().string();
  if (ext == ".safetensors") return model_format::safetensors;
  if (ext == ".onnx") return model_format::onnx;
  throw std::invalid_argument("no --format, and the extension of " + out +
                              " says none (.safetensors or .onnx)");
}

const char* to_string(model_format f) { return f == model_format::onnx ? "onnx" : "safetensors"; }

void export_model(const model_weights& w, model_format f, const std::string& out) {
  if (!w.model.whole())
    throw std::invalid_argument("export needs a whole model; this is layers [" + std::to_string(w.model.layers.begin) +
                                ", " + std::to_string(w.model.layers.end) + ") of " +
                                std::to_string(w.model.layer_count));
  if (f == model_format::onnx) {
    write_onnx(out, w);
    return;
  }
  write_model_file(out, w.model, *build_model_from(w));
}

}  // namespace murmur
