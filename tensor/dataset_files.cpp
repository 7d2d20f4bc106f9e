#include "tensor/dataset_files.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tensor/input_file.hpp"
#include "tensor/npy_file.hpp"

namespace murmur {

namespace {
constexpr int32_t kMaxInferredClasses = 1 << 24;
}  // namespace

data_file_format detect_data_file(const std::string& path) {
  InputFile f(path);
  unsigned char m[6] = {0, 0, 0, 0, 0, 0};
  const uint64_t got = f.read(m, 6);
  if (got == 6 && std::memcmp(m, "\x93NUMPY", 6) == 0) return data_file_format::npy;
  if (got >= 4 && m[0] == 0 && m[1] == 0) return data_file_format::idx;
  char first[40] = "";
  for (uint64_t i = 0; i < got; ++i) std::snprintf(first + 3 * i, 4, "%02x ", m[i]);
  f.fail(got == 0 ? std::string("empty file (expected a .npy or IDX file)")
                  : "neither a .npy file (magic \\x93NUMPY) nor an IDX file (magic 00 00 08 0N): first bytes " +
                        std::string(first, 3 * got - 1));
}

Tensor load_features_file(const std::string& path) {
  return detect_data_file(path) == data_file_format::npy ? read_npy_features(path) : load_idx_images(path);
}

std::vector<int32_t> load_labels_file(const std::string& path) {
  if (detect_data_file(path) == data_file_format::npy) return read_npy_labels(path);
  return load_idx_labels(path, 256);  // uint8: any value; the class count is checked below
}

Dataset load_dataset_files(const std::string& features_path, const std::string& labels_path, int32_t classes) {
  if (classes < 0)
    throw std::invalid_argument("load_dataset_files: classes must be >= 0, got " + std::to_string(classes));
  Dataset d;
  d.images = load_features_file(features_path);
  d.labels = load_labels_file(labels_path);
  auto fail = [&](const std::string& problem) { throw DataError(labels_path + ": " + problem); };
  if (d.size() != d.images.dim(0))
    fail("feature/label count mismatch: " + std::to_string(d.size()) + " labels but " +
         std::to_string(d.images.dim(0)) + " samples in " + features_path);
  if (d.size() == 0) fail("no samples (and none in " + features_path + ")");
  if (classes > 0) {
    for (size_t i = 0; i < d.labels.size(); ++i)
      if (d.labels[i] >= classes)
        fail("label " + std::to_string(d.labels[i]) + " at index " + std::to_string(i) + " is out of range for " +
             std::to_string(classes) + " classes");
    d.num_classes = classes;
  } else {
    const auto top = std::max_element(d.labels.begin(), d.labels.end());
    // The model's output layer has one row per class: a stray huge label
    // must not size it.
    if (*top >= kMaxInferredClasses)
      fail("label " + std::to_string(*top) + " at index " + std::to_string(top - d.labels.begin()) +
           " would make " + std::to_string(int64_t{*top} + 1) + " classes (over " +
           std::to_string(kMaxInferredClasses) + "); give the class count explicitly");
    d.num_classes = *top + 1;
  }
  return d;
}

}  // namespace murmur
