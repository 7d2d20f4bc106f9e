// model_logits MODEL DATA_DIR N OUT_DIR: murmur's logits of a saved model
// (a run directory or model file) on the first N Fashion-MNIST test images
// in DATA_DIR, written as OUT_DIR/images.npy (float32 [N, C, H, W]) and
// OUT_DIR/logits.npy (float32 [N, classes]) for scripts/check_model_export.py.
// Test tool only (not part of murmur).
#include <cstdio>
#include <fstream>
#include <string>

#include "model_io/model_source.hpp"
#include "tensor/dataset.hpp"

namespace {

void write_npy(const std::string& path, const murmur::Tensor& t) {
  std::string shape;
  for (auto d : t.shape()) shape += std::to_string(d) + ",";
  if (t.shape().size() > 1) shape.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t n = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&n), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.numel() * 4));
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: model_logits MODEL DATA_DIR N OUT_DIR\n");
    return 2;
  }
  try {
    const murmur::model_weights w = murmur::load_whole_model({argv[1]});
    auto model = murmur::build_model_from(w);
    murmur::Dataset test = murmur::take(murmur::load_fashion_mnist(argv[2], false), std::stoll(argv[3]));
    const murmur::Tensor& logits = model->forward(test.images);
    write_npy(std::string(argv[4]) + "/images.npy", test.images);
    write_npy(std::string(argv[4]) + "/logits.npy", logits);
    std::printf("model_logits: %lld images, logits %s\n", static_cast<long long>(test.size()),
                murmur::shape_str(logits.shape()).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_logits: %s\n", e.what());
    return 1;
  }
}
