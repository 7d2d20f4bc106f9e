// Test-side .npy writer: the bytes np.save would write (or damaged variants),
// so reader tests need no NumPy. Format: "\x93NUMPY", major, minor, header
// length (2 bytes LE for 1.0, 4 for 2.0/3.0), the dict text padded with
// spaces to a multiple of 64 and ended by '\n', then the raw data.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace murmur::test {

using npy_raw = std::vector<unsigned char>;

inline std::string npy_dict(const std::string& descr, const std::vector<int64_t>& shape, bool fortran = false) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  s += shape.size() == 1 ? ",)" : ")";
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + s + ", }";
}

// The whole file for a header text (already a dict) and data bytes.
inline npy_raw npy_file_bytes(const std::string& dict, const npy_raw& data, int major = 1) {
  npy_raw b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
  const size_t pre = major == 1 ? 10 : 12;
  std::string text = dict;
  while ((pre + text.size() + 1) % 64 != 0) text += ' ';
  text += '\n';
  const auto len = static_cast<uint32_t>(text.size());
  b.push_back(static_cast<unsigned char>(len));
  b.push_back(static_cast<unsigned char>(len >> 8));
  if (major != 1) {
    b.push_back(static_cast<unsigned char>(len >> 16));
    b.push_back(static_cast<unsigned char>(len >> 24));
  }
  b.insert(b.end(), text.begin(), text.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

template <class T>
npy_raw npy_data(const std::vector<T>& v) {
  npy_raw b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A well-formed array of T (descr must match T).
template <class T>
npy_raw npy_array_bytes(const std::string& descr, const std::vector<int64_t>& shape, const std::vector<T>& v,
                        int major = 1) {
  return npy_file_bytes(npy_dict(descr, shape), npy_data(v), major);
}

inline void write_bytes(const std::string& path, const npy_raw& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace murmur::test
