// NumPy .npy files (format versions 1.0, 2.0 and 3.0, as np.save writes them),
// read as model inputs (features) or class labels. Validated like the IDX
// reader: every problem throws DataError "PATH: problem" (bad magic, version,
// header text, dtype, byte order, Fortran order, shape, truncated or trailing
// data, non-finite or out-of-range values), and no buffer is sized from the
// header before the file's size vouches for it (a header claiming 2^40
// elements costs nothing). A gzip-compressed .npy (np.save piped through
// gzip) is read the same way. Contract:
//  - Dtypes: little-endian (or byte-order-free '|') f4, u1, i1, u2, i2, u4,
//    i4, u8, i8; C order only; at most kNpyMaxElements elements.
//  - read_npy_features: float32 ('<f4') taken as is (non-finite refused) or
//    uint8 ('|u1') divided by 255 (as the IDX path and torchvision's
//    ToTensor); shape [N,C,H,W] as is, [N,H,W] -> [N,1,H,W], [N,D] -> [N,1,1,D].
//  - read_npy_labels: any integer dtype, shape [N], values in [0, 2^31).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/data_error.hpp"
#include "tensor/tensor.hpp"

namespace murmur {

// Refused before anything is allocated: 2^28 elements are 1 GiB as float32,
// the IDX reader's limit too.
constexpr int64_t kNpyMaxElements = int64_t{1} << 28;

enum class npy_dtype : uint8_t { f4, u1, i1, u2, i2, u4, i4, u8, i8 };

std::string to_string(npy_dtype t);  // numpy's descr: "<f4", "|u1", "<i8", ...
int npy_itemsize(npy_dtype t);
bool npy_is_integer(npy_dtype t);

struct npy_header {
  int major = 1, minor = 0;   // format version
  npy_dtype dtype = npy_dtype::f4;
  std::vector<int64_t> shape;  // () for a scalar
  int64_t count = 1;           // product of shape, <= kNpyMaxElements
  uint64_t data_offset = 0;    // bytes before the data (magic + lengths + header text)
};

// True when the content (after gunzip, if gzipped) starts with "\x93NUMPY";
// false for a shorter or unreadable file.
bool has_npy_magic(const std::string& path);

// The validated header alone (no data read).
npy_header read_npy_header(const std::string& path);

// Features as a float tensor [N, C, H, W] (see the contract above).
Tensor read_npy_features(const std::string& path);

// Labels, one per sample, each >= 0 (checking them against a class count is
// the caller's: load_dataset_files in tensor/dataset_files.hpp).
std::vector<int32_t> read_npy_labels(const std::string& path);

}  // namespace murmur
