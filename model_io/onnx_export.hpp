// ONNX export of a whole murmur model (Debian's libonnx-dev protobuf
// classes): opset 13, input "input" [batch, C, H, W] (batch symbolic),
// output "logits" [batch, classes], parameters as initializers under the
// same names as in the model file ("3.weight"). Each layer kind maps to its
// ONNX nodes through one rule in onnx_export.cpp (linear: Gemm with transB,
// conv2d: Conv, maxpool2d: MaxPool, relu/sigmoid/tanh, flatten: Flatten
// axis 1, dropout: Identity, gap: GlobalAveragePool, groupnorm: Reshape +
// InstanceNormalization + Reshape + affine, res[...]: its body, then Add);
// a kind without a rule throws std::invalid_argument naming it.
#pragma once
#include <string>

#include "model_io/model_file.hpp"

namespace murmur {

inline constexpr int onnx_opset = 13;

// w must be a whole model (std::invalid_argument otherwise); DataError when
// the file cannot be written.
void write_onnx(const std::string& path, const model_weights& w);

}  // namespace murmur
