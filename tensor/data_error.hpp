// The error every data-file reader throws: what() is "PATH: problem".
#pragma once
#include <stdexcept>

namespace murmur {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace murmur
