// The text of JSON values in the files runs write (summary.json,
// metrics.jsonl, events.jsonl, timing.json). Contract:
//  - json_number: the shortest text that reads back as the same value
//    (std::to_chars), or null when the value is NaN or infinite: JSON has no
//    NaN, and a strict parser rejects a file with one.
//  - json_string: a quoted JSON string; quotes, backslashes and control
//    characters are escaped, other bytes are copied.
#pragma once
#include <string>
#include <string_view>

namespace murmur {

std::string json_number(double v);
std::string json_number(float v);  // shortest text of the float (0.85, not 0.8500000238418579)
std::string json_string(std::string_view s);

}  // namespace murmur
