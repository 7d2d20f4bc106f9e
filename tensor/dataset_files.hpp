// A data set from files the user names: features and labels, each a NumPy
// .npy file (tensor/npy_file.hpp) or an IDX file (images idx3 uint8, labels
// idx1 uint8, as Fashion-MNIST's), raw or gzip-compressed. The format is
// decided by content, never by name: "\x93NUMPY" is .npy, two zero bytes are
// IDX. Every problem throws DataError naming the file and the problem.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dataset.hpp"

namespace murmur {

enum class data_file_format : uint8_t { npy, idx };

// Looks at the first bytes (after gunzip); DataError for an unreadable file
// or content that is neither .npy nor IDX.
data_file_format detect_data_file(const std::string& path);

// Features [N, C, H, W] in float32 (uint8 data scaled to [0, 1]).
Tensor load_features_file(const std::string& path);
// Labels, each >= 0 (not checked against a class count).
std::vector<int32_t> load_labels_file(const std::string& path);

// Features and labels together. classes > 0: every label must be < classes;
// classes = 0: the class count is max label + 1. DataError (naming the labels
// file) for a count mismatch, a label out of range or no samples;
// std::invalid_argument for classes < 0.
Dataset load_dataset_files(const std::string& features_path, const std::string& labels_path, int32_t classes);

}  // namespace murmur
