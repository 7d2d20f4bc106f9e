#include "run/json_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace murmur {

namespace {

template <class T>
std::string shortest_or_null(T v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  auto r = std::to_chars(b, b + sizeof b, v);
  return std::string(b, r.ptr);
}

}  // namespace

std::string json_number(double v) { return shortest_or_null(v); }
std::string json_number(float v) { return shortest_or_null(v); }

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += ch;
        }
    }
  }
  return out + '"';
}

}  // namespace murmur
