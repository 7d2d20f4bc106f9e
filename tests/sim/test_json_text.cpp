// json_number / json_string: what a strict JSON parser reads back.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "run/json_text.hpp"

using namespace murmur;

TEST_CASE("json_number: shortest round-trip text, null for NaN and infinities", "[json]") {
  CHECK(json_number(0.1) == "0.1");
  CHECK(json_number(5.0) == "5");
  CHECK(json_number(-2.5) == "-2.5");
  CHECK(json_number(1e-7) == "1e-07");
  CHECK(json_number(0.85f) == "0.85");  // the float's digits, not its double expansion
  CHECK(json_number(std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(json_number(-std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(json_number(std::numeric_limits<double>::infinity()) == "null");
  CHECK(json_number(-std::numeric_limits<double>::infinity()) == "null");
  CHECK(json_number(std::numeric_limits<float>::quiet_NaN()) == "null");
  CHECK(json_number(-std::numeric_limits<float>::infinity()) == "null");
  CHECK(nlohmann::json::parse(json_number(std::nan(""))).is_null());

  // Every finite double reads back exactly, extremes included.
  std::mt19937_64 rng(7);
  std::vector<double> values = {0.0, -0.0, std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(),
                                std::numeric_limits<double>::min(), std::numeric_limits<double>::denorm_min(), 1e300,
                                -1e-300, 123456789012345678.0};
  for (int i = 0; i < 2000; ++i) {
    double d;
    uint64_t bits = rng();
    std::memcpy(&d, &bits, sizeof d);
    if (std::isfinite(d)) values.push_back(d);
  }
  for (double v : values) {
    INFO(json_number(v));
    const auto j = nlohmann::json::parse(json_number(v));
    REQUIRE(j.is_number());
    CHECK(j.get<double>() == v);
  }
}

TEST_CASE("json_string escapes what JSON requires", "[json]") {
  const std::string raw = std::string("a \"quoted\" \\ path\n\ttab\x01\x1f\x7f end");
  const std::string text = json_string(raw);
  const auto j = nlohmann::json::parse(text);
  REQUIRE(j.is_string());
  CHECK(j.get<std::string>() == raw);
  CHECK(json_string("") == "\"\"");
  CHECK(json_string("plain") == "\"plain\"");
}
