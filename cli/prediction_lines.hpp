// The lines murmur predict and murmur infer print for predicted rows: one
// JSON line per row {"row": i, "class": k, "probabilities": [...]}, or with
// table a header (before row 0) and one fixed-width line per row. Row numbers
// count from first_row (infer prints in batches).
#pragma once
#include <cstdint>

#include "model_io/model_prediction.hpp"

namespace murmur {

void print_prediction_lines(const prediction_rows& p, int64_t first_row, bool table);

}  // namespace murmur
