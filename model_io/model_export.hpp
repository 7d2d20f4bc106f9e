// Writing a whole model in a format other tools read: safetensors (murmur's
// own model file, see model_file.hpp) or ONNX (onnx_export.hpp). The format
// is named, or else taken from the output's extension.
#pragma once
#include <string>

#include "model_io/model_file.hpp"

namespace murmur {

enum class model_format { safetensors, onnx };

// "safetensors" | "onnx"; "" = from out's extension (.safetensors, .onnx).
// std::invalid_argument naming what is allowed otherwise.
model_format choose_model_format(const std::string& name, const std::string& out);
const char* to_string(model_format f);

// w must be a whole model (std::invalid_argument otherwise).
void export_model(const model_weights& w, model_format f, const std::string& out);

}  // namespace murmur
