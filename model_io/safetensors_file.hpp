// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
// {string: string}}, then the tensors' raw little-endian bytes, offsets
// relative to the end of the header. Contract:
//  - write_safetensors writes F32 tensors in the order given, contiguous,
//    the header padded with spaces to a multiple of 8 bytes; through a
//    temporary file renamed into place, so a reader never sees half a file.
//  - read_safetensors checks everything before it trusts anything: the
//    header length against the file size (and a 100 MB cap), the JSON, each
//    entry's fields and types, known dtypes, shapes (no overflow) against
//    the byte ranges, ranges in bounds that tile the data exactly (no
//    overlap, no gap, nothing after), metadata values all strings. Any
//    problem throws DataError "PATH: what is wrong". Nothing is allocated
//    beyond the file's own size.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace murmur {

struct safetensors_entry {
  std::string name, dtype;   // dtype as in the file: "F32", "F16", "I64", ...
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range in data
};

struct safetensors_contents {
  std::map<std::string, std::string> metadata;
  std::vector<safetensors_entry> tensors;  // in data order
  std::vector<unsigned char> data;
};

struct safetensors_tensor_ref {
  std::string name;
  Shape shape;
  const float* values = nullptr;  // shape_numel(shape) floats
};

void write_safetensors(const std::string& path, const std::vector<safetensors_tensor_ref>& tensors,
                       const std::map<std::string, std::string>& metadata);

safetensors_contents read_safetensors(const std::string& path);

// Largest header read_safetensors accepts (the reference implementation's).
inline constexpr uint64_t safetensors_max_header = 100u << 20;

}  // namespace murmur
